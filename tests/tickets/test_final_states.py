"""What a ticket refuses, and what a write of a ticket waits for: closed and cancelled
tickets take no more changes, a stale If-Match stops a delete, a restore never brings
back a unique value a live ticket holds, and an upload holds its ticket until it
commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.auth.principal import Principal, PrincipalKind
from app.db.database import Database
from app.kit.storage import LocalStorage
from app.models.custom_field import CustomField, FieldType
from app.models.ticket import TicketAttachment
from app.models.user import Role
from tests.support.identity import API, Tenant
from tests.support.tickets import TICKETS, create, patched


async def _to(client: httpx.AsyncClient, tenant: Tenant, ticket_id: str, *steps: str) -> None:
    for step in steps:
        await patched(client, tenant["agent"], ticket_id, {"status": step})


@pytest.mark.parametrize(
    "path", [("resolved", "closed"), ("cancelled",)], ids=["closed", "cancelled"]
)
async def test_a_final_ticket_takes_no_change_comment_or_file(
    client: httpx.AsyncClient, tenant_a: Tenant, path: tuple[str, ...]
) -> None:
    ticket = await create(client, tenant_a, subject="Final")
    await _to(client, tenant_a, ticket["id"], *path)
    agent = tenant_a["agent"].headers
    before = (await client.get(f"{TICKETS}/{ticket['id']}", headers=agent)).json()

    patched = await client.patch(f"{TICKETS}/{ticket['id']}", json={"subject": "x"}, headers=agent)
    assert patched.status_code == 409, patched.text
    assert "open a new ticket" in patched.json()["detail"]
    comment = await client.post(
        f"{TICKETS}/{ticket['id']}/comments", json={"content": "late"}, headers=agent
    )
    assert comment.status_code == 409, comment.text
    upload = await client.post(
        f"{TICKETS}/{ticket['id']}/attachments",
        files={"file": ("late.txt", b"late", "text/plain")},
        headers=agent,
    )
    assert upload.status_code == 409, upload.text

    after = (await client.get(f"{TICKETS}/{ticket['id']}", headers=agent)).json()
    assert after == before
    thread = await client.get(f"{TICKETS}/{ticket['id']}/comments", headers=agent)
    assert thread.json()["items"] == []


async def test_delete_honours_if_match(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    ticket = await create(client, tenant_a, subject="Final")
    manager = tenant_a["manager"].headers
    stale = await client.delete(f"{TICKETS}/{ticket['id']}", headers={**manager, "If-Match": '"0"'})
    assert stale.status_code == 412, stale.text
    assert (await client.get(f"{TICKETS}/{ticket['id']}", headers=manager)).status_code == 200
    current = await client.delete(
        f"{TICKETS}/{ticket['id']}", headers={**manager, "If-Match": f'"{ticket["version"]}"'}
    )
    assert current.status_code == 204, current.text
    assert (await client.get(f"{TICKETS}/{ticket['id']}", headers=manager)).status_code == 404


async def test_restore_refuses_a_unique_value_a_live_ticket_took(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    async with database.tenant_session(tenant_a.org.id) as session:
        session.add(CustomField(name="serial", field_type=FieldType.TEXT, is_unique=True))
        await session.commit()
    admin = tenant_a["admin"].headers
    first = await create(client, tenant_a, subject="Final", custom_fields={"serial": "SN-1"})
    assert (await client.delete(f"{TICKETS}/{first['id']}", headers=admin)).status_code == 204
    await create(client, tenant_a, subject="Final", custom_fields={"serial": "SN-1"})  # free again

    restored = await client.post(f"{TICKETS}/{first['id']}/restore", headers=admin)
    assert restored.status_code == 409, restored.text
    assert "serial" in restored.json()["detail"]
    assert (await client.get(f"{TICKETS}/{first['id']}", headers=admin)).status_code == 404


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path)


async def test_a_ticket_deleted_during_an_upload_takes_no_file(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, storage: LocalStorage
) -> None:
    """A slow upload holds no lock while its bytes stream in (a delete goes through at
    once); it locks the ticket before writing its row, finds it deleted and is refused,
    its object removed — the file is never committed to a deleted ticket and the feed
    ends with the deletion."""
    from app.attachments.service import NewAttachment, add_attachment
    from app.kit.errors import NotFound

    ticket = await create(client, tenant_a, subject="Final")
    agent = tenant_a["agent"]
    assert agent.user_id is not None
    actor = Principal(PrincipalKind.USER, agent.user_id, tenant_a.org.id, Role.AGENT)
    streaming, release = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first half "
        streaming.set()
        await release.wait()
        yield b"second half"

    async def upload() -> None:
        uow = database.tenant_unit(tenant_a.org.id)
        try:
            await add_attachment(
                uow,
                storage,
                actor,
                uuid.UUID(ticket["id"]),
                NewAttachment(file_name="a.txt", chunks=chunks()),
                may_write_internal=True,
                max_bytes=1 << 20,
            )
            await uow.commit()
        finally:
            await uow.close()

    uploading = asyncio.create_task(upload())
    await streaming.wait()
    deleted = await client.delete(f"{TICKETS}/{ticket['id']}", headers=tenant_a["manager"].headers)
    assert deleted.status_code == 204  # not held up by the stream
    release.set()
    with pytest.raises(NotFound):
        await uploading
    assert [path for path in storage.root.rglob("*") if path.is_file()] == []
    async with database.tenant_session(tenant_a.org.id) as session:
        files = await session.scalar(sa.select(sa.func.count()).select_from(TicketAttachment))
    assert files == 0

    # The feed serves a change once every older transaction on the server has ended
    # (any database's): poll until the deletion has settled.
    kinds: list[str] = []
    for _ in range(50):
        feed = await client.get(f"{API}/changes", params={"limit": 200}, headers=agent.headers)
        kinds = [e["change"] for e in feed.json()["items"] if e["ticket_id"] == ticket["id"]]
        if len(kinds) == 2:
            break
        await asyncio.sleep(0.1)
    assert kinds == ["created", "deleted"]
