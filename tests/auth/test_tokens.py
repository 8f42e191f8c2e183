"""Access tokens, refresh rotation, logout and sessions: revocation is immediate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import sqlalchemy as sa

from app.auth import tokens
from app.config import Settings
from app.db.database import Database
from app.models import User, UserSession
from tests.support.identity import API, Actor, Tenant, login

PROBLEM = "application/problem+json"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _me(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get(f"{API}/users/me", headers=_bearer(token))).status_code


def _claims(settings: Settings, actor: Actor) -> dict[str, object]:
    return dict(
        jwt.decode(
            actor.token,
            settings.secret_key.get_secret_value(),
            algorithms=["HS256"],
            options={"verify_iss": False},
        )
    )


@pytest.mark.parametrize(
    "forge",
    [
        "alg_none",
        "other_key",
        "expired",
        "wrong_type",
        "other_session",
        "missing_sid",
        "garbage",
        "refresh_as_access",
    ],
)
async def test_forged_or_stale_tokens_are_401(
    client: httpx.AsyncClient, tenant_a: Tenant, settings: Settings, forge: str
) -> None:
    agent = tenant_a["agent"]
    claims = _claims(settings, agent)
    secret = settings.secret_key.get_secret_value()
    now = int(datetime.now(UTC).timestamp())
    if forge == "alg_none":
        token = jwt.encode(claims, key=None, algorithm="none")
    elif forge == "other_key":
        token = jwt.encode(claims, "another-secret-key-of-32-characters!", algorithm="HS256")
    elif forge == "expired":
        token = jwt.encode(claims | {"iat": now - 3600, "exp": now - 60}, secret, algorithm="HS256")
    elif forge == "wrong_type":
        token = jwt.encode(claims | {"typ": "refresh"}, secret, algorithm="HS256")
    elif forge == "other_session":
        token = jwt.encode(claims | {"sid": str(uuid.uuid4())}, secret, algorithm="HS256")
    elif forge == "missing_sid":
        token = jwt.encode({k: v for k, v in claims.items() if k != "sid"}, secret, "HS256")
    elif forge == "garbage":
        token = "not.a.jwt"
    else:
        assert agent.refresh_token is not None
        token = agent.refresh_token
    response = await client.get(f"{API}/users/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert await _me(client, agent.token) == 200  # the genuine token is untouched


async def test_token_claiming_another_organization_is_401(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, settings: Settings
) -> None:
    """Signed by us but rewritten to name org B: the session lookup runs in B and misses."""
    claims = _claims(settings, tenant_a["admin"]) | {"org": str(tenant_b.org.id)}
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm="HS256")
    assert await _me(client, token) == 401


async def test_missing_or_wrong_scheme_is_401(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    assert (await client.get(f"{API}/users/me")).status_code == 401
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert (await client.get(f"{API}/users/me", headers=basic)).status_code == 401


async def test_refresh_rotates_and_replay_revokes_the_session(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    assert agent.refresh_token is not None and agent.email is not None
    first = await client.post(f"{API}/auth/refresh", json={"refresh_token": agent.refresh_token})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    rotated = first.json()
    assert rotated["refresh_token"] != agent.refresh_token
    assert await _me(client, rotated["access_token"]) == 200
    second = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert second.status_code == 200
    latest = second.json()

    # The first token again: a replay. The whole session ends, committed with the 401.
    replay = await client.post(f"{API}/auth/refresh", json={"refresh_token": agent.refresh_token})
    assert replay.status_code == 401 and replay.headers["content-type"] == PROBLEM
    assert "revoked" in replay.json()["detail"]
    assert await _me(client, latest["access_token"]) == 401
    assert await _me(client, agent.token) == 401
    again = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": latest["refresh_token"]}
    )
    assert again.status_code == 401
    session_id = uuid.UUID(agent.refresh_token.split(".")[0])
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.get(UserSession, session_id)
        assert row is not None and not row.is_active and row.revoked_at is not None
    # Another login of the same user is a different session and still works.
    assert (await login(client, agent.email, client_id=tenant_a.slug)).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        f"{uuid.uuid4()}.secret",
        "not-a-uuid.secret",
        "x" * 600,
        # Not ASCII where the MAC or the secret goes (hmac.compare_digest refuses such str).
        "a.b.\u00e9",
        f"{uuid.uuid4()}.s\u00e9cret.\u0661\u0662",
    ],
)
async def test_malformed_refresh_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post(f"{API}/auth/refresh", json={"refresh_token": token})
    assert response.status_code in {401, 422}
    assert response.headers["content-type"] == PROBLEM
    extra = await client.post(f"{API}/auth/refresh", json={"refresh_token": "a.b", "user_id": "x"})
    assert extra.status_code == 422


async def test_refresh_of_deleted_user_fails(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    async with database.tenant_session(tenant_a.org.id) as session:
        user = await session.get(User, agent.user_id)
        assert user is not None
        user.soft_delete()
        await session.commit()
    response = await client.post(f"{API}/auth/refresh", json={"refresh_token": agent.refresh_token})
    assert response.status_code == 401
    assert await _me(client, agent.token) == 401


async def test_logout_ends_the_session_and_its_refresh_token(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    manager = tenant_a["manager"]
    response = await client.post(f"{API}/auth/logout", headers=manager.headers)
    assert response.status_code == 204
    assert await _me(client, manager.token) == 401
    refresh = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": manager.refresh_token}
    )
    assert refresh.status_code == 401
    # The API key has no session to end.
    key = await client.post(f"{API}/auth/logout", headers=tenant_a["api_key"].headers)
    assert key.status_code == 403


async def test_sessions_list_and_revoke(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    other_login = (await login(client, agent.email, client_id=tenant_a.slug)).json()
    listed = await client.get(f"{API}/sessions", headers=agent.headers)
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2 and sum(item["current"] for item in items) == 1
    assert {"id", "ip_address", "user_agent", "created_at", "last_activity_at", "is_active"} <= set(
        items[0]
    )
    other = next(item for item in items if not item["current"])
    assert (
        await client.get(f"{API}/sessions/{other['id']}", headers=agent.headers)
    ).status_code == 200

    # Someone else's session is not found, in this organization or another.
    for stranger in (tenant_a["manager"], tenant_b["agent"]):
        assert (
            await client.delete(f"{API}/sessions/{other['id']}", headers=stranger.headers)
        ).status_code == 404
    assert await _me(client, other_login["access_token"]) == 200

    assert (
        await client.delete(f"{API}/sessions/{other['id']}", headers=agent.headers)
    ).status_code == 204
    assert await _me(client, other_login["access_token"]) == 401
    assert await _me(client, agent.token) == 200
    after = (await client.get(f"{API}/sessions", headers=agent.headers)).json()["items"]
    assert {item["id"]: item["is_active"] for item in after}[other["id"]] is False


async def test_expired_session_is_401(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database, settings: Settings
) -> None:
    agent = tenant_a["agent"]
    sid = uuid.UUID(str(_claims(settings, agent)["sid"]))
    async with database.tenant_session(tenant_a.org.id) as session:
        await session.execute(
            sa.update(UserSession)
            .where(UserSession.id == sid)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    assert await _me(client, agent.token) == 401


def test_api_key_shape() -> None:
    key, prefix, key_hash = tokens.new_api_key()
    assert key.startswith(f"hdk_{prefix}_") and tokens.api_key_prefix(key) == prefix
    assert tokens.digests_match(key, key_hash) and not tokens.digests_match(key + "x", key_hash)
    assert tokens.api_key_prefix("hdk_short_x") is None


def _signed(settings: Settings, **overrides: object) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, object] = {
        "iss": tokens.ISSUER,
        "typ": tokens.ACCESS,
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "org": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 60,
        **overrides,
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=tokens.ALGORITHM)


def test_verified_tokens_expire_on_time_and_failures_are_not_remembered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).timestamp()
    token = _signed(settings, exp=int(now) + 5)
    assert tokens.decode_access_token(settings, token) is not None  # verified, remembered
    monkeypatch.setattr(tokens.time, "time", lambda: now + 6)
    assert tokens.decode_access_token(settings, token) is None  # expired, even from memory
    monkeypatch.undo()
    # Issued by a replica whose clock runs ahead: within the leeway it is ours...
    ahead = _signed(settings, iat=int(now) + 10)
    assert tokens.decode_access_token(settings, ahead) is not None
    # ...beyond it, refused — and not remembered, so it is verified afresh next time.
    far = _signed(settings, iat=int(now) + 120, exp=int(now) + 600)
    assert tokens.decode_access_token(settings, far) is None
    assert (settings.secret_key.get_secret_value(), far) not in tokens._verified
    other = settings.model_copy(update={"secret_key": type(settings.secret_key)("x" * 40)})
    assert tokens.decode_access_token(other, token) is None  # the key is part of the cache key
