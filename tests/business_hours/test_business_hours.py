"""/business-hours: CRUD + restore, role gates, the shape of a calendar (zones, wall-clock
times, overlaps, dates, holiday regions), per-organization names, tenant isolation,
keyset pagination and retried creates, checked over HTTP and in PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.sla import BusinessHours
from tests.support.api import columns, field_locs, page_ids, problem
from tests.support.identity import API, Actor, Tenant

HOURS = f"{API}/business-hours"
READ_FIELDS = {
    "id",
    "name",
    "timezone",
    "intervals",
    "holidays",
    "holiday_country",
    "holiday_subdivision",
    "created_at",
    "updated_at",
    "deleted_at",
}
NINE_TO_FIVE = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in range(5)]


# --- helpers ------------------------------------------------------------------------


def unique_name(prefix: str = "Hours") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def calendar(**fields: Any) -> dict[str, Any]:
    """A valid create body, with `fields` on top."""
    return {
        "name": unique_name(),
        "timezone": "Europe/Berlin",
        "intervals": NINE_TO_FIVE,
        **fields,
    }


async def snapshot(database: Database, tenant: Tenant) -> dict[uuid.UUID, dict[str, Any]]:
    """Every business-hours row of the organization, deleted ones included."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(BusinessHours).execution_options(include_deleted=True)
        )
        return {row.id: columns(row) for row in rows}


async def hours_row(
    database: Database, tenant: Tenant, hours_id: uuid.UUID | str
) -> BusinessHours | None:
    async with database.tenant_session(tenant.org.id) as session:
        return await session.scalar(
            sa.select(BusinessHours)
            .where(BusinessHours.id == uuid.UUID(str(hours_id)))
            .execution_options(include_deleted=True)
        )


