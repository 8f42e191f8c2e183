"""`q` on ticket lists: subject, description and comments, with partial words.

PostgreSQL: full-text over the stored `search_document` columns and their GIN indexes
(migration 0007; each word of `q` as a prefix, all words required), plus a trigram
match on the subject for fragments inside words. Comments match through their own GIN
index; customers never match through internal notes (their existence must not leak).
Everything is computed from the rows themselves, so a ticket or comment is searchable
in the same transaction that writes it — no trigger, no external engine.

SQLite (embedded mode): case-insensitive LIKE over the same fields — a scan, fine for a
demo-sized database.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.auth.principal import Principal
from app.db.scoped import scope
from app.models.ticket import CommentType, Ticket, TicketComment

MAX_TERMS = 8
_WORD = re.compile(r"\w+", re.UNICODE)


def prefix_query(q: str) -> str | None:
    """`printer jam` → `printer:* & jam:*`. Words only (\\w+), so nothing the user types
    can be read as a tsquery operator."""
    words = _WORD.findall(q.lower())[:MAX_TERMS]
    return " & ".join(f"{word}:*" for word in words) or None


def matches(q: str, actor: Principal, dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return _postgres(q, actor)
    return _like(q, actor)


def _comment_filter(actor: Principal) -> list[sa.ColumnElement[bool]]:
    """Comments of the bound organization (stated, as ticket reads are scoped Core
    queries), and for customers public ones only."""
    conditions = scope(TicketComment)
    if actor.is_customer:
        conditions.append(TicketComment.comment_type == CommentType.PUBLIC)
    return conditions


def _postgres(q: str, actor: Principal) -> sa.ColumnElement[bool]:
    terms = prefix_query(q)
    fragment = Ticket.subject.ilike(f"%{_escape(q)}%", escape="\\")
    if terms is None:  # only punctuation: nothing for full-text, the fragment may match
        return fragment
    query = sa.func.to_tsquery(sa.literal_column("'simple'::regconfig"), terms)
    in_comments = sa.select(TicketComment.ticket_id).where(
        sa.literal_column("ticket_comments.search_document", sa.Text).op("@@")(query),
        *_comment_filter(actor),
    )
    return sa.or_(
        sa.literal_column("tickets.search_document", sa.Text).op("@@")(query),
        fragment,
        Ticket.id.in_(in_comments),
    )


def _like(q: str, actor: Principal) -> sa.ColumnElement[bool]:
    needle = q.lower()
    in_comments = sa.select(TicketComment.ticket_id).where(
        sa.func.lower(TicketComment.content).contains(needle, autoescape=True),
        *_comment_filter(actor),
    )
    return sa.or_(
        sa.func.lower(Ticket.subject).contains(needle, autoescape=True),
        sa.func.lower(Ticket.description).contains(needle, autoescape=True),
        Ticket.id.in_(in_comments),
    )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
