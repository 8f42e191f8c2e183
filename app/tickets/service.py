"""Tickets: the lifecycle rules, whoever calls (API, inbound channels, workers).

* Numbers `TK-000042` come from a per-organization counter (no collisions under load).
* Status moves follow `TRANSITIONS`; anything else is a 409. `resolved_at`,
  `closed_at` and the seed's `calculate_sla_metrics` figures move with the status.
* Every change of a field, every comment and assignment is written to `TicketHistory`
  by one function, `record_changes`, which every write path calls with what it changed;
  the same change set becomes the `ticket.updated` event in the outbox.
* Customers see and act on their own tickets only, and never internal comments.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.custom_fields.service import validate_values
from app.db.appends import append
from app.db.base import new_id
from app.db.driver import Record
from app.db.scoped import ORGANIZATION, ScopedQuery, fetch_one_or_none, scope
from app.db.session import dialect_name
from app.kit.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from app.kit.outbox import record_event
from app.kit.records import field_error
from app.kit.sequences import next_value
from app.models.custom_field import EntityType
from app.models.ticket import (
    ChangeKind,
    CommentType,
    Priority,
    Ticket,
    TicketChange,
    TicketChannel,
    TicketComment,
    TicketHistory,
    TicketStatus,
)
from app.models.user import STAFF_ROLES, Department, Role, User
from app.tickets import search
from app.tickets.schemas import CommentCreate, TicketCreate, TicketUpdate

TICKET_SEQUENCE = "ticket"
S = TicketStatus
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.RESOLVED, S.CANCELLED}),
    S.OPEN: frozenset({S.PENDING, S.RESOLVED, S.CANCELLED}),
    S.PENDING: frozenset({S.OPEN, S.RESOLVED, S.CANCELLED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
# Tickets that count against an agent's `max_concurrent_tickets`.
ACTIVE_STATUSES = frozenset({S.NEW, S.OPEN, S.PENDING})

Changes = dict[str, tuple[Any, Any]]
_TICKETS = cast(sa.Table, Ticket.__table__)


def format_ticket_number(value: int) -> str:
    return f"TK-{value:06d}"


# --- the one history/event mechanism ---------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | dict | bool | int | float):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


class TicketIdentity(Protocol):
    """What history, feed and events need of a ticket: a loaded `Ticket`, or the
    `LockedTicket` of a write that does not change the ticket's own row."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def ticket_number(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LockedTicket:
    id: uuid.UUID
    ticket_number: str
    created_at: datetime
    first_response_at: datetime | None
    version: int


def record_changes(
    session: AsyncSession,
    ticket: TicketIdentity,
    actor_user_id: uuid.UUID | None,
    changes: Changes,
    *,
    event: str | None = "ticket.updated",
) -> None:
    """One history row per changed field, and one event naming them, in this
    transaction. `actor_user_id` None means the system (workers, automation, keys)."""
    for field, (old, new) in changes.items():
        append(
            session,
            TicketHistory,
            ticket_id=ticket.id,
            user_id=actor_user_id,
            field=field,
            old_value=_text(old),
            new_value=_text(new),
        )
    if event is not None and changes:
        _feed(
            session,
            ticket,
            ChangeKind.DELETED if event == "ticket.deleted" else ChangeKind.UPDATED,
        )
        record_event(
            session,
            event,
            aggregate_type="ticket",
            aggregate_id=ticket.id,
            payload={
                "id": str(ticket.id),
                "ticket_number": ticket.ticket_number,
                "changes": {f: {"old": _text(o), "new": _text(n)} for f, (o, n) in changes.items()},
            },
        )


def _feed(session: AsyncSession, ticket: TicketIdentity, kind: ChangeKind) -> None:
    """A change-feed row in the writing transaction, stamped with its transaction id."""
    if dialect_name(session) == "postgresql":
        append(session, TicketChange, ticket_id=ticket.id, change=kind, xact_id=_XACT_ID)
    else:
        append(session, TicketChange, ticket_id=ticket.id, change=kind)


_XACT_ID = sa.cast(sa.cast(sa.func.pg_current_xact_id(), sa.Text), sa.BigInteger)


# --- creation ----------------------------------------------------------------------------


