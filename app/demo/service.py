"""The demo organization `make run` serves: staff of every role, customers, tickets."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from app.auth.passwords import hash_password
from app.db.unit_of_work import UnitOfWork
from app.models.ticket import CommentType, Priority, TicketChannel, TicketComment, TicketStatus
from app.models.user import Customer, CustomerTier, Department, Role, User
from app.organizations.schemas import OrganizationCreate
from app.tickets.service import ACTIVE_STATUSES, open_ticket

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Company"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - a published demo login, local only
# Active tickets (ACTIVE_STATUSES) the seed leaves each staff member below their
# `max_concurrent_tickets`, so assigning a ticket right away succeeds.
DEMO_FREE_SLOTS = 3

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

    statuses = [TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING]
    # The seed keeps the rule the API enforces: an agent's active tickets stay within
    # `max_concurrent_tickets`, with DEMO_FREE_SLOTS left free; once everyone is at that
    # mark, new tickets wait unassigned in the queue.
    room = {agent.id: agent.max_concurrent_tickets - DEMO_FREE_SLOTS for agent in agents}
    for n in range(tickets):
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
        )
        session.add(
            TicketComment(
                ticket_id=ticket["id"], author_id=customer.id, content="Any news on this?"
            )
        )
        if agent is not None:
            session.add(
                TicketComment(
                    ticket_id=ticket["id"],
                    author_id=agent.id,
                    content="Looking into it.",
                    comment_type=rng.choice(list(CommentType)),
                )
            )
        if n % 50 == 49:
            await session.flush()
        progress(1)
    await session.flush()
    return DemoSummary(users=1 + len(agents) + len(customers), tickets=tickets)
