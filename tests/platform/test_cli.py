"""The `helpdesk` command line, run as a real process, on PostgreSQL and on SQLite."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.cli import uvicorn_logging
from app.config import Settings
from app.db.database import Database
from app.demo.service import DEMO_ADMIN_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from app.main import create_app
from app.models import Department, Organization, Ticket, User
from app.tickets.repository import TicketRepository
from tests.support.services import create_database, drop_database


def helpdesk(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # No REDIS_URL: the CLI runs embedded, whatever the caller's environment says.
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = database_url
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    url = asyncio.run(create_database("helpdesk_cli"))
    yield url
    asyncio.run(drop_database(url))


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stderr + result.stdout


def test_bootstrap_commands_are_idempotent(fresh_pg: str) -> None:
    _ok(helpdesk(fresh_pg, "migrate"))
    org = [
        "create-org",
        "--name",
        "Acme",
        "--slug",
        "acme",
        "--admin-email",
        "boss@acme.example.com",
        "--admin-password",
        "correct-horse-battery",
    ]
    assert "created" in _ok(helpdesk(fresh_pg, *org))
    assert "already exists" in _ok(helpdesk(fresh_pg, *org))
    su = ["create-superuser", "--email", "root@platform.example.com", "--password", "x" * 16]
    assert "created" in _ok(helpdesk(fresh_pg, *su))
    assert "already exists" in _ok(helpdesk(fresh_pg, *su))
    weak = helpdesk(
        fresh_pg, "create-superuser", "--email", "a@b.example.com", "--password", "short"
    )
    assert weak.returncode == 2 and "password" in weak.stderr
    bad_slug = helpdesk(fresh_pg, *org[:3], "--slug", "Not A Slug", *org[5:])
    assert bad_slug.returncode == 2 and "slug" in bad_slug.stderr

    async def counts() -> tuple[int, int]:
        database = Database(Settings(database_url=fresh_pg, _env_file=None))  # type: ignore[call-arg]
        async with database.system_session() as session:
            orgs = await session.scalar(sa.select(sa.func.count()).select_from(Organization))
            users = await session.scalar(sa.select(sa.func.count()).select_from(User))
        await database.dispose()
        return int(orgs or 0), int(users or 0)

    assert asyncio.run(counts()) == (1, 2)


def test_demo_seeds_once_and_prints_login(fresh_pg: str) -> None:
    _ok(helpdesk(fresh_pg, "migrate"))
    first = _ok(helpdesk(fresh_pg, "demo", "--tickets", "25"))
    # One line, though the output is no terminal (rich would wrap it at 80 columns).
    login = f"demo login: client_id={DEMO_SLUG} username={DEMO_ADMIN_EMAIL} "
    assert f"{login}password={DEMO_PASSWORD}\n" in first
    assert "already seeded" in _ok(helpdesk(fresh_pg, "demo", "--tickets", "25"))

    async def tickets() -> list[str]:
        database = Database(Settings(database_url=fresh_pg, _env_file=None))  # type: ignore[call-arg]
        async with database.system_session() as session:
            org = await session.scalar(
                sa.select(Organization).where(Organization.slug == DEMO_SLUG)
            )
            assert org is not None
        async with database.tenant_session(org.id) as session:
            numbers = list(await session.scalars(sa.select(Ticket.ticket_number)))
        await database.dispose()
        return numbers

    numbers = asyncio.run(tickets())
    assert len(numbers) == 25 and len(set(numbers)) == 25 and "TK-000001" in numbers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_says_where_it_listens_and_logs_requests_in_development(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpdesk.db'}"
    _ok(helpdesk(url, "migrate"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "LOG_LEVEL")}
    env |= {"DATABASE_URL": url, "ENVIRONMENT": "development", "STORAGE_DIR": str(tmp_path)}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen(  # noqa: S603 - our own console script
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, err.read_text()
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, err.read_text()
                    time.sleep(0.2)
            assert response.status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = err.read_text() + out.read_text()
    where = f"http://127.0.0.1:{port}"
    assert f"serving on {where} - API docs at {where}/docs\n" in output
    assert '"GET /healthz HTTP/1.1" 200' in output


def test_uvicorn_logs_requests_in_development_only() -> None:
    def settings(**values: str) -> Settings:
        return Settings(**values, secret_key="s" * 40, _env_file=None)  # type: ignore[arg-type]

    assert uvicorn_logging(settings(environment="development")) == ("info", True)
    assert uvicorn_logging(settings(environment="development", log_level="DEBUG")) == (
        "debug",
        True,
    )
    assert uvicorn_logging(settings(environment="production")) == ("warning", False)
    assert uvicorn_logging(settings(environment="production", log_level="DEBUG")) == (
        "warning",
        False,
    )
    assert uvicorn_logging(settings(environment="production", log_level="ERROR")) == (
        "error",
        False,
    )
    assert uvicorn_logging(settings(environment="test")) == ("warning", False)


def test_sqlite_embedded_mode_smoke(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'helpdesk.db'}"
    _ok(helpdesk(url, "migrate"))
    _ok(helpdesk(url, "demo", "--tickets", "5"))
    _ok(
        helpdesk(
            url,
            "create-org",
            "--name",
            "Other",
            "--slug",
            "other",
            "--admin-email",
            "a@other.example.com",
            "--admin-password",
            "correct-horse-battery",
        )
    )

    async def crud() -> None:
        database = Database(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        async with database.system_session() as session:
            orgs = {o.slug: o for o in await session.scalars(sa.select(Organization))}
        demo, other = orgs["demo"], orgs["other"]
        async with database.tenant_session(other.id) as session:
            assert (await session.scalars(sa.select(Ticket))).all() == []
            session.add(Department(name="Ops"))
            await session.commit()
        async with database.tenant_session(demo.id) as session:
            assert len((await session.scalars(sa.select(Ticket))).all()) == 5
            names = set(await session.scalars(sa.select(Department.name)))
            assert "Ops" not in names
            department = await session.scalar(sa.select(Department).limit(1))
            assert department is not None
            department.soft_delete()
            await session.commit()
            assert department.name not in set(await session.scalars(sa.select(Department.name)))
            ticket = await session.scalar(sa.select(Ticket).limit(1))
            assert ticket is not None and ticket.created_at.tzinfo is not None
            written = await TicketRepository(session).write(
                ticket.id, ticket.version, {"subject": "Edited on SQLite"}
            )
            await session.commit()
            assert written["version"] == ticket.version + 1
            assert written["updated_at"].tzinfo is not None
        await database.dispose()

    asyncio.run(crud())

    async def api() -> None:
        """`make run`'s mode end to end: log in as the printed demo admin, use the API."""
        app = create_app(Settings(database_url=url, redis_url=None, _env_file=None))  # type: ignore[call-arg]
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                token = await client.post(
                    "/api/v1/auth/token",
                    data={
                        "username": DEMO_ADMIN_EMAIL,
                        "password": DEMO_PASSWORD,
                        "client_id": DEMO_SLUG,
                    },
                )
                assert token.status_code == 200, token.text
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                current = await client.get("/api/v1/organizations/current", headers=headers)
                assert current.json()["slug"] == DEMO_SLUG
                page = await client.get("/api/v1/users?limit=5", headers=headers)
                assert len(page.json()["items"]) == 5 and page.json()["next_cursor"]
                created = await client.post(
                    "/api/v1/departments", json={"name": "Night shift"}, headers=headers
                )
                assert created.status_code == 201
                again = await client.post(
                    "/api/v1/departments", json={"name": "NIGHT SHIFT"}, headers=headers
                )
                assert again.status_code == 409
                await _ticket_lifecycle(client, headers)

    asyncio.run(api())