async def open_ticket(
    session: AsyncSession,
    *,
    subject: str,
    customer_id: uuid.UUID,
    created_by_id: uuid.UUID | None,
    description: str = "",
    priority: Priority = Priority.MEDIUM,
    channel: TicketChannel = TicketChannel.WEB,
    status: TicketStatus = TicketStatus.NEW,
    assigned_agent_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    tags: list[str] | None = None,
    custom_fields: dict[str, Any] | None = None,
) -> Record:
    """Insert a ticket with the next number, its history row and `ticket.created`.
    Callers have validated references (the API does in `create_ticket`)."""
    number = await next_value(session, TICKET_SEQUENCE)
    ticket = await fetch_one_or_none(
        session,
        _INSERT_TICKET,
        ticket_number=format_ticket_number(number),
        subject=subject.strip(),
        description=description,
        priority=priority,
        channel=channel,
        status=status,
        customer_id=customer_id,
        created_by_id=created_by_id,
        assigned_agent_id=assigned_agent_id,
        department_id=department_id,
        tags=sorted({t.strip().lower() for t in tags or [] if t.strip()}),
        custom_fields=custom_fields or {},
    )
    assert ticket is not None  # INSERT … RETURNING returns its row
    identity = _identity(ticket)
    record_changes(
        session, identity, created_by_id, {"ticket": (None, ticket["ticket_number"])}, event=None
    )
    _feed(session, identity, ChangeKind.CREATED)
    record_event(
        session,
        "ticket.created",
        aggregate_type="ticket",
        aggregate_id=ticket["id"],
        payload={"id": str(ticket["id"]), "ticket_number": ticket["ticket_number"]},
    )
    return ticket


_CREATED_WITH = (
    "ticket_number",
    "subject",
    "description",
    "priority",
    "channel",
    "status",
    "customer_id",
    "created_by_id",
    "assigned_agent_id",
    "department_id",
    "tags",
    "custom_fields",
)
_INSERT_TICKET = ScopedQuery(
    sa.insert(_TICKETS)
    .values(
        organization_id=ORGANIZATION,
        **{name: sa.bindparam(name, type_=_TICKETS.c[name].type) for name in _CREATED_WITH},
    )
    .returning(*_TICKETS.c)
).prepare()


async def create_ticket(
    session: AsyncSession, actor: Principal, data: TicketCreate, *, force_assignment: bool = False
) -> Record:
    if actor.is_customer:
        if data.customer_id not in (None, actor.id):
            raise Forbidden("Customers open tickets for themselves only.")
        if data.assigned_agent_id is not None or data.department_id is not None:
            raise Forbidden("Customers cannot assign tickets.")
        customer_id = actor.id
    elif data.customer_id is None:
        raise ValidationFailed(
            "Staff must name the customer.",
            errors=[field_error("customer_id", "required unless the caller is a customer")],
        )
    else:
        customer_id = data.customer_id
    await _check_references(
        session,
        customer_id=customer_id,
        assigned_agent_id=data.assigned_agent_id,
        department_id=data.department_id,
    )
    if data.assigned_agent_id is not None and not force_assignment:
        await _check_capacity(session, data.assigned_agent_id, exclude=None)
    custom_fields = await validate_values(session, EntityType.TICKET, data.custom_fields)
    return await open_ticket(
        session,
        subject=data.subject,
        description=data.description,
        priority=data.priority,
        channel=data.channel,
        customer_id=customer_id,
        created_by_id=actor.user_id,
        assigned_agent_id=data.assigned_agent_id,
        department_id=data.department_id,
        tags=data.tags,
        custom_fields=custom_fields,
    )


async def _check_references(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None = None,
    assigned_agent_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
) -> None:
    """The seed's `limit_choices_to`: the customer is a customer user, the assignee
    staff, the department live — all of this organization (422 otherwise)."""
    errors = []
    if customer_id is not None and not await _user_with_role(
        session, customer_id, frozenset({Role.CUSTOMER})
    ):
        errors.append(field_error("customer_id", "no such customer user"))
    if assigned_agent_id is not None and not await _user_with_role(
        session, assigned_agent_id, STAFF_ROLES
    ):
        errors.append(field_error("assigned_agent_id", "no such agent, manager or admin"))
    if (
        department_id is not None
        and await fetch_one_or_none(session, _LIVE_DEPARTMENT, department_id=department_id) is None
    ):
        errors.append(field_error("department_id", "no such department"))
    if errors:
        raise ValidationFailed("Some references are not valid.", errors=errors)


