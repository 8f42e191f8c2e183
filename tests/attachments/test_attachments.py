"""/tickets/{id}/attachments and /attachments/{id}/download: the upload → list →
download round trip, content sniffing (the bytes decide, never the client), file names
that never become paths, the size limit and empty files (nothing left behind), who sees
which file (customers, other customers, other organizations, deleted tickets), download
counting, one history row and one event per file, API keys — over HTTP, against
PostgreSQL and real files in a temporary storage directory."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.attachments import service as attachments_service
from app.attachments.router import router as attachments_router
from app.config import API_PREFIX, Settings
from app.db.database import Database
from app.kit.errors import PROBLEM_RESPONSES
from app.kit.storage import InvalidStorageKey, LocalStorage
from app.main import create_app
from app.models.ticket import CommentType, Ticket, TicketAttachment, TicketComment
from app.models.user import Role
from app.tickets.service import open_ticket
from tests.support.api import problem
from tests.support.identity import API, Actor, Tenant, add_user
from tests.support.tickets import event_rows, history_rows

PROBLEM = "application/problem+json"
TICKETS = f"{API}/tickets"
ATTACHMENT_FIELDS = {
    "id",
    "ticket_id",
    "comment_id",
    "uploaded_by_id",
    "file_name",
    "file_size",
    "content_type",
    "sha256",
    "is_public",
    "download_count",
    "created_at",
}
STAFF = ("admin", "manager", "agent")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"


# --- the application under test ---------------------------------------------------------


def with_attachment_routes(app: FastAPI) -> FastAPI:
    """Until app.main includes the attachments router, include it here (once)."""
    if not any(getattr(route, "path", "").endswith("/download") for route in app.routes):
        app.include_router(attachments_router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    return app


@asynccontextmanager
async def app_client(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = with_attachment_routes(create_app(settings.model_copy(update=overrides)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage")


@pytest.fixture(scope="module")
async def client(settings: Settings, storage_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real application, storing under a temporary directory (not ./var)."""
    async with app_client(settings, storage_dir=storage_dir) as c:
        yield c


# --- helpers ------------------------------------------------------------------------------


def attachments_url(ticket_id: uuid.UUID | str) -> str:
    return f"{TICKETS}/{ticket_id}/attachments"


def download_url(attachment_id: uuid.UUID | str) -> str:
    return f"{API}/attachments/{attachment_id}/download"


async def make_ticket(
    database: Database, tenant: Tenant, *, customer_id: uuid.UUID | None = None
) -> uuid.UUID:
    async with database.tenant_session(tenant.org.id) as session:
        ticket = await open_ticket(
            database.unit_of_work(session),
            subject=f"Scanner jammed {uuid.uuid4().hex[:6]}",
            customer_id=customer_id or tenant["customer"].user_id,
            created_by_id=tenant["agent"].user_id,
        )
        await session.commit()
        return ticket["id"]


async def add_comment(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID, comment_type: CommentType
) -> uuid.UUID:
    async with database.tenant_session(tenant.org.id) as session:
        comment = TicketComment(
            ticket_id=ticket_id,
            author_id=tenant["agent"].user_id,
            content="See the attached log.",
            comment_type=comment_type,
        )
        session.add(comment)
        await session.commit()
        return comment.id


async def post_file(
    client: httpx.AsyncClient,
    actor: Actor,
    ticket_id: uuid.UUID | str,
    content: bytes,
    *,
    name: str = "notes.bin",
    client_type: str = "application/octet-stream",
    **form: Any,
) -> httpx.Response:
    data = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in form.items()
    }
    return await client.post(
        attachments_url(ticket_id),
        files={"file": (name, content, client_type)},
        data=data,
        headers=actor.headers,
    )