async def create(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    response = await client.post(HOURS, json=calendar(**fields), headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delete(client: httpx.AsyncClient, actor: Actor, hours_id: str) -> None:
    response = await client.delete(f"{HOURS}/{hours_id}", headers=actor.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""


async def walk(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: Any
) -> list[list[str]]:
    return await page_ids(client, HOURS, actor.headers, limit, **params)


# --- create / read --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "api_key"])
async def test_admins_create_a_calendar(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    title = unique_name("Berlin office")
    response = await client.post(
        HOURS,
        json={
            "name": f"  {title}  ",
            "timezone": "Europe/Berlin",
            "intervals": [
                {"weekday": 4, "start": "13:30", "end": "15:00"},
                {"weekday": 0, "start": "09:00", "end": "17:00"},
                {"weekday": 4, "start": "09:00", "end": "12:30"},
            ],
            "holidays": ["2025-12-31", "2025-12-24", "2025-12-31"],
            "holiday_country": "DE",
            "holiday_subdivision": "BY",
        },
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    ordered = [
        {"weekday": 0, "start": "09:00", "end": "17:00"},
        {"weekday": 4, "start": "09:00", "end": "12:30"},
        {"weekday": 4, "start": "13:30", "end": "15:00"},
    ]
    assert body["name"] == title
    assert body["timezone"] == "Europe/Berlin"
    assert body["intervals"] == ordered  # sorted by weekday and start
    assert body["holidays"] == ["2025-12-24", "2025-12-31"]  # sorted, each once
    assert (body["holiday_country"], body["holiday_subdivision"]) == ("DE", "BY")
    assert body["deleted_at"] is None
    row = await hours_row(database, tenant_a, body["id"])
    assert row is not None
    assert row.organization_id == tenant_a.org.id
    assert (row.name, row.timezone, row.intervals, row.holidays) == (
        title,
        "Europe/Berlin",
        ordered,
        ["2025-12-24", "2025-12-31"],
    )
    assert (row.holiday_country, row.holiday_subdivision) == ("DE", "BY")
    again = await client.get(f"{HOURS}/{body['id']}", headers=tenant_a["agent"].headers)
    assert again.status_code == 200, again.text
    assert again.json() == body


async def test_create_defaults(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(client, tenant_a["admin"])
    assert (body["holidays"], body["holiday_country"], body["holiday_subdivision"]) == (
        [],
        None,
        None,
    )


async def test_midnight_ends_and_touching_intervals_are_fine(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    night = [
        {"weekday": 0, "start": "22:00", "end": "24:00"},
        {"weekday": 1, "start": "00:00", "end": "06:00"},
        {"weekday": 1, "start": "06:00", "end": "08:30"},  # touches the one before
        {"weekday": 6, "start": "00:00", "end": "24:00"},
    ]
    body = await create(client, tenant_a["admin"], intervals=night, timezone="UTC")
    assert body["intervals"] == night


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "api_key"])
async def test_staff_read_calendars(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    own = await create(client, tenant_a["admin"])
    await create(client, tenant_b["admin"])
    headers = tenant_a[name].headers
    one = await client.get(f"{HOURS}/{own['id']}", headers=headers)
    assert one.status_code == 200, one.text
    assert one.json() == own
    listed = await client.get(HOURS, headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [own], "next_cursor": None}  # never tenant_b's


# --- role gates -----------------------------------------------------------------------


async def forbidden_calls(
    client: httpx.AsyncClient, actor: Actor, hours_id: str, *, reads: bool
) -> list[httpx.Response]:
    url = f"{HOURS}/{hours_id}"
    headers = actor.headers
    calls = [
        await client.post(HOURS, json=calendar(), headers=headers),
        await client.patch(url, json={"name": unique_name()}, headers=headers),
        await client.delete(url, headers=headers),
        await client.post(f"{url}/restore", headers=headers),
    ]
    if reads:
        calls += [await client.get(HOURS, headers=headers), await client.get(url, headers=headers)]
    return calls


@pytest.mark.parametrize("name", ["manager", "agent"])
async def test_staff_read_but_may_not_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(client, tenant_a[name], own["id"], reads=False):
        body = problem(response, 403)
        assert "sla:manage" in body["detail"]
    assert await snapshot(database, tenant_a) == before


async def test_customer_may_neither_read_nor_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(client, tenant_a["customer"], own["id"], reads=True):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_superuser_may_not_touch_tenant_calendars(
    client: httpx.AsyncClient, database: Database, superuser: Actor, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(client, superuser, own["id"], reads=True):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_unauthenticated_is_401(client: httpx.AsyncClient) -> None:
    problem(await client.get(HOURS), 401)
    problem(await client.post(HOURS, json=calendar()), 401)
    problem(await client.get(f"{HOURS}/{uuid.uuid4()}"), 401)


# --- the shape of a calendar ----------------------------------------------------------


def interval(weekday: Any = 0, start: Any = "09:00", end: Any = "17:00") -> dict[str, Any]:
    return {"weekday": weekday, "start": start, "end": end}


INVALID_CREATES: list[tuple[dict[str, Any], list[Any]]] = [
    # required fields
    ({"name": None}, ["body", "name"]),
    ({"name": "   "}, ["body", "name"]),
    ({"name": "x" * 256}, ["body", "name"]),
    ({"timezone": None}, ["body", "timezone"]),
    ({"intervals": None}, ["body", "intervals"]),
    ({"intervals": []}, ["body", "intervals"]),
    # time zones
    ({"timezone": "Mars/Olympus_Mons"}, ["body", "timezone"]),
    ({"timezone": "europe/berlin"}, ["body", "timezone"]),
    ({"timezone": "CEST"}, ["body", "timezone"]),
    # weekdays
    ({"intervals": [interval(weekday=7)]}, ["body", "intervals", 0, "weekday"]),
    ({"intervals": [interval(weekday=-1)]}, ["body", "intervals", 0, "weekday"]),
    ({"intervals": [interval(weekday="1")]}, ["body", "intervals", 0, "weekday"]),
    ({"intervals": [interval(weekday=True)]}, ["body", "intervals", 0, "weekday"]),
    ({"intervals": [interval(weekday=1.5)]}, ["body", "intervals", 0, "weekday"]),
    # wall-clock times
    ({"intervals": [interval(start="9:00")]}, ["body", "intervals", 0, "start"]),
    ({"intervals": [interval(start="24:00", end="24:00")]}, ["body", "intervals", 0, "start"]),
    ({"intervals": [interval(start="09:60")]}, ["body", "intervals", 0, "start"]),
    ({"intervals": [interval(start="09:00:00")]}, ["body", "intervals", 0, "start"]),
    ({"intervals": [interval(start=900)]}, ["body", "intervals", 0, "start"]),
    ({"intervals": [interval(end="24:01")]}, ["body", "intervals", 0, "end"]),
    ({"intervals": [interval(end="25:00")]}, ["body", "intervals", 0, "end"]),
    ({"intervals": [interval(end="5pm")]}, ["body", "intervals", 0, "end"]),
    ({"intervals": [interval(start="\u0661\u0660:00")]}, ["body", "intervals", 0, "start"]),
    # an interval ends after it starts, within its day
    ({"intervals": [interval(start="17:00", end="09:00")]}, ["body", "intervals", 0, "end"]),
    ({"intervals": [interval(start="09:00", end="09:00")]}, ["body", "intervals", 0, "end"]),
    ({"intervals": [interval(start="22:00", end="06:00")]}, ["body", "intervals", 0, "end"]),
    (
        {"intervals": [interval(), {"weekday": 1, "end": "17:00"}]},
        ["body", "intervals", 1, "start"],
    ),
    ({"intervals": [{**interval(), "note": "x"}]}, ["body", "intervals", 0, "note"]),
    # overlaps on one weekday
    (
        {"intervals": [interval(start="09:00", end="13:00"), interval(start="12:00")]},
        ["body", "intervals"],
    ),
    ({"intervals": [interval(), interval()]}, ["body", "intervals"]),
    (
        {"intervals": [interval(start="08:00", end="24:00"), interval(start="10:00", end="11:00")]},
        ["body", "intervals"],
    ),
    # holidays are ISO dates
    ({"holidays": ["2025-02-30"]}, ["body", "holidays", 0]),
    ({"holidays": ["2025-12-24", "24.12.2025"]}, ["body", "holidays", 1]),
    ({"holidays": ["2025-12-24T00:00:00Z"]}, ["body", "holidays", 0]),
    ({"holidays": [20251224]}, ["body", "holidays", 0]),
    ({"holidays": ["2025-1-1"]}, ["body", "holidays", 0]),
    ({"holidays": "2025-12-24"}, ["body", "holidays"]),
    ({"holidays": None}, ["body", "holidays"]),
    # holiday regions
    ({"holiday_country": "XX"}, ["body", "holiday_country"]),
    ({"holiday_country": "de"}, ["body", "holiday_country"]),
    ({"holiday_country": "DEU"}, ["body", "holiday_country"]),
    ({"holiday_country": "UK"}, ["body", "holiday_country"]),  # an alias: GB is the code
    ({"holiday_subdivision": "BY"}, ["body", "holiday_subdivision"]),
    ({"holiday_country": "DE", "holiday_subdivision": "CA"}, ["body", "holiday_subdivision"]),
    ({"holiday_country": "DE", "holiday_subdivision": "by"}, ["body", "holiday_subdivision"]),
    ({"holiday_country": "DE", "holiday_subdivision": ""}, ["body", "holiday_subdivision"]),
    # no mass assignment
    ({"organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
    ({"id": str(uuid.UUID(int=1))}, ["body", "id"]),
    ({"deleted_at": "2020-01-01T00:00:00Z"}, ["body", "deleted_at"]),
]


@pytest.mark.parametrize(
    ("fields", "loc"), INVALID_CREATES, ids=[str(fields)[:60] for fields, _ in INVALID_CREATES]
)
async def test_create_rejects_invalid_body(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    fields: dict[str, Any],
    loc: list[Any],
) -> None:
    before = await snapshot(database, tenant_a)
    body = calendar(**fields)
    for name, value in fields.items():
        if value is None and name in {"name", "timezone", "intervals"}:
            del body[name]  # left out: required
    response = await client.post(HOURS, json=body, headers=tenant_a["admin"].headers)
    assert field_locs(problem(response, 422)) == [loc]
    assert await snapshot(database, tenant_a) == before


async def test_messages_say_what_is_wrong(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    headers = tenant_a["admin"].headers

    async def message(**fields: Any) -> str:
        response = await client.post(HOURS, json=calendar(**fields), headers=headers)
        [error] = problem(response, 422)["errors"]
        return str(error["msg"])

    overlapping = [interval(weekday=2, start="09:00", end="13:00"), interval(weekday=2)]
    assert "Wednesday 09:00-13:00 and 09:00-17:00 overlap" in await message(intervals=overlapping)
    assert "after start (17:00)" in await message(intervals=[interval(start="17:00", end="08:00")])
    assert "'XX' is not a country" in await message(holiday_country="XX")
    assert "needs holiday_country" in await message(holiday_subdivision="BY")
    subdivision = await message(holiday_country="DE", holiday_subdivision="CA")
    assert "'CA' is not a subdivision of DE" in subdivision and "BY" in subdivision


async def test_explicit_null_regions_are_none(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(client, tenant_a["admin"], holiday_country=None, holiday_subdivision=None)
    assert (body["holiday_country"], body["holiday_subdivision"]) == (None, None)


INVALID_PATCHES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"name": None}, ["body", "name"]),
    ({"name": ""}, ["body", "name"]),
    ({"timezone": None}, ["body", "timezone"]),
    ({"timezone": "Nowhere/Special"}, ["body", "timezone"]),
    ({"intervals": None}, ["body", "intervals"]),
    ({"intervals": []}, ["body", "intervals"]),
    ({"intervals": [interval(weekday=9)]}, ["body", "intervals", 0, "weekday"]),
    ({"intervals": [interval(start="10:00", end="10:00")]}, ["body", "intervals", 0, "end"]),
    ({"intervals": [interval(), interval(start="16:59", end="18:00")]}, ["body", "intervals"]),
    ({"holidays": None}, ["body", "holidays"]),
    ({"holidays": ["2025-13-01"]}, ["body", "holidays", 0]),
    ({"holiday_country": "ZZ"}, ["body", "holiday_country"]),
    # the stored country is DE with BY: what a patch leaves must still fit
    ({"holiday_subdivision": "NSW"}, ["body", "holiday_subdivision"]),
    ({"holiday_country": "FR"}, ["body", "holiday_subdivision"]),
    ({"holiday_country": None}, ["body", "holiday_subdivision"]),
    ({"holiday_country": "US", "holiday_subdivision": "BY"}, ["body", "holiday_subdivision"]),
    ({"organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
    ({"created_at": "2020-01-01T00:00:00Z"}, ["body", "created_at"]),
]


@pytest.mark.parametrize(
    ("payload", "loc"), INVALID_PATCHES, ids=[str(payload)[:60] for payload, _ in INVALID_PATCHES]
)
async def test_patch_rejects_invalid_body(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    payload: dict[str, Any],
    loc: list[Any],
) -> None:
    own = await create(client, tenant_a["admin"], holiday_country="DE", holiday_subdivision="BY")
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{HOURS}/{own['id']}", json=payload, headers=tenant_a["admin"].headers
    )
    assert field_locs(problem(response, 422)) == [loc]
    assert await snapshot(database, tenant_a) == before


async def test_a_subdivision_needs_a_stored_or_sent_country(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    url, headers = f"{HOURS}/{own['id']}", tenant_a["admin"].headers
    before = await snapshot(database, tenant_a)
    response = await client.patch(url, json={"holiday_subdivision": "BY"}, headers=headers)
    assert field_locs(problem(response, 422)) == [["body", "holiday_subdivision"]]
    assert await snapshot(database, tenant_a) == before

    both = await client.patch(
        url, json={"holiday_country": "DE", "holiday_subdivision": "BY"}, headers=headers
    )
    assert both.status_code == 200, both.text
    region = await client.patch(url, json={"holiday_subdivision": "NW"}, headers=headers)
    assert region.status_code == 200, region.text
    assert (region.json()["holiday_country"], region.json()["holiday_subdivision"]) == ("DE", "NW")
    moved = await client.patch(
        url, json={"holiday_country": "US", "holiday_subdivision": "NY"}, headers=headers
    )
    assert moved.status_code == 200, moved.text
    cleared = await client.patch(
        url, json={"holiday_country": None, "holiday_subdivision": None}, headers=headers
    )
    assert cleared.status_code == 200, cleared.text
    row = await hours_row(database, tenant_a, own["id"])
    assert row is not None and (row.holiday_country, row.holiday_subdivision) == (None, None)


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", [str.upper, str.lower, lambda name: f"  {name.swapcase()}  "])
async def test_name_unique_per_organization_case_insensitively(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, case: Any
) -> None:
    taken = (await create(client, tenant_a["admin"], name=unique_name("Office")))["name"]
    before = await snapshot(database, tenant_a)
    clash = case(taken)
    response = await client.post(
        HOURS, json=calendar(name=clash), headers=tenant_a["admin"].headers
    )
    assert clash.strip() in problem(response, 409)["detail"]
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
    taken = await create(client, tenant_a["admin"])
    other = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{HOURS}/{other['id']}",
        json={"name": taken["name"].upper(), "timezone": "UTC"},
        headers=tenant_a["admin"].headers,
    )
    assert taken["name"].upper() in problem(response, 409)["detail"]
    assert await snapshot(database, tenant_a) == before


async def test_rename_own_case_is_not_a_clash(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    response = await client.patch(
        f"{HOURS}/{own['id']}",
        json={"name": own["name"].upper()},
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 200, response.text
    row = await hours_row(database, tenant_a, own["id"])
    assert row is not None and row.name == own["name"].upper()


async def test_deleted_name_is_reusable_and_restore_into_clash_is_409(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    title = unique_name("Returns")
    first = await create(client, tenant_a["admin"], name=title)
    await delete(client, tenant_a["admin"], first["id"])
    second = await create(client, tenant_a["admin"], name=title.lower())
    assert second["id"] != first["id"]
    before = await snapshot(database, tenant_a)
    response = await client.post(
        f"{HOURS}/{first['id']}/restore", headers=tenant_a["admin"].headers
    )
    assert title in problem(response, 409)["detail"]
    assert await snapshot(database, tenant_a) == before
    row = await hours_row(database, tenant_a, first["id"])
    assert row is not None and row.deleted_at is not None


# --- patch ----------------------------------------------------------------------------


async def test_admin_patches_a_calendar(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"], holidays=["2025-12-24"], holiday_country="DE")
    before = await hours_row(database, tenant_a, own["id"])
    assert before is not None
    title = unique_name("Renamed")
    weekend = [interval(weekday=6, start="10:00", end="14:00"), interval(weekday=5)]
    response = await client.patch(
        f"{HOURS}/{own['id']}",
        json={
            "name": title,
            "timezone": "America/Sao_Paulo",
            "intervals": weekend,
            "holidays": ["2026-01-01", "2025-12-31"],
        },
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["timezone"], body["intervals"], body["holidays"]) == (
        title,
        "America/Sao_Paulo",
        [weekend[1], weekend[0]],
        ["2025-12-31", "2026-01-01"],
    )
    assert body["holiday_country"] == "DE"  # untouched
    row = await hours_row(database, tenant_a, own["id"])
    assert row is not None
    assert (row.name, row.timezone, row.intervals, row.holidays, row.holiday_country) == (
        title,
        "America/Sao_Paulo",
        [weekend[1], weekend[0]],
        ["2025-12-31", "2026-01-01"],
        "DE",
    )
    assert row.updated_at > before.updated_at


async def test_empty_patch_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{HOURS}/{own['id']}", json={}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == own
    assert await snapshot(database, tenant_a) == before


async def test_holidays_may_be_emptied(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"], holidays=["2025-12-24"])
    response = await client.patch(
        f"{HOURS}/{own['id']}", json={"holidays": []}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    row = await hours_row(database, tenant_a, own["id"])
    assert row is not None and row.holidays == []


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
async def test_other_organizations_calendar_is_missing(
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
    headers = tenant_a["admin"].headers

    async def call(hours_id: str) -> httpx.Response:
        return await client.request(
            method, f"{HOURS}/{hours_id}{suffix}", json=payload, headers=headers
        )

    foreign = problem(await call(theirs["id"]), 404)
    missing = problem(await call(str(uuid.uuid4())), 404)
    assert foreign == missing
    assert await snapshot(database, tenant_b) == before_b


async def test_other_organizations_deleted_calendar_cannot_be_restored(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = await create(client, tenant_b["admin"])
    await delete(client, tenant_b["admin"], theirs["id"])
    before_b = await snapshot(database, tenant_b)
    response = await client.post(
        f"{HOURS}/{theirs['id']}/restore", headers=tenant_a["admin"].headers
    )
    problem(response, 404)
    assert await snapshot(database, tenant_b) == before_b


async def test_malformed_id_is_422(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = problem(await client.get(f"{HOURS}/not-a-uuid", headers=tenant_a["admin"].headers), 422)
    assert ["path", "business_hours_id"] in field_locs(body)


# --- delete / restore -------------------------------------------------------------------


async def test_delete_hides_the_calendar(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    kept = await create(client, admin)
    gone = await create(client, admin)
    await delete(client, admin, gone["id"])

    row = await hours_row(database, tenant_a, gone["id"])
    assert row is not None and row.deleted_at is not None  # soft: the row stays
    missing = problem(await client.get(f"{HOURS}/{uuid.uuid4()}", headers=admin.headers), 404)
    hidden = problem(await client.get(f"{HOURS}/{gone['id']}", headers=admin.headers), 404)
    assert hidden == missing
    listed = [i for page in await walk(client, admin, 200) for i in page]
    assert listed == [kept["id"]]
    # Gone is gone: a second delete and a patch find nothing, and change nothing.
    before = await snapshot(database, tenant_a)
    problem(await client.delete(f"{HOURS}/{gone['id']}", headers=admin.headers), 404)
    problem(
        await client.patch(f"{HOURS}/{gone['id']}", json={"name": "Zombie"}, headers=admin.headers),
        404,
    )
    assert await snapshot(database, tenant_a) == before


async def test_include_deleted_is_for_admins(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    kept = await create(client, tenant_a["admin"])
    gone = await create(client, tenant_a["admin"])
    await delete(client, tenant_a["admin"], gone["id"])
    response = await client.get(
        HOURS, params={"include_deleted": "true"}, headers=tenant_a["admin"].headers
    )
    assert response.status_code == 200, response.text
    items = {item["id"]: item for item in response.json()["items"]}
    assert items.keys() == {kept["id"], gone["id"]}
    assert items[gone["id"]]["deleted_at"] is not None
    assert items[kept["id"]]["deleted_at"] is None
    for name in ("manager", "agent", "customer"):
        problem(
            await client.get(
                HOURS, params={"include_deleted": "true"}, headers=tenant_a[name].headers
            ),
            403,
        )


async def test_restore_brings_the_calendar_back(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    own = await create(client, admin, holidays=["2025-05-01"], holiday_country="AT")
    await delete(client, admin, own["id"])
    response = await client.post(f"{HOURS}/{own['id']}/restore", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deleted_at"] is None
    assert {k: v for k, v in body.items() if k not in {"updated_at", "deleted_at"}} == {
        k: v for k, v in own.items() if k not in {"updated_at", "deleted_at"}
    }
    row = await hours_row(database, tenant_a, own["id"])
    assert row is not None and row.deleted_at is None
    again = await client.get(f"{HOURS}/{own['id']}", headers=tenant_a["agent"].headers)
    assert again.status_code == 200


async def test_restore_of_a_live_calendar_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    response = await client.post(f"{HOURS}/{own['id']}/restore", headers=tenant_a["admin"].headers)
    assert response.status_code == 200, response.text
    assert response.json() == own
    assert await snapshot(database, tenant_a) == before


# --- pagination and filters -------------------------------------------------------------


async def test_keyset_pagination_walks_every_row_once(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    prefix = uuid.uuid4().hex[:8]
    admin = tenant_a["admin"]
    created = [(await create(client, admin, name=f"Page {prefix} {i}"))["id"] for i in range(5)]
    other = (await create(client, admin, name="Elsewhere"))["id"]
    pages = await walk(client, tenant_a["agent"], 2, q=prefix.upper())
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == created  # creation order, each once
    everything = [i for page in await walk(client, tenant_a["agent"], 2) for i in page]
    assert everything == [*created, other]
    assert [len(page) for page in await walk(client, tenant_a["agent"], 3)] == [3, 3]


async def test_q_is_literal(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    tag = uuid.uuid4().hex[:8]
    percent = await create(client, tenant_a["admin"], name=f"100% open {tag}")
    await create(client, tenant_a["admin"], name=f"Plain {tag}")
    headers = tenant_a["agent"].headers
    response = await client.get(HOURS, params={"q": "%"}, headers=headers)
    assert [item["id"] for item in response.json()["items"]] == [percent["id"]]
    response = await client.get(HOURS, params={"q": "_"}, headers=headers)
    assert response.json()["items"] == []


async def test_tampered_cursor_and_limit_are_422(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers
    response = await client.get(HOURS, params={"cursor": "not a cursor!!"}, headers=headers)
    assert ["query", "cursor"] in field_locs(problem(response, 422))
    response = await client.get(HOURS, params={"limit": 201}, headers=headers)
    assert ["query", "limit"] in field_locs(problem(response, 422))


# --- retried creates --------------------------------------------------------------------


async def test_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers | {"Idempotency-Key": f"hours-{uuid.uuid4()}"}
    body = calendar(holidays=["2025-12-24"])
    first = await client.post(HOURS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(HOURS, json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert list(await snapshot(database, tenant_a)) == [uuid.UUID(first.json()["id"])]

    other = await client.post(HOURS, json=calendar(), headers=headers)
    problem(other, 409)
    assert list(await snapshot(database, tenant_a)) == [uuid.UUID(first.json()["id"])]


async def test_a_refused_create_leaves_the_key_unclaimed(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers | {"Idempotency-Key": f"hours-{uuid.uuid4()}"}
    body = calendar()
    refused = await client.post(
        HOURS, json={**body, "timezone": "Atlantis/Capital"}, headers=headers
    )
    problem(refused, 422)
    created = await client.post(HOURS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert list(await snapshot(database, tenant_a)) == [uuid.UUID(created.json()["id"])]
