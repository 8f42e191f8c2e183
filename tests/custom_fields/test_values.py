"""`validate_values`: a record's `custom_fields` checked against the organization's live
definitions — every field type's accepted and normalised values and its refusals, required
fields, unknown keys, merging with the stored values on update, and `is_unique` across
tickets (including two concurrent writers). Runs in real tenant sessions on PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.custom_fields.service import validate_values
from app.db.database import Database
from app.kit.errors import ValidationFailed
from app.models.custom_field import CustomField, EntityType, FieldType
from app.models.organization import Organization
from app.models.ticket import Ticket
from app.tickets.service import open_ticket
from tests.support.identity import Tenant

T = FieldType
UUID_TEXT = "0192F0C8-0000-7000-8000-00000000ABCD"
DEEP: Any = "leaf"
for _ in range(9):
    DEEP = [DEEP]


# --- helpers ------------------------------------------------------------------------


async def define(
    database: Database, org: Organization, name: str, field_type: FieldType, **fields: Any
) -> CustomField:
    async with database.tenant_session(org.id) as session:
        definition = CustomField(name=name, field_type=field_type, **fields)
        session.add(definition)
        await session.commit()
    return definition


async def validate(
    database: Database,
    org: Organization,
    values: dict[str, Any],
    *,
    current: dict[str, Any] | None = None,
    record_id: uuid.UUID | None = None,
    entity_type: EntityType = EntityType.TICKET,
) -> dict[str, Any]:
    async with database.tenant_session(org.id) as session:
        return await validate_values(
            session, entity_type, values, current=current, record_id=record_id
        )


async def problems(
    database: Database, org: Organization, values: dict[str, Any], **kwargs: Any
) -> dict[str, str]:
    """{field name: message} of the one 422 the values earn."""
    with pytest.raises(ValidationFailed) as caught:
        await validate(database, org, values, **kwargs)
    error = caught.value
    assert error.status == 422
    assert error.errors
    found: dict[str, str] = {}
    for item in error.errors:
        assert item["type"] == "value_error"
        assert item["loc"][:2] == ["body", "custom_fields"] and len(item["loc"]) == 3
        found[item["loc"][2]] = item["msg"]
    assert len(found) == len(error.errors)  # one problem per field
    return found


def customer_of(tenant: Tenant) -> uuid.UUID:
    user_id = tenant["customer"].user_id
    assert user_id is not None
    return user_id


async def add_ticket(
    database: Database,
    tenant: Tenant,
    custom_fields: dict[str, Any],
    *,
    deleted: bool = False,
) -> Ticket:
    async with database.tenant_session(tenant.org.id) as session:
        opened = await open_ticket(
            database.unit_of_work(session),
            subject="Broken printer",
            customer_id=customer_of(tenant),
            created_by_id=None,
            custom_fields=custom_fields,
        )
        ticket = await session.get(Ticket, opened["id"])
        assert ticket is not None
        if deleted:
            ticket.soft_delete()
        await session.commit()
    return ticket


# --- per type: accepted values and their normal form -------------------------------------

VALID: list[tuple[FieldType, dict[str, Any], Any, Any]] = [
    (T.TEXT, {}, "hello", "hello"),
    (T.TEXT, {}, "  kept as typed  ", "  kept as typed  "),
    (T.TEXT, {"validation_rules": {"min_length": 2, "max_length": 5}}, "abcde", "abcde"),
    (T.TEXT, {"validation_rules": {"regex": "[A-Z]{3}-[0-9]+"}}, "ABC-12", "ABC-12"),
    (T.TEXT, {}, "x" * 1000, "x" * 1000),
    (T.TEXTAREA, {}, "line one\nline two", "line one\nline two"),
    (T.TEXTAREA, {}, "y" * 10_000, "y" * 10_000),
    (T.NUMBER, {}, 42, 42),
    (T.NUMBER, {}, -2.5, -2.5),
    (T.NUMBER, {}, 10**20, 10**20),
    (T.NUMBER, {"validation_rules": {"min": -1, "max": 10}}, -1, -1),
    (T.NUMBER, {"validation_rules": {"min": -1, "max": 10}}, 10.0, 10.0),
    (T.EMAIL, {}, "Jane.Doe@Example.COM", "jane.doe@example.com"),
    (
        T.EMAIL,
        {"validation_rules": {"regex": ".*@example\\.com"}},
        "a@EXAMPLE.com",
        "a@example.com",
    ),
    (T.URL, {}, "https://example.com/a/b?c=d#e", "https://example.com/a/b?c=d#e"),
    (T.URL, {}, "http://localhost:8080", "http://localhost:8080"),
    (T.URL, {}, "HTTPS://Example.com", "HTTPS://Example.com"),
    (T.DATE, {}, "2024-02-29", "2024-02-29"),
    (T.DATETIME, {}, "2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"),
    (T.DATETIME, {}, "2024-01-01t10:00:00.5z", "2024-01-01T10:00:00.500000Z"),
    (T.DATETIME, {}, "2024-01-01 10:00:00-05:30", "2024-01-01T15:30:00Z"),
    (T.DATETIME, {}, "2023-12-31T23:30:00-01:00", "2024-01-01T00:30:00Z"),
    (T.BOOLEAN, {}, True, True),
    (T.BOOLEAN, {}, False, False),
    (T.CHOICE, {"choices": ["low", "high"]}, "high", "high"),
    (T.MULTI_CHOICE, {"choices": ["r", "g", "b"]}, ["b", "r"], ["b", "r"]),
    (T.MULTI_CHOICE, {"choices": ["r", "g", "b"]}, [], []),
    (T.FILE, {}, UUID_TEXT, UUID_TEXT.lower()),
    (T.FILE, {}, "uploads/2024/report.pdf", "uploads/2024/report.pdf"),
    (T.IMAGE, {}, UUID_TEXT.lower(), UUID_TEXT.lower()),
    (T.JSON, {}, {"a": [1, 2.5, {"b": None, "c": True}]}, {"a": [1, 2.5, {"b": None, "c": True}]}),
    (T.JSON, {}, [1, "two"], [1, "two"]),
    (T.JSON, {}, "text", "text"),
    (T.JSON, {}, 0, 0),
    (T.JSON, {}, False, False),
]


@pytest.mark.parametrize(
    ("field_type", "definition", "value", "stored"),
    VALID,
    ids=[f"{case[0].value}-{str(case[2])[:30]}" for case in VALID],
)
async def test_valid_value_is_normalised(
    database: Database,
    org_a: Organization,
    field_type: FieldType,
    definition: dict[str, Any],
    value: Any,
    stored: Any,
) -> None:
    await define(database, org_a, "field", field_type, **definition)
    result = await validate(database, org_a, {"field": value})
    assert result == {"field": stored}
    assert type(result["field"]) is type(stored)


# --- per type: refusals --------------------------------------------------------------------

INVALID: list[tuple[FieldType, dict[str, Any], Any]] = [
    (T.TEXT, {}, 5),
    (T.TEXT, {}, ["a"]),
    (T.TEXT, {}, "x" * 1001),
    (T.TEXT, {}, "nul\x00byte"),
    (T.TEXT, {"validation_rules": {"min_length": 2}}, "a"),
    (T.TEXT, {"validation_rules": {"max_length": 5}}, "abcdef"),
    (T.TEXT, {"validation_rules": {"regex": "[A-Z]{3}"}}, "ABCD"),  # the whole value
    (T.TEXT, {"validation_rules": {"regex": "[A-Z]{3}"}}, "abc"),
    (T.TEXTAREA, {}, "y" * 10_001),
    (T.TEXTAREA, {}, {"text": "no"}),
    (T.NUMBER, {}, "5"),
    (T.NUMBER, {}, True),
    (T.NUMBER, {}, math.nan),
    (T.NUMBER, {}, math.inf),
    (T.NUMBER, {}, [1]),
    (T.NUMBER, {"validation_rules": {"max": 10}}, 10.5),
    (T.NUMBER, {"validation_rules": {"min": -1}}, -2),
    (T.EMAIL, {}, "not-an-email"),
    (T.EMAIL, {}, "two@@example.com"),
    (T.EMAIL, {}, 5),
    (T.EMAIL, {"validation_rules": {"regex": ".*@example\\.com"}}, "a@other.org"),
    (T.URL, {}, "ftp://example.com/file"),
    (T.URL, {}, "example.com"),
    (T.URL, {}, "http://"),
    (T.URL, {}, "http:example.com"),
    (T.URL, {}, "https://exa mple.com"),
    (T.URL, {}, " https://example.com"),
    (T.URL, {}, "javascript:alert(1)"),
    (T.URL, {}, "https://example.com:99999"),
    (T.URL, {}, "https://example.com/" + "a" * 2000),
    (T.URL, {}, 5),
    (T.DATE, {}, "2024-02-30"),
    (T.DATE, {}, "2024/01/01"),
    (T.DATE, {}, "20240101"),
    (T.DATE, {}, "2024-01-01T00:00:00Z"),
    (T.DATE, {}, 20240101),
    (T.DATETIME, {}, "2024-01-01T10:00:00"),
    (T.DATETIME, {}, "2024-01-01"),
    (T.DATETIME, {}, "2024-01-01T25:00:00Z"),
    (T.DATETIME, {}, "20240101T100000Z"),
    (T.DATETIME, {}, "9999-12-31T23:59:59-01:00"),
    (T.DATETIME, {}, 1_700_000_000),
    (T.BOOLEAN, {}, "true"),
    (T.BOOLEAN, {}, 1),
    (T.BOOLEAN, {}, 0),
    (T.CHOICE, {"choices": ["low", "high"]}, "medium"),
    (T.CHOICE, {"choices": ["low", "high"]}, "LOW"),
    (T.CHOICE, {"choices": ["low", "high"]}, ["low"]),
    (T.MULTI_CHOICE, {"choices": ["r", "g"]}, "r"),
    (T.MULTI_CHOICE, {"choices": ["r", "g"]}, ["r", "r"]),
    (T.MULTI_CHOICE, {"choices": ["r", "g"]}, ["r", "x"]),
    (T.MULTI_CHOICE, {"choices": ["r", "g"]}, [1]),
    (T.FILE, {}, ""),
    (T.FILE, {}, "x" * 501),
    (T.FILE, {}, "has space.pdf"),
    (T.FILE, {}, 5),
    (T.IMAGE, {}, {"id": UUID_TEXT}),
    (T.JSON, {}, {"a": math.nan}),
    (T.JSON, {}, {"big": "x" * (16 * 1024)}),
    (T.JSON, {}, {"nul": "\x00"}),
    (T.JSON, {}, DEEP),
    (T.JSON, {}, {1: "non-string key"}),
    # Catastrophic backtracking for a backtracking engine (8 s at 27 characters, doubling
    # with each more): RE2 answers in linear time.
    (T.TEXT, {"validation_rules": {"regex": "(a+)+$"}}, "a" * 60 + "!"),
]


@pytest.mark.parametrize(
    ("field_type", "definition", "value"),
    INVALID,
    ids=[f"{case[0].value}-{str(case[2])[:30]}" for case in INVALID],
)
async def test_invalid_value_is_422_at_its_field(
    database: Database,
    org_a: Organization,
    field_type: FieldType,
    definition: dict[str, Any],
    value: Any,
) -> None:
    await define(database, org_a, "field", field_type, **definition)
    found = await problems(database, org_a, {"field": value})
    assert list(found) == ["field"]
    assert found["field"]


# --- keys, required fields and merging -------------------------------------------------------


async def test_no_definitions_and_no_values_is_one_query(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        await session.connection()  # the transaction (and its tenant settings) first
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        event.listen(database.tenant_engine.sync_engine, "before_cursor_execute", count)
        try:
            assert await validate_values(session, EntityType.TICKET, {}) == {}
        finally:
            event.remove(database.tenant_engine.sync_engine, "before_cursor_execute", count)
        assert len(statements) == 1, statements


async def test_unknown_keys_are_refused(database: Database, org_a: Organization) -> None:
    await define(database, org_a, "known", T.TEXT)
    assert await problems(database, org_a, {"known": "ok", "mystery": 1, "other": None}) == {
        "mystery": "no such custom field",
        "other": "no such custom field",
    }
    # With no definitions at all, any key is unknown.
    await define(database, org_a, "user_only", T.TEXT, entity_type=EntityType.USER)
    found = await problems(database, org_a, {"user_only": "x"}, entity_type=EntityType.CUSTOMER)
    assert found == {"user_only": "no such custom field"}


async def test_definitions_apply_to_their_entity_type_and_organization(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    await define(database, org_a, "badge", T.NUMBER, entity_type=EntityType.USER)
    await define(database, org_b, "badge", T.TEXT)
    assert await validate(database, org_a, {"badge": 7}, entity_type=EntityType.USER) == {
        "badge": 7
    }
    assert await problems(database, org_a, {"badge": "x"}) == {"badge": "no such custom field"}
    assert await problems(database, org_a, {"badge": "x"}, entity_type=EntityType.USER) == {
        "badge": "must be a number"
    }


async def test_deleted_definitions_do_not_apply(database: Database, org_a: Organization) -> None:
    definition = await define(database, org_a, "gone", T.TEXT, is_required=True)
    async with database.tenant_session(org_a.id) as session:
        row = await session.get(CustomField, definition.id)
        assert row is not None
        row.soft_delete()
        await session.commit()
    assert await validate(database, org_a, {}) == {}  # no longer required
    assert await problems(database, org_a, {"gone": "x"}) == {"gone": "no such custom field"}


async def test_required_fields(database: Database, org_a: Organization) -> None:
    await define(database, org_a, "must", T.TEXT, is_required=True)
    await define(database, org_a, "tags", T.MULTI_CHOICE, is_required=True, choices=["a"])
    await define(database, org_a, "extra", T.NUMBER)
    assert await problems(database, org_a, {}) == {"must": "required", "tags": "required"}
    assert await problems(database, org_a, {"must": None, "tags": ["a"]}) == {"must": "required"}
    # Blank is not a value.
    assert await problems(database, org_a, {"must": "  ", "tags": []}) == {
        "must": "required",
        "tags": "required",
    }
    # An invalid required value is reported once, as invalid.
    assert await problems(database, org_a, {"must": 1, "tags": ["a"]}) == {
        "must": "must be a string"
    }
    assert await validate(database, org_a, {"must": "x", "tags": ["a"]}) == {
        "must": "x",
        "tags": ["a"],
    }


async def test_update_merges_with_current_values(database: Database, org_a: Organization) -> None:
    await define(database, org_a, "must", T.TEXT, is_required=True)
    await define(database, org_a, "count", T.NUMBER, validation_rules={"max": 5})
    await define(database, org_a, "note", T.TEXT)
    current = {"must": "kept", "count": 3, "note": "old"}
    # Keys left out are kept; keys sent replace; null removes.
    assert await validate(database, org_a, {"count": 4, "note": None}, current=current) == {
        "must": "kept",
        "count": 4,
    }
    assert current == {"must": "kept", "count": 3, "note": "old"}  # not mutated
    # Nothing sent: nothing changes.
    assert await validate(database, org_a, {}, current=current) == current
    # A required value cannot be removed.
    assert await problems(database, org_a, {"must": None}, current=current) == {"must": "required"}
    # Removing a value that is not there is harmless.
    assert await validate(database, org_a, {"note": None}, current={"must": "x"}) == {"must": "x"}


async def test_stored_values_are_not_rechecked(database: Database, org_a: Organization) -> None:
    """A value written under older rules, or under a definition deleted since, rides
    along untouched until the client changes it."""
    await define(database, org_a, "count", T.NUMBER, validation_rules={"max": 5})
    current = {"count": 99, "retired": "legacy"}
    assert await validate(database, org_a, {}, current=current) == current
    assert await validate(database, org_a, {"retired": None}, current=current) == {"count": 99}
    assert await problems(database, org_a, {"retired": "new"}, current=current) == {
        "retired": "no such custom field"
    }
    assert await problems(database, org_a, {"count": 98}, current=current) == {
        "count": "must be at most 5"
    }


async def test_every_problem_is_reported_at_once(database: Database, org_a: Organization) -> None:
    await define(database, org_a, "must", T.TEXT, is_required=True)
    await define(database, org_a, "when", T.DATE)
    await define(database, org_a, "level", T.CHOICE, choices=["a", "b"])
    found = await problems(database, org_a, {"when": "tomorrow", "level": "c", "typo": 1})
    assert set(found) == {"must", "when", "level", "typo"}


# --- is_unique across tickets -----------------------------------------------------------------


async def test_unique_value_across_live_tickets_of_the_organization(
    database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    org = tenant_a.org
    await define(database, org, "ref", T.TEXT, is_unique=True)
    await define(database, tenant_b.org, "ref", T.TEXT, is_unique=True)
    taken = await add_ticket(database, tenant_a, {"ref": "A-1"})
    await add_ticket(database, tenant_a, {"ref": "A-3"}, deleted=True)
    await add_ticket(database, tenant_b, {"ref": "B-1"})

    assert await problems(database, org, {"ref": "A-1"}) == {
        "ref": "already used by another ticket"
    }
    assert await validate(database, org, {"ref": "A-2"}) == {"ref": "A-2"}
    assert await validate(database, org, {"ref": "a-1"}) == {"ref": "a-1"}  # exact match
    # The ticket itself may keep (or resend) its own value.
    assert await validate(
        database, org, {"ref": "A-1"}, current={"ref": "A-1"}, record_id=taken.id
    ) == {"ref": "A-1"}
    # Another organization's tickets and deleted tickets do not hold a value.
    assert await validate(database, org, {"ref": "B-1"}) == {"ref": "B-1"}
    assert await validate(database, org, {"ref": "A-3"}) == {"ref": "A-3"}


@pytest.mark.parametrize(
    ("field_type", "definition", "stored", "clash", "free"),
    [
        (T.NUMBER, {}, 1, 1.0, 2),
        (T.BOOLEAN, {}, True, True, False),
        (T.EMAIL, {}, "a@example.com", "A@Example.com", "b@example.com"),
        (
            T.DATETIME,
            {},
            "2024-01-01T08:00:00Z",
            "2024-01-01T10:00:00+02:00",
            "2024-01-01T10:00:00Z",
        ),
        (T.MULTI_CHOICE, {"choices": ["x", "y", "z"]}, ["x", "y"], ["y", "x"], ["x"]),
        (T.JSON, {}, {"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}, {"a": [1]}),
        (T.JSON, {}, [1, True], [1, True], [1, 1]),
    ],
    ids=lambda v: v.value if isinstance(v, FieldType) else None,
)
async def test_unique_compares_values_not_spellings(
    database: Database,
    tenant_a: Tenant,
    field_type: FieldType,
    definition: dict[str, Any],
    stored: Any,
    clash: Any,
    free: Any,
) -> None:
    org = tenant_a.org
    await define(database, org, "key", field_type, is_unique=True, **definition)
    await add_ticket(database, tenant_a, {"key": stored})
    assert await problems(database, org, {"key": clash}) == {
        "key": "already used by another ticket"
    }
    result = await validate(database, org, {"key": free})
    assert list(result) == ["key"]


async def test_unique_is_not_enforced_for_other_entity_types(
    database: Database, tenant_a: Tenant
) -> None:
    org = tenant_a.org
    await define(database, org, "ref", T.TEXT, is_unique=True, entity_type=EntityType.USER)
    await add_ticket(database, tenant_a, {"ref": "A-1"})
    assert await validate(database, org, {"ref": "A-1"}, entity_type=EntityType.USER) == {
        "ref": "A-1"
    }


async def test_concurrent_writers_cannot_both_claim_a_unique_value(
    database: Database, tenant_a: Tenant
) -> None:
    """Check and insert happen in separate statements; the advisory lock makes the
    second writer wait for the first one's commit, then see its ticket."""
    org = tenant_a.org
    await define(database, org, "ref", T.TEXT, is_unique=True)

    async def claim() -> dict[str, Any]:
        async with database.tenant_session(org.id) as session:
            stored = await validate_values(session, EntityType.TICKET, {"ref": "RACE"})
            await asyncio.sleep(0.2)  # both writers are past their check without the lock
            ticket = await open_ticket(
                database.unit_of_work(session),
                subject="Race",
                customer_id=customer_of(tenant_a),
                created_by_id=None,
                custom_fields=stored,
            )
            await session.commit()
            return ticket

    outcomes = await asyncio.gather(claim(), claim(), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, ValidationFailed)]
    created = [o for o in outcomes if isinstance(o, dict)]
    assert (len(created), len(refused)) == (1, 1), outcomes
    async with database.tenant_session(org.id) as session:
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(Ticket).where(Ticket.subject == "Race")
        )
    assert count == 1
