"""Two-factor authentication with one-time codes (TOTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pyotp
import sqlalchemy as sa

from app.db.database import Database
from app.models import User
from tests.support.identity import API, PASSWORD, Actor, Tenant, login

PROBLEM = "application/problem+json"


def _code(secret: str, steps_ago: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(UTC)) - steps_ago)


async def _enable(client: httpx.AsyncClient, actor: Actor) -> str:
    enrolled = await client.post(
        f"{API}/auth/totp/enroll", json={"password": PASSWORD}, headers=actor.headers
    )
    assert enrolled.status_code == 200
    body = enrolled.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    secret: str = body["secret"]
    confirmed = await client.post(
        f"{API}/auth/totp/confirm", json={"code": _code(secret, 1)}, headers=actor.headers
    )
    assert confirmed.status_code == 204, confirmed.text
    return secret


async def test_enrol_confirm_then_login_needs_a_fresh_code(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    other_session = (await login(client, agent.email, client_id=tenant_a.slug)).json()
    secret = await _enable(client, agent)
    me = await client.get(f"{API}/users/me", headers=agent.headers)
    assert me.json()["two_factor_enabled"] is True
    assert "totp_secret" not in me.text and secret not in me.text
    # Turning 2FA on ends the user's other sessions.
    other = {"Authorization": f"Bearer {other_session['access_token']}"}
    assert (await client.get(f"{API}/users/me", headers=other)).status_code == 401

    missing = await login(client, agent.email, client_id=tenant_a.slug)
    assert missing.status_code == 401
    assert missing.json()["type"].endswith("/totp-required")
    wrong = await login(client, agent.email, client_id=tenant_a.slug, totp="000000")
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid credentials."
    code = _code(secret)
    assert (await login(client, agent.email, client_id=tenant_a.slug, totp=code)).status_code == 200
    # A code works once: replaying the one just used is refused.
    replay = await login(client, agent.email, client_id=tenant_a.slug, totp=code)
    assert replay.status_code == 401
    async with database.tenant_session(tenant_a.org.id) as session:
        stored = await session.scalar(sa.select(User.totp_secret).where(User.id == agent.user_id))
    assert stored == secret


async def test_confirm_with_a_wrong_code_keeps_2fa_off(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    enrol = await client.post(
        f"{API}/auth/totp/enroll", json={"password": PASSWORD}, headers=agent.headers
    )
    assert enrol.status_code == 200
    bad = await client.post(
        f"{API}/auth/totp/confirm", json={"code": "123456"}, headers=agent.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "code"]
    malformed = await client.post(
        f"{API}/auth/totp/confirm", json={"code": "12ab"}, headers=agent.headers
    )
    assert malformed.status_code == 422
    assert (await client.get(f"{API}/users/me", headers=agent.headers)).json()[
        "two_factor_enabled"
    ] is False
    assert (await login(client, agent.email, client_id=tenant_a.slug)).status_code == 200


async def test_disable_needs_a_valid_code(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    manager = tenant_a["manager"]
    assert manager.email is not None
    secret = await _enable(client, manager)
    again = await client.post(
        f"{API}/auth/totp/enroll", json={"password": PASSWORD}, headers=manager.headers
    )
    assert again.status_code == 409
    wrong = await client.post(
        f"{API}/auth/totp/disable", json={"code": "000000"}, headers=manager.headers
    )
    assert wrong.status_code == 422
    ok = await client.post(
        f"{API}/auth/totp/disable", json={"code": _code(secret)}, headers=manager.headers
    )
    assert ok.status_code == 204
    assert (await login(client, manager.email, client_id=tenant_a.slug)).status_code == 200
    not_on = await client.post(
        f"{API}/auth/totp/disable", json={"code": _code(secret)}, headers=manager.headers
    )
    assert not_on.status_code == 409


async def test_superuser_can_use_2fa(client: httpx.AsyncClient, superuser: Actor) -> None:
    assert superuser.email is not None
    secret = await _enable(client, superuser)
    assert (await login(client, superuser.email)).status_code == 401
    # `_enable` confirmed with the previous step's code, so the current one is unused.
    assert (await login(client, superuser.email, totp=_code(secret))).status_code == 200


async def test_api_keys_have_no_second_factor(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    response = await client.post(
        f"{API}/auth/totp/enroll", json={"password": PASSWORD}, headers=tenant_a["api_key"].headers
    )
    assert response.status_code == 403 and response.headers["content-type"] == PROBLEM


# Arabic-Indic and full-width digits match `\\d` and `str.isdigit`; a non-ASCII letter
# reaches the comparison with the expected code.
NOT_ASCII_CODES = [
    "\u0661\u0662\u0663\u0664\u0665\u0666",
    "\uff11\uff12\uff13\uff14\uff15\uff16",
    "12345\u00e9",
]


async def test_codes_in_other_scripts_are_refused_not_500(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None
    secret = await _enable(client, agent)
    for code in NOT_ASCII_CODES:
        for route in ("confirm", "disable"):
            response = await client.post(
                f"{API}/auth/totp/{route}", json={"code": code}, headers=agent.headers
            )
            assert response.status_code in {409, 422}, (route, code, response.text)
            assert response.headers["content-type"] == PROBLEM
        refused = await login(client, agent.email, client_id=tenant_a.slug, totp=code)
        assert refused.status_code == 401, (code, refused.text)
        assert refused.headers["content-type"] == PROBLEM
    # 2FA is still on, and a real code still works.
    fresh = await login(client, agent.email, client_id=tenant_a.slug, totp=_code(secret))
    assert fresh.status_code == 200
