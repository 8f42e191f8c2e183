"""/users/{id}/permissions: grants add a named permission to one user on top of the
role, until they expire (checked at use, no job) or are revoked. Only admins (people,
not API keys) manage them, and only for users of their own organization."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.auth.permissions import ROLE_PERMISSIONS
from app.db.database import Database
from app.models.organization import Organization
from app.models.user import Role, User, UserPermission
from tests.support.identity import API, Actor, Tenant

USERS = f"{API}/users"
ME = f"{USERS}/me"
PROBLEM_JSON = "application/problem+json"
GRANT_FIELDS = frozenset(
    {
        "id",
        "user_id",
        "permission",
        "granted_by_id",
        "granted_at",
        "expires_at",
        "is_active",
        "is_effective",
    }
)


# --- helpers ------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in body.get("errors") or []]


def grants_url(user_id: uuid.UUID | str | None) -> str:
    return f"{USERS}/{user_id}/permissions"


async def grant(
    client: httpx.AsyncClient, actor: Actor, user_id: uuid.UUID | str | None, **body: Any
) -> httpx.Response:
    return await client.post(grants_url(user_id), json=body, headers=actor.headers)


async def granted(
    client: httpx.AsyncClient, tenant: Tenant, user_id: uuid.UUID | None, **body: Any
) -> dict[str, Any]:
    response = await grant(client, tenant["admin"], user_id, **body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def grant_rows(
    database: Database, org: Organization, user_id: uuid.UUID | None = None
) -> list[tuple[uuid.UUID, uuid.UUID, str, bool, datetime | None]]:
    """(id, user_id, permission, is_active, expires_at) of the organization's grants."""
    async with database.tenant_session(org.id) as session:
        statement = sa.select(UserPermission).order_by(UserPermission.id)
        if user_id is not None:
            statement = statement.where(UserPermission.user_id == user_id)
        return [
            (g.id, g.user_id, g.permission, g.is_active, g.expires_at)
            for g in await session.scalars(statement)
        ]


