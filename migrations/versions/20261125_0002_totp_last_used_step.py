"""users.totp_last_used_step: a one-time code is accepted once

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTERs on both dialects (SQLite ≥ 3.35 drops columns natively): batch mode would
# reflect and rebuild `users`, losing its expression indexes on SQLite.
def upgrade() -> None:
    op.add_column("users", sa.Column("totp_last_used_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "totp_last_used_step")
