"""/organizations (platform superusers) and /organizations/current (the tenant's own row).

Every request goes through the real app; rows are read back from PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.organization import Organization
from app.models.user import Role, User
from tests.support.api import columns, field_locs
from tests.support.identity import API, PASSWORD, Actor, Tenant, add_user, login

PROBLEM = "application/problem+json"
ORGS = f"{API}/organizations"
CURRENT = f"{ORGS}/current"
TENANT_ACTORS = ["admin", "manager", "agent", "customer", "api_key"]
READ_FIELDS = {
    "id",
    "name",
    "slug",
    "domain",
    "subscription_tier",
    "settings",
    "created_at",
    "updated_at",
    "deleted_at",
}
DROP = object()  # marks a key to remove from a request body


# --- helpers ------------------------------------------------------------------------


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with the given status; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


def new_slug() -> str:
    return f"org-{uuid.uuid4().hex[:10]}"


def org_body(slug: Any = None, **overrides: Any) -> dict[str, Any]:
    if slug is DROP:
        overrides["slug"] = DROP
    slug = slug if isinstance(slug, str) else new_slug()
    body: dict[str, Any] = {
        "name": f"Org {slug}",
        "slug": slug,
        "admin": {"email": f"first.admin@{slug}.example.com", "password": PASSWORD},
    }
    for key, value in overrides.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


async def organizations_snapshot(database: Database) -> dict[uuid.UUID, dict[str, Any]]:
    async with database.system_session() as session:
        rows = await session.scalars(
            sa.select(Organization).execution_options(include_deleted=True)
        )
        return {row.id: columns(row) for row in rows}


async def user_ids(database: Database) -> set[uuid.UUID]:
    async with database.system_session() as session:
        return set(
            await session.scalars(sa.select(User.id).execution_options(include_deleted=True))
        )


async def organization_row(database: Database, organization_id: uuid.UUID) -> Organization:
    async with database.system_session() as session:
        row = await session.scalar(
            sa.select(Organization)
            .where(Organization.id == organization_id)
            .execution_options(include_deleted=True)
        )
    assert row is not None
    return row


async def list_all(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[dict[str, Any]]:
    """Every item of the superuser list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {"limit": 200, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(ORGS, params=query, headers=actor.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the list never ended")


# --- create -------------------------------------------------------------------------


async def test_superuser_creates_organization_and_first_admin(
    client: httpx.AsyncClient, database: Database, superuser: Actor
) -> None:
    slug = new_slug()
    body = org_body(
        slug,
        name="  Umbrella Corp  ",
        domain="Umbrella.EXAMPLE.com",
        settings={"locale": "de"},
        admin={
            "email": f"Boss@{slug}.Example.com",
            "password": PASSWORD,
            "first_name": "Ada",
            "last_name": "Wong",
        },
    )
    response = await client.post(ORGS, json=body, headers=superuser.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert READ_FIELDS | {"admin"} == created.keys()
    org_id = uuid.UUID(created["id"])
    assert created["name"] == "Umbrella Corp"
    assert created["slug"] == slug
    assert created["domain"] == "umbrella.example.com"
    assert created["subscription_tier"] == "basic"
    assert created["settings"] == {"locale": "de"}
    assert created["deleted_at"] is None
    admin = created["admin"]
    assert admin["email"] == f"boss@{slug}.example.com"
    assert admin["role"] == "admin"
    assert admin["organization_id"] == str(org_id)
    assert admin["is_superuser"] is False
    assert (admin["first_name"], admin["last_name"]) == ("Ada", "Wong")
    assert not {"password", "password_hash", "totp_secret"} & admin.keys()

    row = await organization_row(database, org_id)
    assert (row.name, row.slug, row.domain) == ("Umbrella Corp", slug, "umbrella.example.com")
    async with database.tenant_session(org_id) as session:
        users = list(await session.scalars(sa.select(User)))
    assert [(u.id, u.email, u.role) for u in users] == [
        (uuid.UUID(admin["id"]), f"boss@{slug}.example.com", Role.ADMIN)
    ]
    assert users[0].password_hash and PASSWORD not in users[0].password_hash

    # The first admin logs in with the slug as client_id and sees their organization.
    token = await login(client, f"boss@{slug}.example.com", client_id=slug)
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    current = await client.get(CURRENT, headers=headers)
    assert current.status_code == 200, current.text
    assert current.json()["id"] == str(org_id)
    # Without the slug it is a superuser login, which this admin is not.
    assert (await login(client, f"boss@{slug}.example.com")).status_code == 401


async def test_create_defaults(
    client: httpx.AsyncClient, database: Database, superuser: Actor
) -> None:
    response = await client.post(ORGS, json=org_body(), headers=superuser.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["domain"] is None
    assert created["settings"] == {}
    assert created["subscription_tier"] == "basic"
    assert created["admin"]["first_name"] == created["admin"]["last_name"] == ""
    row = await organization_row(database, uuid.UUID(created["id"]))
    assert row.deleted_at is None


async def test_duplicate_slug_is_409_and_writes_nothing(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    before_orgs, before_users = await organizations_snapshot(database), await user_ids(database)
    response = await client.post(ORGS, json=org_body(tenant_a.slug), headers=superuser.headers)
    problem(response, 409)
    assert await organizations_snapshot(database) == before_orgs
    assert await user_ids(database) == before_users


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"slug": "Not A Slug"}, ["body", "slug"]),
        ({"slug": "UPPER"}, ["body", "slug"]),
        ({"slug": "-leading-dash"}, ["body", "slug"]),
        ({"slug": "double--dash"}, ["body", "slug"]),
        ({"slug": "x"}, ["body", "slug"]),
        ({"slug": "a" * 64}, ["body", "slug"]),
        ({"slug": DROP}, ["body", "slug"]),
        ({"name": "   "}, ["body", "name"]),
        ({"domain": "not a domain"}, ["body", "domain"]),
        ({"subscription_tier": "platinum"}, ["body", "subscription_tier"]),
        ({"id": "0192f0c8-0000-7000-8000-000000000001"}, ["body", "id"]),
        ({"organization_id": "0192f0c8-0000-7000-8000-000000000001"}, ["body", "organization_id"]),
        ({"deleted_at": "2020-01-01T00:00:00Z"}, ["body", "deleted_at"]),
        ({"admin": DROP}, ["body", "admin"]),
        ({"admin": {"email": "not-an-email", "password": PASSWORD}}, ["body", "admin", "email"]),
        (
            {"admin": {"email": "a@b.example.com", "password": "short"}},
            ["body", "admin", "password"],
        ),
        (
            {"admin": {"email": "a@b.example.com", "password": PASSWORD, "role": "customer"}},
            ["body", "admin", "role"],
        ),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
async def test_create_rejects_invalid_body(
    client: httpx.AsyncClient,
    database: Database,
    superuser: Actor,
    overrides: dict[str, Any],
    loc: list[str],
) -> None:
    before_orgs, before_users = await organizations_snapshot(database), await user_ids(database)
    response = await client.post(ORGS, json=org_body(**overrides), headers=superuser.headers)
    body = problem(response, 422)
    assert loc in field_locs(body)
    assert await organizations_snapshot(database) == before_orgs
    assert await user_ids(database) == before_users


# --- list / get -----------------------------------------------------------------------


async def test_superuser_lists_organizations(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    items = await list_all(client, superuser)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids, key=uuid.UUID)
    by_id = {item["id"]: item for item in items}
    assert {str(tenant_a.org.id), str(tenant_b.org.id)} <= by_id.keys()
    mine = by_id[str(tenant_a.org.id)]
    assert mine.keys() == READ_FIELDS
    assert (mine["slug"], mine["name"], mine["deleted_at"]) == (
        tenant_a.slug,
        tenant_a.org.name,
        None,
    )


async def test_list_pages_with_limit_and_cursor(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    everything = [item["id"] for item in await list_all(client, superuser)]
    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(ORGS, params=params, headers=superuser.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        sizes.append(len(page["items"]))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert all(size == 7 for size in sizes[:-1]) and 1 <= sizes[-1] <= 7
    assert seen == everything


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor!"}],
    ids=["limit0", "limit201", "cursor"],
)
async def test_list_rejects_bad_paging(
    client: httpx.AsyncClient, superuser: Actor, params: dict[str, Any]
) -> None:
    body = problem(await client.get(ORGS, params=params, headers=superuser.headers), 422)
    assert ["query", next(iter(params))] in field_locs(body)


async def test_include_deleted_on_superuser_list(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    deleted = await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    assert deleted.status_code == 204
    live = {item["id"] for item in await list_all(client, superuser)}
    assert str(tenant_a.org.id) not in live
    assert str(tenant_b.org.id) in live
    everything = {
        item["id"]: item for item in await list_all(client, superuser, include_deleted=True)
    }
    assert str(tenant_b.org.id) in everything
    assert everything[str(tenant_a.org.id)]["deleted_at"] is not None
    assert {i for i, item in everything.items() if item["deleted_at"] is None} == live


async def test_superuser_gets_organization_by_id(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant
) -> None:
    response = await client.get(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    assert (body["id"], body["slug"]) == (str(tenant_a.org.id), tenant_a.slug)


async def test_get_unknown_or_deleted_organization_is_404(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant
) -> None:
    missing = problem(await client.get(f"{ORGS}/{uuid.uuid4()}", headers=superuser.headers), 404)
    await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    gone = problem(await client.get(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers), 404)
    assert gone == missing
    problem(await client.get(f"{ORGS}/not-a-uuid", headers=superuser.headers), 422)


# --- patch (platform) -----------------------------------------------------------------


async def test_superuser_patches_organization_including_slug(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    before = await organization_row(database, tenant_a.org.id)
    slug = new_slug()
    response = await client.patch(
        f"{ORGS}/{tenant_a.org.id}",
        json={
            "name": "Renamed",
            "slug": slug,
            "domain": "NEW.Example.org",
            "subscription_tier": "enterprise",
            "settings": {"a": [1, 2]},
        },
        headers=superuser.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["slug"], body["domain"]) == ("Renamed", slug, "new.example.org")
    assert (body["subscription_tier"], body["settings"]) == ("enterprise", {"a": [1, 2]})
    row = await organization_row(database, tenant_a.org.id)
    assert (row.name, row.slug, row.domain) == ("Renamed", slug, "new.example.org")
    assert row.updated_at > before.updated_at
    # The slug is the login client_id: the new one works, the old one no longer does.
    email = tenant_a["agent"].email
    assert email is not None
    assert (await login(client, email, client_id=slug)).status_code == 200
    assert (await login(client, email, client_id=tenant_a.slug)).status_code == 401
    # Tokens already issued are tied to the organization id, not the slug.
    assert (await client.get(CURRENT, headers=tenant_a["agent"].headers)).status_code == 200


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"slug": "Bad Slug"}, 422),
        ({"slug": None}, 422),
        ({"name": None}, 422),
        ({"name": ""}, 422),
        ({"id": "0192f0c8-0000-7000-8000-000000000001"}, 422),
        ({"organization_id": "0192f0c8-0000-7000-8000-000000000001"}, 422),
        ({"deleted_at": None}, 422),
        ({"created_at": "2020-01-01T00:00:00Z"}, 422),
        ({"subscription_tier": "gold"}, 422),
        ({"slug": "<tenant_b>"}, 409),
    ],
    ids=str,
)
async def test_superuser_patch_rejections_change_nothing(
    client: httpx.AsyncClient,
    database: Database,
    superuser: Actor,
    tenant_a: Tenant,
    tenant_b: Tenant,
    payload: dict[str, Any],
    status: int,
) -> None:
    if payload.get("slug") == "<tenant_b>":
        payload = {"slug": tenant_b.slug}
    before = await organizations_snapshot(database)
    response = await client.patch(
        f"{ORGS}/{tenant_a.org.id}", json=payload, headers=superuser.headers
    )
    body = problem(response, status)
    if status == 422:
        assert ["body", next(iter(payload))] in field_locs(body)
    assert await organizations_snapshot(database) == before


async def test_patch_deleted_or_unknown_organization_is_404(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    problem(
        await client.patch(f"{ORGS}/{uuid.uuid4()}", json={"name": "X"}, headers=superuser.headers),
        404,
    )
    await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    before = await organizations_snapshot(database)
    problem(
        await client.patch(
            f"{ORGS}/{tenant_a.org.id}", json={"name": "X"}, headers=superuser.headers
        ),
        404,
    )
    assert await organizations_snapshot(database) == before


# --- delete / restore -----------------------------------------------------------------


async def delete_and_check_locked_out(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    admin, agent, key = tenant_a["admin"], tenant_a["agent"], tenant_a["api_key"]
    assert admin.email is not None
    wrong_password = await login(client, admin.email, "not-the-password-at-all", tenant_a.slug)
    unauthorized = problem(wrong_password, 401)

    response = await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    assert response.status_code == 204
    assert response.content == b""
    row = await organization_row(database, tenant_a.org.id)
    assert row.deleted_at is not None
    async with database.tenant_session(tenant_a.org.id) as session:  # rows stay intact
        assert (
            await session.scalar(
                sa.select(sa.func.count(User.id)).execution_options(include_deleted=True)
            )
            == len(tenant_a.actors) - 1
        )

    # Tokens issued before the deletion fail on their next request; so does the key.
    for actor in (admin, agent, key):
        problem(await client.get(CURRENT, headers=actor.headers), 401)
    problem(await client.get(f"{API}/departments", headers=agent.headers), 401)
    # Login answers exactly like wrong credentials.
    locked = await login(client, admin.email, client_id=tenant_a.slug)
    assert problem(locked, 401) == unauthorized
    # A refresh token cannot mint a new access token either.
    refresh = await client.post(f"{API}/auth/refresh", json={"refresh_token": agent.refresh_token})
    problem(refresh, 401)


async def test_soft_deleted_organization_locks_out_its_users_and_keys(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    await delete_and_check_locked_out(client, database, superuser, tenant_a)


async def test_restore_lets_locked_out_users_back_in_with_old_tokens(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    await delete_and_check_locked_out(client, database, superuser, tenant_a)
    admin, agent, key = tenant_a["admin"], tenant_a["agent"], tenant_a["api_key"]
    assert admin.email is not None
    restored = await client.post(f"{ORGS}/{tenant_a.org.id}/restore", headers=superuser.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None
    assert restored.json()["id"] == str(tenant_a.org.id)
    assert (await organization_row(database, tenant_a.org.id)).deleted_at is None

    # The very same old credentials work again, and login is back.
    for actor in (admin, agent, key):
        again = await client.get(CURRENT, headers=actor.headers)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == str(tenant_a.org.id)
    assert (await login(client, admin.email, client_id=tenant_a.slug)).status_code == 200
    # The session survived the lock-out (the refused refresh was no replay): it rotates.
    refresh = await client.post(f"{API}/auth/refresh", json={"refresh_token": agent.refresh_token})
    assert refresh.status_code == 200, refresh.text


async def test_deleting_one_organization_leaves_others_alone(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    response = await client.get(CURRENT, headers=tenant_b["admin"].headers)
    assert response.status_code == 200
    assert response.json()["id"] == str(tenant_b.org.id)


async def test_delete_twice_or_unknown_is_404(
    client: httpx.AsyncClient, superuser: Actor, tenant_a: Tenant
) -> None:
    assert (
        await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    ).status_code == 204
    problem(await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers), 404)
    problem(await client.delete(f"{ORGS}/{uuid.uuid4()}", headers=superuser.headers), 404)
    problem(await client.post(f"{ORGS}/{uuid.uuid4()}/restore", headers=superuser.headers), 404)


async def test_restore_of_live_organization_is_a_no_op(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    before = await organizations_snapshot(database)
    response = await client.post(f"{ORGS}/{tenant_a.org.id}/restore", headers=superuser.headers)
    assert response.status_code == 200, response.text
    assert response.json()["deleted_at"] is None
    assert await organizations_snapshot(database) == before


async def test_restore_when_slug_was_reused_is_409(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    await client.delete(f"{ORGS}/{tenant_a.org.id}", headers=superuser.headers)
    # A deleted organization's slug is free again...
    reuse = await client.post(ORGS, json=org_body(tenant_a.slug), headers=superuser.headers)
    assert reuse.status_code == 201, reuse.text
    new_admin_email = reuse.json()["admin"]["email"]
    before = await organizations_snapshot(database)
    # ...so the old one cannot come back under it.
    response = await client.post(f"{ORGS}/{tenant_a.org.id}/restore", headers=superuser.headers)
    problem(response, 409)
    assert await organizations_snapshot(database) == before
    assert (await organization_row(database, tenant_a.org.id)).deleted_at is not None
    # The slug logs in to the new organization only.
    assert (await login(client, new_admin_email, client_id=tenant_a.slug)).status_code == 200
    old_admin = tenant_a["admin"].email
    assert old_admin is not None
    assert (await login(client, old_admin, client_id=tenant_a.slug)).status_code == 401


# --- /organizations/current -----------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "api_key"])
async def test_staff_read_current_organization(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    response = await client.get(CURRENT, headers=tenant_a[name].headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    assert (body["id"], body["slug"], body["name"]) == (
        str(tenant_a.org.id),
        tenant_a.slug,
        tenant_a.org.name,
    )


async def test_customer_may_not_read_current_organization(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    problem(await client.get(CURRENT, headers=tenant_a["customer"].headers), 403)


async def test_superuser_has_no_current_organization(
    client: httpx.AsyncClient, database: Database, superuser: Actor
) -> None:
    before = await organizations_snapshot(database)
    problem(await client.get(CURRENT, headers=superuser.headers), 403)
    problem(await client.patch(CURRENT, json={"name": "X"}, headers=superuser.headers), 403)
    assert await organizations_snapshot(database) == before


async def test_unauthenticated_is_401(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get(CURRENT),
        await client.get(ORGS),
        await client.post(ORGS, json=org_body()),
        await client.get(CURRENT, headers={"Authorization": "Bearer garbage"}),
    ):
        problem(response, 401)


async def test_admin_patches_current_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    before = await organization_row(database, tenant_a.org.id)
    others = await organization_row(database, tenant_b.org.id)
    response = await client.patch(
        CURRENT,
        json={
            "name": "  Alpha Renamed ",
            "domain": "Support.ALPHA.Example.COM",
            "settings": {"timezone": "Europe/Berlin", "features": ["sla"]},
            "subscription_tier": "professional",
        },
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == str(tenant_a.org.id)
    assert body["name"] == "Alpha Renamed"
    assert body["domain"] == "support.alpha.example.com"
    assert body["settings"] == {"timezone": "Europe/Berlin", "features": ["sla"]}
    assert body["subscription_tier"] == "professional"
    assert body["slug"] == tenant_a.slug

    row = await organization_row(database, tenant_a.org.id)
    assert (row.name, row.domain, row.subscription_tier.value) == (
        "Alpha Renamed",
        "support.alpha.example.com",
        "professional",
    )
    assert row.settings == {"timezone": "Europe/Berlin", "features": ["sla"]}
    assert row.slug == before.slug
    assert row.updated_at > before.updated_at
    assert columns(await organization_row(database, tenant_b.org.id)) == columns(others)

    # Partial: only what is sent changes; a nullable field can be cleared with null.
    cleared = await client.patch(CURRENT, json={"domain": None}, headers=tenant_a["admin"].headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["domain"] is None
    assert cleared.json()["name"] == "Alpha Renamed"
    assert (await organization_row(database, tenant_a.org.id)).domain is None


@pytest.mark.parametrize("name", ["manager", "agent", "customer"])
async def test_non_admins_may_not_patch_current_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    before = await organizations_snapshot(database)
    response = await client.patch(CURRENT, json={"name": "Hijack"}, headers=tenant_a[name].headers)
    problem(response, 403)
    assert await organizations_snapshot(database) == before


@pytest.mark.parametrize(
    "payload",
    [
        {"slug": "new-slug-attempt"},
        {"id": "0192f0c8-0000-7000-8000-000000000001"},
        {"organization_id": "0192f0c8-0000-7000-8000-000000000001"},
        {"deleted_at": "2020-01-01T00:00:00Z"},
        {"name": None},
        {"name": "   "},
        {"settings": None},
        {"subscription_tier": None},
        {"subscription_tier": "gold"},
        {"domain": "no spaces allowed.com"},
    ],
    ids=str,
)
async def test_patch_current_rejects_invalid_body(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, payload: dict[str, Any]
) -> None:
    before = await organizations_snapshot(database)
    response = await client.patch(CURRENT, json=payload, headers=tenant_a["admin"].headers)
    body = problem(response, 422)
    assert ["body", next(iter(payload))] in field_locs(body)
    assert await organizations_snapshot(database) == before


# --- tenant credentials on the platform routes ------------------------------------------


@pytest.mark.parametrize("name", TENANT_ACTORS)
async def test_tenant_credentials_may_not_manage_organizations(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    headers = tenant_a[name].headers
    own = f"{ORGS}/{tenant_a.org.id}"
    before_orgs, before_users = await organizations_snapshot(database), await user_ids(database)
    for response in (
        await client.get(ORGS, headers=headers),
        await client.get(ORGS, params={"include_deleted": "true"}, headers=headers),
        await client.post(ORGS, json=org_body(), headers=headers),
        await client.get(own, headers=headers),
        await client.patch(own, json={"name": "Mine now"}, headers=headers),
        await client.delete(own, headers=headers),
        await client.post(f"{own}/restore", headers=headers),
    ):
        problem(response, 403)
    assert await organizations_snapshot(database) == before_orgs
    assert await user_ids(database) == before_users


async def test_admin_of_new_organization_is_confined_to_it(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_b: Tenant
) -> None:
    created = await client.post(ORGS, json=org_body(), headers=superuser.headers)
    assert created.status_code == 201, created.text
    org = created.json()
    extra = await add_user(database, tenant_b.org, Role.AGENT)
    token = await login(client, org["admin"]["email"], client_id=org["slug"])
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    # The new admin sees its own (empty) organization, never tenant_b's rows.
    problem(await client.get(f"{API}/departments/{tenant_b.department_id}", headers=headers), 404)
    problem(await client.get(f"{API}/users/{extra.id}", headers=headers), 404)
    response = await client.get(f"{API}/departments", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