_USER_BY_ID = ScopedQuery(
    sa.select(User.id).where(*scope(User), User.id == sa.bindparam("user_id"))
)
# One prepared statement per role set, the roles written into it (an IN list would be an
# expanding parameter, which cannot be prepared).
_USER_WITH_ROLE = {
    roles: _USER_BY_ID.where(sa.or_(*(User.role == role for role in sorted(roles)))).prepare()
    for roles in (frozenset({Role.CUSTOMER}), STAFF_ROLES)
}
_LIVE_DEPARTMENT = ScopedQuery(
    sa.select(Department.id).where(
        *scope(Department), Department.id == sa.bindparam("department_id")
    )
)


async def _user_with_role(
    session: AsyncSession, user_id: uuid.UUID, roles: frozenset[Role]
) -> bool:
    found = await fetch_one_or_none(session, _USER_WITH_ROLE[roles], user_id=user_id)
    return found is not None


async def _check_capacity(
    session: AsyncSession, agent_id: uuid.UUID, *, exclude: uuid.UUID | None
) -> None:
    """Locks the agent's row first, so two concurrent assignments cannot both take the
    last free slot."""
    limit = await session.scalar(
        sa.select(User.max_concurrent_tickets).where(User.id == agent_id).with_for_update()
    )
    statement = sa.select(sa.func.count()).where(
        Ticket.assigned_agent_id == agent_id, Ticket.status.in_(ACTIVE_STATUSES)
    )
    if exclude is not None:
        statement = statement.where(Ticket.id != exclude)
    active = await session.scalar(statement) or 0
    if limit is not None and active >= limit:
        raise Conflict(
            f"The agent already has {active} active tickets (limit {limit}); "
            "a manager can pass force_assignment=true."
        )


# --- reading -----------------------------------------------------------------------------


def visible_tickets(actor: Principal, *, include_deleted: bool = False) -> sa.Select[Ticket]:
    """Tickets as ORM objects (the write paths); reads go through `ticket_rows`."""
    statement = sa.select(Ticket)
    if actor.is_customer:
        statement = statement.where(Ticket.customer_id == actor.id)
    if include_deleted:
        statement = statement.execution_options(include_deleted=True)
    return statement


_LIVE_TICKET_ROWS = ScopedQuery(sa.select(_TICKETS).where(*scope(Ticket)))
_ALL_TICKET_ROWS = ScopedQuery(
    sa.select(_TICKETS).where(*scope(Ticket, include_deleted=True)), include_deleted=True
)
_TICKET_BY_ID = Ticket.id == sa.bindparam("ticket_id")
_OWN_TICKET = Ticket.customer_id == sa.bindparam("customer_id")
_READ_TICKET = _LIVE_TICKET_ROWS.where(_TICKET_BY_ID).prepare()
_READ_OWN_TICKET = _LIVE_TICKET_ROWS.where(_TICKET_BY_ID, _OWN_TICKET).prepare()
_LOCK_COLUMNS = ScopedQuery(
    sa.select(
        Ticket.id, Ticket.ticket_number, Ticket.created_at, Ticket.first_response_at, Ticket.version
    )
    .where(*scope(Ticket), _TICKET_BY_ID)
    .with_for_update()
)
_LOCK_TICKET = _LOCK_COLUMNS.prepare()
_LOCK_OWN_TICKET = _LOCK_COLUMNS.where(_OWN_TICKET).prepare()


async def lock_ticket(
    session: AsyncSession, actor: Principal, ticket_id: uuid.UUID
) -> LockedTicket:
    """Lock a ticket the actor may see, for a write that adds to it (a comment) without
    changing its row: the few columns it needs, not the whole row."""
    row = await _visible_ticket(session, actor, ticket_id, _LOCK_TICKET, _LOCK_OWN_TICKET)
    return LockedTicket(**row)


def ticket_rows(actor: Principal, *, include_deleted: bool = False) -> ScopedQuery:
    """The tickets `actor` may read, as rows for the read paths (lists, GET): no ORM
    objects to build, the tenant and soft-delete criteria proven in the statement."""
    query = _ALL_TICKET_ROWS if include_deleted else _LIVE_TICKET_ROWS
    if actor.is_customer:
        query = query.where(Ticket.customer_id == actor.id)
    return query


