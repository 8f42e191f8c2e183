"""/departments: CRUD + restore, role gates, per-organization names, the manager rule,
tenant isolation and keyset pagination, checked over HTTP and in PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.user import Department, Role, User
from tests.support.api import b64, columns, field_locs, page_ids, problem
from tests.support.identity import API, Actor, Tenant, add_user

DEPARTMENTS = f"{API}/departments"
READ_FIELDS = {
    "id",
    "name",
    "description",
    "email",
    "manager_id",
    "created_at",
    "updated_at",
    "deleted_at",
}


# --- helpers ------------------------------------------------------------------------


def unique_name(prefix: str = "Dept") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def snapshot(database: Database, tenant: Tenant) -> dict[uuid.UUID, dict[str, Any]]:
    """Every department row of the organization, deleted ones included."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(sa.select(Department).execution_options(include_deleted=True))
        return {row.id: columns(row) for row in rows}


async def department_row(
    database: Database, tenant: Tenant, department_id: uuid.UUID | str
) -> Department | None:
    async with database.tenant_session(tenant.org.id) as session:
        return await session.scalar(
            sa.select(Department)
            .where(Department.id == uuid.UUID(str(department_id)))
            .execution_options(include_deleted=True)
        )


async def create(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique_name())
    response = await client.post(DEPARTMENTS, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delete(client: httpx.AsyncClient, actor: Actor, department_id: str) -> None:
    response = await client.delete(f"{DEPARTMENTS}/{department_id}", headers=actor.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""


async def walk(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: Any
) -> list[list[str]]:
    return await page_ids(client, DEPARTMENTS, actor.headers, limit, **params)


async def soft_delete_user(database: Database, tenant: Tenant, user_id: uuid.UUID) -> None:
    async with database.tenant_session(tenant.org.id) as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.soft_delete()
        await session.commit()


# --- create / read --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager", "api_key"])
async def test_writers_create_department(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    title = unique_name("Billing")
    manager_id = tenant_a["agent"].user_id
    response = await client.post(
        DEPARTMENTS,
        json={
            "name": f"  {title}  ",
            "description": "Invoices and refunds",
            "email": "Billing@Alpha.Example.COM",
            "manager_id": str(manager_id),
        },
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    assert body["name"] == title
    assert body["description"] == "Invoices and refunds"
    assert body["email"] == "billing@alpha.example.com"
    assert body["manager_id"] == str(manager_id)
    assert body["deleted_at"] is None
    row = await department_row(database, tenant_a, body["id"])
    assert row is not None
    assert row.organization_id == tenant_a.org.id
    assert (row.name, row.email, row.manager_id) == (
        title,
        "billing@alpha.example.com",
        manager_id,
    )


async def test_create_defaults(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(client, tenant_a["admin"])
    assert (body["description"], body["email"], body["manager_id"]) == ("", None, None)


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "api_key"])
async def test_staff_read_departments(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    headers = tenant_a[name].headers
    one = await client.get(f"{DEPARTMENTS}/{tenant_a.department_id}", headers=headers)
    assert one.status_code == 200, one.text
    assert one.json()["id"] == str(tenant_a.department_id)
    assert one.json()["name"] == "Support"
    listed = await client.get(DEPARTMENTS, headers=headers)
    assert listed.status_code == 200, listed.text
    ids = [item["id"] for item in listed.json()["items"]]
    assert ids == [str(tenant_a.department_id)]  # never tenant_b's "Support"
    assert listed.json()["next_cursor"] is None


# --- role gates -----------------------------------------------------------------------


async def forbidden_calls(
    client: httpx.AsyncClient, actor: Actor, department_id: uuid.UUID | None, *, reads: bool
) -> list[httpx.Response]:
    url = f"{DEPARTMENTS}/{department_id}"
    headers = actor.headers
    calls = [
        await client.post(DEPARTMENTS, json={"name": unique_name()}, headers=headers),
        await client.patch(url, json={"name": unique_name()}, headers=headers),
        await client.delete(url, headers=headers),
        await client.post(f"{url}/restore", headers=headers),
    ]
    if reads:
        calls += [
            await client.get(DEPARTMENTS, headers=headers),
            await client.get(url, headers=headers),
        ]
    return calls


async def test_agent_reads_but_may_not_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(
        client, tenant_a["agent"], tenant_a.department_id, reads=False
    ):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_customer_may_neither_read_nor_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(
        client, tenant_a["customer"], tenant_a.department_id, reads=True
    ):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_superuser_may_not_touch_tenant_departments(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(client, superuser, tenant_a.department_id, reads=True):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_unauthenticated_is_401(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    problem(await client.get(DEPARTMENTS), 401)
    problem(await client.post(DEPARTMENTS, json={"name": "X"}), 401)
    problem(await client.get(f"{DEPARTMENTS}/{tenant_a.department_id}"), 401)


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("clash", ["Support", "support", "SUPPORT", "  sUpPoRt  "])
async def test_name_unique_per_organization_case_insensitively(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, clash: str
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(
        DEPARTMENTS, json={"name": clash}, headers=tenant_a["admin"].headers
    )
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before


async def test_same_name_in_another_organization_is_fine(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    title = unique_name("Shared")
    a = await create(client, tenant_a["admin"], name=title)
    b = await create(client, tenant_b["admin"], name=title.upper())
    assert a["id"] != b["id"]


async def test_rename_into_a_clash_is_409(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    other = await create(client, tenant_a["manager"])
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{DEPARTMENTS}/{other['id']}", json={"name": "SUPPORT"}, headers=tenant_a["admin"].headers
    )
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before


async def test_rename_own_case_is_not_a_clash(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    response = await client.patch(
        f"{DEPARTMENTS}/{tenant_a.department_id}",
        json={"name": "SUPPORT"},
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "SUPPORT"
    row = await department_row(database, tenant_a, str(tenant_a.department_id))
    assert row is not None and row.name == "SUPPORT"


async def test_deleted_name_is_reusable_and_restore_into_clash_is_409(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    title = unique_name("Returns")
    first = await create(client, tenant_a["admin"], name=title)
    await delete(client, tenant_a["admin"], first["id"])
    second = await create(client, tenant_a["manager"], name=title.lower())
    assert second["id"] != first["id"]
    before = await snapshot(database, tenant_a)
    response = await client.post(
        f"{DEPARTMENTS}/{first['id']}/restore", headers=tenant_a["admin"].headers
    )
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before
    row = await department_row(database, tenant_a, first["id"])
    assert row is not None and row.deleted_at is not None


# --- the manager ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "manager", "agent"])
async def test_manager_may_be_any_staff_user(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str
) -> None:
    user_id = tenant_a[role].user_id
    body = await create(client, tenant_a["admin"], manager_id=str(user_id))
    assert body["manager_id"] == str(user_id)
    row = await department_row(database, tenant_a, body["id"])
    assert row is not None and row.manager_id == user_id


async def invalid_manager_id(
    kind: str, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> uuid.UUID | None:
    if kind == "customer":
        return tenant_a["customer"].user_id
    if kind == "other_org_staff":
        return tenant_b["admin"].user_id
    if kind == "deleted_staff":
        user = await add_user(database, tenant_a.org, Role.AGENT)
        await soft_delete_user(database, tenant_a, user.id)
        return user.id
    return uuid.uuid4()


MANAGER_KINDS = ["customer", "other_org_staff", "deleted_staff", "unknown"]


@pytest.mark.parametrize("kind", MANAGER_KINDS)
async def test_create_with_non_staff_manager_is_422(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    kind: str,
) -> None:
    manager_id = await invalid_manager_id(kind, database, tenant_a, tenant_b)
    before = await snapshot(database, tenant_a)
    response = await client.post(
        DEPARTMENTS,
        json={"name": unique_name(), "manager_id": str(manager_id)},
        headers=tenant_a["admin"].headers,
    )
    body = problem(response, 422)
    assert field_locs(body) == [["body", "manager_id"]]
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize("kind", MANAGER_KINDS)
async def test_patch_with_non_staff_manager_is_422(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    kind: str,
) -> None:
    manager_id = await invalid_manager_id(kind, database, tenant_a, tenant_b)
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{DEPARTMENTS}/{tenant_a.department_id}",
        json={"manager_id": str(manager_id)},
        headers=tenant_a["manager"].headers,
    )
    body = problem(response, 422)
    assert field_locs(body) == [["body", "manager_id"]]
    assert await snapshot(database, tenant_a) == before


# --- patch ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager"])
async def test_writers_patch_department(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    created = await create(client, tenant_a["admin"], email="old@example.com")
    before = await department_row(database, tenant_a, created["id"])
    assert before is not None
    title = unique_name("Renamed")
    response = await client.patch(
        f"{DEPARTMENTS}/{created['id']}",
        json={
            "name": title,
            "description": "new text",
            "email": "New@Example.COM",
            "manager_id": str(tenant_a["manager"].user_id),
        },
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["description"], body["email"], body["manager_id"]) == (
        title,
        "new text",
        "new@example.com",
        str(tenant_a["manager"].user_id),
    )
    row = await department_row(database, tenant_a, created["id"])
    assert row is not None
    assert (row.name, row.description, row.email, row.manager_id) == (
        title,
        "new text",
        "new@example.com",
        tenant_a["manager"].user_id,
    )
    assert row.updated_at > before.updated_at


@pytest.mark.parametrize("field", ["email", "manager_id"])
async def test_patch_null_clears_nullable_field(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, field: str
) -> None:
    created = await create(
        client,
        tenant_a["admin"],
        email="desk@example.com",
        manager_id=str(tenant_a["agent"].user_id),
    )
    response = await client.patch(
        f"{DEPARTMENTS}/{created['id']}", json={field: None}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body[field] is None
    assert body["name"] == created["name"]  # untouched
    row = await department_row(database, tenant_a, created["id"])
    assert row is not None and getattr(row, field) is None
    assert row.name == created["name"]


@pytest.mark.parametrize(
    "payload",
    [
        {"name": None},
        {"description": None},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"email": "not-an-email"},
        {"manager_id": "not-a-uuid"},
        {"id": "0192f0c8-0000-7000-8000-000000000001"},
        {"organization_id": "0192f0c8-0000-7000-8000-000000000001"},
        {"deleted_at": None},
        {"created_at": "2020-01-01T00:00:00Z"},
    ],
    ids=str,
)
async def test_patch_rejects_invalid_body(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, payload: dict[str, Any]
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{DEPARTMENTS}/{tenant_a.department_id}", json=payload, headers=tenant_a["admin"].headers
    )
    body = problem(response, 422)
    assert ["body", next(iter(payload))] in field_locs(body)
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({}, ["body", "name"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "  "}, ["body", "name"]),
        ({"name": "x" * 256}, ["body", "name"]),
        ({"name": "Ok", "email": "nope"}, ["body", "email"]),
        ({"name": "Ok", "description": "x" * 10_001}, ["body", "description"]),
        ({"name": "Ok", "manager_id": "42"}, ["body", "manager_id"]),
        ({"name": "Ok", "organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
        ({"name": "Ok", "id": str(uuid.UUID(int=1))}, ["body", "id"]),
        ({"name": "Ok", "deleted_at": "2020-01-01T00:00:00Z"}, ["body", "deleted_at"]),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
async def test_create_rejects_invalid_body(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    payload: dict[str, Any],
    loc: list[str],
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(DEPARTMENTS, json=payload, headers=tenant_a["admin"].headers)
    assert loc in field_locs(problem(response, 422))
    assert await snapshot(database, tenant_a) == before


async def test_malformed_json_is_422(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(
        DEPARTMENTS,
        content=b'{"name": ',
        headers={**tenant_a["admin"].headers, "Content-Type": "application/json"},
    )
    problem(response, 422)
    assert await snapshot(database, tenant_a) == before


# --- tenant isolation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "Taken over"}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
    ],
)
async def test_other_organizations_department_is_missing(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    method: str,
    suffix: str,
    payload: dict[str, Any] | None,
) -> None:
    before_b = await snapshot(database, tenant_b)
    headers = tenant_a["admin"].headers

    async def call(department_id: uuid.UUID | None) -> httpx.Response:
        return await client.request(
            method, f"{DEPARTMENTS}/{department_id}{suffix}", json=payload, headers=headers
        )

    foreign = problem(await call(tenant_b.department_id), 404)
    missing = problem(await call(uuid.uuid4()), 404)
    assert foreign == missing
    assert await snapshot(database, tenant_b) == before_b


async def test_malformed_id_is_422(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = problem(
        await client.get(f"{DEPARTMENTS}/not-a-uuid", headers=tenant_a["admin"].headers), 422
    )
    assert ["path", "department_id"] in field_locs(body)


# --- delete / restore -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager"])
async def test_delete_hides_the_department(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    actor = tenant_a[name]
    created = await create(client, actor)
    await delete(client, actor, created["id"])

    row = await department_row(database, tenant_a, created["id"])
    assert row is not None and row.deleted_at is not None  # soft: the row stays
    missing = problem(await client.get(f"{DEPARTMENTS}/{uuid.uuid4()}", headers=actor.headers), 404)
    gone = problem(await client.get(f"{DEPARTMENTS}/{created['id']}", headers=actor.headers), 404)
    assert gone == missing
    listed = [p for page in await walk(client, actor, 200) for p in page]
    assert created["id"] not in listed
    assert str(tenant_a.department_id) in listed
    # Gone is gone: a second delete and a patch find nothing, and change nothing.
    before = await snapshot(database, tenant_a)
    problem(await client.delete(f"{DEPARTMENTS}/{created['id']}", headers=actor.headers), 404)
    problem(
        await client.patch(
            f"{DEPARTMENTS}/{created['id']}", json={"name": "Zombie"}, headers=actor.headers
        ),
        404,
    )
    assert await snapshot(database, tenant_a) == before


async def test_include_deleted_is_for_admins(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    created = await create(client, tenant_a["admin"])
    await delete(client, tenant_a["admin"], created["id"])
    response = await client.get(
        DEPARTMENTS, params={"include_deleted": "true"}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    items = {item["id"]: item for item in response.json()["items"]}
    assert items[created["id"]]["deleted_at"] is not None
    assert items[str(tenant_a.department_id)]["deleted_at"] is None
    for name in ("manager", "agent", "customer"):
        problem(
            await client.get(
                DEPARTMENTS, params={"include_deleted": "true"}, headers=tenant_a[name].headers
            ),
            403,
        )
    # Explicitly false is the default, for everyone who may read.
    for name in ("manager", "agent"):
        response = await client.get(
            DEPARTMENTS, params={"include_deleted": "false"}, headers=tenant_a[name].headers
        )
        assert response.status_code == 200
        assert created["id"] not in {item["id"] for item in response.json()["items"]}


@pytest.mark.parametrize("name", ["admin", "manager"])
async def test_restore_brings_the_department_back(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    actor = tenant_a[name]
    created = await create(client, actor, description="kept")
    await delete(client, actor, created["id"])
    response = await client.post(f"{DEPARTMENTS}/{created['id']}/restore", headers=actor.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == created["id"]
    assert body["deleted_at"] is None
    assert body["description"] == "kept"
    row = await department_row(database, tenant_a, created["id"])
    assert row is not None and row.deleted_at is None
    again = await client.get(f"{DEPARTMENTS}/{created['id']}", headers=actor.headers)
    assert again.status_code == 200


async def test_restore_of_live_department_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(
        f"{DEPARTMENTS}/{tenant_a.department_id}/restore", headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["deleted_at"] is None
    assert await snapshot(database, tenant_a) == before


# --- pagination and filters -------------------------------------------------------------


async def test_keyset_pagination_walks_every_row_once(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    prefix = uuid.uuid4().hex[:8]
    created = [
        (await create(client, tenant_a["admin"], name=f"Page {prefix} {i}"))["id"] for i in range(5)
    ]
    pages = await walk(client, tenant_a["admin"], 2, q=prefix)
    assert [len(page) for page in pages] == [2, 2, 1]
    flat = [i for page in pages for i in page]
    assert flat == created  # time-ordered ids: creation order, each exactly once
    # Unfiltered, the fixture's department comes along, still each row once.
    everything = [i for page in await walk(client, tenant_a["agent"], 2) for i in page]
    assert len(everything) == len(set(everything)) == 6
    assert set(everything) == {*created, str(tenant_a.department_id)}


async def test_pagination_is_stable_under_inserts(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    prefix = uuid.uuid4().hex[:8]
    admin = tenant_a["admin"]
    created = [(await create(client, admin, name=f"S {prefix} {i}"))["id"] for i in range(3)]
    first = await client.get(DEPARTMENTS, params={"limit": 2, "q": prefix}, headers=admin.headers)
    page = first.json()
    assert [item["id"] for item in page["items"]] == created[:2]
    late = (await create(client, admin, name=f"S {prefix} late"))["id"]
    rest = await client.get(
        DEPARTMENTS,
        params={"limit": 2, "q": prefix, "cursor": page["next_cursor"]},
        headers=admin.headers,
    )
    assert rest.status_code == 200, rest.text
    assert [item["id"] for item in rest.json()["items"]] == [created[2], late]
    assert rest.json()["next_cursor"] is None


async def test_q_filters_by_name_case_insensitively_and_literally(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    tag = uuid.uuid4().hex[:8]
    percent = await create(client, tenant_a["admin"], name=f"100% Uptime {tag}")
    await create(client, tenant_a["admin"], name=f"Plain {tag}")
    headers = tenant_a["agent"].headers
    response = await client.get(DEPARTMENTS, params={"q": "UPTIME"}, headers=headers)
    assert [item["id"] for item in response.json()["items"]] == [percent["id"]]
    response = await client.get(DEPARTMENTS, params={"q": "%"}, headers=headers)
    assert [item["id"] for item in response.json()["items"]] == [percent["id"]]
    response = await client.get(DEPARTMENTS, params={"q": "_"}, headers=headers)
    assert response.json()["items"] == []


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!!",
        b64("{}"),
        b64("[]"),
        b64("[null]"),
        b64('["not-a-uuid"]'),
        b64("[12345]"),
        b64('["0192f0c8-0000-7000-8000-000000000001", "extra"]'),
        "x" * 1025,
    ],
    ids=["garbage", "object", "empty", "null", "not-uuid", "int", "two-values", "too-long"],
)
async def test_tampered_cursor_is_422(
    client: httpx.AsyncClient, tenant_a: Tenant, cursor: str
) -> None:
    response = await client.get(
        DEPARTMENTS, params={"cursor": cursor}, headers=tenant_a["admin"].headers
    )
    assert ["query", "cursor"] in field_locs(problem(response, 422))


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc"])
async def test_limit_out_of_range_is_422(
    client: httpx.AsyncClient, tenant_a: Tenant, limit: str
) -> None:
    response = await client.get(
        DEPARTMENTS, params={"limit": limit}, headers=tenant_a["admin"].headers
    )
    assert ["query", "limit"] in field_locs(problem(response, 422))


@pytest.mark.parametrize("limit", [1, 200])
async def test_limit_bounds_are_accepted(
    client: httpx.AsyncClient, tenant_a: Tenant, limit: int
) -> None:
    await create(client, tenant_a["admin"])
    response = await client.get(
        DEPARTMENTS, params={"limit": limit}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == min(limit, 2)
    assert (response.json()["next_cursor"] is None) == (limit == 200)


@pytest.mark.parametrize(
    "payload", [{"name": "Nul\x00Byte"}, {"name": "Ok", "description": "\x00"}]
)
async def test_text_postgresql_cannot_store_is_422_not_500(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, payload: dict[str, Any]
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(DEPARTMENTS, json=payload, headers=tenant_a["admin"].headers)
    problem(response, 422)
    assert await snapshot(database, tenant_a) == before
