"""The demo organization `make run` serves: staff of every role, customers, SLA policies
and tickets opened over the last days, written through the same services as the API so
their SLA clocks are real: some answered, some pending, some resolved, some overdue (the
timer loop of `helpdesk serve` flags those as breached within a second of starting)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password
from app.auth.principal import Principal, PrincipalKind
from app.business_hours.schemas import BusinessHoursCreate
from app.business_hours.service import create_business_hours
from app.db.unit_of_work import UnitOfWork
from app.models.ticket import CommentType, Priority, TicketChannel, TicketStatus
from app.models.user import Customer, CustomerTier, Department, Role, User
from app.organizations.schemas import OrganizationCreate
from app.sla_policies.schemas import SLAPolicyCreate
from app.sla_policies.service import create_sla_policy
from app.tickets.schemas import CommentCreate, TicketUpdate
from app.tickets.service import ACTIVE_STATUSES, add_comment, open_ticket, update_ticket

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Company"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - a published demo login, local only
# Active tickets (ACTIVE_STATUSES) the seed leaves each staff member below their
# `max_concurrent_tickets`, so assigning a ticket right away succeeds.
DEMO_FREE_SLOTS = 3
# Tickets are opened up to this long before the seed runs.
DEMO_HISTORY = timedelta(days=4)

SUBJECTS = [
    "Cannot log in after password reset",
    "Invoice shows the wrong amount",
    "Technician did not arrive for the appointment",
    "Feature request: export tickets to CSV",
    "Boiler makes a loud noise",
    "Refund for a duplicate charge",
    "App crashes when uploading a photo",
    "Change the delivery address",
    "Wi-Fi router keeps rebooting",
    "How do I add a second user?",
]


def demo_organization() -> OrganizationCreate:
    return OrganizationCreate.model_validate(
        {
            "name": DEMO_NAME,
            "slug": DEMO_SLUG,
            "admin": {
                "email": DEMO_ADMIN_EMAIL,
                "password": DEMO_PASSWORD,
                "first_name": "Ada",
                "last_name": "Admin",
            },
        }
    )


@dataclass
class DemoSummary:
    users: int
    tickets: int


async def seed_demo_content(
    uow: UnitOfWork,
    *,
    tickets: int,
    progress: Callable[[int], None] = lambda _n: None,
    seed: int = 42,
) -> DemoSummary:
    """Fill an empty organization (a tenant unit of work) with realistic, reproducible
    data."""
    session = uow.session
    rng = random.Random(seed)
    password_hash = await hash_password(DEMO_PASSWORD)
    departments = [Department(name=n) for n in ("Support", "Billing", "Field Service")]
    accounts = [
        Customer(name=f"{n} Ltd", customer_tier=t)
        for n, t in (
            ("Acme", CustomerTier.ENTERPRISE),
            ("Globex", CustomerTier.PREMIUM),
            ("Initech", CustomerTier.BASIC),
        )
    ]
    session.add_all([*departments, *accounts])
    await session.flush()

    def staff(role: Role, name: str, dept: Department) -> User:
        return User(
            email=f"{name}@demo.example.com",
            password_hash=password_hash,
            role=role,
            first_name=name.capitalize(),
            last_name="Demo",
            department_id=dept.id,
        )

    agents = [
        staff(Role.MANAGER, "manager", departments[0]),
        *(staff(Role.AGENT, f"agent{i}", departments[i % 3]) for i in range(1, 6)),
    ]
    customers = [
        User(
            email=f"customer{i}@example.org",
            password_hash=password_hash,
            role=Role.CUSTOMER,
            first_name=f"Customer{i}",
            last_name="Example",
            customer_id=accounts[i % 3].id,
            customer_tier=accounts[i % 3].customer_tier,
        )
        for i in range(1, 31)
    ]
    session.add_all([*agents, *customers])
    await session.flush()

    await _sla_policies(session)

    statuses = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING]
    now = datetime.now(UTC)
    # The seed keeps the rule the API enforces: an agent's active tickets stay within
    # `max_concurrent_tickets`, with DEMO_FREE_SLOTS left free; once everyone is at that
    # mark, new tickets wait unassigned in the queue.
    room = {agent.id: agent.max_concurrent_tickets - DEMO_FREE_SLOTS for agent in agents}
    showcase = SHOWCASE[:tickets]
    for case in showcase:
        await _showcase(uow, case, customers[0], agents[0], departments[0].id, now)
        progress(1)
    for _ in range(tickets - len(showcase)):
        customer = rng.choice(customers)
        status = rng.choice(statuses)
        agent = rng.choice([*agents, None])
        if agent is not None and status in ACTIVE_STATUSES and room[agent.id] <= 0:
            available = [a for a in agents if room[a.id] > 0]
            agent = rng.choice(available) if available else None
        if agent is not None and status in ACTIVE_STATUSES:
            room[agent.id] -= 1
        ticket = await open_ticket(
            uow,
            subject=rng.choice(SUBJECTS),
            description="Reported through the demo seed.",
            customer_id=customer.id,
            created_by_id=customer.id,
            priority=rng.choice(list(Priority)),
            channel=rng.choice(list(TicketChannel)),
            status=status,
            assigned_agent_id=agent.id if agent else None,
            department_id=rng.choice(departments).id,
            tags=rng.sample(["billing", "login", "hardware", "vip", "mobile"], k=rng.randint(0, 2)),
            # Most tickets are recent, some days old: a helpdesk keeps up, mostly.
            opened_at=now - DEMO_HISTORY * rng.random() ** 3,
        )
        await add_comment(
            uow,
            _as(customer, uow),
            ticket["id"],
            CommentCreate(content="Any news on this?"),
            may_write_internal=False,
        )
        if agent is not None:
            kind = rng.choice(list(CommentType))
            await add_comment(
                uow,
                _as(agent, uow),
                ticket["id"],
                CommentCreate(content="Looking into it.", comment_type=kind),
                may_write_internal=True,
            )
            if kind is CommentType.PUBLIC and status is not TicketStatus.PENDING:
                if rng.random() < 0.3:
                    resolved = TicketUpdate(status=TicketStatus.RESOLVED)
                    await update_ticket(uow, _as(agent, uow), ticket["id"], resolved)
                    room[agent.id] += 1
                elif rng.random() < 0.3:
                    follow_up = CommentCreate(content="Thanks, one more question.")
                    await add_comment(
                        uow, _as(customer, uow), ticket["id"], follow_up, may_write_internal=False
                    )
        progress(1)
    return DemoSummary(users=1 + len(agents) + len(customers), tickets=tickets)


@dataclass(frozen=True)
class Showcase:
    """A ticket the demo opens whatever the time of day, to show one `sla_status`."""

    subject: str
    priority: Priority
    minutes_ago: int
    answered: bool
    then: TicketStatus | None = None


# Under the around-the-clock policy (first response within an hour), so the status does
# not depend on when the seed runs: due, answered, pending, overdue (the timer loop
# flags it), resolved; and a low-priority ticket no policy measures.
SHOWCASE = [
    Showcase("Checkout returns errors for every customer", Priority.URGENT, 5, answered=False),
    Showcase("Payment gateway times out", Priority.URGENT, 20, answered=True),
    Showcase(
        "Waiting for the customer's server logs",
        Priority.HIGH,
        15,
        answered=True,
        then=TicketStatus.PENDING,
    ),
    Showcase("Outage report nobody answered", Priority.URGENT, 180, answered=False),
    Showcase(
        "Password reset link expired",
        Priority.HIGH,
        30,
        answered=True,
        then=TicketStatus.RESOLVED,
    ),
    Showcase("Typo in the newsletter footer", Priority.LOW, 60, answered=False),
]


async def _showcase(
    uow: UnitOfWork,
    case: Showcase,
    customer: User,
    agent: User,
    department_id: uuid.UUID,
    now: datetime,
) -> None:
    ticket = await open_ticket(
        uow,
        subject=case.subject,
        description="Reported through the demo seed.",
        customer_id=customer.id,
        created_by_id=customer.id,
        priority=case.priority,
        department_id=department_id,
        opened_at=now - timedelta(minutes=case.minutes_ago),
    )
    if case.answered:
        reply = CommentCreate(content="We are on it.")
        await add_comment(uow, _as(agent, uow), ticket["id"], reply, may_write_internal=True)
    if case.then is not None:
        move = TicketUpdate(status=case.then)
        await update_ticket(uow, _as(agent, uow), ticket["id"], move)


def _as(user: User, uow: UnitOfWork) -> Principal:
    return Principal(
        kind=PrincipalKind.USER, id=user.id, organization_id=uow.organization_id, role=user.role
    )


async def _sla_policies(session: AsyncSession) -> None:
    """Urgent and high tickets around the clock, medium ones in office hours; low ones
    are not measured."""
    office = await create_business_hours(
        session,
        BusinessHoursCreate.model_validate(
            {
                "name": "Office hours",
                "timezone": "Europe/Berlin",
                "intervals": [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)],
                "holiday_country": "DE",
            }
        ),
    )
    for policy in (
        {
            "name": "Urgent, around the clock",
            "position": 10,
            "conditions": {"priorities": ["urgent", "high"]},
            "first_response_minutes": 60,
            "next_reply_minutes": 120,
            "resolution_minutes": 8 * 60,
            "escalations": [{"target": "first_response", "at_percent": 75, "action": "notify"}],
        },
        {
            "name": "Standard, office hours",
            "position": 20,
            "conditions": {"priorities": ["medium"]},
            "first_response_minutes": 4 * 60,
            "next_reply_minutes": 8 * 60,
            "resolution_minutes": 5 * 8 * 60,
            "business_hours_id": str(office.id),
        },
    ):
        await create_sla_policy(session, SLAPolicyCreate.model_validate(policy))
