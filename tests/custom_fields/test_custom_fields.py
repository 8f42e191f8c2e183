"""/custom-fields: CRUD + restore of definitions, role gates (admins write, every member
reads), names unique per organization and entity type, choices and rules that must fit
the type, tenant isolation, include_deleted and keyset paging — over HTTP and in the DB.
Every refusal is read back from the database to prove nothing changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.config import API_PREFIX, Settings
from app.custom_fields.router import router as custom_fields_router
from app.db.database import Database
from app.kit.errors import PROBLEM_RESPONSES
from app.main import create_app
from app.models.custom_field import CustomField
from tests.support.api import columns, field_locs, page_ids, problem
from tests.support.identity import API, Actor, Tenant

PROBLEM = "application/problem+json"
FIELDS = f"{API}/custom-fields"
READ_FIELDS = {
    "id",
    "name",
    "label",
    "field_type",
    "entity_type",
    "is_required",
    "is_unique",
    "choices",
    "validation_rules",
    "help_text",
    "position",
    "created_at",
    "updated_at",
    "deleted_at",
}
# One valid creation body per field type.
TYPE_BODIES: dict[str, dict[str, Any]] = {
    "text": {"validation_rules": {"min_length": 1, "max_length": 20, "regex": "[A-Z]+"}},
    "textarea": {"validation_rules": {"max_length": 5000}},
    "number": {"validation_rules": {"min": -1.5, "max": 10}},
    "email": {"validation_rules": {"regex": ".*@example\\.com"}},
    "url": {"validation_rules": {"max_length": 200}},
    "date": {},
    "datetime": {},
    "boolean": {},
    "choice": {"choices": ["low", "high"]},
    "multi_choice": {"choices": ["red", "green", "blue"]},
    "file": {},
    "image": {},
    "json": {},
}


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real application with this router, whether or not `main` includes it yet."""
    application = create_app(settings)
    paths = {getattr(route, "path", "") for route in application.routes}
    if FIELDS not in paths:
        application.include_router(
            custom_fields_router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES
        )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


# --- helpers ------------------------------------------------------------------------