async def read_ticket(session: AsyncSession, actor: Principal, ticket_id: uuid.UUID) -> Record:
    """One ticket for display. Another organization's, or another customer's, is not found."""
    return await _visible_ticket(session, actor, ticket_id, _READ_TICKET, _READ_OWN_TICKET)


async def _visible_ticket(
    session: AsyncSession,
    actor: Principal,
    ticket_id: uuid.UUID,
    staff_query: ScopedQuery,
    own_query: ScopedQuery,
) -> Record:
    if actor.is_customer:
        row = await fetch_one_or_none(session, own_query, ticket_id=ticket_id, customer_id=actor.id)
    else:
        row = await fetch_one_or_none(session, staff_query, ticket_id=ticket_id)
    if row is None:
        raise NotFound("No such ticket.")
    return row


async def get_ticket(
    session: AsyncSession,
    actor: Principal,
    ticket_id: uuid.UUID,
    *,
    include_deleted: bool = False,
    for_update: bool = False,
) -> Ticket:
    """The ticket to change. Another organization's, or another customer's, is not found."""
    statement = visible_tickets(actor, include_deleted=include_deleted).where(
        Ticket.id == ticket_id
    )
    if for_update:
        statement = statement.with_for_update()
    ticket = await session.scalar(statement)
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


@dataclass(frozen=True, slots=True)
class TicketFilters:
    statuses: list[TicketStatus]
    priorities: list[Priority]
    channel: TicketChannel | None = None
    assigned_agent_id: uuid.UUID | None = None
    unassigned: bool = False
    customer_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    tag: str | None = None
    sla_breach: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None

    @property
    def stored_tag(self) -> str | None:
        """The tag as tickets store it (trimmed, lower-cased)."""
        return self.tag.strip().lower() if self.tag is not None else None


# The bare column, as the partial index `ix_tickets_sla_breach` states it: PostgreSQL
# does not prove that `sla_breach IS true` implies it, and never used that index.
_SLA_BREACHED: sa.ColumnElement[bool] = Ticket.sla_breach.expression


