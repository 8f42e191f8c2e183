"""POST /auth/token: who gets in, and that every refusal looks the same."""

from __future__ import annotations

import base64
import uuid

import httpx
import jwt
import pytest
import sqlalchemy as sa

from app.auth import passwords
from app.config import Settings
from app.db.database import Database
from app.models import Organization, User, UserSession
from app.models.user import Role
from tests.support.identity import API, PASSWORD, Actor, Tenant, add_user, login

PROBLEM = "application/problem+json"


async def test_login_issues_bearer_tokens_bound_to_a_session(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database, settings: Settings
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    response = await client.post(
        f"{API}/auth/token",
        data={"username": agent.email.upper(), "password": PASSWORD, "client_id": tenant_a.slug},
        headers={"User-Agent": "pytest-agent/1.0"},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    claims = jwt.decode(
        body["access_token"],
        settings.secret_key.get_secret_value(),
        algorithms=["HS256"],
        options={"verify_iss": False},
    )
    assert claims["sub"] == str(agent.user_id) and claims["org"] == str(tenant_a.org.id)
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.get(UserSession, uuid.UUID(claims["sid"]))
        assert row is not None and row.is_active and row.user_id == agent.user_id
        assert row.user_agent == "pytest-agent/1.0" and row.ip_address == "127.0.0.1"
        user = await session.get(User, agent.user_id)
        assert user is not None and user.last_login_at is not None
        assert user.last_login_ip == "127.0.0.1"
    me = await client.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["id"] == str(agent.user_id)


async def _refusal(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    response = await client.post(f"{API}/auth/token", data=form)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM
    return response


async def test_every_refusal_is_the_same_401(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    deleted = await add_user(database, tenant_a.org, Role.AGENT)
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.get(User, deleted.id)
        assert row is not None
        row.soft_delete()
        await session.commit()
    no_password = await add_user(database, tenant_a.org, Role.CUSTOMER, password_hash=None)

    bodies = [
        (
            await _refusal(
                client, username=agent.email, password="wrong-password-1", client_id=tenant_a.slug
            )
        ).json(),
        (
            await _refusal(
                client, username="nobody@example.com", password=PASSWORD, client_id=tenant_a.slug
            )
        ).json(),
        (
            await _refusal(client, username=agent.email, password=PASSWORD, client_id="no-such-org")
        ).json(),
        # Right password, wrong organization: users are per organization.
        (
            await _refusal(client, username=agent.email, password=PASSWORD, client_id=tenant_b.slug)
        ).json(),
        # A tenant user without client_id is looked up among superusers only.
        (await _refusal(client, username=agent.email, password=PASSWORD)).json(),
        (
            await _refusal(
                client, username=deleted.email, password=PASSWORD, client_id=tenant_a.slug
            )
        ).json(),
        (
            await _refusal(
                client, username=no_password.email, password=PASSWORD, client_id=tenant_a.slug
            )
        ).json(),
    ]
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["detail"] == "Invalid credentials."


async def test_deleted_organization_cannot_log_in_and_restore_lets_it_back(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    admin = tenant_a["admin"]
    assert admin.email is not None
    async with database.system_session() as session:
        org = await session.get(Organization, tenant_a.org.id)
        assert org is not None
        org.soft_delete()
        await session.commit()
    await _refusal(client, username=admin.email, password=PASSWORD, client_id=tenant_a.slug)
    assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 401
    async with database.system_session() as session:
        org = await session.scalar(
            sa.select(Organization)
            .where(Organization.id == tenant_a.org.id)
            .execution_options(include_deleted=True)
        )
        assert org is not None
        org.restore()
        await session.commit()
    assert (await login(client, admin.email, client_id=tenant_a.slug)).status_code == 200
    assert (await client.get(f"{API}/users/me", headers=admin.headers)).status_code == 200


async def test_superuser_logs_in_without_client_id(
    client: httpx.AsyncClient, superuser: Actor
) -> None:
    assert superuser.email is not None
    response = await login(client, superuser.email)
    assert response.status_code == 200
    me = await client.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["is_superuser"] is True and me.json()["organization_id"] is None
    # With an organization's slug, a superuser is nobody there.
    assert (await login(client, superuser.email, client_id="demo")).status_code == 401


async def test_swagger_authorize_dialog_sends_client_id_as_basic_auth(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    basic = base64.b64encode(f"{tenant_a.slug}:".encode()).decode()
    response = await client.post(
        f"{API}/auth/token",
        data={"grant_type": "password", "username": agent.email, "password": PASSWORD, "scope": ""},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "form",
    [
        {"password": PASSWORD},
        {"username": "a@example.com"},
        {"username": "a@example.com", "password": PASSWORD, "grant_type": "client_credentials"},
    ],
)
async def test_malformed_login_form_is_422(client: httpx.AsyncClient, form: dict[str, str]) -> None:
    response = await client.post(f"{API}/auth/token", data=form)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert PASSWORD not in response.text  # never echo a password back


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records which hashes the real argon2 hasher verified against."""
    hasher = passwords._hasher()
    calls: list[str] = []
    real_verify, real_verify_and_update = hasher.verify, hasher.verify_and_update

    def verify(password: str | bytes, hash: str | bytes) -> bool:
        calls.append(str(hash))
        return real_verify(password, hash)

    def verify_and_update(password: str | bytes, hash: str | bytes) -> tuple[bool, str | None]:
        calls.append(str(hash))
        return real_verify_and_update(password, hash)

    monkeypatch.setattr(hasher, "verify", verify)
    monkeypatch.setattr(hasher, "verify_and_update", verify_and_update)
    return calls


async def test_unknown_user_costs_one_argon2_verification_like_a_wrong_password(
    client: httpx.AsyncClient, tenant_a: Tenant, argon2_calls: list[str]
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    await _refusal(client, username="ghost@example.com", password="x" * 12, client_id=tenant_a.slug)
    await _refusal(client, username=agent.email, password="x" * 12, client_id=tenant_a.slug)
    await _refusal(client, username=agent.email, password="x" * 12, client_id="no-such-org")
    assert len(argon2_calls) == 3
    assert all(h.startswith("$argon2id$") for h in argon2_calls)


async def test_outdated_password_hash_is_upgraded_on_login(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    from pwdlib.hashers.argon2 import Argon2Hasher

    weak = Argon2Hasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    user = await add_user(database, tenant_a.org, Role.AGENT, password_hash=weak)
    assert (await login(client, user.email, client_id=tenant_a.slug)).status_code == 200
    async with database.tenant_session(tenant_a.org.id) as session:
        stored = await session.scalar(sa.select(User.password_hash).where(User.id == user.id))
    assert stored is not None and stored != weak
    # The new hash uses the current parameters: verifying it asks for no further upgrade.
    assert await passwords.verify_password(PASSWORD, stored) == (True, None)
