"""the app role logs in: tenant traffic connects as it, instead of switching to it

A tenant transaction used to run on the owner's connection with `SET LOCAL ROLE` to the
app role; `RESET ROLE` (or `set_config('role', …)`) inside it returned to the owner,
who sees every tenant. Connecting as the app role — not a superuser, not the owner, a
member of neither — leaves a tenant transaction no role to return to. The owner keeps
the schema and the system session; it no longer needs to switch to the app role.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 20:40:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import make_url

from app.config import get_settings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    settings = get_settings()
    role = settings.database_app_role
    password = make_url(settings.tenant_database_url).password
    login = f"ALTER ROLE {role} LOGIN"
    if password:  # DATABASE_APP_URL names it; trust or peer authentication needs none
        login += " PASSWORD '" + str(password).replace("'", "''") + "'"
    op.execute(login)
    op.execute(f"REVOKE {role} FROM CURRENT_USER")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    role = get_settings().database_app_role
    op.execute(f"GRANT {role} TO CURRENT_USER")
    op.execute(f"ALTER ROLE {role} NOLOGIN")
