"""Tickets: creation with a collision-free per-organization number.

The full lifecycle (state machine, history, SLA, comments API) builds on this service."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.sequences import next_value
from app.models.ticket import Priority, Ticket, TicketChannel, TicketStatus

TICKET_SEQUENCE = "ticket"


def format_ticket_number(value: int) -> str:
    return f"TK-{value:06d}"


async def create_ticket(
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
) -> Ticket:
    number = await next_value(session, TICKET_SEQUENCE)
    ticket = Ticket(
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
    )
    session.add(ticket)
    await session.flush()
    return ticket
