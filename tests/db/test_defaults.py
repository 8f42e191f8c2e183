"""Defaults and choices match the seed, enforced by the database as well as the ORM."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.db.database import Database
from app.models import Organization, Ticket, User
from app.models.custom_field import FieldType
from app.models.retention import RetentionType
from tests.factories import make_user

# (table, column, default as the database stores it) — straight from the seed.
SEED_DEFAULTS: list[tuple[str, str, Any]] = [
    ("organizations", "subscription_tier", "basic"),
    ("organizations", "settings", {}),
    ("users", "role", "customer"),
    ("users", "customer_tier", "basic"),
    ("users", "timezone", "UTC"),
    ("users", "language", "en"),
    ("users", "two_factor_enabled", False),
    ("users", "max_concurrent_tickets", 10),
    ("users", "availability_status", "offline"),
    ("users", "email_notifications", True),
    ("users", "sms_notifications", False),
    ("users", "push_notifications", True),
    ("users", "skills", []),
    ("users", "certifications", []),
    ("tickets", "status", "new"),
    ("tickets", "priority", "medium"),
    ("tickets", "channel", "web"),
    ("tickets", "sla_breach", False),
    ("tickets", "tags", []),
    ("tickets", "custom_fields", {}),
    ("tickets", "version", 1),
    ("ticket_comments", "comment_type", "public"),
    ("custom_fields", "is_required", False),
    ("custom_fields", "is_unique", False),
    ("custom_fields", "validation_rules", {}),
    ("custom_fields", "entity_type", "ticket"),
    ("data_retention_policies", "archive_before_delete", True),
    ("data_retention_policies", "anonymize_personal_data", True),
    ("data_retention_policies", "is_active", True),
    ("visual_workflows", "definition", {}),
    ("user_permissions", "is_active", True),
    ("user_sessions", "is_active", True),
]

SEED_CHOICES: list[tuple[str, str, set[str]]] = [
    ("users", "role", {"admin", "manager", "agent", "customer"}),
    ("tickets", "status", {"new", "open", "pending", "resolved", "closed", "cancelled"}),
    ("tickets", "priority", {"low", "medium", "high", "urgent"}),
    ("tickets", "channel", {"web", "email", "chat", "phone", "api"}),
    ("custom_fields", "field_type", {f.value for f in FieldType}),
    ("data_retention_policies", "retention_type", {r.value for r in RetentionType}),
]


def test_seed_lists_thirteen_field_types_and_six_retention_types() -> None:
    assert len(FieldType) == 13 and len(RetentionType) == 6


@pytest.mark.parametrize(("table", "column", "expected"), SEED_DEFAULTS)
async def test_database_default_matches_seed(
    table: str, column: str, expected: Any, database: Database
) -> None:
    async with database.engine.connect() as conn:
        default = await conn.scalar(
            sa.text(
                "SELECT column_default FROM information_schema.columns "
                "WHERE table_name = :t AND column_name = :c"
            ),
            {"t": table, "c": column},
        )
        assert default is not None, f"{table}.{column} has no server default"
        value = await conn.scalar(sa.text(f"SELECT {default}"))
        if isinstance(expected, (dict, list)):
            value = __import__("json").loads(value) if isinstance(value, str) else value
        assert value == expected


async def test_orm_defaults_match_seed(database: Database, org_a: Organization) -> None:
    async with database.tenant_session(org_a.id) as session:
        user = User(email=f"{uuid.uuid4().hex}@example.com")
        session.add(user)
        await session.flush()
        await session.refresh(user)
        assert (user.role, user.customer_tier, user.max_concurrent_tickets) == (
            "customer",
            "basic",
            10,
        )
        agent = await make_user(session)
        ticket = Ticket(
            ticket_number="TK-1", subject="Hi", customer_id=user.id, created_by_id=agent.id
        )
        session.add(ticket)
        await session.flush()
        await session.refresh(ticket)
        assert (ticket.status, ticket.priority, ticket.channel, ticket.sla_breach) == (
            "new",
            "medium",
            "web",
            False,
        )
        assert (ticket.tags, ticket.custom_fields, ticket.version) == ([], {}, 1)
        assert ticket.created_at.tzinfo is not None and ticket.priority_rank == 2


@pytest.mark.parametrize(("table", "column", "allowed"), SEED_CHOICES)
async def test_database_rejects_values_outside_choices(
    table: str, column: str, allowed: set[str], database: Database
) -> None:
    async with database.engine.connect() as conn:
        checks = list(
            await conn.scalars(
                sa.text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"
                ),
                {"t": table},
            )
        )
    relevant = [c for c in checks if f"({column})::text = ANY" in c]
    assert relevant, f"no CHECK on {table}.{column}"
    assert any(all(f"'{value}'" in check for value in allowed) for check in relevant)


async def test_invalid_status_rejected_by_database(database: Database, org_a: Organization) -> None:
    async with database.tenant_session(org_a.id) as session:
        user = await make_user(session)
        await session.commit()
    async with database.system_session() as session:
        with pytest.raises(IntegrityError, match="ck_tickets_ticket_status"):
            await (await session.connection()).execute(
                sa.text(
                    "INSERT INTO tickets (id, organization_id, ticket_number, subject, status, "
                    "customer_id) VALUES (:id, :org, 'TK-X', 's', 'lost', :cust)"
                ),
                {"id": uuid.uuid4(), "org": org_a.id, "cust": user.id},
            )
