"""/webhooks: subscriptions CRUD + restore, secrets shown once and rotated with an
overlap, the URL checks (no network at save time, the resolved address at send time),
role gates and tenant isolation."""

from __future__ import annotations

import ast
import asyncio
import ipaddress
import socket
import ssl
import uuid
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
import trustme

from app.config import Settings
from app.db.database import Database
from app.kit.errors import ValidationFailed
from app.webhooks import service as webhooks
from app.webhooks.events import EVENT_TYPES
from app.webhooks.schemas import WebhookCreate
from app.webhooks.sender import Outcome, Outgoing, send_all
from app.webhooks.targets import TargetRefused, pinned, resolve, tls_context, url_problem
from tests.support.api import field_locs, page_ids, problem
from tests.support.identity import Tenant
from tests.webhooks.conftest import WEBHOOKS, make_webhook, subscription
from tests.webhooks.receiver import Receiver, Reply

SECRET = "whsec_" + "A" * 43 + "="

READ_FIELDS = {
    "id",
    "url",
    "event_types",
    "description",
    "is_active",
    "disabled_at",
    "disabled_reason",
    "failing_since",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
    "deleted_at",
}
URL = "https://hooks.example.com/helpdesk"


async def test_the_secret_is_shown_at_creation_only(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    created = await make_webhook(client, tenant_a, URL, description="CRM")
    assert set(created) == READ_FIELDS | {"secret"}
    assert created["secret"].startswith("whsec_")
    assert (created["event_types"], created["is_active"]) == (["*"], True)
    row = await subscription(database, tenant_a, created["id"])
    assert (row.secret, row.events, row.created_by_id) == (
        created["secret"],
        ["*"],
        tenant_a["admin"].user_id,
    )
    got = await client.get(f"{WEBHOOKS}/{created['id']}", headers=tenant_a["admin"].headers)
    assert set(got.json()) == READ_FIELDS
    listed = await client.get(WEBHOOKS, headers=tenant_a["admin"].headers)
    assert created["id"] in [item["id"] for item in listed.json()["items"]]
    assert created["secret"] not in listed.text + got.text


async def test_update_delete_restore_and_list(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    headers = tenant_a["admin"].headers
    ids = [(await make_webhook(client, tenant_a, URL))["id"] for _ in range(3)]
    url = f"{WEBHOOKS}/{ids[0]}"
    patched = await client.patch(
        url,
        json={"event_types": ["ticket.created", "ticket.created"], "description": "x"},
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["event_types"], patched.json()["description"]) == (
        ["ticket.created"],
        "x",
    )
    assert (await client.delete(url, headers=headers)).status_code == 204
    problem(await client.get(url, headers=headers), 404)
    assert await page_ids(client, WEBHOOKS, headers, 1) == [[i] for i in ids[1:]]
    assert await page_ids(client, WEBHOOKS, headers, 2, include_deleted="true") == [
        ids[:2],
        ids[2:],
    ]
    restored = await client.post(f"{url}/restore", headers=headers)
    assert (restored.status_code, restored.json()["deleted_at"]) == (200, None)


@pytest.mark.parametrize("role", ["manager", "agent", "customer"])
async def test_only_admins_manage_webhooks(
    client: httpx.AsyncClient, tenant_a: Tenant, role: str
) -> None:
    webhook = await make_webhook(client, tenant_a, URL)
    headers = tenant_a[role].headers
    problem(await client.get(WEBHOOKS, headers=headers), 403)
    problem(await client.post(WEBHOOKS, json={"url": URL}, headers=headers), 403)
    problem(await client.post(f"{WEBHOOKS}/{webhook['id']}/test", headers=headers), 403)
    problem(await client.get(f"{WEBHOOKS}/{webhook['id']}/deliveries", headers=headers), 403)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "ftp://example.com/x"}, ["body", "url"]),
        ({"url": "/relative"}, ["body", "url"]),
        ({"url": "https://user:secret@example.com/x"}, ["body", "url"]),
        ({"url": URL, "event_types": ["ticket.exploded"]}, None),
        ({"url": URL, "event_types": []}, ["body", "event_types"]),
        ({"url": URL, "event_types": ["*", "ticket.created"]}, ["body", "event_types"]),
        ({"url": URL, "secret": "whsec_mine"}, ["body", "secret"]),
        ({"url": URL, "disabled_at": "2025-01-01T00:00:00Z"}, ["body", "disabled_at"]),
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, tenant_a: Tenant, body: dict[str, Any], loc: list[str] | None
) -> None:
    response = await client.post(WEBHOOKS, json=body, headers=tenant_a["admin"].headers)
    locs = field_locs(problem(response, 422))
    if loc is not None:
        assert loc in locs


