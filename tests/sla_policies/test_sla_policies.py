"""/sla-policies: CRUD + restore, role gates, the shape of a policy (strict minutes, real
enums, unique escalations, a live calendar of the organization), tenant isolation,
paging by position, retried creates, and the due-time preview against hand-computed
instants."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.sla import SLAPolicy
from app.sla.clock import escalation_minutes
from tests.support.api import columns, field_locs, page_ids, problem
from tests.support.identity import API, Actor, Tenant

POLICIES = f"{API}/sla-policies"
HOURS = f"{API}/business-hours"
READ_FIELDS = {
    "id",
    "name",
    "description",
    "position",
    "is_active",
    "conditions",
    "first_response_minutes",
    "next_reply_minutes",
    "resolution_minutes",
    "business_hours_id",
    "escalations",
    "created_at",
    "updated_at",
    "deleted_at",
}
NINE_TO_FIVE = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in range(5)]
ALL = {"priorities": [], "customer_tiers": [], "channels": []}


# --- helpers ------------------------------------------------------------------------


def policy(**fields: Any) -> dict[str, Any]:
    """A valid create body, with `fields` on top."""
    return {
        "name": f"Policy {uuid.uuid4().hex[:8]}",
        "first_response_minutes": 60,
        "resolution_minutes": 480,
        **fields,
    }


async def snapshot(database: Database, tenant: Tenant) -> dict[uuid.UUID, dict[str, Any]]:
    """Every SLA-policy row of the organization, deleted ones included."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(sa.select(SLAPolicy).execution_options(include_deleted=True))
        return {row.id: columns(row) for row in rows}


async def policy_row(database: Database, tenant: Tenant, policy_id: str) -> SLAPolicy | None:
    async with database.tenant_session(tenant.org.id) as session:
        return await session.scalar(
            sa.select(SLAPolicy)
            .where(SLAPolicy.id == uuid.UUID(policy_id))
            .execution_options(include_deleted=True)
        )


