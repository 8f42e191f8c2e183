"""Idempotency-Key on retried writes: replay, conflict, races, expiry, isolation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from app.config import Settings
from app.db.database import Database
from app.kit.idempotency import purge_expired
from app.models import Department, IdempotencyKey, Ticket
from tests.support.identity import API, Tenant


def _ticket_body(tenant: Tenant, subject: str = "Printer jammed") -> dict[str, str]:
    return {"subject": subject, "customer_id": str(tenant["customer"].user_id)}


async def _count(database: Database, tenant: Tenant, model: type[Ticket] | type[Department]) -> int:
    async with database.tenant_session(tenant.org.id) as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


async def test_same_key_same_body_replays_the_first_answer(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["agent"].headers | {"Idempotency-Key": "retry-1"}
    first = await client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
    assert first.status_code == 201
    again = await client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(database, tenant_a, Ticket) == 1


async def test_same_key_other_body_is_409_and_writes_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["agent"].headers | {"Idempotency-Key": "retry-2"}
    assert (
        await client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
    ).status_code == 201
    other = await client.post(
        f"{API}/tickets", json=_ticket_body(tenant_a, "Another"), headers=headers
    )
    assert other.status_code == 409 and other.headers["content-type"] == "application/problem+json"
    # Another route or another credential with the same key is another request too.
    elsewhere = await client.post(
        f"{API}/departments",
        json={"name": "Ops"},
        headers=tenant_a["admin"].headers | {"Idempotency-Key": "retry-2"},
    )
    assert elsewhere.status_code == 409
    assert await _count(database, tenant_a, Ticket) == 1
    assert await _count(database, tenant_a, Department) == 1  # the fixture's "Support"


async def test_other_query_parameters_are_another_request(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    """A retry that adds `force_assignment=true` is not the stored request: an agent
    gets the 403 the flag deserves, not the first answer; a manager gets a 409."""
    url, body = f"{API}/tickets", _ticket_body(tenant_a)
    for actor in ("agent", "manager"):
        headers = tenant_a[actor].headers | {"Idempotency-Key": f"flags-{actor}"}
        assert (await client.post(url, json=body, headers=headers)).status_code == 201
        forced = await client.post(
            url, json=body, headers=headers, params={"force_assignment": "true"}
        )
        assert forced.status_code == (403 if actor == "agent" else 409), forced.text
        assert "idempotent-replayed" not in forced.headers
    assert await _count(database, tenant_a, Ticket) == 2


async def test_failed_request_does_not_burn_the_key(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["agent"].headers | {"Idempotency-Key": "retry-3"}
    bad = await client.post(f"{API}/tickets", json={"subject": "x"}, headers=headers)
    assert bad.status_code == 422  # staff must name the customer
    good = await client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
    assert good.status_code == 201
    async with database.tenant_session(tenant_a.org.id) as session:
        stored = await session.scalar(
            sa.select(IdempotencyKey).where(IdempotencyKey.key == "retry-3")
        )
    assert stored is not None and stored.response_status == 201


async def test_concurrent_retries_create_one_ticket(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["agent"].headers | {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(
            client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
            for _ in range(8)
        )
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _count(database, tenant_a, Ticket) == 1


async def test_keys_are_per_organization(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, database: Database
) -> None:
    for tenant in (tenant_a, tenant_b):
        response = await client.post(
            f"{API}/tickets",
            json=_ticket_body(tenant),
            headers=tenant["agent"].headers | {"Idempotency-Key": "shared-name"},
        )
        assert response.status_code == 201
        assert await _count(database, tenant, Ticket) == 1


async def test_expired_keys_run_again_and_are_purged(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["agent"].headers | {"Idempotency-Key": "old-key"}
    first = await client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
    async with database.tenant_session(tenant_a.org.id) as session:
        await session.execute(
            sa.update(IdempotencyKey)
            .where(IdempotencyKey.key == "old-key")
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
        await session.commit()
    second = await client.post(f"{API}/tickets", json=_ticket_body(tenant_a), headers=headers)
    assert second.status_code == 201 and second.json()["id"] != first.json()["id"]
    async with database.tenant_session(tenant_a.org.id) as session:
        await session.execute(
            sa.update(IdempotencyKey).values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
        await session.commit()
    async with database.system_session() as session:
        assert await purge_expired(database.unit_of_work(session)) >= 1
        await session.commit()
    async with database.tenant_session(tenant_a.org.id) as session:
        left = await session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey))
    assert left == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
async def test_malformed_keys_are_400(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database, key: str
) -> None:
    response = await client.post(
        f"{API}/tickets",
        json=_ticket_body(tenant_a),
        headers=tenant_a["agent"].headers | {"Idempotency-Key": key},
    )
    assert response.status_code == 400
    assert await _count(database, tenant_a, Ticket) == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/departments", {"name": "Night shift"}),
        ("/customers", {"name": "Umbrella"}),
        ("/users", {"email": "new@example.com", "role": "agent"}),
    ],
)
async def test_other_creates_replay_too(
    client: httpx.AsyncClient, tenant_a: Tenant, path: str, body: dict[str, str]
) -> None:
    headers = tenant_a["admin"].headers | {"Idempotency-Key": f"k-{path}"}
    first = await client.post(f"{API}{path}", json=body, headers=headers)
    again = await client.post(f"{API}{path}", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


async def test_uploads_replay_without_storing_twice(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database, settings: Settings
) -> None:
    from app.models import TicketAttachment

    created = await client.post(
        f"{API}/tickets", json=_ticket_body(tenant_a), headers=tenant_a["agent"].headers
    )
    url = f"{API}/tickets/{created.json()['id']}/attachments"
    headers = tenant_a["agent"].headers | {"Idempotency-Key": f"upload-{uuid.uuid4()}"}
    files = {"file": ("log.txt", b"disk full at 03:00", "text/plain")}
    first = await client.post(url, files=files, headers=headers)
    again = await client.post(url, files=files, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await client.post(
        url, files={"file": ("log.txt", b"another file", "text/plain")}, headers=headers
    )
    assert other.status_code == 409
    async with database.tenant_session(tenant_a.org.id) as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(TicketAttachment))
    assert count == 1
    stored = list((settings.storage_dir / str(tenant_a.org.id)).iterdir())
    assert len(stored) == 1
