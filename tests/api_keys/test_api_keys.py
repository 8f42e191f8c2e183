"""API keys: secret shown once, stored hashed, a role-bound principal, revocable."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models import ApiKey, Organization
from tests.support.identity import API, Tenant

PROBLEM = "application/problem+json"


async def _create(client: httpx.AsyncClient, tenant: Tenant, **body: object) -> dict[str, object]:
    response = await client.post(
        f"{API}/api-keys", json={"name": "CRM sync", **body}, headers=tenant["admin"].headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def _bearer(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_secret_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    created = await _create(client, tenant_a, role="agent")
    key = str(created["key"])
    assert key.startswith(f"hdk_{created['prefix']}_") and created["role"] == "agent"
    listed = await client.get(f"{API}/api-keys", headers=tenant_a["admin"].headers)
    assert listed.status_code == 200 and key not in listed.text
    fetched = await client.get(f"{API}/api-keys/{created['id']}", headers=tenant_a["admin"].headers)
    assert "key" not in fetched.json() and fetched.json()["prefix"] == created["prefix"]
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.get(ApiKey, uuid.UUID(str(created["id"])))
        assert row is not None and key not in (row.key_hash, row.prefix)
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert row.created_by_id == tenant_a["admin"].user_id


async def test_key_acts_with_its_role_and_tracks_last_use(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    created = await _create(client, tenant_a, role="agent")
    headers = _bearer(created["key"])
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 200
    # An agent-role key cannot write users, like an agent.
    denied = await client.post(
        f"{API}/users", json={"email": "x@example.com", "role": "customer"}, headers=headers
    )
    assert denied.status_code == 403
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.get(ApiKey, uuid.UUID(str(created["id"])))
        assert row is not None and row.last_used_at is not None


async def test_keys_cannot_mint_credentials_even_as_admin(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin_key = tenant_a["api_key"].headers
    assert (await client.get(f"{API}/users", headers=admin_key)).status_code == 200
    assert (
        await client.post(f"{API}/api-keys", json={"name": "x"}, headers=admin_key)
    ).status_code == 403
    user_id = tenant_a["agent"].user_id
    grant = await client.post(
        f"{API}/users/{user_id}/permissions", json={"permission": "users:write"}, headers=admin_key
    )
    assert grant.status_code == 403
    assert (await client.get(f"{API}/users/me", headers=admin_key)).status_code == 403
    assert (await client.get(f"{API}/sessions", headers=admin_key)).status_code == 403


async def test_revoked_expired_or_tampered_keys_are_401(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    revoked = await _create(client, tenant_a)
    response = await client.delete(
        f"{API}/api-keys/{revoked['id']}", headers=tenant_a["admin"].headers
    )
    assert response.status_code == 204
    assert (await client.get(f"{API}/users", headers=_bearer(revoked["key"]))).status_code == 401

    expiring = await _create(
        client, tenant_a, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    assert (await client.get(f"{API}/users", headers=_bearer(expiring["key"]))).status_code == 200
    async with database.tenant_session(tenant_a.org.id) as session:
        await session.execute(
            sa.update(ApiKey)
            .where(ApiKey.id == uuid.UUID(str(expiring["id"])))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert (await client.get(f"{API}/users", headers=_bearer(expiring["key"]))).status_code == 401

    live = str((await _create(client, tenant_a))["key"])
    tampered = live[:-2] + ("AA" if not live.endswith("AA") else "BB")
    unknown_prefix = "hdk_000000000000_" + live.split("_", 2)[2]
    for bad in (tampered, unknown_prefix, "hdk_", "hdk_abc_def"):
        response = await client.get(f"{API}/users", headers=_bearer(bad))
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM


async def test_deleted_organization_disables_its_keys(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["api_key"].headers
    async with database.system_session() as session:
        org = await session.get(Organization, tenant_a.org.id)
        assert org is not None
        org.soft_delete()
        await session.commit()
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "role": "customer"},
        {"name": "x", "role": "superuser"},
        {"name": ""},
        {"name": "x", "expires_at": "2020-01-01T00:00:00Z"},
        {"name": "x", "expires_at": "2099-01-01T00:00:00"},
        {"name": "x", "prefix": "aaaaaaaaaaaa"},
        {"name": "x", "organization_id": str(uuid.uuid4())},
    ],
)
async def test_invalid_key_requests_are_422_and_create_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database, body: dict[str, object]
) -> None:
    response = await client.post(f"{API}/api-keys", json=body, headers=tenant_a["admin"].headers)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    async with database.tenant_session(tenant_a.org.id) as session:
        count = await session.scalar(sa.select(sa.func.count()).select_from(ApiKey))
    assert count == 1  # the fixture's key only


async def test_keys_are_tenant_scoped(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    created = await _create(client, tenant_a)
    other_admin = tenant_b["admin"].headers
    assert (
        await client.get(f"{API}/api-keys/{created['id']}", headers=other_admin)
    ).status_code == 404
    assert (
        await client.delete(f"{API}/api-keys/{created['id']}", headers=other_admin)
    ).status_code == 404
    listed = (await client.get(f"{API}/api-keys", headers=other_admin)).json()["items"]
    assert created["id"] not in {item["id"] for item in listed}
    assert (await client.get(f"{API}/users", headers=_bearer(created["key"]))).status_code == 200
