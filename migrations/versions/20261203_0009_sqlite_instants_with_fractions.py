"""SQLite: stored instants get the six fractional digits bound values have

Rows that SQLite's `CURRENT_TIMESTAMP` stamped read `2026-12-02 17:58:04`; values the
application binds, and what it now writes itself (`UtcNow`), read
`2026-12-02 17:58:04.000000`. As text the shorter sorts first, so keyset pages on an
instant repeated or skipped rows. Every stored whole-second instant gets `.000000`.
PostgreSQL stores `timestamptz` and has nothing to change.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHOLE_SECOND_LENGTH = len("2026-12-02 17:58:04")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    inspector = sa.inspect(bind)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            if not isinstance(column["type"], sa.DateTime):
                continue
            stored = sa.column(column["name"], sa.String)
            op.execute(
                sa.update(sa.table(table, stored))
                .where(sa.func.length(stored) == WHOLE_SECOND_LENGTH)
                .values({stored.name: stored + ".000000"})
            )


def downgrade() -> None:
    """Nothing to undo: the longer form reads back as the same instant."""
