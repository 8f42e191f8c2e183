"""Login throttling (per account, per IP), API rate limits, activity tracking, headers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from app.config import Settings
from app.db.database import Database
from app.main import create_app
from app.models import ApiKey, User, UserSession
from tests.support.identity import API, PASSWORD, Tenant, login
from tests.support.windows import inside_one_window

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
async def _inside_one_window() -> None:
    await inside_one_window(8)  # a test here with its set-up: ~3 s (logins hash passwords)


@asynccontextmanager
async def app_client(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(params=["memory", "redis"])
async def limiter_backend(
    request: pytest.FixtureRequest, test_redis_url: str
) -> AsyncIterator[dict[str, Any]]:
    """The same limits, counted in this process or in the real Redis (under a key prefix
    of this test alone, deleted afterwards)."""
    if request.param == "memory":
        yield {"redis_url": None}
        return
    prefix = f"helpdesk-test:{uuid.uuid4().hex}"
    yield {"redis_url": test_redis_url, "redis_key_prefix": prefix}
    redis = Redis.from_url(test_redis_url)
    try:
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def test_account_locks_after_ten_failures_even_for_the_right_password(
    settings: Settings, tenant_a: Tenant, limiter_backend: dict[str, Any]
) -> None:
    agent, manager = tenant_a["agent"], tenant_a["manager"]
    assert agent.email is not None and manager.email is not None
    async with app_client(settings, **limiter_backend) as client:
        for _ in range(10):
            wrong = await login(client, agent.email, "wrong-password!", client_id=tenant_a.slug)
            assert wrong.status_code == 401
        locked = await login(client, agent.email, client_id=tenant_a.slug)
        assert locked.status_code == 429 and locked.headers["content-type"] == PROBLEM
        assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
        # Other accounts are unaffected, and the lock is per organization + email.
        assert (await login(client, manager.email, client_id=tenant_a.slug)).status_code == 200


async def test_success_resets_the_failure_count(
    settings: Settings, tenant_a: Tenant, limiter_backend: dict[str, Any]
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    async with app_client(settings, login_account_max_failures=3, **limiter_backend) as client:
        for _ in range(2):
            for _ in range(2):
                await login(client, agent.email, "wrong-password!", client_id=tenant_a.slug)
            assert (await login(client, agent.email, client_id=tenant_a.slug)).status_code == 200
        for _ in range(3):
            await login(client, agent.email, "wrong-password!", client_id=tenant_a.slug)
        assert (await login(client, agent.email, client_id=tenant_a.slug)).status_code == 429


async def test_per_ip_attempts_are_capped(
    settings: Settings, tenant_a: Tenant, limiter_backend: dict[str, Any]
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    async with app_client(settings, login_ip_max_attempts=3, **limiter_backend) as client:
        for _ in range(3):
            assert (await login(client, agent.email, client_id=tenant_a.slug)).status_code == 200
        capped = await login(client, agent.email, client_id=tenant_a.slug)
        assert capped.status_code == 429 and 0 < int(capped.headers["retry-after"]) <= 60


async def test_api_rate_limit_per_credential_with_headers(
    settings: Settings, tenant_a: Tenant, limiter_backend: dict[str, Any]
) -> None:
    async with app_client(settings, rate_limit_per_minute=3, **limiter_backend) as client:
        headers = tenant_a["agent"].headers
        first = await client.get(f"{API}/users/me", headers=headers)
        assert first.status_code == 200
        assert first.headers["ratelimit-limit"] == "3"
        assert first.headers["ratelimit-remaining"] == "2"
        assert 0 < int(first.headers["ratelimit-reset"]) <= 60
        for _ in range(2):
            assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200
        limited = await client.get(f"{API}/users/me", headers=headers)
        assert limited.status_code == 429 and limited.headers["content-type"] == PROBLEM
        assert "retry-after" in limited.headers and limited.headers["ratelimit-remaining"] == "0"
        # Another credential has its own budget...
        other = await client.get(f"{API}/users/me", headers=tenant_a["manager"].headers)
        assert other.status_code == 200


async def test_organization_budget_is_shared_and_refusals_do_not_spend_it(
    settings: Settings, tenant_a: Tenant
) -> None:
    overrides = {"rate_limit_per_minute": 2, "rate_limit_organization_per_minute": 3}
    async with app_client(settings, **overrides) as client:
        customer, agent, admin = (tenant_a[n].headers for n in ("customer", "agent", "admin"))
        for _ in range(2):
            assert (await client.get(f"{API}/users/me", headers=customer)).status_code == 200
        # The customer's own refusals do not eat into what the organization has left.
        for _ in range(3):
            assert (await client.get(f"{API}/users/me", headers=customer)).status_code == 429
        assert (await client.get(f"{API}/users/me", headers=agent)).status_code == 200
        shared = await client.get(f"{API}/users/me", headers=admin)
        assert shared.status_code == 429 and shared.headers["ratelimit-limit"] == "3"


async def test_rate_limit_zero_turns_it_off(settings: Settings, tenant_a: Tenant) -> None:
    async with app_client(settings, rate_limit_per_minute=0) as client:
        response = await client.get(f"{API}/users/me", headers=tenant_a["agent"].headers)
        assert response.status_code == 200 and "ratelimit-limit" not in response.headers


async def test_activity_is_written_at_most_once_per_interval(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    async with database.tenant_session(tenant_a.org.id) as session:
        await session.execute(
            sa.update(User)
            .where(User.id == agent.user_id)
            .values(last_active_at=long_ago, last_login_ip=None)
        )
        await session.commit()

    async def snapshot() -> tuple[datetime | None, str | None, datetime]:
        async with database.tenant_session(tenant_a.org.id) as session:
            row = (
                await session.execute(
                    sa.select(User.last_active_at, User.last_login_ip, User.updated_at).where(
                        User.id == agent.user_id
                    )
                )
            ).one()
        return row[0], row[1], row[2]

    _, _, updated_before = await snapshot()
    assert (await client.get(f"{API}/users", headers=agent.headers)).status_code == 200
    touched, ip, updated_after = await snapshot()
    assert touched is not None and touched > long_ago and ip == "127.0.0.1"
    assert updated_after == updated_before  # activity is not an edit
    for _ in range(3):
        assert (await client.get(f"{API}/users", headers=agent.headers)).status_code == 200
    assert (await snapshot())[0] == touched
    async with database.tenant_session(tenant_a.org.id) as session:
        sessions = await session.scalars(
            sa.select(UserSession.last_activity_at).where(UserSession.user_id == agent.user_id)
        )
        assert max(sessions.all()) >= touched


async def test_api_key_last_used_is_throttled_too(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    headers = tenant_a["api_key"].headers
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 200
    async with database.tenant_session(tenant_a.org.id) as session:
        first = await session.scalar(sa.select(ApiKey.last_used_at))
    assert first is not None
    assert (await client.get(f"{API}/users", headers=headers)).status_code == 200
    async with database.tenant_session(tenant_a.org.id) as session:
        assert await session.scalar(sa.select(ApiKey.last_used_at)) == first


async def test_security_headers_on_every_response(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    for response in (
        await client.get("/healthz"),
        await client.get(f"{API}/users/me", headers=tenant_a["agent"].headers),
        await client.get(f"{API}/users/me"),
        await client.get(f"{API}/no-such-route"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" in response.headers
    api = await client.get(f"{API}/users/me", headers=tenant_a["agent"].headers)
    assert api.headers["cache-control"] == "no-store"
    assert api.headers["content-security-policy"].startswith("default-src 'none'")
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers


async def test_cors_is_off_by_default_and_follows_settings(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    default = await client.options(f"{API}/users/me", headers=preflight)
    assert "access-control-allow-origin" not in default.headers
    async with app_client(settings, cors_origins=["https://app.example.com"]) as allowed:
        response = await allowed.options(f"{API}/users/me", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example.com"
        evil = await allowed.options(
            f"{API}/users/me", headers=preflight | {"Origin": "https://evil.example.com"}
        )
        assert "access-control-allow-origin" not in evil.headers


async def test_login_form_password_never_logged_or_echoed(
    client: httpx.AsyncClient, tenant_a: Tenant, capfd: pytest.CaptureFixture[str]
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    secret = f"{PASSWORD}-{uuid.uuid4().hex}"
    response = await login(client, agent.email, secret, client_id=tenant_a.slug)
    assert response.status_code == 401 and secret not in response.text
    out, err = capfd.readouterr()
    assert secret not in out and secret not in err