async def create(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    response = await client.post(POLICIES, json=policy(**fields), headers=actor.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def calendar(
    client: httpx.AsyncClient, actor: Actor, *, timezone: str = "Europe/Berlin", **fields: Any
) -> str:
    body = {
        "name": f"Hours {uuid.uuid4().hex[:8]}",
        "timezone": timezone,
        "intervals": NINE_TO_FIVE,
        **fields,
    }
    response = await client.post(HOURS, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def delete(client: httpx.AsyncClient, actor: Actor, url: str) -> None:
    response = await client.delete(url, headers=actor.headers)
    assert response.status_code == 204, response.text


async def walk(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: Any
) -> list[list[str]]:
    return await page_ids(client, POLICIES, actor.headers, limit, **params)


async def preview(
    client: httpx.AsyncClient, actor: Actor, policy_id: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"{POLICIES}/{policy_id}/preview", params=params, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- create / read --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "api_key"])
async def test_admins_create_a_policy(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    hours_id = await calendar(client, tenant_a["admin"])
    escalations = [
        {"at_percent": 75, "action": "notify", "target": "first_response"},
        {"at_percent": 100, "action": "reassign", "target": "resolution", "skills": ["billing"]},
    ]
    conditions = {"priorities": ["urgent", "high"], "customer_tiers": ["enterprise"]}
    response = await client.post(
        POLICIES,
        json=policy(
            name="  Enterprise  ",
            description="Office hours.",
            position=10,
            conditions=conditions,
            next_reply_minutes=120,
            business_hours_id=hours_id,
            escalations=escalations,
        ),
        headers=tenant_a[name].headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == READ_FIELDS
    assert (body["name"], body["description"], body["position"], body["is_active"]) == (
        "Enterprise",
        "Office hours.",
        10,
        True,
    )
    assert body["conditions"] == {**conditions, "channels": []}
    assert (
        body["first_response_minutes"],
        body["next_reply_minutes"],
        body["resolution_minutes"],
    ) == (60, 120, 480)
    assert body["business_hours_id"] == hours_id
    stored = [{"skills": [], **e} for e in escalations]
    assert body["escalations"] == stored
    row = await policy_row(database, tenant_a, body["id"])
    assert row is not None and row.organization_id == tenant_a.org.id
    assert row.conditions == {**conditions, "channels": []}
    assert row.escalations == stored
    assert str(row.business_hours_id) == hours_id
    again = await client.get(f"{POLICIES}/{body['id']}", headers=tenant_a["agent"].headers)
    assert again.status_code == 200, again.text
    assert again.json() == body


async def test_create_defaults(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    body = await create(client, tenant_a["admin"])
    assert body["conditions"] == ALL
    assert (body["description"], body["position"], body["is_active"]) == ("", 0, True)
    assert (body["next_reply_minutes"], body["business_hours_id"], body["escalations"]) == (
        None,
        None,
        [],
    )


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "api_key"])
async def test_staff_read_policies(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    own = await create(client, tenant_a["admin"])
    await create(client, tenant_b["admin"])
    headers = tenant_a[name].headers
    one = await client.get(f"{POLICIES}/{own['id']}", headers=headers)
    assert one.status_code == 200 and one.json() == own
    listed = await client.get(POLICIES, headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"items": [own], "next_cursor": None}
    assert (await preview(client, tenant_a[name], own["id"], start="2025-01-01T00:00:00Z"))[
        "policy_id"
    ] == own["id"]


# --- role gates -----------------------------------------------------------------------


async def forbidden_calls(
    client: httpx.AsyncClient, actor: Actor, policy_id: str, *, reads: bool
) -> list[httpx.Response]:
    url = f"{POLICIES}/{policy_id}"
    headers = actor.headers
    calls = [
        await client.post(POLICIES, json=policy(), headers=headers),
        await client.patch(url, json={"position": 3}, headers=headers),
        await client.delete(url, headers=headers),
        await client.post(f"{url}/restore", headers=headers),
    ]
    if reads:
        calls += [
            await client.get(POLICIES, headers=headers),
            await client.get(url, headers=headers),
            await client.get(
                f"{url}/preview", params={"start": "2025-01-01T00:00:00Z"}, headers=headers
            ),
        ]
    return calls


@pytest.mark.parametrize("name", ["manager", "agent"])
async def test_staff_read_but_may_not_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(client, tenant_a[name], own["id"], reads=False):
        assert "sla:manage" in problem(response, 403)["detail"]
    assert await snapshot(database, tenant_a) == before


async def test_customer_may_neither_read_nor_write(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    for response in await forbidden_calls(client, tenant_a["customer"], own["id"], reads=True):
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


async def test_unauthenticated_is_401(client: httpx.AsyncClient) -> None:
    problem(await client.get(POLICIES), 401)
    problem(await client.post(POLICIES, json=policy()), 401)


# --- the shape of a policy ------------------------------------------------------------


def escalation(**fields: Any) -> dict[str, Any]:
    return {"at_percent": 50, "action": "notify", "target": "resolution", **fields}


INVALID_CREATES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"name": None}, ["body", "name"]),
    ({"name": "  "}, ["body", "name"]),
    ({"first_response_minutes": None}, ["body", "first_response_minutes"]),
    ({"resolution_minutes": None}, ["body", "resolution_minutes"]),
    # targets: strict integers, at least one minute
    ({"first_response_minutes": 0}, ["body", "first_response_minutes"]),
    ({"first_response_minutes": -5}, ["body", "first_response_minutes"]),
    ({"first_response_minutes": True}, ["body", "first_response_minutes"]),
    ({"first_response_minutes": "60"}, ["body", "first_response_minutes"]),
    ({"first_response_minutes": 1.5}, ["body", "first_response_minutes"]),
    ({"resolution_minutes": 0}, ["body", "resolution_minutes"]),
    ({"resolution_minutes": False}, ["body", "resolution_minutes"]),
    ({"next_reply_minutes": 0}, ["body", "next_reply_minutes"]),
    ({"next_reply_minutes": True}, ["body", "next_reply_minutes"]),
    ({"position": -1}, ["body", "position"]),
    ({"position": True}, ["body", "position"]),
    ({"is_active": "yes"}, ["body", "is_active"]),
    # conditions: the real enums, no repeats
    ({"conditions": {"priorities": ["critical"]}}, ["body", "conditions", "priorities", 0]),
    (
        {"conditions": {"priorities": ["high", "high"]}},
        ["body", "conditions", "priorities"],
    ),
    ({"conditions": {"customer_tiers": ["gold"]}}, ["body", "conditions", "customer_tiers", 0]),
    (
        {"conditions": {"channels": ["email", "fax"]}},
        ["body", "conditions", "channels", 1],
    ),
    ({"conditions": {"channels": ["chat", "chat"]}}, ["body", "conditions", "channels"]),
    ({"conditions": {"teams": []}}, ["body", "conditions", "teams"]),
    ({"conditions": None}, ["body", "conditions"]),
    # escalations
    ({"escalations": [escalation(at_percent=0)]}, ["body", "escalations", 0, "at_percent"]),
    ({"escalations": [escalation(at_percent=101)]}, ["body", "escalations", 0, "at_percent"]),
    ({"escalations": [escalation(at_percent=True)]}, ["body", "escalations", 0, "at_percent"]),
    ({"escalations": [escalation(at_percent=50.5)]}, ["body", "escalations", 0, "at_percent"]),
    ({"escalations": [escalation(action="page")]}, ["body", "escalations", 0, "action"]),
    ({"escalations": [escalation(target="closing")]}, ["body", "escalations", 0, "target"]),
    ({"escalations": [escalation(extra=1)]}, ["body", "escalations", 0, "extra"]),
    ({"escalations": [escalation(), escalation()]}, ["body", "escalations"]),
    # references and mass assignment
    ({"business_hours_id": "not-a-uuid"}, ["body", "business_hours_id"]),
    ({"organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
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
    body = policy(**fields)
    for name, value in fields.items():
        if value is None and name in {"name", "first_response_minutes", "resolution_minutes"}:
            del body[name]
    response = await client.post(POLICIES, json=body, headers=tenant_a["admin"].headers)
    assert field_locs(problem(response, 422)) == [loc]
    assert await snapshot(database, tenant_a) == before


async def test_same_escalation_at_other_percent_or_action_is_fine(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    escalations = [escalation(), escalation(at_percent=90), escalation(action="reassign")]
    body = await create(client, tenant_a["admin"], escalations=escalations)
    assert body["escalations"] == [{"skills": [], **e} for e in escalations]


async def test_business_hours_must_be_a_live_calendar_of_the_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    admin = tenant_a["admin"]
    theirs = await calendar(client, tenant_b["admin"])
    gone = await calendar(client, admin)
    await delete(client, admin, f"{HOURS}/{gone}")
    before = await snapshot(database, tenant_a)
    for hours_id in (theirs, gone, str(uuid.uuid4())):
        response = await client.post(
            POLICIES, json=policy(business_hours_id=hours_id), headers=admin.headers
        )
        body = problem(response, 422)
        assert field_locs(body) == [["body", "business_hours_id"]]
        own = await create(client, admin)
        before = await snapshot(database, tenant_a)
        patched = await client.patch(
            f"{POLICIES}/{own['id']}", json={"business_hours_id": hours_id}, headers=admin.headers
        )
        assert field_locs(problem(patched, 422)) == [["body", "business_hours_id"]]
        assert await snapshot(database, tenant_a) == before


INVALID_PATCHES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"name": None}, ["body", "name"]),
    ({"first_response_minutes": None}, ["body", "first_response_minutes"]),
    ({"resolution_minutes": 0}, ["body", "resolution_minutes"]),
    ({"resolution_minutes": True}, ["body", "resolution_minutes"]),
    ({"position": None}, ["body", "position"]),
    ({"is_active": None}, ["body", "is_active"]),
    ({"conditions": None}, ["body", "conditions"]),
    ({"escalations": None}, ["body", "escalations"]),
    ({"description": None}, ["body", "description"]),
    ({"escalations": [escalation(), escalation()]}, ["body", "escalations"]),
    ({"conditions": {"priorities": ["low", "low"]}}, ["body", "conditions", "priorities"]),
    ({"organization_id": str(uuid.UUID(int=1))}, ["body", "organization_id"]),
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
    own = await create(client, tenant_a["admin"])
    before = await snapshot(database, tenant_a)
    response = await client.patch(
        f"{POLICIES}/{own['id']}", json=payload, headers=tenant_a["admin"].headers
    )
    assert field_locs(problem(response, 422)) == [loc]
    assert await snapshot(database, tenant_a) == before


# --- patch ----------------------------------------------------------------------------


async def test_admin_patches_a_policy(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    hours_id = await calendar(client, admin)
    own = await create(client, admin, next_reply_minutes=30, business_hours_id=hours_id)
    response = await client.patch(
        f"{POLICIES}/{own['id']}",
        json={
            "is_active": False,
            "position": 7,
            "next_reply_minutes": None,
            "business_hours_id": None,
            "conditions": {"channels": ["email"]},
            "escalations": [escalation(target="first_response")],
        },
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["is_active"], body["position"], body["next_reply_minutes"]) == (False, 7, None)
    assert body["business_hours_id"] is None
    assert body["conditions"] == {**ALL, "channels": ["email"]}
    assert body["first_response_minutes"] == 60  # untouched
    row = await policy_row(database, tenant_a, own["id"])
    assert row is not None
    assert (row.is_active, row.position, row.next_reply_minutes, row.business_hours_id) == (
        False,
        7,
        None,
        None,
    )
    assert row.escalations == [escalation(target="first_response")]


async def test_a_deleted_calendar_stays_until_changed(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    hours_id = await calendar(client, admin)
    own = await create(client, admin, business_hours_id=hours_id)
    await delete(client, admin, f"{HOURS}/{hours_id}")
    response = await client.patch(
        f"{POLICIES}/{own['id']}",
        json={"business_hours_id": hours_id, "position": 2},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["business_hours_id"] == hours_id


# --- tenant isolation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("GET", "", None),
        ("PATCH", "", {"position": 1}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
        ("GET", "/preview?start=2025-01-01T00:00:00Z", None),
    ],
)
async def test_other_organizations_policy_is_missing(
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

    async def call(policy_id: str) -> httpx.Response:
        return await client.request(
            method,
            f"{POLICIES}/{policy_id}{suffix}",
            json=payload,
            headers=tenant_a["admin"].headers,
        )

    assert problem(await call(theirs["id"]), 404) == problem(await call(str(uuid.uuid4())), 404)
    assert await snapshot(database, tenant_b) == before_b


# --- delete / restore -------------------------------------------------------------------


async def test_delete_restore_and_include_deleted(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    kept = await create(client, admin, name="Same")
    gone = await create(client, admin, name="Same")
    url = f"{POLICIES}/{gone['id']}"
    await delete(client, admin, url)
    row = await policy_row(database, tenant_a, gone["id"])
    assert row is not None and row.deleted_at is not None
    problem(await client.get(url, headers=admin.headers), 404)
    problem(await client.delete(url, headers=admin.headers), 404)
    problem(
        await client.get(
            f"{url}/preview", params={"start": "2025-01-01T00:00:00Z"}, headers=admin.headers
        ),
        404,
    )
    assert [i for page in await walk(client, admin, 50) for i in page] == [kept["id"]]
    everything = await client.get(
        POLICIES, params={"include_deleted": "true"}, headers=admin.headers
    )
    assert {item["id"] for item in everything.json()["items"]} == {kept["id"], gone["id"]}
    for name in ("manager", "agent"):
        problem(
            await client.get(
                POLICIES, params={"include_deleted": "true"}, headers=tenant_a[name].headers
            ),
            403,
        )
    # Names are not unique: a live "Same" does not block the restore.
    restored = await client.post(f"{url}/restore", headers=admin.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None
    before = await snapshot(database, tenant_a)
    again = await client.post(f"{url}/restore", headers=admin.headers)
    assert again.status_code == 200 and again.json() == restored.json()
    assert await snapshot(database, tenant_a) == before


# --- pagination and filters -------------------------------------------------------------


async def test_pages_walk_to_the_end_by_position(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    positions = [30, 10, 20, 10, 0]
    made = [(await create(client, admin, position=p))["id"] for p in positions]
    inactive = (await create(client, admin, position=5, is_active=False))["id"]
    expected = [made[4], inactive, made[1], made[3], made[2], made[0]]
    pages = await walk(client, tenant_a["agent"], 2)
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [i for page in pages for i in page] == expected
    active = [
        i for page in await walk(client, tenant_a["agent"], 4, is_active="true") for i in page
    ]
    assert active == [i for i in expected if i != inactive]
    assert [i for page in await walk(client, admin, 4, is_active="false") for i in page] == [
        inactive
    ]


# --- retried creates --------------------------------------------------------------------


async def test_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers | {"Idempotency-Key": f"sla-{uuid.uuid4()}"}
    body = policy()
    first = await client.post(POLICIES, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(POLICIES, json=body, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert list(await snapshot(database, tenant_a)) == [uuid.UUID(first.json()["id"])]
    problem(await client.post(POLICIES, json=policy(), headers=headers), 409)
    assert list(await snapshot(database, tenant_a)) == [uuid.UUID(first.json()["id"])]


# --- preview ------------------------------------------------------------------------------


def test_escalation_minutes_round_up() -> None:
    assert escalation_minutes(75, 60) == 45
    assert escalation_minutes(75, 10) == 8
    assert escalation_minutes(1, 1) == 1
    assert escalation_minutes(100, 480) == 480


async def test_preview_on_office_hours_over_a_weekend(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    hours_id = await calendar(client, admin)  # Mon-Fri 09:00-17:00 Europe/Berlin
    own = await create(
        client,
        admin,
        first_response_minutes=60,
        resolution_minutes=480,
        business_hours_id=hours_id,
        conditions={"priorities": ["high", "urgent"]},
        escalations=[
            {"at_percent": 75, "action": "notify", "target": "first_response"},
            {"at_percent": 50, "action": "reassign", "target": "next_reply"},
        ],
    )
    # Friday 2025-03-07 15:00 in Berlin (CET, +01:00).
    body = await preview(client, tenant_a["agent"], own["id"], start="2025-03-07T15:00:00+01:00")
    assert body == {
        "policy_id": own["id"],
        "start": "2025-03-07T14:00:00Z",
        "calendar": {"business_hours_id": hours_id, "timezone": "Europe/Berlin"},
        "first_response_due_at": "2025-03-07T15:00:00Z",  # 16:00 local
        "next_reply_due_at": None,
        # 2 h on Friday, 6 h on Monday: Monday 15:00 local
        "resolution_due_at": "2025-03-10T14:00:00Z",
        "escalations": [
            # 75 % of 60 minutes: 45 minutes, 15:45 local
            {
                "target": "first_response",
                "at_percent": 75,
                "action": "notify",
                "due_at": "2025-03-07T14:45:00Z",
            },
            {"target": "next_reply", "at_percent": 50, "action": "reassign", "due_at": None},
        ],
    }
    high = await preview(client, admin, own["id"], start="2025-03-07T14:00:00Z", priority="high")
    assert high["matches"] is True
    low = await preview(client, admin, own["id"], start="2025-03-07T14:00:00Z", priority="low")
    assert low["matches"] is False


async def test_preview_around_the_clock(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    own = await create(
        client,
        tenant_a["admin"],
        first_response_minutes=90,
        next_reply_minutes=30,
        resolution_minutes=2 * 24 * 60,
        is_active=False,  # previewed all the same
    )
    body = await preview(
        client, tenant_a["admin"], own["id"], start="2025-03-08T23:30:00Z", priority="low"
    )
    assert body["calendar"] == {"business_hours_id": None, "timezone": "UTC"}
    assert body["first_response_due_at"] == "2025-03-09T01:00:00Z"
    assert body["next_reply_due_at"] == "2025-03-09T00:00:00Z"
    assert body["resolution_due_at"] == "2025-03-10T23:30:00Z"
    assert body["escalations"] == []
    assert body["matches"] is True  # no priority condition: every priority


async def test_preview_counts_24_7_once_the_calendar_is_deleted(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    hours_id = await calendar(client, admin)
    own = await create(client, admin, business_hours_id=hours_id, resolution_minutes=480)
    await delete(client, admin, f"{HOURS}/{hours_id}")
    body = await preview(client, admin, own["id"], start="2025-03-07T14:00:00Z")
    assert body["calendar"] == {"business_hours_id": None, "timezone": "UTC"}
    assert body["resolution_due_at"] == "2025-03-07T22:00:00Z"
    assert "matches" not in body


async def test_preview_on_a_dst_day(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    """Sunday 2025-03-30 00:00-06:00 Berlin lasts 5 real hours (clocks jump 02:00→03:00)."""
    admin = tenant_a["admin"]
    hours_id = await calendar(
        client, admin, intervals=[{"weekday": 6, "start": "00:00", "end": "06:00"}]
    )
    own = await create(
        client,
        admin,
        first_response_minutes=300,
        resolution_minutes=360,
        business_hours_id=hours_id,
    )
    body = await preview(client, admin, own["id"], start="2025-03-30T00:00:00+01:00")
    # 00:00 CET = 23:00Z the day before; 06:00 CEST = 04:00Z: 300 minutes fit exactly.
    assert body["first_response_due_at"] == "2025-03-30T04:00:00Z"
    # One hour more: the next Sunday 01:00 CEST.
    assert body["resolution_due_at"] == "2025-04-05T23:00:00Z"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"start": "2025-03-07T15:00:00"},  # no offset
        {"start": "tomorrow"},
        {"start": "1741355200"},
        {"start": "2025-03-07T15:00:00Z", "priority": "critical"},
    ],
)
async def test_preview_rejects_bad_parameters(
    client: httpx.AsyncClient, tenant_a: Tenant, params: dict[str, Any]
) -> None:
    own = await create(client, tenant_a["admin"])
    response = await client.get(
        f"{POLICIES}/{own['id']}/preview", params=params, headers=tenant_a["admin"].headers
    )
    locs = field_locs(problem(response, 422))
    assert locs and all(loc[0] == "query" for loc in locs)