async def _ticket_lifecycle(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The ticket write paths run on embedded SQLite too."""
    customers = await client.get("/api/v1/users?role=customer&limit=1", headers=headers)
    customer_id = customers.json()["items"][0]["id"]
    created = await client.post(
        "/api/v1/tickets",
        json={"subject": "Printer on fire", "customer_id": customer_id, "tags": ["Fire"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    url = f"/api/v1/tickets/{ticket['id']}"
    moved = await client.patch(
        url, json={"status": "resolved"}, headers={**headers, "If-Match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "resolved" and moved.json()["resolved_at"]
    assert moved.headers["ETag"] == '"2"'
    stale = await client.patch(url, json={"status": "open"}, headers={**headers, "If-Match": '"1"'})
    assert stale.status_code == 412
    reply = await client.post(f"{url}/comments", json={"content": "On it"}, headers=headers)
    assert reply.status_code == 201, reply.text
    answered = (await client.get(url, headers=headers)).json()
    assert answered["first_response_at"] and answered["version"] == 3
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404
    restored = await client.post(f"{url}/restore", headers=headers)
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    history = (await client.get(f"{url}/history", headers=headers)).json()["items"]
    assert [h["field"] for h in history] == [
        "ticket",
        "status",
        "resolved_at",
        "time_to_resolution",
        "comment",
        "first_response_at",
        "time_to_first_response",
        "deleted_at",
        "deleted_at",
    ]
