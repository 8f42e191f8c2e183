"""Tickets: the lifecycle rules, whoever calls (API, inbound channels, workers).

* Numbers `TK-000042` come from a per-organization counter (no collisions under load),
  taken as late as possible in the creating transaction: the counter's row stays
  locked until the commit, so every create of the organization queues on it.
* Status moves follow `TRANSITIONS`; anything else is a 409. `resolved_at`,
  `closed_at` and the resolution figures move with the status. A closed or cancelled
  ticket is final: it takes no further change or comment.
* Every change of a field, every comment and attachment is written to `TicketHistory`
  by `record_changes`, which every write path calls with what it changed, with a
  change-feed row and the event in the same journal (`app.kit.journal`).
* Customers see and act on their own tickets only, and never internal comments (the
  rule is the repository's).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.channels import outgoing
from app.custom_fields.service import taken_unique_values, validate_values
from app.db.base import new_id
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from app.kit.journal import Journal
from app.kit.pagination import PageParams, PageResult
from app.kit.records import field_error
from app.kit.repository import Record
from app.kit.schemas import instant_text
from app.models.custom_field import EntityType
from app.models.ticket import (
    ChangeKind,
    CommentType,
    Priority,
    TicketChange,
    TicketChannel,
    TicketHistory,
    TicketStatus,
)
from app.models.user import STAFF_ROLES, Role
from app.notifications import service as notifications
from app.sla import service as sla
from app.sla.clock import EscalationAction, Event, EventKind, Policy
from app.sla.recompute import RECOMPUTE_JOB
from app.sla.repository import SLARepository
from app.tickets.repository import Sort, TicketFilters, TicketRepository, TicketWrite
from app.tickets.schemas import CommentCreate, TicketCreate, TicketUpdate

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


def record_changes(
    journal: Journal,
    ticket: Record,
    actor_user_id: uuid.UUID | None,
    changes: Changes,
    *,
    event: str | None = "ticket.updated",
) -> None:
    """One history row per changed field, and (unless `event` is None) a feed row and
    one event naming them. `actor_user_id` None means the system (workers, keys)."""
    for field, (old, new) in changes.items():
        journal.add(
            TicketHistory,
            ticket_id=ticket["id"],
            user_id=actor_user_id,
            field=field,
            old_value=_text(old),
            new_value=_text(new),
        )
    if event is None or not changes:
        return
    feed(journal, ticket, ChangeKind.DELETED if event == "ticket.deleted" else ChangeKind.UPDATED)
    journal.event(
        event,
        aggregate_type="ticket",
        aggregate_id=ticket["id"],
        payload={
            "id": str(ticket["id"]),
            "ticket_number": ticket["ticket_number"],
            "changes": {f: {"old": _text(o), "new": _text(n)} for f, (o, n) in changes.items()},
        },
    )


def feed(journal: Journal, ticket: Record, kind: ChangeKind) -> None:
    """A change-feed row in the writing transaction, stamped on PostgreSQL with the
    transaction's id (the feed serves a change once every older transaction ended)."""
    if journal.uow.dialect == "postgresql":
        journal.add(TicketChange, ticket_id=ticket["id"], change=kind, xact_id=_XACT_ID)
    else:
        journal.add(TicketChange, ticket_id=ticket["id"], change=kind)


_XACT_ID = sa.cast(sa.cast(sa.func.pg_current_xact_id(), sa.Text), sa.BigInteger)


# --- creation ----------------------------------------------------------------------------


