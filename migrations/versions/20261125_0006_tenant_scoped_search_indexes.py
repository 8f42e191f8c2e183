"""search indexes led by organization_id (btree_gin): per-tenant GIN postings

At a million tickets a search read every tenant's matches of a word from the GIN index
and filtered them by organization afterwards; with organization_id in the index the
scan reads the caller's postings only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 18:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_DOCUMENT_SQL = (
    "to_tsvector('simple'::regconfig, (subject::text || ' '::text) || description)"
)
COMMENT_DOCUMENT_SQL = "to_tsvector('simple'::regconfig, content)"


def _rebuild(tenant_scoped: bool) -> None:
    lead = "organization_id, " if tenant_scoped else ""
    op.execute("DROP INDEX IF EXISTS ix_tickets_search")
    op.execute("DROP INDEX IF EXISTS ix_tickets_subject_trgm")
    op.execute("DROP INDEX IF EXISTS ix_ticket_comments_search")
    op.execute(f"CREATE INDEX ix_tickets_search ON tickets USING gin ({lead}{TICKET_DOCUMENT_SQL})")
    op.execute(
        f"CREATE INDEX ix_tickets_subject_trgm ON tickets USING gin ({lead}subject gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_ticket_comments_search ON ticket_comments "
        f"USING gin ({lead}{COMMENT_DOCUMENT_SQL})"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Trusted since PostgreSQL 13: the schema owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    _rebuild(tenant_scoped=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _rebuild(tenant_scoped=False)
