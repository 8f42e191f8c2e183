"""/channels: CRUD + restore, secrets shown once and rotated with an overlap, the inbox
list and its filters, role gates and tenant isolation, checked over HTTP and in
PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models import Channel, Department
from tests.channels.helpers import CHANNELS, deliver, envelope, make_channel
from tests.support.api import field_locs, page_ids, problem
from tests.support.identity import Tenant

READ_FIELDS = {
    "id",
    "type",
    "name",
    "address",
    "default_department_id",
    "default_priority",
    "reply_url",
    "accept_unknown_senders",
    "new_tickets_per_sender_per_hour",
    "is_active",
    "inbound_url",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
    "deleted_at",
}


async def channel_row(database: Database, tenant: Tenant, channel_id: str) -> Channel:
    async with database.tenant_session(tenant.org.id) as session:
        row = await session.scalar(
            sa.select(Channel)
            .where(Channel.id == uuid.UUID(channel_id))
            .execution_options(include_deleted=True)
        )
        assert row is not None
        return row


async def test_the_secret_is_shown_at_creation_only(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    created = await make_channel(
        client, tenant_a, address="Support@Example.com", default_priority="urgent"
    )
    assert set(created) == READ_FIELDS | {"secret"}
    assert created["secret"].startswith("whsec_")
    assert created["inbound_url"] == f"/api/v1/inbound/email/{created['id']}"
    assert created["address"] == "Support@Example.com"
    assert (created["accept_unknown_senders"], created["new_tickets_per_sender_per_hour"]) == (
        True,
        20,
    )
    row = await channel_row(database, tenant_a, created["id"])
    assert row.secret == created["secret"]
    got = await client.get(f"{CHANNELS}/{created['id']}", headers=tenant_a["admin"].headers)
    assert set(got.json()) == READ_FIELDS
    listed = await client.get(CHANNELS, headers=tenant_a["admin"].headers)
    assert all("secret" not in item for item in listed.json()["items"])
    assert created["secret"] not in listed.text + got.text


@pytest.mark.parametrize("role", ["manager", "agent", "customer"])
async def test_only_admins_manage_channels(
    client: httpx.AsyncClient, tenant_a: Tenant, role: str
) -> None:
    channel = await make_channel(client, tenant_a)
    headers = tenant_a[role].headers
    problem(await client.get(CHANNELS, headers=headers), 403)
    problem(await client.post(CHANNELS, json={"type": "chat", "name": "x"}, headers=headers), 403)
    problem(await client.post(f"{CHANNELS}/{channel['id']}/rotate-secret", headers=headers), 403)
    problem(await client.get(f"{CHANNELS}/{channel['id']}/inbox", headers=headers), 403)


async def test_an_api_key_of_an_admin_manages_channels(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await client.post(
        CHANNELS, json={"type": "chat", "name": "Bot"}, headers=tenant_a["api_key"].headers
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "fax", "name": "x"}, ["body", "type"]),
        ({"type": "email", "name": " "}, ["body", "name"]),
        ({"type": "email", "name": "x", "address": "not-an-address"}, ["body"]),
        ({"type": "chat", "name": "x", "reply_url": "ftp://example.com"}, ["body", "reply_url"]),
        ({"type": "chat", "name": "x", "new_tickets_per_sender_per_hour": 0}, None),
        ({"type": "chat", "name": "x", "secret": "whsec_mine"}, ["body", "secret"]),
        ({"type": "chat", "name": "x", "organization_id": str(uuid.uuid4())}, None),
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, tenant_a: Tenant, body: dict[str, Any], loc: list[str] | None
) -> None:
    response = await client.post(CHANNELS, json=body, headers=tenant_a["admin"].headers)
    locs = field_locs(problem(response, 422))
    if loc is not None:
        assert loc in locs


async def test_the_default_department_must_be_a_live_one_of_the_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = {"type": "email", "name": "x", "default_department_id": str(tenant_b.department_id)}
    response = await client.post(CHANNELS, json=theirs, headers=tenant_a["admin"].headers)
    assert ["body", "default_department_id"] in field_locs(problem(response, 422))
    async with database.tenant_session(tenant_a.org.id) as session:
        gone = Department(name=f"Old {uuid.uuid4().hex[:6]}")
        session.add(gone)
        await session.flush()
        gone.soft_delete()
        await session.commit()
    channel = await make_channel(client, tenant_a)
    patched = await client.patch(
        f"{CHANNELS}/{channel['id']}",
        json={"default_department_id": str(gone.id)},
        headers=tenant_a["admin"].headers,
    )
    problem(patched, 422)


async def test_update_changes_what_is_sent_and_clears_nullable_fields(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    channel = await make_channel(
        client,
        tenant_a,
        "chat",
        address="widget",
        reply_url="https://chat.example.com/hook",
        default_department_id=str(tenant_a.department_id),
    )
    url = f"{CHANNELS}/{channel['id']}"
    response = await client.patch(
        url,
        json={
            "name": "Renamed",
            "reply_url": None,
            "default_department_id": None,
            "new_tickets_per_sender_per_hour": 5,
            "is_active": False,
        },
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["name"], updated["reply_url"], updated["default_department_id"]) == (
        "Renamed",
        None,
        None,
    )
    assert (updated["new_tickets_per_sender_per_hour"], updated["is_active"]) == (5, False)
    assert updated["address"] == "widget"
    for body in ({"type": "email"}, {"name": None}, {"secret": "whsec_x"}):
        problem(await client.patch(url, json=body, headers=tenant_a["admin"].headers), 422)


async def test_an_email_address_is_one_channel_per_organization(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    address = f"help-{uuid.uuid4().hex[:6]}@example.com"
    first = await make_channel(client, tenant_a, address=address)
    clash = {"type": "email", "name": "Again", "address": address.upper()}
    problem(await client.post(CHANNELS, json=clash, headers=tenant_a["admin"].headers), 409)
    # Another organization, or a chat channel, may use the same name.
    await make_channel(client, tenant_b, address=address)
    await make_channel(client, tenant_a, "chat", address=address)
    # Deleted, its address is free; restored while taken, it is a 409.
    headers = tenant_a["admin"].headers
    assert (await client.delete(f"{CHANNELS}/{first['id']}", headers=headers)).status_code == 204
    second = await make_channel(client, tenant_a, address=address)
    problem(await client.post(f"{CHANNELS}/{first['id']}/restore", headers=headers), 409)
    problem(
        await client.patch(
            f"{CHANNELS}/{second['id']}", json={"address": "bad address"}, headers=headers
        ),
        422,
    )


async def test_delete_hides_and_restore_brings_back_with_its_secret(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers
    channel = await make_channel(client, tenant_a)
    url = f"{CHANNELS}/{channel['id']}"
    assert (await client.delete(url, headers=headers)).status_code == 204
    problem(await client.get(url, headers=headers), 404)
    problem(await client.delete(url, headers=headers), 404)
    assert channel["id"] not in (await client.get(CHANNELS, headers=headers)).text
    listed = await client.get(CHANNELS, params={"include_deleted": "true"}, headers=headers)
    assert channel["id"] in listed.text
    problem(await deliver(client, channel, envelope()), 404)
    restored = await client.post(f"{url}/restore", headers=headers)
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert (await deliver(client, channel, envelope())).json()["status"] == "created"
    again = await client.post(f"{url}/restore", headers=headers)
    assert again.status_code == 200


async def test_rotation_keeps_the_old_secret_for_the_overlap_only(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers
    channel = await make_channel(client, tenant_a)
    old = channel["secret"]
    rotated = await client.post(f"{CHANNELS}/{channel['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)
    assert (await deliver(client, channel, envelope(), secret=old)).status_code == 200
    assert (await deliver(client, channel, envelope(), secret=new)).status_code == 200
    # The overlap ends: the old secret stops verifying.
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.get(Channel, uuid.UUID(channel["id"]))
        assert row is not None
        row.previous_secret_expires_at = datetime.now(UTC) - timedelta(seconds=1)
        await session.commit()
    problem(await deliver(client, channel, envelope(), secret=old), 401)
    assert (await deliver(client, channel, envelope(), secret=new)).status_code == 200


async def test_a_rotation_without_overlap_retires_the_old_secret_at_once(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers
    channel = await make_channel(client, tenant_a)
    url = f"{CHANNELS}/{channel['id']}/rotate-secret"
    first = (await client.post(url, json={"overlap_minutes": 60}, headers=headers)).json()
    second = await client.post(url, json={"overlap_minutes": 0}, headers=headers)
    assert second.json()["previous_secret_expires_at"] is None
    for retired in (channel["secret"], first["secret"]):
        problem(await deliver(client, channel, envelope(), secret=retired), 401)
    assert (await deliver(client, channel, envelope(), secret=second.json()["secret"])).is_success
    problem(await client.post(url, json={"overlap_minutes": -1}, headers=headers), 422)
    problem(await client.post(url, json={"overlap_minutes": 10081}, headers=headers), 422)


async def test_the_inbox_lists_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    headers = tenant_a["admin"].headers
    channel = await make_channel(client, tenant_a)
    answers = [(await deliver(client, channel, envelope())).json() for _ in range(3)]
    ignored = (
        await deliver(client, channel, envelope(headers={"Auto-Submitted": "auto-replied"}))
    ).json()
    url = f"{CHANNELS}/{channel['id']}/inbox"
    listed = (await client.get(url, headers=headers)).json()["items"]
    assert [i["id"] for i in listed] == [ignored["inbox_id"]] + [
        a["inbox_id"] for a in reversed(answers)
    ]
    assert listed[0]["status"] == "ignored" and listed[0]["reason"] == "auto_submitted"
    assert listed[1]["size"] > 0 and "raw_body" not in listed[1]
    only = await client.get(url, params={"status": "ignored"}, headers=headers)
    assert [i["id"] for i in only.json()["items"]] == [ignored["inbox_id"]]
    later = await client.get(url, params={"since": "2999-01-01T00:00:00Z"}, headers=headers)
    assert later.json()["items"] == []
    pages = await page_ids(client, url, headers, 2)
    assert [len(p) for p in pages] == [2, 2]
    problem(await client.get(url, params={"status": "lost"}, headers=headers), 422)


async def test_another_organizations_channels_and_inbox_are_not_found(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    inbox_id = (
        await deliver(client, channel, b'{"message_id": "<f@x>"}', content_type="application/json")
    ).json()["inbox_id"]
    theirs = tenant_b["admin"].headers
    url = f"{CHANNELS}/{channel['id']}"
    missing = (await client.get(f"{CHANNELS}/{uuid.uuid4()}", headers=theirs)).json()
    assert (await client.get(url, headers=theirs)).json() == missing
    for method, path, body in [
        ("GET", url, None),
        ("PATCH", url, {"name": "Mine"}),
        ("DELETE", url, None),
        ("POST", f"{url}/restore", None),
        ("POST", f"{url}/rotate-secret", None),
        ("GET", f"{url}/inbox", None),
        ("POST", f"{url}/inbox/{inbox_id}/retry", None),
    ]:
        response = await client.request(method, path, json=body, headers=theirs)
        problem(response, 404)
    assert channel["id"] not in (await client.get(CHANNELS, headers=theirs)).text
    mine = await client.get(f"{url}/inbox", headers=tenant_a["admin"].headers)
    assert [i["id"] for i in mine.json()["items"]] == [inbox_id]
    # An inbox row of another channel of the organization is not this channel's.
    other = await make_channel(client, tenant_a)
    problem(
        await client.post(
            f"{CHANNELS}/{other['id']}/inbox/{inbox_id}/retry", headers=tenant_a["admin"].headers
        ),
        404,
    )
