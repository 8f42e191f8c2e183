"""What `make run` serves, walked end to end on SQLite: every list to its last page in
every order (each row once), the ticket write paths, alone and concurrently, and the SLA
report's statement."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.models.ticket import Ticket
from app.tickets.repository import Sort
from tests.support.identity import API

SORTS = list(get_args(Sort))


def count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute(sql).fetchone()[0])


async def walk(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list, page by page along `next_cursor` (a feed's cursor stays set:
    its end is an empty page)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _page in range(10_000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None or not body["items"]:
            return items
    raise AssertionError(f"{url} did not end after 10,000 pages")


def once_each(items: list[dict[str, Any]]) -> list[str]:
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "a row was served twice"
    return ids


@pytest.mark.parametrize("sort", SORTS)
async def test_every_ticket_order_pages_to_the_end_each_ticket_once(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str], embedded_path: Path, sort: str
) -> None:
    # The demo writes ~150 tickets a second: most share their second with others.
    live = count(embedded_path, "SELECT count(*) FROM tickets WHERE deleted_at IS NULL")
    items = await walk(embedded, f"{API}/tickets", admin_headers, sort=sort, limit=7)
    assert len(once_each(items)) == live
    keys = {
        "created_at": lambda t: (datetime.fromisoformat(t["created_at"]), t["id"]),
        "updated_at": lambda t: (datetime.fromisoformat(t["updated_at"]), t["id"]),
    }
    name = sort.removeprefix("-")
    if name in keys:
        values = [keys[name](t) for t in items]
        assert values == sorted(values, reverse=sort.startswith("-"))


async def test_filtered_and_searched_lists_page_to_the_end(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str], embedded_path: Path
) -> None:
    open_count = count(
        embedded_path,
        "SELECT count(*) FROM tickets WHERE deleted_at IS NULL AND status = 'open'",
    )
    opened = await walk(embedded, f"{API}/tickets", admin_headers, status="open", limit=5)
    assert len(once_each(opened)) == open_count
    matched = await walk(embedded, f"{API}/tickets", admin_headers, q="invoice", limit=3)
    assert once_each(matched)
    assert all("invoice" in t["subject"].lower() for t in matched)


@pytest.mark.parametrize(
    ("path", "table"),
    [
        ("users", "users"),
        ("customers", "customers"),
        ("departments", "departments"),
        ("custom-fields", "custom_fields"),
        ("api-keys", None),
        ("sessions", None),
    ],
)
async def test_every_other_list_pages_to_the_end(
    embedded: httpx.AsyncClient,
    admin_headers: dict[str, str],
    embedded_path: Path,
    path: str,
    table: str | None,
) -> None:
    items = await walk(embedded, f"{API}/{path}", admin_headers, limit=2)
    ids = once_each(items)
    if table is not None:
        assert len(ids) == count(
            embedded_path,
            f"SELECT count(*) FROM {table} WHERE deleted_at IS NULL",
        )


async def test_a_tickets_comments_history_and_the_change_feed_page_to_the_end(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await embedded.post(
        f"{API}/tickets",
        json={"subject": "Paged", "customer_id": await _a_customer(embedded, admin_headers)},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    for n in range(7):
        comment = await embedded.post(
            f"{API}/tickets/{ticket['id']}/comments",
            json={"content": f"note {n}", "comment_type": "internal"},
            headers=admin_headers,
        )
        assert comment.status_code == 201, comment.text
    for priority in ("high", "low", "urgent"):
        patched = await embedded.patch(
            f"{API}/tickets/{ticket['id']}", json={"priority": priority}, headers=admin_headers
        )
        assert patched.status_code == 200, patched.text
    comments = await walk(
        embedded, f"{API}/tickets/{ticket['id']}/comments", admin_headers, limit=2
    )
    assert [c["content"] for c in comments] == [f"note {n}" for n in range(7)]
    history = await walk(embedded, f"{API}/tickets/{ticket['id']}/history", admin_headers, limit=2)
    assert len(once_each(history)) >= 4
    feed = await walk(embedded, f"{API}/changes", admin_headers, limit=50)
    assert ticket["id"] in {change["ticket_id"] for change in feed}
    once_each(feed)


async def test_ticket_write_paths(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    customer = await _a_customer(embedded, admin_headers)
    created = await embedded.post(
        f"{API}/tickets",
        json={"subject": "Printer on fire", "customer_id": customer, "tags": ["Hardware"]},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["ticket_number"].startswith("TK-") and ticket["tags"] == ["hardware"]
    url = f"{API}/tickets/{ticket['id']}"
    opened = await embedded.patch(url, json={"status": "open"}, headers=admin_headers)
    assert opened.status_code == 200 and opened.json()["version"] == ticket["version"] + 1
    stale = await embedded.patch(
        url, json={"subject": "x"}, headers={**admin_headers, "If-Match": f'"{ticket["version"]}"'}
    )
    assert stale.status_code == 412
    deleted = await embedded.delete(url, headers=admin_headers)
    assert deleted.status_code == 204
    assert (await embedded.get(url, headers=admin_headers)).status_code == 404
    restored = await embedded.post(f"{url}/restore", headers=admin_headers)
    assert restored.status_code == 200, restored.text
    for status in ("resolved", "closed"):
        moved = await embedded.patch(url, json={"status": status}, headers=admin_headers)
        assert moved.status_code == 200, moved.text
    refused = await embedded.post(
        f"{url}/comments", json={"content": "late", "comment_type": "public"}, headers=admin_headers
    )
    assert refused.status_code == 409


async def test_concurrent_writes_serialize_instead_of_conflicting(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    """No row locks on SQLite: each transaction takes the write lock when it begins, so
    60 blind PATCHes of one ticket all apply, one after the other, and 30 concurrent
    creates take 30 distinct numbers."""
    customer = await _a_customer(embedded, admin_headers)
    created = await embedded.post(
        f"{API}/tickets", json={"subject": "Busy", "customer_id": customer}, headers=admin_headers
    )
    ticket = created.json()
    url = f"{API}/tickets/{ticket['id']}"
    patches = await asyncio.gather(
        *(
            embedded.patch(url, json={"subject": f"Busy {n}"}, headers=admin_headers)
            for n in range(60)
        )
    )
    assert sorted(p.status_code for p in patches) == [200] * 60, [p.text for p in patches]
    final = (await embedded.get(url, headers=admin_headers)).json()
    assert final["version"] == ticket["version"] + 60
    creates = await asyncio.gather(
        *(
            embedded.post(
                f"{API}/tickets",
                json={"subject": f"Rush {n}", "customer_id": customer},
                headers=admin_headers,
            )
            for n in range(30)
        )
    )
    assert [c.status_code for c in creates] == [201] * 30
    numbers = {c.json()["ticket_number"] for c in creates}
    assert len(numbers) == 30


async def test_instants_have_one_format(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str], embedded_path: Path
) -> None:
    """Stored with six fractional digits whoever wrote them (the database's clock or a
    bound value), so that as text they sort as instants."""
    assert count(embedded_path, "SELECT count(*) FROM tickets WHERE length(created_at) != 26") == 0
    assert (
        count(embedded_path, "SELECT count(*) FROM ticket_comments WHERE length(created_at) != 26")
        == 0
    )


async def _a_customer(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.get(f"{API}/users", params={"role": "customer"}, headers=headers)
    assert response.status_code == 200, response.text
    customers = [u for u in response.json()["items"] if u["role"] == "customer"]
    assert customers
    return str(uuid.UUID(customers[0]["id"]))


async def test_the_sla_report_ranks_the_same_on_sqlite(
    embedded: httpx.AsyncClient, embedded_app: FastAPI, admin_headers: dict[str, str]
) -> None:
    """SQLite sorts nulls first where PostgreSQL sorts them last: the report's ranks must
    not move. The tickets are dated in a range nothing else writes to, under a policy
    that matches no new ticket (inactive)."""
    created = await embedded.post(
        f"{API}/sla-policies",
        json={
            "name": "Reported",
            "first_response_minutes": 60,
            "resolution_minutes": 480,
            "is_active": False,
        },
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    policy = uuid.UUID(created.json()["id"])
    customer = await _a_customer(embedded, admin_headers)
    start = datetime(2001, 2, 3, tzinfo=UTC)
    answered = [7, None, 3, 10, 1, None, 5, 9, 2, 8, 4, 6]
    for n, first in enumerate(answered):
        ticket = await embedded.post(
            f"{API}/tickets",
            json={"subject": f"Reported {n}", "customer_id": customer},
            headers=admin_headers,
        )
        assert ticket.status_code == 201, ticket.text
        async with embedded_app.state.database.system_session() as session:
            await session.execute(
                sa.update(Ticket)
                .where(Ticket.id == uuid.UUID(ticket.json()["id"]))
                .values(
                    created_at=start + timedelta(minutes=n),
                    sla_policy_id=policy,
                    sla_breach=n < 3,
                    time_to_first_response=first,
                    # Every other ticket resolved: 200, 400, … 1200 s.
                    time_to_resolution=100 * (n + 1) if n % 2 else None,
                )
            )
            await session.commit()
    expected = {
        "tickets": 12,
        "breached": 3,
        "compliance_percent": 75.0,
        "first_response_seconds": {"median": 5, "p90": 9},
        "resolution_seconds": {"median": 600, "p90": 1200},
    }
    day = {"from": "2001-02-03T00:00:00Z", "to": "2001-02-04T00:00:00Z"}
    for group_by, key, label in (
        ("policy", str(policy), "Reported"),
        ("channel", "web", "web"),
    ):
        response = await embedded.get(
            f"{API}/reports/sla", params={**day, "group_by": group_by}, headers=admin_headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["groups"] == [{"key": key, "label": label, **expected}]
        assert body["total"] == expected