async def test_a_patch_is_checked_like_a_create(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    webhook = await make_webhook(client, tenant_a, URL)
    url = f"{WEBHOOKS}/{webhook['id']}"
    headers = tenant_a["admin"].headers
    bad = await client.patch(url, json={"url": "gopher://x"}, headers=headers)
    assert ["body", "url"] in field_locs(problem(bad, 422))
    problem(await client.patch(url, json={"is_active": None}, headers=headers), 422)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10:8080/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://2130706433/hook",
        "http://127.1/hook",
        "http://0x7f.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://api.localhost/hook",
    ],
)
def test_private_literals_are_refused_without_the_flag(url: str) -> None:
    assert url_problem(url, https_only=False, allow_private=False) is not None
    assert url_problem(url, https_only=False, allow_private=True) is None


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f.0.0.1",
        "010.0.0.1",
        "::1",
        "::ffff:10.0.0.1",
        "8.8.8.8",
    ],
)
async def test_an_address_in_any_form_skips_the_resolver_and_reads_as_it_would(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM)

    async def no_resolver(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an address went to the resolver")

    monkeypatch.setattr(loop, "getaddrinfo", no_resolver)
    assert await resolve(host, 80) == [ipaddress.ip_address(found[0][4][0])]


def test_public_urls_pass_and_production_wants_https() -> None:
    for url in (URL, "http://93.184.216.34/x", "https://[2606:4700::1111]/x"):
        assert url_problem(url, https_only=False, allow_private=False) is None
    assert url_problem("http://hooks.example.com/x", https_only=True, allow_private=False) == (
        "must be an https URL"
    )
    assert url_problem(URL, https_only=True, allow_private=False) is None


async def test_the_service_refuses_a_private_literal_when_the_flag_is_off(
    settings: Settings, tenant_a: Tenant
) -> None:
    strict = Database(settings.model_copy(update={"webhook_allow_private_targets": False}))
    uow = strict.tenant_unit(tenant_a.org.id)
    try:
        with pytest.raises(ValidationFailed) as refused:
            await webhooks.create_webhook(uow, WebhookCreate(url="http://10.0.0.7/x"), None)
        assert refused.value.errors is not None
        assert refused.value.errors[0]["loc"] == ["body", "url"]
        production = settings.model_copy(
            update={"environment": "production", "secret_key": settings.secret_key}
        )
        uow.settings = production
        with pytest.raises(ValidationFailed):
            await webhooks.create_webhook(uow, WebhookCreate(url="http://93.184.216.34/x"), None)
        await uow.rollback()
    finally:
        await uow.close()
        await strict.dispose()


async def test_a_name_resolving_to_loopback_is_refused_at_send_time(receiver: Receiver) -> None:
    """DNS rebinding: the name passed the save-time check; the address it resolves to
    when sending is checked again, and nothing reaches the receiver."""
    url = f"http://localhost:{receiver.port}/hook"
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1|::1"):
        await pinned(url, allow_private=False)
    item = Outgoing(uuid.uuid4(), b"{}")
    [outcome] = await send_all(url, [SECRET], [item], allow_private=False, tls=tls_context())
    assert outcome.status_code is None and outcome.error is not None
    assert outcome.error.startswith("refused: localhost resolves to")
    assert receiver.requests == []
    [allowed] = await send_all(url, [SECRET], [item], allow_private=True, tls=tls_context())
    assert allowed.status_code == 204
    assert receiver.requests[0].headers["host"] == f"localhost:{receiver.port}"


async def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline(
    receiver: Receiver,
) -> None:
    """Each byte arrives well within the per-read timeout, yet the POST as a whole gets
    no more than its deadline: a slow receiver cannot hold a worker's slot."""
    item = Outgoing(uuid.uuid4(), b"{}")
    url = receiver.url()

    async def post() -> Outcome:
        [outcome] = await send_all(
            url, [SECRET], [item], allow_private=True, tls=tls_context(), seconds_per_post=1.0
        )
        return outcome

    # Its answer's status never arrives in time: a failure.
    receiver.answer = lambda _request: Reply(200, drip=0.05)
    slow = await post()
    assert (slow.status_code, slow.error) == (None, "timed out after 1 s")
    assert slow.duration_ms is not None and 1000 <= slow.duration_ms < 3000
    # The status comes at once and the body trickles: the answer stands, with what of
    # the body came in time.
    receiver.answer = lambda _request: Reply(200, body=b"x" * 50, drip_body=0.1)
    trickled = await post()
    assert (trickled.status_code, trickled.error) == (200, None)
    assert trickled.excerpt is not None and 0 < len(trickled.excerpt) < 50
    receiver.answer = lambda _request: Reply(200, body=b"x" * 20)
    prompt = await post()
    assert (prompt.status_code, prompt.excerpt) == (200, "x" * 20)


async def tls_receiver(ca: trustme.CA, name: str) -> Receiver:
    """A receiver on 127.0.0.1 speaking TLS with a certificate for `name` from `ca`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    receiver = Receiver(tls=context)
    await receiver.start()
    return receiver


async def test_https_deliveries_check_the_certificate_against_the_name(tmp_path: Path) -> None:
    """The request goes to the address that was checked, yet TLS checks the URL's name
    (SNI and the certificate), and trusts `OUTBOUND_CA_FILE`'s authorities beside the
    public ones."""
    ca = trustme.CA()
    ca_file = tmp_path / "internal-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    item = Outgoing(uuid.uuid4(), b"{}")
    right, wrong = await tls_receiver(ca, "localhost"), await tls_receiver(ca, "elsewhere.test")
    try:
        url = right.url(host="localhost")
        [untrusted] = await send_all(url, [SECRET], [item], allow_private=True, tls=tls_context())
        assert untrusted.status_code is None and untrusted.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        trusting = tls_context(ca_file)
        [sent] = await send_all(url, [SECRET], [item], allow_private=True, tls=trusting)
        assert sent.status_code == 204, sent.error
        assert right.requests[0].headers["host"] == f"localhost:{right.port}"
        # Same address, a certificate for another name: refused.
        other = wrong.url(host="localhost")
        [refused] = await send_all(other, [SECRET], [item], allow_private=True, tls=trusting)
        assert refused.status_code is None and refused.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in refused.error
        assert wrong.requests == []
    finally:
        await right.stop()
        await wrong.stop()


async def test_a_corrupt_tls_record_is_a_failed_attempt_not_a_failed_job(tmp_path: Path) -> None:
    """A TLS failure past the handshake reaches the sender as the ssl module raised it,
    not as an httpx error: it is recorded as the attempt's outcome like any other."""
    ca = trustme.CA()
    ca_file = tmp_path / "internal-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    answered = asyncio.Event()

    async def corrupt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        plain = writer.transport
        await writer.start_tls(server_context)
        await reader.readuntil(b"\r\n\r\n")
        # An application-data record no session key made, under the TLS layer.
        plain.write(b"\x17\x03\x03\x00\x20" + bytes(32))
        answered.set()

    server = await asyncio.start_server(corrupt, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = f"https://localhost:{port}/hook"
        items = [Outgoing(uuid.uuid4(), b"{}") for _ in range(2)]
        outcomes = await send_all(
            url, [SECRET], items, allow_private=True, tls=tls_context(ca_file)
        )
        await answered.wait()
    finally:
        server.close()
    assert [outcome.status_code for outcome in outcomes] == [None, None]
    assert all(o.error is not None and o.error.startswith("SSLError") for o in outcomes)


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_an_unloadable_ca_file_stops_the_start(tmp_path: Path, content: str | None) -> None:
    """Caught when the settings load, not at the first delivery."""
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(pydantic.ValidationError, match="cannot load certificate authorities"):
        Settings(outbound_ca_file=path, _env_file=None)  # type: ignore[call-arg]


async def test_rotation_keeps_the_old_secret_for_the_overlap(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    webhook = await make_webhook(client, tenant_a, URL)
    url = f"{WEBHOOKS}/{webhook['id']}/rotate-secret"
    headers = tenant_a["admin"].headers
    rotated = await client.post(url, headers=headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"] != webhook["secret"] and body["previous_secret_expires_at"]
    again = (await client.post(url, json={"overlap_minutes": 0}, headers=headers)).json()
    assert again["previous_secret_expires_at"] is None
    problem(await client.post(url, json={"overlap_minutes": -1}, headers=headers), 422)


async def test_another_organizations_webhooks_are_missing(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = await make_webhook(client, tenant_a, URL)
    headers = tenant_b["admin"].headers
    listed = await client.get(WEBHOOKS, headers=headers)
    assert theirs["id"] not in listed.text
    base = f"{WEBHOOKS}/{theirs['id']}"
    problem(await client.get(base, headers=headers), 404)
    problem(await client.patch(base, json={"description": "mine"}, headers=headers), 404)
    problem(await client.delete(base, headers=headers), 404)
    problem(await client.post(f"{base}/rotate-secret", headers=headers), 404)
    problem(await client.post(f"{base}/test", headers=headers), 404)
    problem(await client.get(f"{base}/deliveries", headers=headers), 404)


def test_every_event_the_services_write_can_be_subscribed_to() -> None:
    """`journal.event("<type>", ...)` anywhere in app/ names a type of EVENT_TYPES."""
    written: set[str] = set()
    app = Path(__file__).resolve().parents[2] / "app"
    for path in app.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                written.add(node.args[0].value)
            if (
                isinstance(node, ast.keyword)
                and node.arg == "event"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                written.add(node.value.value)
    attachment = "ticket.attachment_added"
    assert {"ticket.created", "ticket.sla_breached"} <= written
    assert written | {attachment} <= set(EVENT_TYPES)