def tickets_query(
    actor: Principal, filters: TicketFilters, *, dialect: str, include_deleted: bool = False
) -> ScopedQuery:
    query = ticket_rows(actor, include_deleted=include_deleted)
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(Ticket.status.in_(filters.statuses))
    if filters.priorities:
        conditions.append(Ticket.priority.in_(filters.priorities))
    if filters.channel is not None:
        conditions.append(Ticket.channel == filters.channel)
    if filters.unassigned:
        conditions.append(Ticket.assigned_agent_id.is_(None))
    elif filters.assigned_agent_id is not None:
        conditions.append(Ticket.assigned_agent_id == filters.assigned_agent_id)
    if filters.customer_id is not None:
        conditions.append(Ticket.customer_id == filters.customer_id)
    if filters.department_id is not None:
        conditions.append(Ticket.department_id == filters.department_id)
    if filters.stored_tag is not None:
        conditions.append(_has_tag(filters.stored_tag, dialect))
    if filters.sla_breach is not None:
        conditions.append(_SLA_BREACHED if filters.sla_breach else sa.not_(_SLA_BREACHED))
    if filters.created_after is not None:
        conditions.append(Ticket.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(Ticket.created_at < filters.created_before)
    if filters.q:
        conditions.append(search.matches(filters.q, actor, dialect))
    return query.where(*conditions) if conditions else query


# Filters a prepared list statement takes as named parameters: equality on one value,
# membership in several (an array), a range bound, tag containment. Only search (`q`)
# stays literal. One value keeps `=`: `(organization_id, status, created_at)` then
# yields rows in order, where `= ANY` of one value would not on PostgreSQL 15.
_PREPARED_FILTERS: dict[str, sa.ColumnElement[bool]] = {
    "status": Ticket.status == sa.bindparam("status", type_=Ticket.status.type),
    "statuses": Ticket.status == sa.any_(sa.bindparam("statuses", type_=ARRAY(sa.String))),
    "priority": Ticket.priority == sa.bindparam("priority", type_=Ticket.priority.type),
    "priorities": Ticket.priority == sa.any_(sa.bindparam("priorities", type_=ARRAY(sa.String))),
    "channel": Ticket.channel == sa.bindparam("channel", type_=Ticket.channel.type),
    "assigned_agent_id": Ticket.assigned_agent_id == sa.bindparam("assigned_agent_id"),
    "unassigned": Ticket.assigned_agent_id.is_(None),
    "customer_id": Ticket.customer_id == sa.bindparam("customer_id"),
    "department_id": Ticket.department_id == sa.bindparam("department_id"),
    "tag": sa.type_coerce(Ticket.tags, JSONB).contains(sa.bindparam("tag", type_=JSONB)),
    "sla_breach": _SLA_BREACHED,
    "no_sla_breach": sa.not_(_SLA_BREACHED),
    "created_after": Ticket.created_at
    >= sa.bindparam("created_after", type_=Ticket.created_at.type),
    "created_before": Ticket.created_at
    < sa.bindparam("created_before", type_=Ticket.created_at.type),
    "own": Ticket.customer_id == sa.bindparam("own_customer_id"),
}


def prepared_tickets_query(
    actor: Principal, filters: TicketFilters, *, dialect: str, include_deleted: bool = False
) -> tuple[ScopedQuery, dict[str, Any]] | None:
    """The list as a prepared statement with its parameters, on PostgreSQL (one statement
    per combination of filters, built once): SQLAlchemy's execution of a freshly built
    statement was a sixth of a filtered list's CPU. None where `tickets_query` serves
    (SQLite, search)."""
    if dialect != "postgresql" or filters.q:
        return None
    statuses = sorted({TicketStatus(status).value for status in filters.statuses})
    priorities = sorted({Priority(priority).value for priority in filters.priorities})
    params: dict[str, Any] = {
        "status": statuses[0] if len(statuses) == 1 else None,
        "statuses": statuses if len(statuses) > 1 else None,
        "priority": priorities[0] if len(priorities) == 1 else None,
        "priorities": priorities if len(priorities) > 1 else None,
        "tag": [filters.stored_tag] if filters.stored_tag is not None else None,
        "channel": filters.channel,
        "assigned_agent_id": None if filters.unassigned else filters.assigned_agent_id,
        "customer_id": filters.customer_id,
        "department_id": filters.department_id,
        "created_after": filters.created_after,
        "created_before": filters.created_before,
        "own_customer_id": actor.id if actor.is_customer else None,
    }
    params = {name: value for name, value in params.items() if value is not None}
    shape = {"own" if name == "own_customer_id" else name for name in params}
    if filters.unassigned:
        shape.add("unassigned")
    if filters.sla_breach is not None:
        shape.add("sla_breach" if filters.sla_breach else "no_sla_breach")
    return _prepared_list(frozenset(shape), include_deleted), params


@lru_cache(maxsize=1024)
def _prepared_list(shape: frozenset[str], include_deleted: bool) -> ScopedQuery:
    query = _ALL_TICKET_ROWS if include_deleted else _LIVE_TICKET_ROWS
    conditions = [_PREPARED_FILTERS[name] for name in sorted(shape)]
    return (query.where(*conditions) if conditions else query).prepare()


def _has_tag(tag: str, dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        # JSONB containment: served by the GIN index on tags.
        return sa.type_coerce(Ticket.tags, JSONB).contains([tag])
    each = sa.func.json_each(Ticket.tags).table_valued("value")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == tag))


# --- changes -------------------------------------------------------------------------------


_LOCK_ROW = ScopedQuery(sa.select(_TICKETS).where(*scope(Ticket), _TICKET_BY_ID).with_for_update())
_LOCK_ROW_ANY = ScopedQuery(
    sa.select(_TICKETS)
    .where(*scope(Ticket, include_deleted=True), _TICKET_BY_ID)
    .with_for_update(),
    include_deleted=True,
)
_LOCK_TICKET_ROW = _LOCK_ROW.prepare()
_LOCK_OWN_TICKET_ROW = _LOCK_ROW.where(_OWN_TICKET).prepare()
_LOCK_ANY_TICKET_ROW = _LOCK_ROW_ANY.prepare()
_LOCK_OWN_ANY_TICKET_ROW = _LOCK_ROW_ANY.where(_OWN_TICKET).prepare()

# What a write may set; the rest is the database's (priority_rank, timestamps, version)
# or fixed at creation (number, organization).
WRITABLE = frozenset(_TICKETS.c.keys()) - {
    "id",
    "organization_id",
    "ticket_number",
    "priority_rank",
    "version",
    "created_at",
    "updated_at",
}