def unique_name(prefix: str = "field") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def snapshot(database: Database, tenant: Tenant) -> dict[uuid.UUID, dict[str, Any]]:
    """Every custom field row of the organization, deleted ones included."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(sa.select(CustomField).execution_options(include_deleted=True))
        return {row.id: columns(row) for row in rows}


async def field_row(
    database: Database, tenant: Tenant, field_id: uuid.UUID | str
) -> CustomField | None:
    async with database.tenant_session(tenant.org.id) as session:
        return await session.scalar(
            sa.select(CustomField)
            .where(CustomField.id == uuid.UUID(str(field_id)))
            .execution_options(include_deleted=True)
        )


async def create(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique_name())
    body.setdefault("field_type", "text")
    response = await client.post(FIELDS, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delete(client: httpx.AsyncClient, actor: Actor, field_id: str) -> None:
    response = await client.delete(f"{FIELDS}/{field_id}", headers=actor.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""


async def walk(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: Any
) -> list[list[str]]:
    return await page_ids(client, FIELDS, actor.headers, limit, **params)


# --- create / read --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "api_key"])
async def test_admins_create_a_field(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    key = unique_name("tier")
    response = await client.post(
        FIELDS,
        json={
            "name": key,
            "label": "  Support tier  ",
            "field_type": "choice",
            "entity_type": "ticket",
            "is_required": True,
            "is_unique": False,
            "choices": [" gold ", "silver"],
            "validation_rules": {},
            "help_text": "Which contract the customer has.",
            "position": 3,
        },
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    assert body["name"] == key
    assert body["label"] == "Support tier"
    assert (body["field_type"], body["entity_type"]) == ("choice", "ticket")
    assert (body["is_required"], body["is_unique"]) == (True, False)
    assert body["choices"] == ["gold", "silver"]
    assert body["validation_rules"] == {}
    assert (body["help_text"], body["position"]) == ("Which contract the customer has.", 3)
    assert body["deleted_at"] is None
    row = await field_row(database, tenant_a, body["id"])
    assert row is not None
    assert row.organization_id == tenant_a.org.id
    assert (row.name, row.choices, row.position, row.is_required) == (
        key,
        ["gold", "silver"],
        3,
        True,
    )


async def test_create_defaults(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(client, tenant_a["admin"], field_type="number")
    assert body["label"] == ""
    assert body["entity_type"] == "ticket"
    assert (body["is_required"], body["is_unique"]) == (False, False)
    assert (body["choices"], body["validation_rules"]) == ([], {})
    assert (body["help_text"], body["position"]) == ("", 0)


@pytest.mark.parametrize("field_type", sorted(TYPE_BODIES))
async def test_every_type_can_be_defined(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, field_type: str
) -> None:
    body = await create(client, tenant_a["admin"], field_type=field_type, **TYPE_BODIES[field_type])
    assert body["field_type"] == field_type
    expected_rules = TYPE_BODIES[field_type].get("validation_rules", {})
    assert body["validation_rules"] == expected_rules
    row = await field_row(database, tenant_a, body["id"])
    assert row is not None and row.validation_rules == expected_rules


async def test_rules_keep_only_what_is_set(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(
        client,
        tenant_a["admin"],
        field_type="number",
        validation_rules={"min": 0, "max": None},
    )
    assert body["validation_rules"] == {"min": 0}


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "customer", "api_key"])
async def test_every_member_reads_definitions(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    mine = await create(client, tenant_a["admin"])
    await create(client, tenant_b["admin"])
    headers = tenant_a[name].headers
    one = await client.get(f"{FIELDS}/{mine['id']}", headers=headers)
    assert one.status_code == 200, one.text
    assert one.json() == mine
    listed = await client.get(FIELDS, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [mine["id"]]  # never tenant_b's
    assert listed.json()["next_cursor"] is None


async def test_idempotent_create(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers | {"Idempotency-Key": f"cf-{uuid.uuid4().hex}"}
    body = {"name": unique_name(), "field_type": "boolean"}
    first = await client.post(FIELDS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(FIELDS, json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(await snapshot(database, tenant_a)) == 1
    other = await client.post(
        FIELDS, json={"name": unique_name(), "field_type": "boolean"}, headers=headers
    )
    problem(other, 409)
    assert len(await snapshot(database, tenant_a)) == 1


# --- role gates -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["manager", "agent", "customer"])
async def test_only_admins_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    live = await create(client, tenant_a["admin"])
    gone = await create(client, tenant_a["admin"])
    await delete(client, tenant_a["admin"], gone["id"])
    before = await snapshot(database, tenant_a)
    headers = tenant_a[name].headers
    calls = [
        await client.post(
            FIELDS, json={"name": unique_name(), "field_type": "text"}, headers=headers
        ),
        await client.patch(f"{FIELDS}/{live['id']}", json={"label": "Mine"}, headers=headers),
        await client.delete(f"{FIELDS}/{live['id']}", headers=headers),
        await client.post(f"{FIELDS}/{gone['id']}/restore", headers=headers),
    ]
    for response in calls:
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", ""), ("POST", ""), ("GET", "/{id}"), ("PATCH", "/{id}"), ("DELETE", "/{id}")],
)
async def test_no_credentials_is_401(
    client: httpx.AsyncClient, tenant_a: Tenant, method: str, path: str
) -> None:
    field = await create(client, tenant_a["admin"])
    response = await client.request(
        method, FIELDS + path.format(id=field["id"]), json={"label": "x"}
    )
    problem(response, 401)


# --- tenant isolation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("GET", "", None),
        ("PATCH", "", {"label": "Taken over"}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
    ],
)
async def test_other_organizations_field_is_missing(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    method: str,
    suffix: str,
    payload: dict[str, Any] | None,
) -> None:
    theirs = await create(client, tenant_b["admin"])
    before_b = await snapshot(database, tenant_b)

    async def call(field_id: str) -> httpx.Response:
        return await client.request(
            method,
            f"{FIELDS}/{field_id}{suffix}",
            json=payload,
            headers=tenant_a["admin"].headers,
        )

    foreign = problem(await call(theirs["id"]), 404)
    missing = problem(await call(str(uuid.uuid4())), 404)
    assert foreign == missing
    assert await snapshot(database, tenant_b) == before_b


async def test_malformed_id_is_422(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = problem(await client.get(f"{FIELDS}/nope", headers=tenant_a["admin"].headers), 422)
    assert ["path", "field_id"] in field_locs(body)


# --- validation of definitions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"field_type": "text"}, ["body", "name"]),
        ({"name": "Order", "field_type": "text"}, ["body", "name"]),
        ({"name": "1st", "field_type": "text"}, ["body", "name"]),
        ({"name": "_x", "field_type": "text"}, ["body", "name"]),
        ({"name": "with-dash", "field_type": "text"}, ["body", "name"]),
        ({"name": "with space", "field_type": "text"}, ["body", "name"]),
        ({"name": "", "field_type": "text"}, ["body", "name"]),
        ({"name": "a" * 64, "field_type": "text"}, ["body", "name"]),
        ({"name": "ok"}, ["body", "field_type"]),
        ({"name": "ok", "field_type": "money"}, ["body", "field_type"]),
        ({"name": "ok", "field_type": "text", "entity_type": "planet"}, ["body", "entity_type"]),
        ({"name": "ok", "field_type": "text", "position": -1}, ["body", "position"]),
        ({"name": "ok", "field_type": "text", "label": "x" * 256}, ["body", "label"]),
        ({"name": "ok", "field_type": "text", "help_text": "x" * 2001}, ["body", "help_text"]),
        ({"name": "ok", "field_type": "choice"}, ["body", "choices"]),
        ({"name": "ok", "field_type": "multi_choice", "choices": []}, ["body", "choices"]),
        ({"name": "ok", "field_type": "text", "choices": ["a"]}, ["body", "choices"]),
        ({"name": "ok", "field_type": "choice", "choices": ["a", "a"]}, ["body", "choices"]),
        ({"name": "ok", "field_type": "choice", "choices": ["a", " a "]}, ["body", "choices"]),
        ({"name": "ok", "field_type": "choice", "choices": ["  "]}, ["body", "choices", 0]),
        ({"name": "ok", "field_type": "choice", "choices": ["a", 1]}, ["body", "choices", 1]),
        ({"name": "ok", "field_type": "choice", "choices": "a"}, ["body", "choices"]),
        (
            {"name": "ok", "field_type": "number", "validation_rules": {"regex": "[0-9]+"}},
            ["body", "validation_rules", "regex"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"min": 1}},
            ["body", "validation_rules", "min"],
        ),
        (
            {"name": "ok", "field_type": "boolean", "validation_rules": {"max_length": 1}},
            ["body", "validation_rules", "max_length"],
        ),
        (
            {
                "name": "ok",
                "field_type": "choice",
                "choices": ["a"],
                "validation_rules": {"min": 0},
            },
            ["body", "validation_rules", "min"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"max_length": 1001}},
            ["body", "validation_rules", "max_length"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"choices": ["a"]}},
            ["body", "validation_rules", "choices"],
        ),
        (
            {"name": "ok", "field_type": "number", "validation_rules": {"min": 5, "max": 1}},
            ["body", "validation_rules"],
        ),
        (
            {
                "name": "ok",
                "field_type": "text",
                "validation_rules": {"min_length": 5, "max_length": 1},
            },
            ["body", "validation_rules"],
        ),
        (
            {"name": "ok", "field_type": "number", "validation_rules": {"min": "1"}},
            ["body", "validation_rules", "min"],
        ),
        (
            {"name": "ok", "field_type": "number", "validation_rules": {"max": True}},
            ["body", "validation_rules", "max"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"min_length": -1}},
            ["body", "validation_rules", "min_length"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"max_length": 2.5}},
            ["body", "validation_rules", "max_length"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"regex": "([a-z"}},
            ["body", "validation_rules", "regex"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"regex": "a" * 501}},
            ["body", "validation_rules", "regex"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"regex": "a{1001}"}},
            ["body", "validation_rules", "regex"],
        ),
        # RE2 has no lookaround and no backreferences (what makes matching linear).
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"regex": "(?=a)a"}},
            ["body", "validation_rules", "regex"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": {"regex": "(a)\\1"}},
            ["body", "validation_rules", "regex"],
        ),
        (
            {"name": "ok", "field_type": "text", "validation_rules": "[a-z]+"},
            ["body", "validation_rules"],
        ),
        (
            {"name": "ok", "field_type": "text", "organization_id": str(uuid.UUID(int=1))},
            ["body", "organization_id"],
        ),
        ({"name": "ok", "field_type": "text", "id": str(uuid.UUID(int=1))}, ["body", "id"]),
        (
            {"name": "ok", "field_type": "text", "deleted_at": "2020-01-01T00:00:00Z"},
            ["body", "deleted_at"],
        ),
    ],
    ids=lambda v: str(v)[:60] if isinstance(v, dict) else None,
)
async def test_create_rejects_invalid_body(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    payload: dict[str, Any],
    loc: list[Any],
) -> None:
    response = await client.post(FIELDS, json=payload, headers=tenant_a["admin"].headers)
    assert loc in field_locs(problem(response, 422))
    assert await snapshot(database, tenant_a) == {}


async def test_every_type_problem_is_reported_at_once(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await client.post(
        FIELDS,
        json={
            "name": "ok",
            "field_type": "boolean",
            "choices": ["yes"],
            "validation_rules": {"min": 0, "regex": "x"},
        },
        headers=tenant_a["admin"].headers,
    )
    assert sorted(field_locs(problem(response, 422))) == [
        ["body", "choices"],
        ["body", "validation_rules", "min"],
        ["body", "validation_rules", "regex"],
    ]


# --- patch ----------------------------------------------------------------------------


async def test_admin_patches_a_field(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    created = await create(client, tenant_a["admin"], field_type="choice", choices=["a", "b"])
    before = await field_row(database, tenant_a, created["id"])
    assert before is not None
    new_name = unique_name("renamed")
    response = await client.patch(
        f"{FIELDS}/{created['id']}",
        json={
            "name": new_name,
            "label": "Renamed",
            "is_required": True,
            "is_unique": True,
            "choices": ["b", "c"],
            "help_text": "Pick one",
            "position": 7,
        },
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["label"], body["choices"], body["position"]) == (
        new_name,
        "Renamed",
        ["b", "c"],
        7,
    )
    assert (body["is_required"], body["is_unique"], body["help_text"]) == (True, True, "Pick one")
    assert body["field_type"] == "choice"
    row = await field_row(database, tenant_a, created["id"])
    assert row is not None
    assert (row.name, row.choices, row.position) == (new_name, ["b", "c"], 7)
    assert row.updated_at > before.updated_at


async def test_patch_replaces_rules_and_empty_object_clears_them(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    created = await create(
        client, tenant_a["admin"], validation_rules={"min_length": 2, "regex": "[a-z]+"}
    )
    url = f"{FIELDS}/{created['id']}"
    headers = tenant_a["admin"].headers
    response = await client.patch(
        url, json={"validation_rules": {"max_length": 9}}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["validation_rules"] == {"max_length": 9}
    response = await client.patch(url, json={"validation_rules": {}}, headers=headers)
    assert response.json()["validation_rules"] == {}
    row = await field_row(database, tenant_a, created["id"])
    assert row is not None and row.validation_rules == {}


@pytest.mark.parametrize(
    ("field", "payload", "loc"),
    [
        ("text", {"field_type": "number"}, ["body", "field_type"]),
        ("text", {"entity_type": "user"}, ["body", "entity_type"]),
        ("text", {"name": "Bad Name"}, ["body", "name"]),
        ("text", {"name": None}, ["body", "name"]),
        ("text", {"label": None}, ["body", "label"]),
        ("text", {"choices": None}, ["body", "choices"]),
        ("text", {"validation_rules": None}, ["body", "validation_rules"]),
        ("text", {"is_required": None}, ["body", "is_required"]),
        ("text", {"choices": ["a"]}, ["body", "choices"]),
        ("text", {"validation_rules": {"max": 3}}, ["body", "validation_rules", "max"]),
        ("choice", {"choices": []}, ["body", "choices"]),
        ("choice", {"choices": ["x", "x"]}, ["body", "choices"]),
        ("number", {"validation_rules": {"regex": "1"}}, ["body", "validation_rules", "regex"]),
        ("number", {"validation_rules": {"min": 3, "max": 2}}, ["body", "validation_rules"]),
        ("text", {"organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
        ("text", {"created_at": "2020-01-01T00:00:00Z"}, ["body", "created_at"]),
    ],
    ids=lambda v: str(v)[:50] if not isinstance(v, list) else None,
)
async def test_patch_rejects_invalid_body(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    field: str,
    payload: dict[str, Any],
    loc: list[Any],
) -> None:
    created = await create(client, tenant_a["admin"], field_type=field, **TYPE_BODIES[field])
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{FIELDS}/{created['id']}", json=payload, headers=tenant_a["admin"].headers
    )
    assert loc in field_locs(problem(response, 422))
    assert await snapshot(database, tenant_a) == before


async def test_patch_choices_alone_keeps_rules_checked_against_type(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    created = await create(client, tenant_a["admin"], field_type="multi_choice", choices=["a"])
    response = await client.patch(
        f"{FIELDS}/{created['id']}", json={"choices": ["a", "b"]}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"] == ["a", "b"]


# --- unique names -----------------------------------------------------------------------


async def test_name_is_unique_per_organization_and_entity_type(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    admin = tenant_a["admin"]
    first = await create(client, admin, name="order_ref")
    before = await snapshot(database, tenant_a)
    clash = await client.post(
        FIELDS, json={"name": "order_ref", "field_type": "number"}, headers=admin.headers
    )
    assert "order_ref" in problem(clash, 409)["detail"]
    assert await snapshot(database, tenant_a) == before
    # Another kind of record, or another organization: no clash.
    other_entity = await create(client, admin, name="order_ref", entity_type="user")
    assert other_entity["entity_type"] == "user"
    await create(client, tenant_b["admin"], name="order_ref")
    # Renaming into the name is the same clash; renaming to itself is not.
    second = await create(client, admin)
    before = await snapshot(database, tenant_a)
    renamed = await client.patch(
        f"{FIELDS}/{second['id']}", json={"name": "order_ref"}, headers=admin.headers
    )
    problem(renamed, 409)
    assert await snapshot(database, tenant_a) == before
    same = await client.patch(
        f"{FIELDS}/{first['id']}", json={"name": "order_ref"}, headers=admin.headers
    )
    assert same.status_code == 200, same.text


async def test_deleted_name_is_free_and_restore_into_a_clash_is_409(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    old = await create(client, admin, name="po_number")
    await delete(client, admin, old["id"])
    new = await create(client, admin, name="po_number", field_type="number")
    before = await snapshot(database, tenant_a)
    response = await client.post(f"{FIELDS}/{old['id']}/restore", headers=admin.headers)
    assert "po_number" in problem(response, 409)["detail"]
    assert await snapshot(database, tenant_a) == before
    # Once the name is free again, the restore goes through.
    await delete(client, admin, new["id"])
    response = await client.post(f"{FIELDS}/{old['id']}/restore", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["deleted_at"] is None


# --- delete / restore / include_deleted ----------------------------------------------------


async def test_delete_hides_the_field(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    created = await create(client, admin)
    await delete(client, admin, created["id"])
    row = await field_row(database, tenant_a, created["id"])
    assert row is not None and row.deleted_at is not None  # soft: the row stays
    missing = problem(await client.get(f"{FIELDS}/{uuid.uuid4()}", headers=admin.headers), 404)
    gone = problem(await client.get(f"{FIELDS}/{created['id']}", headers=admin.headers), 404)
    assert gone == missing
    assert created["id"] not in [i for page in await walk(client, admin, 200) for i in page]
    before = await snapshot(database, tenant_a)
    problem(await client.delete(f"{FIELDS}/{created['id']}", headers=admin.headers), 404)
    problem(
        await client.patch(f"{FIELDS}/{created['id']}", json={"label": "Z"}, headers=admin.headers),
        404,
    )
    assert await snapshot(database, tenant_a) == before


async def test_restore_brings_the_field_back(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    created = await create(client, admin, label="Kept")
    await delete(client, admin, created["id"])
    response = await client.post(f"{FIELDS}/{created['id']}/restore", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["label"], body["deleted_at"]) == (created["id"], "Kept", None)
    row = await field_row(database, tenant_a, created["id"])
    assert row is not None and row.deleted_at is None
    again = await client.get(f"{FIELDS}/{created['id']}", headers=admin.headers)
    assert again.status_code == 200


async def test_restore_of_live_field_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    created = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    response = await client.post(
        f"{FIELDS}/{created['id']}/restore", headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == created
    assert await snapshot(database, tenant_a) == before


async def test_include_deleted_is_for_admins(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    live = await create(client, tenant_a["admin"])
    gone = await create(client, tenant_a["admin"])
    await delete(client, tenant_a["admin"], gone["id"])
    response = await client.get(
        FIELDS, params={"include_deleted": "true"}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    items = {item["id"]: item for item in response.json()["items"]}
    assert items.keys() == {live["id"], gone["id"]}
    assert items[gone["id"]]["deleted_at"] is not None
    assert items[live["id"]]["deleted_at"] is None
    for name in ("manager", "agent", "customer"):
        problem(
            await client.get(
                FIELDS, params={"include_deleted": "true"}, headers=tenant_a[name].headers
            ),
            403,
        )
    for name in ("manager", "customer"):
        response = await client.get(
            FIELDS, params={"include_deleted": "false"}, headers=tenant_a[name].headers
        )
        assert [item["id"] for item in response.json()["items"]] == [live["id"]]


# --- list order, filter and paging ---------------------------------------------------------


async def test_list_is_ordered_by_position_then_creation(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    third = await create(client, admin, position=5)
    first = await create(client, admin, position=0)
    fourth = await create(client, admin, position=5)
    second = await create(client, admin, position=1)
    expected = [first["id"], second["id"], third["id"], fourth["id"]]
    pages = await walk(client, tenant_a["customer"], 3)
    assert [len(page) for page in pages] == [3, 1]
    assert [i for page in pages for i in page] == expected


async def test_pagination_is_stable_under_inserts(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    created = [(await create(client, admin, position=1))["id"] for _ in range(3)]
    first = await client.get(FIELDS, params={"limit": 2}, headers=admin.headers)
    page = first.json()
    assert [item["id"] for item in page["items"]] == created[:2]
    early = await create(client, admin, position=0)  # sorts before the cursor: not served
    late = await create(client, admin, position=2)
    rest = await client.get(
        FIELDS, params={"limit": 2, "cursor": page["next_cursor"]}, headers=admin.headers
    )
    assert rest.status_code == 200, rest.text
    assert [item["id"] for item in rest.json()["items"]] == [created[2], late["id"]]
    assert rest.json()["next_cursor"] is None
    assert early["id"] not in {item["id"] for item in rest.json()["items"]}


async def test_entity_type_filter(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    admin = tenant_a["admin"]
    ticket = await create(client, admin)
    user = await create(client, admin, entity_type="user")
    work_order = await create(client, admin, entity_type="work_order")
    for entity_type, expected in [
        ("ticket", [ticket["id"]]),
        ("user", [user["id"]]),
        ("work_order", [work_order["id"]]),
        ("customer", []),
    ]:
        pages = await walk(client, admin, 50, entity_type=entity_type)
        assert [i for page in pages for i in page] == expected
    everything = [i for page in await walk(client, admin, 50) for i in page]
    assert sorted(everything) == sorted([ticket["id"], user["id"], work_order["id"]])
    response = await client.get(FIELDS, params={"entity_type": "planet"}, headers=admin.headers)
    assert ["query", "entity_type"] in field_locs(problem(response, 422))


@pytest.mark.parametrize("cursor", ["garbage!!", "W10", "WyJ4IiwgInkiXQ"])
async def test_tampered_cursor_is_422(
    client: httpx.AsyncClient, tenant_a: Tenant, cursor: str
) -> None:
    response = await client.get(
        FIELDS, params={"cursor": cursor}, headers=tenant_a["admin"].headers
    )
    assert ["query", "cursor"] in field_locs(problem(response, 422))
