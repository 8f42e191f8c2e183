"""Replies mailed over TLS with a login, to a real local SMTP server (aiosmtpd) whose
certificate an internal authority (`OUTBOUND_CA_FILE`) issued: STARTTLS, TLS from the
first byte, the certificate refused when that authority is not trusted, and a refused
login."""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from app.channels import senders
from app.config import Settings
from app.webhooks.targets import tls_context

LOGIN, PASSWORD = b"mailer", b"s3cret"


class Mailbox:
    """aiosmtpd handler: keeps what a logged-in client sent."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        assert session.authenticated
        self.received.append(envelope.content)
        return "250 OK"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    valid = isinstance(data, LoginPassword) and (data.login, data.password) == (LOGIN, PASSWORD)
    # `handled=False`: aiosmtpd then answers a refusal with 535 itself (its default says
    # the authenticator already answered, and the client waits for a reply never sent).
    return AuthResult(success=valid, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def ca_file(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "internal-ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


def serving(mailbox: Mailbox, server_tls: ssl.SSLContext, *, implicit: bool) -> Controller:
    # aiosmtpd cannot tell a connection that was TLS from its first byte: it offers AUTH
    # there only when not told to insist on TLS.
    tls: dict[str, Any] = (
        {"ssl_context": server_tls, "auth_require_tls": False}
        if implicit
        else {"tls_context": server_tls, "require_starttls": True}
    )
    return Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=check_login,
        auth_required=True,
        server_hostname="localhost",
        **tls,
    )


@pytest.fixture(params=["starttls", "implicit"])
def mail_server(request: pytest.FixtureRequest, server_tls: ssl.SSLContext) -> Iterator[Any]:
    mailbox = Mailbox()
    controller = serving(mailbox, server_tls, implicit=request.param == "implicit")
    controller.start()
    try:
        yield request.param, controller.port, mailbox
    finally:
        controller.stop()


def smtp_url(kind: str, port: int) -> SecretStr:
    login = f"{LOGIN.decode()}:{PASSWORD.decode()}@localhost:{port}"
    if kind == "implicit":
        return SecretStr(f"smtps://{login}")
    return SecretStr(f"smtp://{login}?starttls=true")


def message() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "support@acme.example.com"
    mail["To"] = "jane@example.org"
    mail["Subject"] = "Re: Printer on fire [TK-000042]"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@acme.example.com>"
    mail.set_content("The technician comes at 3 pm.")
    return mail


async def test_a_reply_goes_over_tls_with_a_login(
    settings: Settings, mail_server: Any, ca_file: Path
) -> None:
    kind, port, mailbox = mail_server
    configured = settings.model_copy(update={"smtp_url": smtp_url(kind, port)})
    outcome = await senders.send_mail(configured, message(), uuid.uuid4(), tls=tls_context(ca_file))
    assert outcome == senders.SENT
    [received] = mailbox.received
    assert b"The technician comes at 3 pm." in received


async def test_an_untrusted_certificate_sends_nothing_and_is_retried(
    settings: Settings, mail_server: Any
) -> None:
    kind, port, mailbox = mail_server
    configured = settings.model_copy(update={"smtp_url": smtp_url(kind, port)})
    # The public authorities alone do not know the internal one.
    outcome = await senders.send_mail(configured, message(), uuid.uuid4(), tls=tls_context())
    assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert not outcome.sent and not outcome.permanent
    assert mailbox.received == []


async def test_a_refused_login_sends_nothing_and_is_retried(
    settings: Settings, mail_server: Any, ca_file: Path
) -> None:
    kind, port, mailbox = mail_server
    wrong = smtp_url(kind, port).get_secret_value().replace(PASSWORD.decode(), "wrong")
    configured = settings.model_copy(update={"smtp_url": SecretStr(wrong)})
    outcome = await senders.send_mail(configured, message(), uuid.uuid4(), tls=tls_context(ca_file))
    # A login an admin can correct: retried with the backoff, never given up on at once.
    assert outcome.error is not None and outcome.error.startswith("SMTP 535")
    assert not outcome.sent and not outcome.permanent
    assert mailbox.received == []
