"""/customers (customer accounts): CRUD + restore, role gates, unique names and external
ids per organization, tenant isolation and keyset pagination, over HTTP and in the DB."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.user import Customer
from tests.support.api import b64, columns, field_locs, page_ids, problem
from tests.support.identity import API, Actor, Tenant

CUSTOMERS = f"{API}/customers"
READ_FIELDS = {
    "id",
    "name",
    "email",
    "phone",
    "domain",
    "address",
    "notes",
    "external_id",
    "customer_tier",
    "created_at",
    "updated_at",
    "deleted_at",
}


# --- helpers ------------------------------------------------------------------------


def unique_name(prefix: str = "Account") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def snapshot(database: Database, tenant: Tenant) -> dict[uuid.UUID, dict[str, Any]]:
    """Every customer account row of the organization, deleted ones included."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(sa.select(Customer).execution_options(include_deleted=True))
        return {row.id: columns(row) for row in rows}


async def customer_row(
    database: Database, tenant: Tenant, customer_id: uuid.UUID | str
) -> Customer | None:
    async with database.tenant_session(tenant.org.id) as session:
        return await session.scalar(
            sa.select(Customer)
            .where(Customer.id == uuid.UUID(str(customer_id)))
            .execution_options(include_deleted=True)
        )


async def create(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique_name())
    response = await client.post(CUSTOMERS, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delete(client: httpx.AsyncClient, actor: Actor, customer_id: str) -> None:
    response = await client.delete(f"{CUSTOMERS}/{customer_id}", headers=actor.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""


async def walk(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: Any
) -> list[list[str]]:
    return await page_ids(client, CUSTOMERS, actor.headers, limit, **params)


# --- create / read --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager", "api_key"])
async def test_writers_create_customer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    title = unique_name("Initech")
    external_id = f"crm-{uuid.uuid4().hex[:8]}"
    response = await client.post(
        CUSTOMERS,
        json={
            "name": f"  {title} ",
            "email": "Billing@Initech.EXAMPLE.com",
            "phone": " +1 555 0100 ",
            "domain": "Initech.Example.COM",
            "address": "1 Main St",
            "notes": "VIP",
            "external_id": f"  {external_id}  ",
            "customer_tier": "premium",
        },
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    expected = {
        "name": title,
        "email": "billing@initech.example.com",
        "phone": "+1 555 0100",
        "domain": "initech.example.com",
        "address": "1 Main St",
        "notes": "VIP",
        "external_id": external_id,
        "customer_tier": "premium",
        "deleted_at": None,
    }
    assert {key: body[key] for key in expected} == expected
    row = await customer_row(database, tenant_a, body["id"])
    assert row is not None
    assert row.organization_id == tenant_a.org.id
    stored = columns(row)
    stored["customer_tier"] = row.customer_tier.value
    assert {key: stored[key] for key in expected} == expected


async def test_create_defaults(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(client, tenant_a["admin"])
    assert {k: body[k] for k in ("email", "phone", "domain", "external_id")} == dict.fromkeys(
        ("email", "phone", "domain", "external_id")
    )
    assert (body["address"], body["notes"], body["customer_tier"]) == ("", "", "basic")


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "api_key"])
async def test_staff_read_customers(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    headers = tenant_a[name].headers
    one = await client.get(f"{CUSTOMERS}/{tenant_a.customer_account_id}", headers=headers)
    assert one.status_code == 200, one.text
    assert (one.json()["id"], one.json()["name"]) == (str(tenant_a.customer_account_id), "Acme")
    listed = await client.get(CUSTOMERS, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [str(tenant_a.customer_account_id)]
    assert listed.json()["next_cursor"] is None


# --- role gates -----------------------------------------------------------------------


async def forbidden_calls(
    client: httpx.AsyncClient, actor: Actor, customer_id: uuid.UUID | None, *, reads: bool
) -> list[httpx.Response]:
    url = f"{CUSTOMERS}/{customer_id}"
    headers = actor.headers
    calls = [
        await client.post(CUSTOMERS, json={"name": unique_name()}, headers=headers),
        await client.patch(url, json={"notes": "changed"}, headers=headers),
        await client.delete(url, headers=headers),
        await client.post(f"{url}/restore", headers=headers),
    ]
    if reads:
        calls += [
            await client.get(CUSTOMERS, headers=headers),
            await client.get(url, headers=headers),
        ]
    return calls


async def test_agent_reads_but_may_not_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(
        client, tenant_a["agent"], tenant_a.customer_account_id, reads=False
    ):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_customer_may_not_even_read_own_account(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    # The customer user belongs to this very account; customers still never see accounts.
    for response in await forbidden_calls(
        client, tenant_a["customer"], tenant_a.customer_account_id, reads=True
    ):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_superuser_may_not_touch_tenant_customers(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(
        client, superuser, tenant_a.customer_account_id, reads=True
    ):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_unauthenticated_is_401(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    problem(await client.get(CUSTOMERS), 401)
    problem(await client.post(CUSTOMERS, json={"name": "X"}), 401)
    problem(await client.get(f"{CUSTOMERS}/{tenant_a.customer_account_id}"), 401)


# --- unique names and external ids --------------------------------------------------------


@pytest.mark.parametrize("clash", ["Acme", "acme", "ACME", "  aCmE "])
async def test_name_unique_per_organization_case_insensitively(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, clash: str
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(CUSTOMERS, json={"name": clash}, headers=tenant_a["admin"].headers)
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize("variant", ["same", "padded"])
async def test_external_id_unique_per_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, variant: str
) -> None:
    external_id = f"crm-{uuid.uuid4().hex[:8]}"
    await create(client, tenant_a["admin"], external_id=external_id)
    before = await snapshot(database, tenant_a)
    sent = external_id if variant == "same" else f"  {external_id} "
    response = await client.post(
        CUSTOMERS,
        json={"name": unique_name(), "external_id": sent},
        headers=tenant_a["manager"].headers,
    )
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before


async def test_accounts_without_external_id_do_not_clash(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    first = await create(client, tenant_a["admin"])
    second = await create(client, tenant_a["admin"])
    assert first["external_id"] is second["external_id"] is None


async def test_same_name_and_external_id_in_another_organization_are_fine(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    title, external_id = unique_name("Shared"), f"crm-{uuid.uuid4().hex[:8]}"
    a = await create(client, tenant_a["admin"], name=title, external_id=external_id)
    b = await create(client, tenant_b["admin"], name=title, external_id=external_id)
    assert a["id"] != b["id"]


@pytest.mark.parametrize("field", ["name", "external_id"])
async def test_patch_into_a_clash_is_409(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, field: str
) -> None:
    taken = await create(client, tenant_a["admin"], external_id=f"crm-{uuid.uuid4().hex[:8]}")
    other = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    value = taken[field].upper() if field == "name" else taken[field]
    response = await client.patch(
        f"{CUSTOMERS}/{other['id']}", json={field: value}, headers=tenant_a["manager"].headers
    )
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize("field", ["name", "external_id"])
async def test_deleted_values_are_reusable_and_restore_into_clash_is_409(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, field: str
) -> None:
    admin = tenant_a["admin"]
    first = await create(client, admin, external_id=f"crm-{uuid.uuid4().hex[:8]}")
    await delete(client, admin, first["id"])
    # The same name (any case) or external id is free again while the first is deleted.
    reuse = {field: first[field].lower() if field == "name" else first[field]}
    second = await create(client, tenant_a["manager"], **reuse)
    assert second["id"] != first["id"]
    before = await snapshot(database, tenant_a)
    problem(await client.post(f"{CUSTOMERS}/{first['id']}/restore", headers=admin.headers), 409)
    assert await snapshot(database, tenant_a) == before
    row = await customer_row(database, tenant_a, first["id"])
    assert row is not None and row.deleted_at is not None


# --- patch ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager"])
async def test_writers_patch_customer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    created = await create(client, tenant_a["admin"], notes="old")
    before = await customer_row(database, tenant_a, created["id"])
    assert before is not None
    title, external_id = unique_name("Renamed"), f"crm-{uuid.uuid4().hex[:8]}"
    response = await client.patch(
        f"{CUSTOMERS}/{created['id']}",
        json={
            "name": title,
            "email": "Ops@Example.COM",
            "domain": "Example.ORG",
            "notes": "new",
            "external_id": external_id,
            "customer_tier": "enterprise",
        },
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    expected = {
        "name": title,
        "email": "ops@example.com",
        "domain": "example.org",
        "notes": "new",
        "external_id": external_id,
        "customer_tier": "enterprise",
        "address": "",  # not sent: unchanged
    }
    assert {key: body[key] for key in expected} == expected
    row = await customer_row(database, tenant_a, created["id"])
    assert row is not None
    assert (row.name, row.email, row.external_id, row.customer_tier.value) == (
        title,
        "ops@example.com",
        external_id,
        "enterprise",
    )
    assert row.updated_at > before.updated_at


@pytest.mark.parametrize("field", ["email", "phone", "domain", "external_id"])
async def test_patch_null_clears_nullable_field(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, field: str
) -> None:
    created = await create(
        client,
        tenant_a["admin"],
        email="a@example.com",
        phone="123",
        domain="example.com",
        external_id=f"crm-{uuid.uuid4().hex[:8]}",
    )
    response = await client.patch(
        f"{CUSTOMERS}/{created['id']}", json={field: None}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    assert response.json()[field] is None
    row = await customer_row(database, tenant_a, created["id"])
    assert row is not None and getattr(row, field) is None
    assert row.name == created["name"]


@pytest.mark.parametrize(
    "payload",
    [
        {"name": None},
        {"address": None},
        {"notes": None},
        {"customer_tier": None},
        {"name": ""},
        {"name": "x" * 256},
        {"email": "not-an-email"},
        {"domain": "not a domain"},
        {"external_id": ""},
        {"external_id": "   "},
        {"customer_tier": "gold"},
        {"phone": "1" * 51},
        {"id": "0192f0c8-0000-7000-8000-000000000001"},
        {"organization_id": "0192f0c8-0000-7000-8000-000000000001"},
        {"deleted_at": None},
        {"updated_at": "2020-01-01T00:00:00Z"},
    ],
    ids=str,
)
async def test_patch_rejects_invalid_body(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, payload: dict[str, Any]
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{CUSTOMERS}/{tenant_a.customer_account_id}",
        json=payload,
        headers=tenant_a["admin"].headers,
    )
    assert ["body", next(iter(payload))] in field_locs(problem(response, 422))
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({}, ["body", "name"]),
        ({"name": "   "}, ["body", "name"]),
        ({"name": "x" * 256}, ["body", "name"]),
        ({"name": "Ok", "email": "nope"}, ["body", "email"]),
        ({"name": "Ok", "domain": "-bad-.com"}, ["body", "domain"]),
        ({"name": "Ok", "external_id": ""}, ["body", "external_id"]),
        ({"name": "Ok", "external_id": "x" * 256}, ["body", "external_id"]),
        ({"name": "Ok", "customer_tier": "vip"}, ["body", "customer_tier"]),
        ({"name": "Ok", "notes": "x" * 10_001}, ["body", "notes"]),
        ({"name": "Ok", "organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
        ({"name": "Ok", "id": str(uuid.UUID(int=1))}, ["body", "id"]),
        ({"name": "Ok", "created_at": "2020-01-01T00:00:00Z"}, ["body", "created_at"]),
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
    response = await client.post(CUSTOMERS, json=payload, headers=tenant_a["admin"].headers)
    assert loc in field_locs(problem(response, 422))
    assert await snapshot(database, tenant_a) == before


# --- tenant isolation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("GET", "", None),
        ("PATCH", "", {"notes": "Taken over"}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
    ],
)
async def test_other_organizations_customer_is_missing(
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

    async def call(customer_id: uuid.UUID | None) -> httpx.Response:
        return await client.request(
            method, f"{CUSTOMERS}/{customer_id}{suffix}", json=payload, headers=headers
        )

    foreign = problem(await call(tenant_b.customer_account_id), 404)
    missing = problem(await call(uuid.uuid4()), 404)
    assert foreign == missing
    assert await snapshot(database, tenant_b) == before_b


async def test_malformed_id_is_422(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = problem(
        await client.get(f"{CUSTOMERS}/not-a-uuid", headers=tenant_a["admin"].headers), 422
    )
    assert ["path", "customer_id"] in field_locs(body)


# --- delete / restore -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager"])
async def test_delete_hides_the_customer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    actor = tenant_a[name]
    created = await create(client, actor)
    await delete(client, actor, created["id"])

    row = await customer_row(database, tenant_a, created["id"])
    assert row is not None and row.deleted_at is not None
    missing = problem(await client.get(f"{CUSTOMERS}/{uuid.uuid4()}", headers=actor.headers), 404)
    gone = problem(await client.get(f"{CUSTOMERS}/{created['id']}", headers=actor.headers), 404)
    assert gone == missing
    listed = [i for page in await walk(client, actor, 200) for i in page]
    assert created["id"] not in listed
    assert str(tenant_a.customer_account_id) in listed
    before = await snapshot(database, tenant_a)
    problem(await client.delete(f"{CUSTOMERS}/{created['id']}", headers=actor.headers), 404)
    problem(
        await client.patch(
            f"{CUSTOMERS}/{created['id']}", json={"notes": "zombie"}, headers=actor.headers
        ),
        404,
    )
    assert await snapshot(database, tenant_a) == before


async def test_deleting_an_account_keeps_its_users(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await delete(client, tenant_a["admin"], str(tenant_a.customer_account_id))
    # The account's customer user still signs in and works (its tickets stay).
    response = await client.get(f"{API}/users/me", headers=tenant_a["customer"].headers)
    assert response.status_code == 200, response.text
    assert response.json()["customer_id"] == str(tenant_a.customer_account_id)


async def test_include_deleted_is_for_admins(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    created = await create(client, tenant_a["admin"])
    await delete(client, tenant_a["admin"], created["id"])
    response = await client.get(
        CUSTOMERS, params={"include_deleted": "true"}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    items = {item["id"]: item for item in response.json()["items"]}
    assert items[created["id"]]["deleted_at"] is not None
    assert items[str(tenant_a.customer_account_id)]["deleted_at"] is None
    for name in ("manager", "agent", "customer"):
        problem(
            await client.get(
                CUSTOMERS, params={"include_deleted": "true"}, headers=tenant_a[name].headers
            ),
            403,
        )


@pytest.mark.parametrize("name", ["admin", "manager"])
async def test_restore_brings_the_customer_back(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    actor = tenant_a[name]
    created = await create(client, actor, notes="kept", external_id=f"crm-{uuid.uuid4().hex}")
    await delete(client, actor, created["id"])
    response = await client.post(f"{CUSTOMERS}/{created['id']}/restore", headers=actor.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["deleted_at"], body["notes"]) == (created["id"], None, "kept")
    assert body["external_id"] == created["external_id"]
    row = await customer_row(database, tenant_a, created["id"])
    assert row is not None and row.deleted_at is None
    assert (
        await client.get(f"{CUSTOMERS}/{created['id']}", headers=actor.headers)
    ).status_code == 200


async def test_restore_of_live_customer_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    response = await client.post(
        f"{CUSTOMERS}/{tenant_a.customer_account_id}/restore", headers=tenant_a["admin"].headers
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
        (await create(client, tenant_a["manager"], name=f"Page {prefix} {i}"))["id"]
        for i in range(5)
    ]
    pages = await walk(client, tenant_a["admin"], 2, q=prefix)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == created
    everything = [i for page in await walk(client, tenant_a["agent"], 2) for i in page]
    assert len(everything) == len(set(everything)) == 6
    assert set(everything) == {*created, str(tenant_a.customer_account_id)}


async def test_customer_tier_filter(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    premium = await create(client, tenant_a["admin"], customer_tier="premium")
    await create(client, tenant_a["admin"], customer_tier="enterprise")
    headers = tenant_a["agent"].headers
    response = await client.get(CUSTOMERS, params={"customer_tier": "premium"}, headers=headers)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [premium["id"]]
    bad = await client.get(CUSTOMERS, params={"customer_tier": "gold"}, headers=headers)
    assert ["query", "customer_tier"] in field_locs(problem(bad, 422))


async def test_q_filters_by_name_case_insensitively(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    tag = uuid.uuid4().hex[:8]
    hit = await create(client, tenant_a["admin"], name=f"Globex_{tag}")
    await create(client, tenant_a["admin"], name=f"GlobexX{tag}")
    response = await client.get(
        CUSTOMERS, params={"q": f"GLOBEX_{tag}"}, headers=tenant_a["agent"].headers
    )
    assert [item["id"] for item in response.json()["items"]] == [hit["id"]]


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!!",
        b64("{}"),
        b64("[]"),
        b64("[null]"),
        b64('["not-a-uuid"]'),
        b64("[true]"),
        b64('["0192f0c8-0000-7000-8000-000000000001", 1]'),
        "x" * 1025,
    ],
    ids=["garbage", "object", "empty", "null", "not-uuid", "bool", "two-values", "too-long"],
)
async def test_tampered_cursor_is_422(
    client: httpx.AsyncClient, tenant_a: Tenant, cursor: str
) -> None:
    response = await client.get(
        CUSTOMERS, params={"cursor": cursor}, headers=tenant_a["admin"].headers
    )
    assert ["query", "cursor"] in field_locs(problem(response, 422))


@pytest.mark.parametrize("limit", ["0", "201", "-5", "1.5"])
async def test_limit_out_of_range_is_422(
    client: httpx.AsyncClient, tenant_a: Tenant, limit: str
) -> None:
    response = await client.get(
        CUSTOMERS, params={"limit": limit}, headers=tenant_a["admin"].headers
    )
    assert ["query", "limit"] in field_locs(problem(response, 422))