async def expire_in_database(database: Database, org: Organization, grant_id: str) -> None:
    """Time passes: the grant's expiry is now behind us, and no job runs."""
    async with database.tenant_session(org.id) as session:
        result = await session.execute(
            sa.update(UserPermission)
            .where(UserPermission.id == uuid.UUID(grant_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert result.rowcount == 1  # type: ignore[attr-defined]
        await session.commit()


async def first_name(database: Database, org: Organization, user_id: uuid.UUID | None) -> str:
    async with database.tenant_session(org.id) as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.first_name


async def agent_edits_customer(
    client: httpx.AsyncClient, database: Database, tenant: Tenant
) -> int:
    """The `users:write` probe: the agent renames the customer user. Returns the status
    after checking the database agrees with it."""
    customer_id = tenant["customer"].user_id
    before = await first_name(database, tenant.org, customer_id)
    name = f"Renamed {uuid.uuid4().hex[:8]}"
    response = await client.patch(
        f"{USERS}/{customer_id}", json={"first_name": name}, headers=tenant["agent"].headers
    )
    after = await first_name(database, tenant.org, customer_id)
    if response.status_code == 200:
        assert response.json()["first_name"] == name
        assert after == name
    else:
        assert_problem(response, 403)
        assert after == before
    return response.status_code


async def permissions_of(client: httpx.AsyncClient, actor: Actor) -> set[str]:
    response = await client.get(ME, headers=actor.headers)
    assert response.status_code == 200, response.text
    return set(response.json()["permissions"])


AGENT_ROLE = {p.value for p in ROLE_PERMISSIONS[Role.AGENT]}


# --- granting ---------------------------------------------------------------------------


async def test_grant_lets_an_agent_edit_users(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent, admin = tenant_a["agent"], tenant_a["admin"]
    assert "users:write" not in AGENT_ROLE
    assert await agent_edits_customer(client, database, tenant_a) == 403
    assert await permissions_of(client, agent) == AGENT_ROLE

    response = await grant(client, admin, agent.user_id, permission="users:write")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == GRANT_FIELDS
    assert body["user_id"] == str(agent.user_id)
    assert body["permission"] == "users:write"
    assert body["granted_by_id"] == str(admin.user_id)
    assert body["expires_at"] is None
    assert body["is_active"] is True
    assert body["is_effective"] is True
    granted_at = datetime.fromisoformat(body["granted_at"])
    assert abs(datetime.now(UTC) - granted_at) < timedelta(minutes=1)
    assert await grant_rows(database, tenant_a.org) == [
        (uuid.UUID(body["id"]), agent.user_id, "users:write", True, None)
    ]

    assert await agent_edits_customer(client, database, tenant_a) == 200
    assert await permissions_of(client, agent) == AGENT_ROLE | {"users:write"}
    # A grant belongs to its user only.
    assert await permissions_of(client, tenant_a["customer"]) == {
        p.value for p in ROLE_PERMISSIONS[Role.CUSTOMER]
    }


async def test_granted_users_write_still_obeys_the_role_rules(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    await granted(client, tenant_a, agent.user_id, permission="users:write")
    manager_id = tenant_a["manager"].user_id
    assert agent.user_id is not None and manager_id is not None

    own_role = await client.patch(
        f"{USERS}/{agent.user_id}", json={"role": "manager"}, headers=agent.headers
    )
    touch_manager = await client.patch(
        f"{USERS}/{manager_id}", json={"first_name": "Demoted"}, headers=agent.headers
    )
    make_manager = await client.post(
        USERS,
        json={"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "role": "manager"},
        headers=agent.headers,
    )
    make_customer = await client.post(
        USERS,
        json={"email": f"c-{uuid.uuid4().hex[:8]}@example.com", "role": "customer"},
        headers=agent.headers,
    )

    assert_problem(own_role, 403)
    assert_problem(touch_manager, 403)
    assert_problem(make_manager, 403)
    assert make_customer.status_code == 201, make_customer.text
    async with database.tenant_session(tenant_a.org.id) as session:
        me = await session.get(User, agent.user_id)
        manager = await session.get(User, manager_id)
        managers = await session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.role == Role.MANAGER)
        )
    assert me is not None and me.role is Role.AGENT
    assert manager is not None and manager.first_name != "Demoted"
    assert managers == 1


@pytest.mark.parametrize(
    "second",
    [
        pytest.param({}, id="identical"),
        pytest.param({"expires_at": "2999-01-01T00:00:00+00:00"}, id="with-expiry"),
    ],
)
async def test_a_second_grant_of_a_held_permission_conflicts(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, second: dict[str, Any]
) -> None:
    agent = tenant_a["agent"]
    first = await granted(client, tenant_a, agent.user_id, permission="users:write")
    before = await grant_rows(database, tenant_a.org)

    response = await grant(
        client, tenant_a["admin"], agent.user_id, permission="users:write", **second
    )

    assert_problem(response, 409)
    assert await grant_rows(database, tenant_a.org) == before
    assert [row[0] for row in before] == [uuid.UUID(first["id"])]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"permission": "users:destroy"}, "permission", id="unknown"),
        pytest.param({"permission": "organizations:manage"}, "permission", id="platform"),
        pytest.param({"permission": "USERS:WRITE"}, "permission", id="wrong-case"),
        pytest.param({"permission": ""}, "permission", id="empty"),
        pytest.param({}, "permission", id="missing"),
        pytest.param(
            {"permission": "users:write", "expires_at": "2001-01-01T00:00:00+00:00"},
            "expires_at",
            id="expired",
        ),
        pytest.param(
            {"permission": "users:write", "expires_at": "2999-01-01T00:00:00"},
            "expires_at",
            id="naive",
        ),
        pytest.param(
            {"permission": "users:write", "expires_at": "next tuesday"},
            "expires_at",
            id="not-a-date",
        ),
        pytest.param(
            {"permission": "users:write", "is_active": False}, "is_active", id="is_active"
        ),
        pytest.param(
            {"permission": "users:write", "granted_by_id": str(uuid.uuid4())},
            "granted_by_id",
            id="granted_by_id",
        ),
        pytest.param(
            {"permission": "users:write", "user_id": str(uuid.uuid4())}, "user_id", id="user_id"
        ),
    ],
)
async def test_bad_grants_are_rejected(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    body: dict[str, Any],
    loc: str,
) -> None:
    agent = tenant_a["agent"]

    response = await client.post(
        grants_url(agent.user_id), json=body, headers=tenant_a["admin"].headers
    )

    assert ["body", loc] in error_locs(assert_problem(response, 422))
    assert await grant_rows(database, tenant_a.org) == []
    assert await permissions_of(client, agent) == AGENT_ROLE