async def open_ticket(
    uow: UnitOfWork,
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
    opened_at: datetime | None = None,
    ticket_id: uuid.UUID | None = None,
    journal: Journal | None = None,
) -> Record:
    """Insert a ticket with the next number, its history row, `ticket.created` and its
    SLA clocks started (measured by the first matching policy). Callers have validated
    references (the API does in `create_ticket`). `opened_at`: when the ticket was
    opened, if not now (an import of past tickets; the demo's). A caller that writes
    rows of its own about the new ticket gives its id and a `journal` holding them: they
    are written with the ticket, in its statement."""
    now = opened_at or datetime.now(UTC)
    ticket_id = ticket_id or new_id()
    policy_id = await sla.match_policy(
        uow.session, priority=priority.value, channel=channel.value, customer_id=customer_id
    )
    clocks = sla.TicketClock.new(uow.session, ticket_id)
    clocks.add(sla.creation_events(status, now))
    values = {
        "id": ticket_id,
        "created_at": now,
        **await clocks.values(policy_id, status),
        "subject": subject.strip(),
        "description": description,
        "priority": priority,
        "channel": channel,
        "status": status,
        "customer_id": customer_id,
        "created_by_id": created_by_id,
        "assigned_agent_id": assigned_agent_id,
        "department_id": department_id,
        "tags": sorted({t.strip().lower() for t in tags or [] if t.strip()}),
        "custom_fields": custom_fields or {},
        "sla_breach": False,
        "version": 1,
    }
    # The journal is written with the ticket (see `insert_numbered`), so its rows name
    # the number before it is taken.
    tickets = TicketRepository(uow.session)
    number = await tickets.next_number()
    journal = journal or Journal(uow)
    journal.add(
        TicketHistory,
        ticket_id=ticket_id,
        user_id=created_by_id,
        field="ticket",
        old_value=None,
        new_value=number,
    )
    feed(journal, {"id": ticket_id}, ChangeKind.CREATED)
    clocks.journal(journal)
    journal.event(
        "ticket.created",
        aggregate_type="ticket",
        aggregate_id=ticket_id,
        payload=tickets.with_number({"id": str(ticket_id)}, number),
    )
    return await tickets.insert_numbered(values, number, journal)