async def upload(
    client: httpx.AsyncClient,
    actor: Actor,
    ticket_id: uuid.UUID | str,
    content: bytes = b"hello\n",
    **kwargs: Any,
) -> dict[str, Any]:
    response = await post_file(client, actor, ticket_id, content, **kwargs)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listed(
    client: httpx.AsyncClient, actor: Actor, ticket_id: uuid.UUID, **params: Any
) -> dict[str, Any]:
    response = await client.get(attachments_url(ticket_id), params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def attachment_rows(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID | None = None
) -> list[TicketAttachment]:
    async with database.tenant_session(tenant.org.id) as session:
        statement = sa.select(TicketAttachment).order_by(TicketAttachment.id)
        if ticket_id is not None:
            statement = statement.where(TicketAttachment.ticket_id == ticket_id)
        return list(await session.scalars(statement))


def stored_files(root: Path) -> list[Path]:
    """Every file under `root`, temporary `.part` files included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", STAFF)
async def test_upload_list_download_round_trip(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, storage_dir: Path, role: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    actor = tenant_a[role]
    # Several read chunks, and bytes that are not text.
    content = PDF + os.urandom(200 * 1024)

    created = await upload(client, actor, ticket_id, content, name="Quote 2024.pdf")

    assert created.keys() == ATTACHMENT_FIELDS
    assert created["ticket_id"] == str(ticket_id)
    assert created["comment_id"] is None
    assert created["uploaded_by_id"] == str(actor.user_id)
    assert created["file_name"] == "Quote 2024.pdf"
    assert created["file_size"] == len(content)
    assert created["content_type"] == "application/pdf"
    assert created["sha256"] == hashlib.sha256(content).hexdigest()
    assert created["is_public"] is True
    assert created["download_count"] == 0

    assert await listed(client, actor, ticket_id) == {"items": [created], "next_cursor": None}

    response = await client.get(download_url(created["id"]), headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.content == content
    assert hashlib.sha256(response.content).hexdigest() == created["sha256"]
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(content))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''Quote%202024.pdf"
    )

    [row] = await attachment_rows(database, tenant_a, ticket_id)
    assert row.organization_id == tenant_a.org.id
    assert re.fullmatch(rf"{tenant_a.org.id}/[0-9a-f]{{32}}", row.storage_key)
    assert (storage_dir / row.storage_key).read_bytes() == content


async def test_customer_uploads_and_downloads_on_own_ticket(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    customer = tenant_a["customer"]

    created = await upload(client, customer, ticket_id, b"It says PC LOAD LETTER.\n")

    assert created["is_public"] is True
    assert created["uploaded_by_id"] == str(customer.user_id)
    assert created["content_type"] == "text/plain"
    response = await client.get(download_url(created["id"]), headers=customer.headers)
    assert response.status_code == 200
    assert response.content == b"It says PC LOAD LETTER.\n"
    # Verified UTF-8, so the charset is stated.
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    staff_view = await listed(client, tenant_a["agent"], ticket_id)
    assert [a["id"] for a in staff_view["items"]] == [created["id"]]


async def test_list_is_keyset_paged_oldest_first(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]
    uploaded = [await upload(client, agent, ticket_id, f"file {i}\n".encode()) for i in range(5)]

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await listed(client, agent, ticket_id, **params)
        pages.append([a["id"] for a in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    ids = [a["id"] for a in uploaded]
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]


# --- content sniffing ------------------------------------------------------------------------


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


# A two-byte character cut by the 64 KiB read boundary is still text.
_SPLIT_UTF8 = b"a" * (attachments_service.CHUNK_BYTES - 1) + "é\n".encode()

SNIFFING = [
    # (bytes, client's file name, client's Content-Type, expected content type)
    pytest.param(PNG, "notes.txt", "text/plain", "image/png", id="png-claimed-text"),
    pytest.param(
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a.png", "image/png", "image/jpeg", id="jpeg"
    ),
    pytest.param(
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "a.gif", "image/gif", "image/gif", id="gif"
    ),
    pytest.param(b"GIF87a\x01\x00\x01\x00", "a", "text/plain", "image/gif", id="gif87"),
    pytest.param(
        b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00", "w", "text/html", "image/webp", id="webp"
    ),
    pytest.param(
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        "a.webp",
        "image/webp",
        "application/octet-stream",
        id="riff-not-webp",
    ),
    pytest.param(PDF, "invoice.html", "text/html", "application/pdf", id="pdf"),
    pytest.param(_zip(["a.txt"]), "a.zip", "application/zip", "application/zip", id="zip"),
    pytest.param(
        _zip(["[Content_Types].xml", "word/document.xml"]),
        "letter.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/zip",
        id="docx-as-zip",
    ),
    pytest.param(
        _zip(["[Content_Types].xml", "xl/workbook.xml"]),
        "sheet.xlsx",
        "",
        "application/zip",
        id="xlsx-as-zip",
    ),
    pytest.param(
        gzip.compress(b"log line\n" * 100), "x.tar.gz", "text/plain", "application/gzip", id="gzip"
    ),
    pytest.param(
        b"just text\r\n\tindented\n",
        "setup.exe",
        "application/x-msdownload",
        "text/plain",
        id="exe-name-text",
    ),
    pytest.param(
        "Grüße, 你好 👋\n".encode(), "hi", "application/octet-stream", "text/plain", id="utf8"
    ),
    pytest.param(
        b"<script>alert(1)</script>", "x.html", "text/html", "text/plain", id="html-is-text"
    ),
    pytest.param(
        b'{"printer": "on fire", "n": [1, 2]}',
        "a.txt",
        "text/plain",
        "application/json",
        id="json-object",
    ),
    pytest.param(
        b"\xef\xbb\xbf[1, 2, 3]\n", "a", "text/plain", "application/json", id="json-array-bom"
    ),
    pytest.param(b"42", "n.json", "application/json", "text/plain", id="json-scalar-is-text"),
    pytest.param(b'{"broken": ', "a.json", "application/json", "text/plain", id="broken-json"),
    pytest.param(
        b"caf\xe9 latin-1\n", "a.txt", "text/plain", "application/octet-stream", id="latin1"
    ),
    pytest.param(b"text\x00with nul", "a.txt", "text/plain", "application/octet-stream", id="nul"),
    pytest.param(
        b"cut \xc3", "a.txt", "text/plain", "application/octet-stream", id="truncated-utf8"
    ),
    pytest.param(
        _SPLIT_UTF8, "big.txt", "application/octet-stream", "text/plain", id="utf8-across-chunks"
    ),
    pytest.param(
        b"MZ\x90\x00\x03\x00\x00\x00",
        "a.pdf",
        "application/pdf",
        "application/octet-stream",
        id="exe",
    ),
]


@pytest.mark.parametrize(("content", "name", "client_type", "expected"), SNIFFING)
async def test_content_type_is_sniffed_from_the_bytes(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    content: bytes,
    name: str,
    client_type: str,
    expected: str,
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]

    created = await upload(client, agent, ticket_id, content, name=name, client_type=client_type)

    assert created["content_type"] == expected
    [row] = await attachment_rows(database, tenant_a, ticket_id)
    assert row.content_type == expected
    response = await client.get(download_url(created["id"]), headers=agent.headers)
    assert response.content == content
    assert response.headers["content-type"].split(";")[0] == expected


# --- file names -----------------------------------------------------------------------------


def _raw_multipart(filename: bytes, content: bytes) -> tuple[bytes, str]:
    """Built by hand: httpx percent-escapes control characters in file names, and the
    point is to send them raw."""
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: text/plain\r\n\r\n'
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("raw_name", "shown"),
    [
        pytest.param(b"../../../etc/passwd", "passwd", id="dot-dot-slash"),
        pytest.param(b"..\\..\\Windows\\win.ini", "win.ini", id="backslashes"),
        pytest.param(b"/var/lib/postgresql/data/pg_hba.conf", "pg_hba.conf", id="absolute"),
        pytest.param(b"re\x01po\x7frt\x1b.txt", "report.txt", id="control-characters"),
        pytest.param("invoice\u202etxt.exe".encode(), "invoicetxt.exe", id="bidi-override"),
        pytest.param("résumé 2024.txt".encode(), "résumé 2024.txt", id="unicode-kept"),
        pytest.param(b"..", "file", id="only-dots"),
        pytest.param(b"uploads/", "file", id="only-a-directory"),
        pytest.param(b"\x01\x02", "file", id="only-controls"),
        pytest.param(b"a" * 300 + b".txt", "a" * 251 + ".txt", id="too-long-keeps-extension"),
    ],
)
async def test_file_name_is_cleaned_and_never_a_path(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    storage_dir: Path,
    raw_name: bytes,
    shown: str,
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]
    body, content_type = _raw_multipart(raw_name, b"contents\n")

    response = await client.post(
        attachments_url(ticket_id),
        content=body,
        headers={**agent.headers, "Content-Type": content_type},
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["file_name"] == shown
    assert len(created["file_name"]) <= 255
    [row] = await attachment_rows(database, tenant_a, ticket_id)
    assert row.file_name == shown
    # The bytes live under <storage>/<org id>/<our id>, whatever the client called them.
    stored = storage_dir / row.storage_key
    assert stored.parent == storage_dir / str(tenant_a.org.id)
    assert stored.read_bytes() == b"contents\n"
    assert not (storage_dir / "etc").exists()
    assert not (storage_dir.parent / "etc").exists()
    assert all(f.name != shown for f in stored_files(storage_dir))

    download = await client.get(download_url(created["id"]), headers=agent.headers)
    disposition = download.headers["content-disposition"]
    assert re.fullmatch(r"attachment; filename\*=UTF-8''[A-Za-z0-9%._~-]+", disposition)


async def test_unicode_name_is_percent_encoded_in_content_disposition(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]
    created = await upload(client, agent, ticket_id, b"x\n", name="résumé; final.txt")

    response = await client.get(download_url(created["id"]), headers=agent.headers)

    assert response.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%3B%20final.txt"
    )


# --- limits and empty files ---------------------------------------------------------------------

SMALL_LIMIT = 2048


@pytest.fixture
async def small_limit(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    async with app_client(settings, storage_dir=tmp_path, max_attachment_bytes=SMALL_LIMIT) as c:
        yield c, tmp_path


async def test_file_at_the_limit_is_accepted(
    small_limit: tuple[httpx.AsyncClient, Path], database: Database, tenant_a: Tenant
) -> None:
    client, storage = small_limit
    ticket_id = await make_ticket(database, tenant_a)

    created = await upload(client, tenant_a["agent"], ticket_id, b"x" * SMALL_LIMIT)

    assert created["file_size"] == SMALL_LIMIT
    assert len(stored_files(storage)) == 1


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(SMALL_LIMIT + 1, id="one-byte-over"),
        pytest.param(200 * 1024, id="several-chunks-over"),
        pytest.param(SMALL_LIMIT + 64 * 1024 + 1, id="over-the-body-limit-too"),
    ],
)
async def test_file_over_the_limit_is_413_and_leaves_nothing(
    small_limit: tuple[httpx.AsyncClient, Path], database: Database, tenant_a: Tenant, size: int
) -> None:
    client, storage = small_limit
    ticket_id = await make_ticket(database, tenant_a)
    history_before = await history_rows(database, tenant_a, ticket_id)

    response = await post_file(client, tenant_a["agent"], ticket_id, os.urandom(size))

    problem(response, 413)
    assert await attachment_rows(database, tenant_a, ticket_id) == []
    assert await history_rows(database, tenant_a, ticket_id) == history_before
    assert stored_files(storage) == []  # no object, no temporary file


async def test_empty_file_is_422_and_leaves_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, storage_dir: Path
) -> None:
    ticket_id = await make_ticket(database, tenant_a)

    response = await post_file(client, tenant_a["agent"], ticket_id, b"", name="empty.txt")

    body = problem(response, 422)
    assert [e["loc"] for e in body["errors"]] == [["body", "file"]]
    assert await attachment_rows(database, tenant_a, ticket_id) == []
    assert stored_files(storage_dir / str(tenant_a.org.id)) == []


async def test_missing_file_part_and_unknown_fields_are_422(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]

    no_file = await client.post(
        attachments_url(ticket_id), data={"is_public": "true"}, headers=agent.headers
    )
    unknown = await post_file(client, agent, ticket_id, b"x\n", organization_id=uuid.uuid4())
    bad_comment = await post_file(client, agent, ticket_id, b"x\n", comment_id="not-a-uuid")

    problem(no_file, 422)
    problem(unknown, 422)
    problem(bad_comment, 422)
    assert await attachment_rows(database, tenant_a, ticket_id) == []


async def test_failed_database_write_deletes_the_stored_object(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    storage_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bytes are stored before the row; when the row cannot be written (here: a name
    the column cannot hold, so PostgreSQL refuses the INSERT), the object goes too."""
    ticket_id = await make_ticket(database, tenant_a)
    monkeypatch.setattr(attachments_service, "display_name", lambda _raw: "n" * 300)

    response = await post_file(client, tenant_a["agent"], ticket_id, b"doomed\n")

    # PostgreSQL's "value too long" is the client's input the schema let through: 422.
    problem(response, 422)
    assert await attachment_rows(database, tenant_a, ticket_id) == []
    assert stored_files(storage_dir / str(tenant_a.org.id)) == []


async def _bytes(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def test_sweep_removes_old_objects_no_attachment_names(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, storage_dir: Path
) -> None:
    """What a commit that failed after the upload stored its bytes leaves behind (or a
    crash in between): an object no row names. The sweep removes it once it is older
    than any upload takes; objects of rows (of a deleted ticket too: it can be
    restored) and keys not of our making stay."""
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]
    kept = await upload(client, agent, ticket_id, b"kept\n")
    of_deleted_ticket = await upload(client, agent, ticket_id, b"deleted ticket\n")
    response = await client.delete(f"{API}/tickets/{ticket_id}", headers=tenant_a["admin"].headers)
    assert response.status_code == 204, response.text
    storage = LocalStorage(storage_dir)
    orphan = attachments_service.new_storage_key(tenant_a.org.id)
    await storage.save(orphan, _bytes(b"orphan"))
    foreign = f"{tenant_a.org.id}/handmade.txt"
    await storage.save(foreign, _bytes(b"not ours"))
    later = datetime.now(UTC) + attachments_service.ORPHAN_GRACE + timedelta(minutes=1)

    async with database.system_session() as session:
        assert await attachments_service.sweep_orphaned_files(session, storage) == 0
        assert await storage.exists(orphan)  # young: its upload may still be committing
        removed = await attachments_service.sweep_orphaned_files(session, storage, now=later)

    assert removed >= 1
    assert not await storage.exists(orphan)
    assert await storage.exists(foreign)
    async with database.tenant_session(tenant_a.org.id) as session:
        keys = await session.scalars(
            sa.select(TicketAttachment.storage_key).where(
                TicketAttachment.id.in_([uuid.UUID(a["id"]) for a in (kept, of_deleted_ticket)])
            )
        )
        kept_keys = list(keys)
    assert len(kept_keys) == 2
    for key in kept_keys:
        assert await storage.exists(key)


def test_storage_keys_carry_their_organization_and_creation_time() -> None:
    org = uuid.uuid4()
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    parsed = attachments_service.storage_key_created_at(attachments_service.new_storage_key(org))
    assert parsed is not None
    assert parsed[0] == org and before <= parsed[1] <= datetime.now(UTC)
    for other in ["x", f"{org}/handmade.txt", f"{org}/{'g' * 32}", f"../{uuid.uuid4().hex}"]:
        assert attachments_service.storage_key_created_at(other) is None


# --- who sees what --------------------------------------------------------------------------


async def test_customer_never_sees_internal_attachments(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent, customer = tenant_a["agent"], tenant_a["customer"]
    public = await upload(client, agent, ticket_id, b"public\n")
    internal = await upload(client, agent, ticket_id, b"internal\n", is_public=False)
    assert internal["is_public"] is False
    missing = problem(await client.get(download_url(uuid.uuid4()), headers=customer.headers), 404)

    assert await listed(client, customer, ticket_id) == {"items": [public], "next_cursor": None}
    assert (await listed(client, agent, ticket_id))["items"] == [public, internal]
    # Not even a page boundary reveals the internal file.
    assert await listed(client, customer, ticket_id, limit=1) == {
        "items": [public],
        "next_cursor": None,
    }
    hidden = await client.get(download_url(internal["id"]), headers=customer.headers)
    assert problem(hidden, 404) == missing
    assert (await client.get(download_url(internal["id"]), headers=agent.headers)).content == (
        b"internal\n"
    )
    [_, internal_row] = await attachment_rows(database, tenant_a, ticket_id)
    assert internal_row.download_count == 1  # the refused customer download did not count


async def test_customer_uploads_are_always_public(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    customer = tenant_a["customer"]

    explicit = await upload(client, customer, ticket_id, b"a\n", is_public=True)
    refused = await post_file(client, customer, ticket_id, b"b\n", is_public=False)

    assert explicit["is_public"] is True
    problem(refused, 403)
    assert [r.id for r in await attachment_rows(database, tenant_a, ticket_id)] == [
        uuid.UUID(explicit["id"])
    ]


async def test_attachments_to_comments(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    other_ticket = await make_ticket(database, tenant_a)
    agent, customer = tenant_a["agent"], tenant_a["customer"]
    public_comment = await add_comment(database, tenant_a, ticket_id, CommentType.PUBLIC)
    internal_note = await add_comment(database, tenant_a, ticket_id, CommentType.INTERNAL)
    elsewhere = await add_comment(database, tenant_a, other_ticket, CommentType.PUBLIC)
    foreign_ticket = await make_ticket(database, tenant_b)
    foreign = await add_comment(database, tenant_b, foreign_ticket, CommentType.PUBLIC)

    by_customer = await upload(client, customer, ticket_id, b"c\n", comment_id=public_comment)
    on_note = await upload(client, agent, ticket_id, b"n\n", comment_id=internal_note)
    public_on_note = await post_file(
        client, agent, ticket_id, b"p\n", comment_id=internal_note, is_public=True
    )
    customer_on_note = await post_file(
        client, customer, ticket_id, b"c\n", comment_id=internal_note
    )
    wrong_ticket = await post_file(client, agent, ticket_id, b"w\n", comment_id=elsewhere)
    other_org = await post_file(client, agent, ticket_id, b"o\n", comment_id=foreign)

    assert by_customer["comment_id"] == str(public_comment)
    assert by_customer["is_public"] is True
    # A file on an internal note is internal unless said otherwise — and it cannot be.
    assert on_note["comment_id"] == str(internal_note)
    assert on_note["is_public"] is False
    assert problem(public_on_note, 422)["errors"][0]["loc"] == ["body", "is_public"]
    # To a customer an internal note is as unknown as another ticket's comment.
    for refused in (customer_on_note, wrong_ticket, other_org):
        assert problem(refused, 422)["errors"][0]["loc"] == ["body", "comment_id"]
    assert len(await attachment_rows(database, tenant_a, ticket_id)) == 2
    async with database.tenant_session(tenant_a.org.id) as session:
        rows = await session.execute(sa.select(TicketComment.id, TicketComment.has_attachments))
        flags = dict(rows.all())
    assert flags[public_comment] is True
    assert flags[internal_note] is True
    assert flags[elsewhere] is False


async def test_another_customers_ticket_is_not_found(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    other = await add_user(
        database, tenant_a.org, Role.CUSTOMER, customer_id=tenant_a.customer_account_id
    )
    ticket_id = await make_ticket(database, tenant_a, customer_id=other.id)
    attachment = await upload(client, tenant_a["agent"], ticket_id, b"theirs\n")
    customer = tenant_a["customer"]
    no_ticket = problem(await post_file(client, customer, uuid.uuid4(), b"x\n"), 404)
    no_file = problem(await client.get(download_url(uuid.uuid4()), headers=customer.headers), 404)

    posted = await post_file(client, customer, ticket_id, b"mine?\n")
    listing = await client.get(attachments_url(ticket_id), headers=customer.headers)
    download = await client.get(download_url(attachment["id"]), headers=customer.headers)

    assert problem(posted, 404) == no_ticket
    assert problem(listing, 404) == no_ticket
    assert problem(download, 404) == no_file
    assert len(await attachment_rows(database, tenant_a, ticket_id)) == 1


@pytest.mark.parametrize("role", ["admin", "agent", "customer", "api_key"])
async def test_other_organization_is_not_found(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    storage_dir: Path,
    role: str,
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    attachment = await upload(client, tenant_a["agent"], ticket_id, b"secret\n")
    stranger = tenant_b[role]
    no_ticket = problem(
        await client.get(attachments_url(uuid.uuid4()), headers=stranger.headers), 404
    )
    no_file = problem(await client.get(download_url(uuid.uuid4()), headers=stranger.headers), 404)

    listing = await client.get(attachments_url(ticket_id), headers=stranger.headers)
    download = await client.get(download_url(attachment["id"]), headers=stranger.headers)

    assert problem(listing, 404) == no_ticket
    assert problem(download, 404) == no_file
    if role != "api_key":  # keys are refused before the ticket is looked up
        posted = await post_file(client, stranger, ticket_id, b"intruder\n")
        assert problem(posted, 404) == no_ticket
    assert len(await attachment_rows(database, tenant_a, ticket_id)) == 1
    assert await attachment_rows(database, tenant_b) == []
    assert stored_files(storage_dir / str(tenant_b.org.id)) == []


async def test_deleted_tickets_attachments_are_not_downloadable(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    admin, agent, customer = tenant_a["admin"], tenant_a["agent"], tenant_a["customer"]
    attachment = await upload(client, agent, ticket_id, b"before deletion\n")
    no_file = problem(await client.get(download_url(uuid.uuid4()), headers=admin.headers), 404)
    deleted = await client.delete(f"{TICKETS}/{ticket_id}", headers=admin.headers)
    assert deleted.status_code == 204, deleted.text

    for actor in (admin, agent, customer):
        response = await client.get(download_url(attachment["id"]), headers=actor.headers)
        assert problem(response, 404) == no_file
        problem(await client.get(attachments_url(ticket_id), headers=actor.headers), 404)
        problem(await post_file(client, actor, ticket_id, b"late\n"), 404)

    restored = await client.post(f"{TICKETS}/{ticket_id}/restore", headers=admin.headers)
    assert restored.status_code == 200, restored.text
    again = await client.get(download_url(attachment["id"]), headers=customer.headers)
    assert again.status_code == 200
    assert again.content == b"before deletion\n"


# --- counting, history, events -----------------------------------------------------------------


async def test_download_count_increments_atomically(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent, customer = tenant_a["agent"], tenant_a["customer"]
    attachment = await upload(client, agent, ticket_id, b"popular\n")

    for actor in (agent, customer):
        assert (await client.get(download_url(attachment["id"]), headers=actor.headers)).is_success
    responses = await asyncio.gather(
        *(client.get(download_url(attachment["id"]), headers=agent.headers) for _ in range(8))
    )

    assert all(r.status_code == 200 and r.content == b"popular\n" for r in responses)
    [row] = await attachment_rows(database, tenant_a, ticket_id)
    assert row.download_count == 10
    [shown] = (await listed(client, agent, ticket_id))["items"]
    assert shown["download_count"] == 10


async def test_each_attachment_writes_one_history_row_and_one_event(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent, customer = tenant_a["agent"], tenant_a["customer"]

    first = await upload(client, agent, ticket_id, PNG, name="screen.png")
    second = await upload(client, customer, ticket_id, b"log\n", name="log.txt")
    await client.get(download_url(first["id"]), headers=agent.headers)  # reads write nothing

    history = await history_rows(database, tenant_a, ticket_id)
    assert [(h.field, h.old_value, h.new_value, h.user_id) for h in history] == [
        ("attachment", None, first["id"], agent.user_id),
        ("attachment", None, second["id"], customer.user_id),
    ]
    events = await event_rows(database, tenant_a, ticket_id, "ticket.attachment_added")
    assert [e.payload["changes"] for e in events] == [
        {"attachment": {"old": None, "new": first["id"]}},
        {"attachment": {"old": None, "new": second["id"]}},
    ]
    assert {e.payload["id"] for e in events} == {str(ticket_id)}
    async with database.tenant_session(tenant_a.org.id) as session:
        ticket = await session.scalar(sa.select(Ticket).where(Ticket.id == ticket_id))
    assert ticket is not None and ticket.version == 1  # the ticket itself did not change
    staff_history = await client.get(f"{TICKETS}/{ticket_id}/history", headers=agent.headers)
    assert [h["field"] for h in staff_history.json()["items"]] == [
        "ticket",
        "attachment",
        "attachment",
    ]


# --- API keys ---------------------------------------------------------------------------------


async def test_api_keys_cannot_upload_but_can_read(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, storage_dir: Path
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    key = tenant_a["api_key"]
    attachment = await upload(client, tenant_a["agent"], ticket_id, b"for the integration\n")
    files_before = stored_files(storage_dir / str(tenant_a.org.id))

    refused = await post_file(client, key, ticket_id, b"from a key\n")

    problem(refused, 403)
    assert len(await attachment_rows(database, tenant_a, ticket_id)) == 1
    assert stored_files(storage_dir / str(tenant_a.org.id)) == files_before
    assert [a["id"] for a in (await listed(client, key, ticket_id))["items"]] == [attachment["id"]]
    download = await client.get(download_url(attachment["id"]), headers=key.headers)
    assert download.content == b"for the integration\n"


async def test_anonymous_calls_are_401(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    attachment = await upload(client, tenant_a["agent"], ticket_id)

    assert (await client.get(attachments_url(ticket_id))).status_code == 401
    assert (await client.get(download_url(attachment["id"]))).status_code == 401
    response = await client.post(attachments_url(ticket_id), files={"file": ("a", b"a")})
    assert response.status_code == 401


# --- a lost object ------------------------------------------------------------------------------


async def test_missing_stored_object_is_a_server_error_not_a_broken_stream(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, storage_dir: Path
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]
    attachment = await upload(client, agent, ticket_id, b"soon gone\n")
    [row] = await attachment_rows(database, tenant_a, ticket_id)
    (storage_dir / row.storage_key).unlink()

    response = await client.get(download_url(attachment["id"]), headers=agent.headers)

    problem(response, 500)
    [row] = await attachment_rows(database, tenant_a, ticket_id)
    assert row.download_count == 0


# --- the storage backend ------------------------------------------------------------------------


async def _stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize(
    "key",
    ["", "../escape", "a/../../b", "/etc/passwd", "a\\b", "a//b", "a/./b", "a/", "nul\x00"],
)
async def test_local_storage_refuses_keys_that_are_not_ours(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root")

    with pytest.raises(InvalidStorageKey):
        await storage.save(key, _stream(b"x"))
    with pytest.raises(InvalidStorageKey):
        await storage.exists(key)
    with pytest.raises(InvalidStorageKey):
        await storage.delete(key)
    assert stored_files(tmp_path) == []


async def test_local_storage_round_trip_and_all_or_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = f"{uuid.uuid4()}/{uuid.uuid4().hex}"
    data = os.urandom(150 * 1024)

    await storage.save(key, _stream(data[:1000], data[1000:]))
    assert await storage.exists(key)
    assert b"".join([chunk async for chunk in storage.open(key)]) == data

    async def failing() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("client went away")

    other = f"{uuid.uuid4()}/{uuid.uuid4().hex}"
    with pytest.raises(RuntimeError):
        await storage.save(other, failing())
    assert not await storage.exists(other)
    assert stored_files(tmp_path) == [tmp_path / key]  # no temporary file left behind

    await storage.delete(key)
    await storage.delete(key)  # idempotent
    assert not await storage.exists(key)
    with pytest.raises(FileNotFoundError):
        [chunk async for chunk in storage.open(key)]
