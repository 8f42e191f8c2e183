"""Escalation and abuse paths found in review, each pinned by a test."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pyotp
import sqlalchemy as sa

from app.db.database import Database
from app.models import Department, User, UserPermission
from app.models.user import Role
from tests.support.identity import API, PASSWORD, Tenant, add_user, login
from tests.support.windows import inside_one_window


async def _grant(database: Database, tenant: Tenant, user_id: uuid.UUID, permission: str) -> None:
    async with database.tenant_session(tenant.org.id) as session:
        session.add(UserPermission(user_id=user_id, permission=permission))
        await session.commit()


async def test_api_keys_cannot_set_credentials(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    key = tenant_a["api_key"].headers
    agent_id = tenant_a["agent"].user_id
    with_password = {"email": "sleeper@example.com", "role": "admin", "password": "x" * 16}
    assert (await client.post(f"{API}/users", json=with_password, headers=key)).status_code == 403
    for change in ({"password": "y" * 16}, {"email": "mine@example.com"}):
        response = await client.patch(f"{API}/users/{agent_id}", json=change, headers=key)
        assert response.status_code == 403, change
    admin_id = tenant_a["admin"].user_id
    takeover = await client.patch(
        f"{API}/users/{admin_id}", json={"password": "z" * 16}, headers=key
    )
    assert takeover.status_code == 403


async def test_managers_cannot_take_over_peers_or_grant_holders(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    manager = tenant_a["manager"].headers
    peer = await add_user(database, tenant_a.org, Role.MANAGER)
    for change in ({"password": "p" * 16}, {"email": "peer@example.com"}, {"first_name": "X"}):
        assert (
            await client.patch(f"{API}/users/{peer.id}", json=change, headers=manager)
        ).status_code == 403
    agent = tenant_a["agent"]
    await _grant(database, tenant_a, agent.user_id, "permissions:manage")
    reset = await client.patch(
        f"{API}/users/{agent.user_id}", json={"password": "q" * 16}, headers=manager
    )
    assert reset.status_code == 403
    # An agent without grants is the manager's to help.
    plain = await add_user(database, tenant_a.org, Role.AGENT)
    ok = await client.patch(f"{API}/users/{plain.id}", json={"password": "r" * 16}, headers=manager)
    assert ok.status_code == 200


async def test_grants_do_not_climb_above_a_role(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    manager, agent = tenant_a["manager"], tenant_a["agent"]
    await _grant(database, tenant_a, manager.user_id, "api_keys:manage")
    admin_key = await client.post(
        f"{API}/api-keys", json={"name": "x", "role": "admin"}, headers=manager.headers
    )
    assert admin_key.status_code == 403
    manager_key = await client.post(
        f"{API}/api-keys", json={"name": "x", "role": "manager"}, headers=manager.headers
    )
    assert manager_key.status_code == 201

    await _grant(database, tenant_a, agent.user_id, "permissions:manage")
    self_grant = await client.post(
        f"{API}/users/{agent.user_id}/permissions",
        json={"permission": "users:write"},
        headers=agent.headers,
    )
    assert self_grant.status_code == 403
    beyond_role = await client.post(
        f"{API}/users/{tenant_a['customer'].user_id}/permissions",
        json={"permission": "api_keys:manage"},
        headers=agent.headers,
    )
    assert beyond_role.status_code == 403


async def test_concurrent_guesses_cannot_pass_the_account_budget(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    await inside_one_window(8)
    attempts = await asyncio.gather(
        *(login(client, agent.email, "wrong-password!", client_id=tenant_a.slug) for _ in range(25))
    )
    statuses = [r.status_code for r in attempts]
    assert statuses.count(401) == 10 and statuses.count(429) == 15


async def test_a_one_time_code_logs_in_once_even_concurrently(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    enrolled = await client.post(
        f"{API}/auth/totp/enroll", json={"password": PASSWORD}, headers=agent.headers
    )
    totp = pyotp.TOTP(enrolled.json()["secret"])
    previous = totp.generate_otp(totp.timecode(datetime.now(UTC)) - 1)
    confirmed = await client.post(
        f"{API}/auth/totp/confirm", json={"code": previous}, headers=agent.headers
    )
    assert confirmed.status_code == 204
    code = totp.now()
    results = await asyncio.gather(
        *(login(client, agent.email, client_id=tenant_a.slug, totp=code) for _ in range(5))
    )
    assert sorted(r.status_code for r in results) == [200, 401, 401, 401, 401]


async def test_guessing_a_session_id_revokes_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.refresh_token is not None
    session_id = agent.refresh_token.split(".")[0]
    for forged in (f"{session_id}.garbage", f"{session_id}.garbage.{'0' * 32}"):
        response = await client.post(f"{API}/auth/refresh", json={"refresh_token": forged})
        assert response.status_code == 401
    assert (await client.get(f"{API}/users/me", headers=agent.headers)).status_code == 200
    genuine = await client.post(f"{API}/auth/refresh", json={"refresh_token": agent.refresh_token})
    assert genuine.status_code == 200


async def test_out_of_range_and_oversized_input_is_422(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    far = {"name": "x", "expires_at": "9999-12-31T23:59:59-05:00"}
    assert (await client.post(f"{API}/api-keys", json=far, headers=admin)).status_code == 422
    deep: dict[str, object] = {}
    node = deep
    for _ in range(50):
        node["k"] = {}
        node = node["k"]  # type: ignore[assignment]
    nested = await client.patch(
        f"{API}/organizations/current", json={"settings": deep}, headers=admin
    )
    assert nested.status_code == 422
    huge = {"settings": {"blob": "x" * 70_000}}
    assert (
        await client.patch(f"{API}/organizations/current", json=huge, headers=admin)
    ).status_code in {413, 422}
    naive = await client.get(
        f"{API}/tickets", params={"created_after": "2026-01-01T00:00:00"}, headers=admin
    )
    assert naive.status_code == 422


async def test_member_of_a_deleted_department_stays_editable(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    member = await add_user(
        database, tenant_a.org, Role.AGENT, department_id=tenant_a.department_id
    )
    async with database.tenant_session(tenant_a.org.id) as session:
        department = await session.get(Department, tenant_a.department_id)
        assert department is not None
        department.soft_delete()
        await session.commit()
    response = await client.patch(
        f"{API}/users/{member.id}", json={"first_name": "Bob"}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200


async def test_an_admin_who_cannot_log_in_is_not_the_last_admin_standing(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    await add_user(database, tenant_a.org, Role.ADMIN, password_hash=None)
    admin = tenant_a["admin"]
    response = await client.delete(
        f"{API}/users/{admin.user_id}", headers=tenant_a["api_key"].headers
    )
    assert response.status_code == 409
    async with database.tenant_session(tenant_a.org.id) as session:
        still = await session.scalar(sa.select(User.deleted_at).where(User.id == admin.user_id))
    assert still is None


async def test_admin_resets_a_lost_second_factor(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    async with database.tenant_session(tenant_a.org.id) as session:
        user = await session.get(User, agent.user_id)
        assert user is not None
        user.two_factor_enabled, user.totp_secret = True, pyotp.random_base32()
        await session.commit()
    by_manager = await client.patch(
        f"{API}/users/{agent.user_id}",
        json={"two_factor_enabled": False},
        headers=tenant_a["manager"].headers,
    )
    assert by_manager.status_code == 200  # the agent holds no grants
    assert by_manager.json()["two_factor_enabled"] is False
    assert (await client.get(f"{API}/users/me", headers=agent.headers)).status_code == 401
    turn_on = await client.patch(
        f"{API}/users/{agent.user_id}",
        json={"two_factor_enabled": True},
        headers=tenant_a["admin"].headers,
    )
    assert turn_on.status_code == 422