async def test_a_grant_in_the_near_past_is_rejected(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    just_now = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()

    response = await grant(
        client,
        tenant_a["admin"],
        tenant_a["agent"].user_id,
        permission="users:write",
        expires_at=just_now,
    )

    assert ["body", "expires_at"] in error_locs(assert_problem(response, 422))
    assert await grant_rows(database, tenant_a.org) == []


# --- expiry and revocation --------------------------------------------------------------


async def test_expired_grant_stops_working_without_a_job_and_can_be_granted_again(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    first = await granted(
        client, tenant_a, agent.user_id, permission="users:write", expires_at=expires_at.isoformat()
    )
    assert datetime.fromisoformat(first["expires_at"]) == expires_at
    assert first["is_effective"] is True
    assert await agent_edits_customer(client, database, tenant_a) == 200

    await expire_in_database(database, tenant_a.org, first["id"])

    assert await agent_edits_customer(client, database, tenant_a) == 403
    assert "users:write" not in await permissions_of(client, agent)
    listed = await client.get(grants_url(agent.user_id), headers=tenant_a["admin"].headers)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert (item["id"], item["is_active"], item["is_effective"]) == (first["id"], True, False)

    second = await granted(client, tenant_a, agent.user_id, permission="users:write")

    assert second["id"] != first["id"]
    assert second["is_effective"] is True
    assert await agent_edits_customer(client, database, tenant_a) == 200
    assert "users:write" in await permissions_of(client, agent)
    rows = {row[0]: row for row in await grant_rows(database, tenant_a.org, agent.user_id)}
    assert set(rows) == {uuid.UUID(first["id"]), uuid.UUID(second["id"])}
    assert rows[uuid.UUID(first["id"])][3] is False  # the expired one made room
    assert rows[uuid.UUID(second["id"])][3:] == (True, None)


async def test_revoked_grant_is_gone_on_the_next_request(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent, admin = tenant_a["agent"], tenant_a["admin"]
    created = await granted(client, tenant_a, agent.user_id, permission="users:write")
    assert await agent_edits_customer(client, database, tenant_a) == 200

    response = await client.delete(
        f"{grants_url(agent.user_id)}/{created['id']}", headers=admin.headers
    )

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert await agent_edits_customer(client, database, tenant_a) == 403
    assert await permissions_of(client, agent) == AGENT_ROLE
    [row] = await grant_rows(database, tenant_a.org)
    assert (row[0], row[3]) == (uuid.UUID(created["id"]), False)
    listed = await client.get(grants_url(agent.user_id), headers=admin.headers)
    [item] = listed.json()["items"]
    assert (item["is_active"], item["is_effective"]) == (False, False)

    # Revoked is not held: the permission can be granted afresh.
    again = await granted(client, tenant_a, agent.user_id, permission="users:write")
    assert again["id"] != created["id"]
    assert await agent_edits_customer(client, database, tenant_a) == 200


async def test_revoking_a_grant_that_is_not_the_users_is_404(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent, admin = tenant_a["agent"], tenant_a["admin"]
    created = await granted(client, tenant_a, agent.user_id, permission="users:write")
    before = await grant_rows(database, tenant_a.org)

    wrong_user = await client.delete(
        f"{grants_url(tenant_a['manager'].user_id)}/{created['id']}", headers=admin.headers
    )
    wrong_grant = await client.delete(
        f"{grants_url(agent.user_id)}/{uuid.uuid4()}", headers=admin.headers
    )

    assert_problem(wrong_user, 404)
    assert_problem(wrong_grant, 404)
    assert wrong_user.json() == wrong_grant.json()
    assert await grant_rows(database, tenant_a.org) == before
    assert await agent_edits_customer(client, database, tenant_a) == 200


async def test_list_shows_which_grants_are_in_force(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent, admin = tenant_a["agent"], tenant_a["admin"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    forever = await granted(client, tenant_a, agent.user_id, permission="users:write")
    until_tomorrow = await granted(
        client, tenant_a, agent.user_id, permission="sla:manage", expires_at=tomorrow
    )
    expired = await granted(
        client, tenant_a, agent.user_id, permission="webhooks:manage", expires_at=tomorrow
    )
    await expire_in_database(database, tenant_a.org, expired["id"])
    revoked = await granted(client, tenant_a, agent.user_id, permission="channels:manage")
    deleted = await client.delete(
        f"{grants_url(agent.user_id)}/{revoked['id']}", headers=admin.headers
    )
    assert deleted.status_code == 204
    # Someone else's grant never shows up in this user's list.
    await granted(client, tenant_a, tenant_a["manager"].user_id, permission="sla:manage")

    response = await client.get(grants_url(agent.user_id), headers=admin.headers)

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    state = {
        item["id"]: (item["permission"], item["is_active"], item["is_effective"])
        for item in page["items"]
    }
    assert state == {
        forever["id"]: ("users:write", True, True),
        until_tomorrow["id"]: ("sla:manage", True, True),
        expired["id"]: ("webhooks:manage", True, False),
        revoked["id"]: ("channels:manage", False, False),
    }
    assert all(item.keys() == GRANT_FIELDS for item in page["items"])
    assert await permissions_of(client, agent) == AGENT_ROLE | {"users:write", "sla:manage"}

    # Paged two at a time, the same four, each once.
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        paged = await client.get(grants_url(agent.user_id), params=params, headers=admin.headers)
        assert paged.status_code == 200, paged.text
        seen.extend(item["id"] for item in paged.json()["items"])
        cursor = paged.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(state)


# --- who may manage grants ------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["manager", "agent", "customer", "api_key", "superuser"])
@pytest.mark.parametrize("operation", ["list", "grant", "revoke"])
async def test_only_admins_manage_grants(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    superuser: Actor,
    actor: str,
    operation: str,
) -> None:
    caller = superuser if actor == "superuser" else tenant_a[actor]
    target = tenant_a["agent"].user_id
    existing = await granted(client, tenant_a, target, permission="sla:manage")
    before = await grant_rows(database, tenant_a.org)

    if operation == "list":
        response = await client.get(grants_url(target), headers=caller.headers)
    elif operation == "grant":
        # Their own account too: nobody grants themselves a way up.
        for user_id in (target, caller.user_id):
            if user_id is None:
                continue
            response = await grant(client, caller, user_id, permission="webhooks:manage")
            assert_problem(response, 403)
    else:
        response = await client.delete(
            f"{grants_url(target)}/{existing['id']}", headers=caller.headers
        )

    assert_problem(response, 403)
    assert await grant_rows(database, tenant_a.org) == before


@pytest.mark.parametrize("operation", ["list", "grant", "revoke"])
async def test_another_orgs_user_reads_as_missing(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    operation: str,
) -> None:
    foreign_user = tenant_b["agent"].user_id
    foreign_grant = await granted(client, tenant_b, foreign_user, permission="users:write")
    before = await grant_rows(database, tenant_b.org)
    headers = tenant_a["admin"].headers

    async def attempt(user_id: object, grant_id: object) -> httpx.Response:
        if operation == "list":
            return await client.get(grants_url(str(user_id)), headers=headers)
        if operation == "grant":
            return await client.post(
                grants_url(str(user_id)), json={"permission": "sla:manage"}, headers=headers
            )
        return await client.delete(f"{grants_url(str(user_id))}/{grant_id}", headers=headers)

    foreign = await attempt(foreign_user, foreign_grant["id"])
    missing = await attempt(uuid.uuid4(), uuid.uuid4())

    assert_problem(foreign, 404)
    assert foreign.json() == missing.json()
    assert await grant_rows(database, tenant_b.org) == before
    assert await grant_rows(database, tenant_a.org) == []
    assert "users:write" in await permissions_of(client, tenant_b["agent"])


async def test_another_orgs_grant_cannot_be_revoked_through_an_own_user(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    foreign_grant = await granted(
        client, tenant_b, tenant_b["agent"].user_id, permission="users:write"
    )
    before = await grant_rows(database, tenant_b.org)

    response = await client.delete(
        f"{grants_url(tenant_a['agent'].user_id)}/{foreign_grant['id']}",
        headers=tenant_a["admin"].headers,
    )

    assert_problem(response, 404)
    assert await grant_rows(database, tenant_b.org) == before


async def test_a_deleted_user_has_no_grants_to_manage(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    created = await client.post(
        USERS,
        json={"email": f"gone-{uuid.uuid4().hex[:8]}@example.com", "role": "agent"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert (await client.delete(f"{USERS}/{user_id}", headers=admin)).status_code == 204

    listed = await client.get(grants_url(user_id), headers=admin)
    posted = await client.post(
        grants_url(user_id), json={"permission": "sla:manage"}, headers=admin
    )

    assert_problem(listed, 404)
    assert_problem(posted, 404)
    assert await grant_rows(database, tenant_a.org) == []
