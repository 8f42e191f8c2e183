"""ticket search: full-text (GIN over tsvector expressions) and trigram indexes

PostgreSQL only; SQLite searches with LIKE (see app/tickets/search.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TICKET_DOCUMENT_SQL = (
    "to_tsvector('simple'::regconfig, (subject::text || ' '::text) || description)"
)
COMMENT_DOCUMENT_SQL = "to_tsvector('simple'::regconfig, content)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Trusted since PostgreSQL 13: the schema owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX ix_tickets_search ON tickets USING gin ({TICKET_DOCUMENT_SQL})")
    op.execute("CREATE INDEX ix_tickets_subject_trgm ON tickets USING gin (subject gin_trgm_ops)")
    op.execute(
        f"CREATE INDEX ix_ticket_comments_search ON ticket_comments USING gin ({COMMENT_DOCUMENT_SQL})"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_ticket_comments_search")
    op.execute("DROP INDEX ix_tickets_subject_trgm")
    op.execute("DROP INDEX ix_tickets_search")
