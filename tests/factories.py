"""One valid row of every tenant model, built through the ORM in a tenant session."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.base import Base
from app.db.unit_of_work import UnitOfWork
from app.models import (
    ApiKey,
    AutomationRule,
    BusinessHours,
    Channel,
    Customer,
    CustomField,
    DataRetentionPolicy,
    Department,
    IdempotencyKey,
    InboundMessage,
    KBArticle,
    KBCategory,
    Notification,
    OutboxEvent,
    SequenceCounter,
    SLAPolicy,
    Technician,
    Ticket,
    TicketAttachment,
    TicketChange,
    TicketComment,
    TicketHistory,
    TicketMessageId,
    TicketSLAEvent,
    User,
    UserPermission,
    UserSession,
    VisualWorkflow,
    VisualWorkflowVersion,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookSubscription,
    WorkOrder,
)
from app.models.automation import TriggerType
from app.models.channel import ChannelType, MessageDirection
from app.models.custom_field import FieldType
from app.models.retention import RetentionType
from app.models.user import Role
from app.sla.clock import EventKind as SLAEventKind
from app.sla.clock import Target as SLATarget
from app.tickets.repository import TICKET_SEQUENCE
from app.tickets.service import open_ticket


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def make_user(session: AsyncSession, role: Role = Role.AGENT, **fields: Any) -> User:
    user = User(email=f"{role.value}-{uid()}@example.com", role=role, **fields)
    session.add(user)
    await session.flush()
    return user


async def seed_every_model(session: AsyncSession) -> dict[type[Base], Base]:
    """Returns the row made for each model; `SequenceCounter` and `TicketChange` come
    from the ticket."""
    rows: dict[type[Base], Base] = {}

    def keep(*objs: Base) -> None:
        for obj in objs:
            rows[type(obj)] = obj
            session.add(obj)

    keep(Department(name=f"Support {uid()}"), Customer(name=f"Acme {uid()}"))
    await session.flush()
    agent = await make_user(session, Role.AGENT, department_id=rows[Department].id)
    customer = await make_user(session, Role.CUSTOMER, customer_id=rows[Customer].id)
    rows[User] = customer
    keep(BusinessHours(name=f"Office {uid()}", timezone="Europe/Berlin"))
    await session.flush()
    keep(
        SLAPolicy(
            name=f"Standard {uid()}",
            first_response_minutes=60,
            resolution_minutes=480,
            business_hours_id=rows[BusinessHours].id,
        )
    )
    # What opening a ticket needs of a unit of work is its session (no jobs run here).
    opened = await open_ticket(
        UnitOfWork(session=session, settings=Settings(_env_file=None)),  # type: ignore[call-arg]
        subject="Printer on fire",
        customer_id=customer.id,
        created_by_id=agent.id,
        assigned_agent_id=agent.id,
        tags=["hardware"],
    )
    ticket = await session.get(Ticket, opened["id"])
    assert ticket is not None
    rows[Ticket] = ticket
    keep(TicketComment(ticket_id=ticket.id, author_id=agent.id, content="On it."))
    await session.flush()
    keep(
        TicketAttachment(
            ticket_id=ticket.id,
            comment_id=rows[TicketComment].id,
            uploaded_by_id=agent.id,
            file_name="log.txt",
            file_size=3,
            content_type="text/plain",
            storage_key=f"blobs/{uid()}",
            sha256="0" * 64,
        ),
        TicketHistory(ticket_id=ticket.id, user_id=agent.id, field="status", new_value="new"),
        TicketMessageId(
            message_id=f"{uid()}@mail.example.com",
            ticket_id=ticket.id,
            direction=MessageDirection.INBOUND,
        ),
        TicketSLAEvent(
            ticket_id=ticket.id,
            kind=SLAEventKind.START,
            target=SLATarget.RESOLUTION,
            at=datetime.now(UTC),
        ),
        Notification(
            user_id=agent.id, kind="sla_escalation", title="TK-000001", ticket_id=ticket.id
        ),
        UserSession(
            user_id=agent.id,
            expires_at=datetime.now(UTC) + timedelta(days=1),
            refresh_token_hash="f" * 64,
        ),
        UserPermission(user_id=agent.id, permission="reports:read", granted_by_id=agent.id),
        ApiKey(name="CRM sync", prefix=uid(), key_hash="a" * 64, role=Role.AGENT),
        AutomationRule(name=f"Auto {uid()}", trigger_type=TriggerType.TICKET_CREATED),
        VisualWorkflow(name=f"Flow {uid()}"),
        CustomField(name=f"field_{uid()}", field_type=FieldType.TEXT),
        KBCategory(name="Guides", slug=f"guides-{uid()}"),
        Technician(user_id=agent.id, skills=["hvac"]),
        DataRetentionPolicy(retention_type=RetentionType.TICKETS, retention_period_days=365),
        Channel(type=ChannelType.EMAIL, name="Support inbox", secret="whsec_" + "A" * 32),
        WebhookSubscription(
            url="https://example.com/hook", events=["ticket.created"], secret="whsec_" + "B" * 32
        ),
        IdempotencyKey(key=f"retry-{uid()}", fingerprint="0" * 64),
        OutboxEvent(
            event_type="ticket.created",
            aggregate_type="ticket",
            aggregate_id=ticket.id,
            payload={"id": str(ticket.id)},
        ),
    )
    await session.flush()
    keep(
        VisualWorkflowVersion(workflow_id=rows[VisualWorkflow].id, version=1),
        KBArticle(
            category_id=rows[KBCategory].id,
            author_id=agent.id,
            title="Reset a router",
            slug=f"reset-{uid()}",
        ),
        WorkOrder(
            work_order_number=f"WO-{uid()}",
            title="Replace valve",
            customer_id=customer.id,
            technician_id=rows[Technician].id,
            ticket_id=ticket.id,
        ),
        InboundMessage(
            channel_id=rows[Channel].id,
            external_id=f"<{uid()}@mail>",
            content_type="application/json",
            raw_body=b"{}",
            ticket_id=ticket.id,
        ),
        WebhookDelivery(
            subscription_id=rows[WebhookSubscription].id,
            event_id=rows[OutboxEvent].id,
            event_type="ticket.created",
            payload="{}",
        ),
    )
    await session.flush()
    keep(WebhookDeliveryAttempt(delivery_id=rows[WebhookDelivery].id, attempt_number=1))
    await session.flush()
    counter = await session.scalar(
        sa.select(SequenceCounter).where(SequenceCounter.name == TICKET_SEQUENCE)
    )
    assert counter is not None
    rows[SequenceCounter] = counter
    change = await session.scalar(
        sa.select(TicketChange).where(TicketChange.ticket_id == ticket.id)
    )
    assert change is not None  # the feed row `open_ticket` writes
    rows[TicketChange] = change
    return rows
