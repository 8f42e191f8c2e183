"""stored tsvector columns for search, usable by the GIN index under row-level security

Under RLS, PostgreSQL evaluates a query's own conditions after the tenant policy unless
every function in them is leakproof; `to_tsvector(...) @@ q` over an expression index is
therefore never an index condition for the app role, and a search scanned the whole
organization's comments. Matching a stored tsvector column involves only `@@`
(`ts_match_vq`), and once that function is marked leakproof the GIN index serves the
app role too. Marking it needs a superuser: done here when the migrating role is one,
otherwise a NOTICE asks a DBA to run the statement once (search stays correct without
it, just slower).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_DOCUMENT = "to_tsvector('simple'::regconfig, subject::text || ' ' || description)"
COMMENT_DOCUMENT = "to_tsvector('simple'::regconfig, content)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_tickets_search")
    op.execute("DROP INDEX IF EXISTS ix_ticket_comments_search")
    op.execute(
        "ALTER TABLE tickets ADD COLUMN search_document tsvector "
        f"GENERATED ALWAYS AS ({TICKET_DOCUMENT}) STORED"
    )
    op.execute(
        "ALTER TABLE ticket_comments ADD COLUMN search_document tsvector "
        f"GENERATED ALWAYS AS ({COMMENT_DOCUMENT}) STORED"
    )
    op.execute(
        "CREATE INDEX ix_tickets_search ON tickets USING gin (organization_id, search_document)"
    )
    op.execute(
        "CREATE INDEX ix_ticket_comments_search ON ticket_comments "
        "USING gin (organization_id, search_document)"
    )
    op.execute("""
        DO $$ BEGIN
            IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF;
            ELSE
                RAISE NOTICE 'as a superuser, run once: ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF;';
            END IF;
        END $$""")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_ticket_comments_search")
    op.execute("DROP INDEX IF EXISTS ix_tickets_search")
    op.execute("ALTER TABLE ticket_comments DROP COLUMN search_document")
    op.execute("ALTER TABLE tickets DROP COLUMN search_document")
    op.execute(
        "CREATE INDEX ix_tickets_search ON tickets USING gin (organization_id, "
        "to_tsvector('simple'::regconfig, (subject::text || ' '::text) || description))"
    )
    op.execute(
        "CREATE INDEX ix_ticket_comments_search ON ticket_comments USING gin "
        "(organization_id, to_tsvector('simple'::regconfig, content))"
    )