async def _lock_row(
    session: AsyncSession, actor: Principal, ticket_id: uuid.UUID, *, include_deleted: bool = False
) -> Record:
    if include_deleted:
        queries = (_LOCK_ANY_TICKET_ROW, _LOCK_OWN_ANY_TICKET_ROW)
    else:
        queries = (_LOCK_TICKET_ROW, _LOCK_OWN_TICKET_ROW)
    return await _visible_ticket(session, actor, ticket_id, *queries)


async def _write(
    session: AsyncSession, ticket_id: uuid.UUID, version: int, values: dict[str, Any]
) -> Record:
    """Set `values` on a ticket row this transaction has locked at `version`: one
    UPDATE that checks and bumps the version, stamps `updated_at` and returns the row."""
    row = await fetch_one_or_none(
        session,
        _write_statement(tuple(sorted(values))),
        ticket_id=ticket_id,
        locked_version=version,
        **{f"new_{name}": value for name, value in values.items()},
    )
    if row is None:  # the lock makes this unreachable, unless a caller did not hold it
        raise Conflict("The ticket changed while this request ran; reload it.")
    return row


@lru_cache(maxsize=256)
def _write_statement(columns: tuple[str, ...]) -> ScopedQuery:
    """One proven, prepared UPDATE per set of columns a write path changes."""
    if not columns or not WRITABLE.issuperset(columns):
        raise ValueError(f"not writable ticket columns: {sorted(set(columns) - WRITABLE)}")
    values: dict[str, Any] = {
        name: sa.bindparam(f"new_{name}", type_=_TICKETS.c[name].type) for name in columns
    }
    return ScopedQuery(
        sa.update(_TICKETS)
        .where(
            *scope(Ticket, include_deleted=True),
            _TICKET_BY_ID,
            _TICKETS.c.version == sa.bindparam("locked_version"),
        )
        .values(version=_TICKETS.c.version + 1, updated_at=sa.func.now(), **values)
        .returning(*_TICKETS.c),
        include_deleted=True,
    ).prepare()


def _changed(current: Record, requested: dict[str, Any]) -> Changes:
    return {
        name: (current[name], value) for name, value in requested.items() if current[name] != value
    }


async def update_ticket(
    session: AsyncSession,
    actor: Principal,
    ticket_id: uuid.UUID,
    data: TicketUpdate,
    *,
    expected_version: int | None = None,
    force_assignment: bool = False,
) -> Record:
    ticket = await _lock_row(session, actor, ticket_id)
    if expected_version is not None and expected_version != ticket["version"]:
        raise PreconditionFailed(
            f"The ticket is at version {ticket['version']}, not {expected_version}; reload it."
        )
    requested = data.changes()
    if "custom_fields" in requested:
        requested["custom_fields"] = await validate_values(
            session,
            EntityType.TICKET,
            requested["custom_fields"],
            current=ticket["custom_fields"],
            record_id=ticket["id"],
        )
    await _check_references(
        session,
        assigned_agent_id=requested.get("assigned_agent_id"),
        department_id=requested.get("department_id"),
    )
    new_agent = requested.get("assigned_agent_id")
    if new_agent is not None and new_agent != ticket["assigned_agent_id"] and not force_assignment:
        await _check_capacity(session, new_agent, exclude=ticket["id"])
    new_status = requested.pop("status", None)
    changes = _changed(ticket, requested)
    if new_status is not None and new_status != ticket["status"]:
        changes |= _move(ticket, new_status, datetime.now(UTC))
    if not changes:
        return ticket
    written = await _write(
        session, ticket["id"], ticket["version"], {f: new for f, (_old, new) in changes.items()}
    )
    record_changes(session, _identity(written), actor.user_id, changes)
    return written


def _identity(row: Record) -> TicketIdentity:
    return LockedTicket(
        row["id"], row["ticket_number"], row["created_at"], row["first_response_at"], row["version"]
    )


def _move(ticket: Record, target: TicketStatus, now: datetime) -> Changes:
    """A status move and what comes with it, as the seed's `calculate_sla_metrics`."""
    current = TicketStatus(ticket["status"])
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise Conflict(
            f"A {current.value} ticket cannot move to {target.value} (allowed: {allowed})."
        )
    values: dict[str, Any] = {"status": target}
    if target is S.RESOLVED:
        values["resolved_at"] = now
        values["time_to_resolution"] = _seconds(ticket["created_at"], now)
    elif target is S.CLOSED:
        values["closed_at"] = now
    elif current is S.RESOLVED:  # reopened
        values["resolved_at"] = None
        values["time_to_resolution"] = None
    return _changed(ticket, values)


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


