"""Users' emails stored in lower case (a CHECK), their unique indexes on the column
itself: under row-level security PostgreSQL uses an index only for leakproof
conditions, and `lower(email) = :x` is not one, so every look-up by address read all of
the organization's users

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("deleted_at IS NULL")
LIVE_SUPERUSER = sa.text("deleted_at IS NULL AND organization_id IS NULL")
# SQLite adds a CHECK only by rebuilding the table from its reflection, which loses the
# partial and expression indexes it cannot reflect: the same rule, as triggers. A later
# migration that rebuilds `users` on SQLite drops them and must create them again
# (tests/embedded/test_embedded_paths.py fails without them).
SQLITE_TRIGGERS = {
    f"users_email_lowercase_{event.lower()}": (
        f"CREATE TRIGGER users_email_lowercase_{event.lower()} BEFORE {event} ON users "
        "WHEN NEW.email <> lower(NEW.email) "
        "BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ck_users_email_lowercase'); END"
    )
    for event in ("INSERT", "UPDATE")
}


def upgrade() -> None:
    # Live addresses are unique by their lower case already (the indexes below replace
    # ones on `lower(email)`), so lowering them collides with nothing.
    op.execute("UPDATE users SET email = lower(email) WHERE email <> lower(email)")
    op.drop_index("uq_users_email", table_name="users")
    op.drop_index("uq_users_superuser_email", table_name="users")
    op.create_index(
        "uq_users_email",
        "users",
        ["organization_id", "email"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "uq_users_superuser_email",
        "users",
        ["email"],
        unique=True,
        postgresql_where=LIVE_SUPERUSER,
        sqlite_where=LIVE_SUPERUSER,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint("email_lowercase", "users", "email = lower(email)")
    else:
        for trigger in SQLITE_TRIGGERS.values():
            op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("email_lowercase", "users", type_="check")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_index("uq_users_superuser_email", table_name="users")
    op.drop_index("uq_users_email", table_name="users")
    op.create_index(
        "uq_users_email",
        "users",
        ["organization_id", sa.text("lower(email)")],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "uq_users_superuser_email",
        "users",
        [sa.text("lower(email)")],
        unique=True,
        postgresql_where=LIVE_SUPERUSER,
        sqlite_where=LIVE_SUPERUSER,
    )