async def create_ticket(
    uow: UnitOfWork, actor: Principal, data: TicketCreate, *, force_assignment: bool = False
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
    tickets = TicketRepository(uow.session)
    await _check_references(
        tickets,
        customer_id=customer_id,
        assigned_agent_id=data.assigned_agent_id,
        department_id=data.department_id,
    )
    if data.assigned_agent_id is not None and not force_assignment:
        await _check_capacity(tickets, data.assigned_agent_id, exclude=None)
    custom_fields = await validate_values(uow.session, EntityType.TICKET, data.custom_fields)
    return await open_ticket(
        uow,
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
    tickets: TicketRepository,
    *,
    customer_id: uuid.UUID | None = None,
    assigned_agent_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
) -> None:
    """The customer is a customer user, the assignee staff, the department live — all
    of this organization (422 otherwise)."""
    errors = []
    if customer_id is not None and not await tickets.user_with_role(
        customer_id, frozenset({Role.CUSTOMER})
    ):
        errors.append(field_error("customer_id", "no such customer user"))
    if assigned_agent_id is not None and not await tickets.user_with_role(
        assigned_agent_id, STAFF_ROLES
    ):
        errors.append(field_error("assigned_agent_id", "no such agent, manager or admin"))
    if department_id is not None and not await tickets.department_exists(department_id):
        errors.append(field_error("department_id", "no such department"))
    if errors:
        raise ValidationFailed("Some references are not valid.", errors=errors)


async def _check_capacity(
    tickets: TicketRepository, agent_id: uuid.UUID, *, exclude: uuid.UUID | None
) -> None:
    limit, active = await tickets.agent_load(agent_id, ACTIVE_STATUSES, exclude=exclude)
    if limit is not None and active >= limit:
        raise Conflict(
            f"The agent already has {active} active tickets (limit {limit}); "
            "a manager can pass force_assignment=true."
        )


# --- reading -----------------------------------------------------------------------------


async def get_ticket(
    session: AsyncSession,
    actor: Principal,
    ticket_id: uuid.UUID,
    *,
    lock: bool = False,
    include_deleted: bool = False,
) -> Record:
    """The one way to fetch a ticket: to read it, or (`lock`) to change it or add to it.
    Another organization's, or another customer's, is not found."""
    ticket = await TicketRepository(session).get(
        actor, ticket_id, lock=lock, include_deleted=include_deleted
    )
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


async def list_tickets(
    session: AsyncSession,
    actor: Principal,
    filters: TicketFilters,
    page: PageParams,
    sort: Sort,
    *,
    include_deleted: bool = False,
) -> PageResult[Record]:
    return await TicketRepository(session).list_visible(
        actor, filters, page, sort, include_deleted=include_deleted
    )


# --- changes -------------------------------------------------------------------------------


def _check_version(ticket: Record, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != ticket["version"]:
        raise PreconditionFailed(
            f"The ticket is at version {ticket['version']}, not {expected_version}; reload it."
        )


def check_open(ticket: Record) -> None:
    """Closed and cancelled are final: nothing more is written to such a ticket."""
    status = TicketStatus(ticket["status"])
    if not TRANSITIONS[status]:
        raise Conflict(
            f"The ticket is {status.value} and takes no more changes; open a new ticket "
            "(it may refer to this one)."
        )


def _changed(current: Record, requested: dict[str, Any]) -> Changes:
    return {
        name: (current[name], value) for name, value in requested.items() if current[name] != value
    }


async def update_ticket(
    uow: UnitOfWork,
    actor: Principal,
    ticket_id: uuid.UUID,
    data: TicketUpdate,
    *,
    expected_version: int | None = None,
    force_assignment: bool = False,
) -> Record:
    tickets = TicketRepository(uow.session)
    ticket = await get_ticket(uow.session, actor, ticket_id, lock=True)
    _check_version(ticket, expected_version)
    requested = data.changes()
    if "custom_fields" in requested:
        requested["custom_fields"] = await validate_values(
            uow.session,
            EntityType.TICKET,
            requested["custom_fields"],
            current=ticket["custom_fields"],
            record_id=ticket["id"],
        )
    await _check_references(
        tickets,
        assigned_agent_id=requested.get("assigned_agent_id"),
        department_id=requested.get("department_id"),
    )
    new_agent = requested.get("assigned_agent_id")
    if new_agent is not None and new_agent != ticket["assigned_agent_id"] and not force_assignment:
        await _check_capacity(tickets, new_agent, exclude=ticket["id"])
    new_status = requested.pop("status", None)
    changes = _changed(ticket, requested)
    now = datetime.now(UTC)
    if new_status is not None and new_status != ticket["status"]:
        changes |= _move(ticket, new_status, now)
    if not changes:
        return ticket
    check_open(ticket)
    clocks, clock_values = await _clocks_after(uow.session, ticket, changes, now)
    written = await tickets.write(
        ticket["id"],
        ticket["version"],
        {f: new for f, (_old, new) in changes.items()} | clock_values,
    )
    journal = Journal(uow)
    record_changes(journal, written, actor.user_id, changes)
    clocks.journal(journal)
    await journal.write()
    return written


async def _clocks_after(
    session: AsyncSession, ticket: Record, changes: Changes, now: datetime
) -> tuple[sla.TicketClock, dict[str, Any]]:
    """What `changes` mean for the ticket's SLA: a priority change matches the policy
    again (recorded in `changes`, so its history row is written), a status move
    pauses, resumes or ends clocks; then the due fields follow. Other changes leave the
    clocks alone and read nothing."""
    if "status" not in changes and "priority" not in changes:
        return sla.TicketClock(session, ticket["id"], None), {}
    policy_id = await _rematched(session, ticket, changes)
    clocks = await sla.TicketClock.load(session, ticket["id"], policy_id=policy_id)
    status = TicketStatus(ticket["status"])
    if "status" in changes:
        status = TicketStatus(changes["status"][1])
        clocks.add(sla.status_events(TicketStatus(ticket["status"]), status, now))
    if "priority" in changes:
        clocks.add([sla.recompute_event(now, "priority_changed")])
    values = await clocks.values(policy_id, status)
    return clocks, _differing(ticket, values)


async def _rematched(session: AsyncSession, ticket: Record, changes: Changes) -> uuid.UUID | None:
    """The policy measuring the ticket after `changes`: matched again when they change
    the priority (and the policy change added to `changes`)."""
    policy_id: uuid.UUID | None = ticket["sla_policy_id"]
    if "priority" not in changes:
        return policy_id
    rematched = await sla.match_policy(
        session,
        priority=str(changes["priority"][1]),
        channel=str(ticket["channel"]),
        customer_id=ticket["customer_id"],
    )
    if rematched != policy_id:
        changes["sla_policy_id"] = (policy_id, rematched)
    return rematched


def _differing(ticket: Record, values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if ticket[name] != value}


def _move(ticket: Record, target: TicketStatus, now: datetime) -> Changes:
    """A status move and what comes with it."""
    current = TicketStatus(ticket["status"])
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise Conflict(
            f"The ticket is {current.value} and cannot move to {target.value} (allowed: {allowed})."
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


async def delete_ticket(
    uow: UnitOfWork,
    actor: Principal,
    ticket_id: uuid.UUID,
    *,
    expected_version: int | None = None,
) -> None:
    ticket = await get_ticket(uow.session, actor, ticket_id, lock=True)
    _check_version(ticket, expected_version)
    now = datetime.now(UTC)
    written = await TicketRepository(uow.session).write(
        ticket["id"], ticket["version"], {"deleted_at": now}
    )
    journal = Journal(uow)
    record_changes(
        journal, written, actor.user_id, {"deleted_at": (None, now)}, event="ticket.deleted"
    )
    await journal.write()


async def restore_ticket(uow: UnitOfWork, actor: Principal, ticket_id: uuid.UUID) -> Record:
    """A value of an `is_unique` custom field that a live ticket took meanwhile stops the
    restore with a 409: two live tickets never share one."""
    ticket = await get_ticket(uow.session, actor, ticket_id, lock=True, include_deleted=True)
    if ticket["deleted_at"] is None:
        return ticket
    taken = await taken_unique_values(uow.session, ticket["custom_fields"], ticket["id"])
    if taken:
        raise Conflict(
            f"A live ticket holds this ticket's unique custom field value ({', '.join(taken)}); "
            "change that ticket's value before restoring this one."
        )
    written = await TicketRepository(uow.session).write(
        ticket["id"], ticket["version"], {"deleted_at": None}
    )
    journal = Journal(uow)
    record_changes(journal, written, actor.user_id, {"deleted_at": (ticket["deleted_at"], None)})
    await journal.write()
    return written


# --- comments ------------------------------------------------------------------------------


async def list_comments(
    session: AsyncSession, actor: Principal, ticket_id: uuid.UUID, page: PageParams
) -> PageResult[Record]:
    await get_ticket(session, actor, ticket_id)
    return await TicketRepository(session).comments(actor, ticket_id, page)


async def add_comment(
    uow: UnitOfWork,
    actor: Principal,
    ticket_id: uuid.UUID,
    data: CommentCreate,
    *,
    may_write_internal: bool,
    comment_id: uuid.UUID | None = None,
    journal: Journal | None = None,
) -> Record:
    """The first public reply by staff sets `first_response_at` (and its seconds).
    A comment has a person as author, so API keys cannot write one. A caller that
    writes rows of its own about the comment gives its id and a `journal` holding them:
    they are written with the comment's journal."""
    if actor.user_id is None:
        raise Forbidden("Comments are written by users; API keys cannot author them.")
    tickets = TicketRepository(uow.session)
    ticket = await get_ticket(uow.session, actor, ticket_id, lock=True)
    if data.comment_type is CommentType.INTERNAL and not may_write_internal:
        raise Forbidden("Only staff write internal notes.")
    check_open(ticket)
    comment_id = comment_id or new_id()
    # A staff reply on an email or chat ticket goes out to the customer: queued with
    # the comment, in its transaction.
    delivery = await outgoing.queue_reply(uow, actor, ticket, comment_id, data.comment_type)
    comment = await tickets.insert_comment(
        {
            "id": comment_id,
            "ticket_id": ticket["id"],
            "author_id": actor.user_id,
            "content": data.content,
            "comment_type": data.comment_type,
            **delivery,
        }
    )
    journal = journal or Journal(uow)
    record_changes(journal, ticket, actor.user_id, {"comment": (None, comment["id"])}, event=None)
    now = datetime.now(UTC)
    first_response: Changes = {}
    clock_values: dict[str, Any] = {}
    if data.comment_type is CommentType.PUBLIC:
        clocks = await sla.TicketClock.load(
            uow.session, ticket["id"], policy_id=ticket["sla_policy_id"]
        )
        by_staff = not actor.is_customer
        if by_staff and ticket["first_response_at"] is None:
            first_response = {
                "first_response_at": (None, now),
                "time_to_first_response": (None, _seconds(ticket["created_at"], now)),
            }
        if by_staff and (first_response or clocks.known_clock is not None):
            clocks.add(sla.reply_events(clocks.known_clock, by_staff=True, at=now))
        elif not by_staff:
            clocks.add(sla.reply_events(clocks.known_clock, by_staff=False, at=now))
        clock_values = _differing(
            ticket,
            await clocks.values(ticket["sla_policy_id"], TicketStatus(ticket["status"])),
        )
        clocks.journal(journal)
    if first_response or clock_values:
        values = {field: new for field, (_old, new) in first_response.items()} | clock_values
        written = await tickets.write(ticket["id"], ticket["version"], values)
        record_changes(journal, written, actor.user_id, first_response)
        if not first_response:
            feed(journal, ticket, ChangeKind.UPDATED)
    else:
        # The thread is part of the ticket: a sync through the change feed must see it.
        feed(journal, ticket, ChangeKind.UPDATED)
    journal.event(
        "ticket.comment_added",
        aggregate_type="ticket",
        aggregate_id=ticket["id"],
        payload={
            "id": str(ticket["id"]),
            "comment_id": str(comment["id"]),
            "comment_type": data.comment_type.value,
        },
    )
    await journal.write()
    return comment


async def list_history(
    session: AsyncSession, actor: Principal, ticket_id: uuid.UUID, page: PageParams
) -> PageResult[Record]:
    await get_ticket(session, actor, ticket_id)
    return await TicketRepository(session).history(ticket_id, page)


async def list_sla_events(
    session: AsyncSession, actor: Principal, ticket_id: uuid.UUID, page: PageParams
) -> PageResult[Record]:
    await get_ticket(session, actor, ticket_id)
    return await sla.list_events(session, ticket_id, page)


# --- SLA deadlines (the timer workers) -----------------------------------------------------

RAISED_PRIORITY = {
    Priority.LOW: Priority.MEDIUM,
    Priority.MEDIUM: Priority.HIGH,
    Priority.HIGH: Priority.URGENT,
}


async def act_on_deadlines(
    uow: UnitOfWork,
    journal: Journal,
    writes: list[TicketWrite],
    ticket: Record,
    log: list[Event],
    measures: sla.Measures,
    now: datetime,
) -> list[Event]:
    """Flag the breaches and run the escalations of a ticket whose time has come, on a
    ticket the caller claimed (locked, `log` read under the lock). Each is recorded in
    the log with its `done_key`, unique per ticket, and a recorded one is no longer
    pending: whoever acts second finds nothing to do. Then the due fields and the next
    deadline follow. Returns what was recorded.

    A worker acts on a batch of tickets: the journal rows go into `journal` and a write
    of the clock's columns alone into `writes`, both written by the caller with the
    batch's. An escalation that changes the ticket itself (priority, assignee) writes at
    once: the next ticket's reassignment counts the agents' open tickets."""
    policy_id: uuid.UUID | None = ticket["sla_policy_id"]
    policy = await measures.get(policy_id) if policy_id is not None else None
    clocks = sla.TicketClock(uow.session, ticket["id"], log, measures)
    due = sla.due_deadlines(clocks.clock, policy, now) if policy is not None else []
    changes: Changes = {}
    recorded = []
    for deadline in due:
        event = deadline.recorded(now)
        clocks.add([event])
        recorded.append(event)
        if event.kind is EventKind.BREACH:
            _record_breach(journal, ticket, event)
        else:
            assert policy is not None
            outcome = await _escalate(uow, journal, ticket, event, policy, changes)
            _record_escalation(journal, ticket, event, outcome)
    if "priority" in changes:
        policy_id = await _rematched(uow.session, ticket, changes)
        clocks.add([sla.recompute_event(now, "priority_raised")])
    values = {field: new for field, (_old, new) in changes.items()}
    values |= _differing(ticket, await clocks.values(policy_id, TicketStatus(ticket["status"])))
    if changes:
        written = await TicketRepository(uow.session).write(ticket["id"], ticket["version"], values)
        record_changes(journal, written, None, changes)
    elif values:
        writes.append((ticket["id"], ticket["version"], values))
        feed(journal, ticket, ChangeKind.UPDATED)
    clocks.journal(journal)
    return recorded


def _deadline_payload(ticket: Record, event: Event) -> dict[str, Any]:
    assert event.target is not None
    assert event.flagged_at is not None
    return {
        "id": str(ticket["id"]),
        "ticket_number": ticket["ticket_number"],
        "target": event.target.value,
        "cycle": event.cycle,
        "due_at": instant_text(event.at),
        "flagged_at": instant_text(event.flagged_at),
        "late_seconds": sla.lateness(event),
    }


def _record_breach(journal: Journal, ticket: Record, event: Event) -> None:
    assert event.target is not None
    record_changes(journal, ticket, None, {"sla_breach": (None, event.target.value)}, event=None)
    journal.event(
        "ticket.sla_breached",
        aggregate_type="ticket",
        aggregate_id=ticket["id"],
        payload=_deadline_payload(ticket, event),
    )


def _record_escalation(
    journal: Journal, ticket: Record, event: Event, outcome: dict[str, Any]
) -> None:
    journal.event(
        "ticket.sla_escalated",
        aggregate_type="ticket",
        aggregate_id=ticket["id"],
        payload={**_escalation_payload(ticket, event), **outcome},
    )


def _escalation_payload(ticket: Record, event: Event) -> dict[str, Any]:
    assert event.action is not None
    return {
        **_deadline_payload(ticket, event),
        "at_percent": event.at_percent,
        "action": event.action.value,
    }


async def _escalate(
    uow: UnitOfWork,
    journal: Journal,
    ticket: Record,
    event: Event,
    policy: Policy,
    changes: Changes,
) -> dict[str, Any]:
    """Run one escalation; what it changes of the ticket goes into `changes`. Returns
    what it did, for its event."""
    tickets = TicketRepository(uow.session)
    if event.action is EscalationAction.RAISE_PRIORITY:
        current = Priority(changes.get("priority", (None, ticket["priority"]))[1])
        raised = RAISED_PRIORITY.get(current)
        if raised is None:
            return {"priority": current.value, "changed": False}
        changes["priority"] = (ticket["priority"], raised)
        return {"priority": raised.value, "changed": True}
    if event.action is EscalationAction.REASSIGN:
        skills = policy.skills_for(event)
        agent_id = await tickets.free_agent(
            ticket["department_id"],
            skills,
            ACTIVE_STATUSES,
            exclude=changes.get("assigned_agent_id", (None, ticket["assigned_agent_id"]))[1],
        )
        if agent_id is None:
            return {"assigned_agent_id": None, "changed": False}
        changes["assigned_agent_id"] = (ticket["assigned_agent_id"], agent_id)
        return {"assigned_agent_id": str(agent_id), "changed": True}
    recipients = await tickets.escalation_recipients(
        ticket["assigned_agent_id"], ticket["department_id"]
    )
    assert event.target is not None
    target = event.target.value.replace("_", " ")
    notifications.notify(
        journal,
        recipients,
        kind="sla_escalation",
        ticket_id=ticket["id"],
        title=f"{ticket['ticket_number']}: {event.at_percent}% of the {target} target used",
        data=_escalation_payload(ticket, event),
    )
    return {"notified_user_ids": [str(user_id) for user_id in recipients]}


# --- a changed measure (the recompute job) --------------------------------------------------

RECOMPUTE_BATCH = 200
# Embedded SQLite locks the whole database for a write: short transactions there.
EMBEDDED_RECOMPUTE_BATCH = 20
# Tickets whose clocks a new measure may still move: final ones keep what they showed.
MEASURED_STATUSES = frozenset({S.NEW, S.OPEN, S.PENDING, S.RESOLVED})


async def recompute_clocks(
    uow: UnitOfWork, *, policy_ids: list[str], reason: str, after: str | None = None
) -> int:
    """Replay the logs of the open tickets the policies measure with their measure as it
    is now (another target, calendar or escalation), each with a `recompute` event that
    says why; one batch per run, the next queued after the commit. Returns how many."""
    tickets = TicketRepository(uow.session)
    limit = RECOMPUTE_BATCH if uow.dialect == "postgresql" else EMBEDDED_RECOMPUTE_BATCH
    batch = await tickets.measured_by(
        [uuid.UUID(p) for p in policy_ids],
        MEASURED_STATUSES,
        after=uuid.UUID(after) if after else None,
        limit=limit,
    )
    if not batch:
        return 0
    logs = await SLARepository(uow.session).logs([ticket["id"] for ticket in batch])
    measures = sla.Measures(uow.session)
    now = datetime.now(UTC)
    journal = Journal(uow)
    writes: list[TicketWrite] = []
    for ticket in batch:
        clocks = sla.TicketClock(uow.session, ticket["id"], logs[ticket["id"]], measures)
        clocks.add([sla.recompute_event(now, reason)])
        values = await clocks.values(ticket["sla_policy_id"], TicketStatus(ticket["status"]))
        changed = _differing(ticket, values)
        if changed:
            writes.append((ticket["id"], ticket["version"], changed))
            feed(journal, ticket, ChangeKind.UPDATED)
        clocks.journal(journal)
    await tickets.write_many(writes)
    await journal.write()
    if len(batch) == limit:
        uow.enqueue(RECOMPUTE_JOB, policy_ids=policy_ids, reason=reason, after=str(batch[-1]["id"]))
    return len(batch)