async def delete_ticket(session: AsyncSession, actor: Principal, ticket_id: uuid.UUID) -> None:
    ticket = await _lock_row(session, actor, ticket_id)
    now = datetime.now(UTC)
    written = await _write(session, ticket["id"], ticket["version"], {"deleted_at": now})
    record_changes(
        session,
        _identity(written),
        actor.user_id,
        {"deleted_at": (None, now)},
        event="ticket.deleted",
    )


async def restore_ticket(session: AsyncSession, actor: Principal, ticket_id: uuid.UUID) -> Record:
    ticket = await _lock_row(session, actor, ticket_id, include_deleted=True)
    if ticket["deleted_at"] is None:
        return ticket
    written = await _write(session, ticket["id"], ticket["version"], {"deleted_at": None})
    record_changes(
        session, _identity(written), actor.user_id, {"deleted_at": (ticket["deleted_at"], None)}
    )
    return written


# --- comments ------------------------------------------------------------------------------


def comments_query(actor: Principal, ticket_id: uuid.UUID) -> sa.Select[TicketComment]:
    statement = sa.select(TicketComment).where(TicketComment.ticket_id == ticket_id)
    if actor.is_customer:
        statement = statement.where(TicketComment.comment_type == CommentType.PUBLIC)
    return statement


_COMMENTS = cast(sa.Table, TicketComment.__table__)
_INSERT_COMMENT = ScopedQuery(
    sa.insert(_COMMENTS)
    .values(
        id=sa.bindparam("comment_id"),
        organization_id=ORGANIZATION,
        ticket_id=sa.bindparam("ticket_id"),
        author_id=sa.bindparam("author_id"),
        content=sa.bindparam("content"),
        comment_type=sa.bindparam("comment_type", type_=_COMMENTS.c.comment_type.type),
    )
    .returning(*_COMMENTS.c)
).prepare()


async def add_comment(
    session: AsyncSession,
    actor: Principal,
    ticket_id: uuid.UUID,
    data: CommentCreate,
    *,
    may_write_internal: bool,
) -> Record:
    """The first public reply by staff sets `first_response_at` (and its seconds).
    A comment has a person as author, so API keys cannot write one."""
    if actor.user_id is None:
        raise Forbidden("Comments are written by users; API keys cannot author them.")
    locked = await lock_ticket(session, actor, ticket_id)
    if data.comment_type is CommentType.INTERNAL and not may_write_internal:
        raise Forbidden("Only staff write internal notes.")
    comment = await fetch_one_or_none(
        session,
        _INSERT_COMMENT,
        comment_id=new_id(),
        ticket_id=locked.id,
        author_id=actor.user_id,
        content=data.content,
        comment_type=data.comment_type,
    )
    assert comment is not None  # INSERT … RETURNING returns its row
    first_response: Changes = {}
    if (
        data.comment_type is CommentType.PUBLIC
        and not actor.is_customer
        and locked.first_response_at is None
    ):
        # The one comment that changes the ticket's row (written before the journal rows
        # are queued: a statement sends the queue first, and one journal write is enough).
        now = datetime.now(UTC)
        first_response = {
            "first_response_at": (None, now),
            "time_to_first_response": (None, _seconds(locked.created_at, now)),
        }
        values = {field: new for field, (_old, new) in first_response.items()}
        await _write(session, locked.id, locked.version, values)
    record_changes(session, locked, actor.user_id, {"comment": (None, comment["id"])}, event=None)
    if first_response:
        record_changes(session, locked, actor.user_id, first_response)
    else:
        # The thread is part of the ticket: a sync through the change feed must see it
        # (the first response above already wrote the feed row for this write).
        _feed(session, locked, ChangeKind.UPDATED)
    record_event(
        session,
        "ticket.comment_added",
        aggregate_type="ticket",
        aggregate_id=locked.id,
        payload={
            "id": str(locked.id),
            "comment_id": str(comment["id"]),
            "comment_type": data.comment_type.value,
        },
    )
    return comment


def history_query(ticket_id: uuid.UUID) -> sa.Select[TicketHistory]:
    return sa.select(TicketHistory).where(TicketHistory.ticket_id == ticket_id)
