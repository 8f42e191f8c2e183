"""SLAs in `make run`: the timer loop runs inside the API process on SQLite, flags the
demo's overdue tickets, and the demo shows a ticket in every `sla_status`."""

from __future__ import annotations

import asyncio

import httpx

from tests.embedded.test_embedded_paths import walk
from tests.support.identity import API

EVERY_STATUS = {None, "first_response_due", "resolution_due", "paused", "breached", "fulfilled"}


async def test_the_demo_shows_every_sla_status_once_the_loop_has_run(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tickets: list[dict[str, object]] = []
    for _ in range(100):
        tickets = await walk(embedded, f"{API}/tickets", admin_headers, limit=200)
        overdue = [t for t in tickets if t["sla_status"] == "breached"]
        if overdue:
            break
        await asyncio.sleep(0.1)
    assert {t["sla_status"] for t in tickets} == EVERY_STATUS
    # The loop flagged them: each breached ticket's log says when and how late.
    events = await walk(
        embedded, f"{API}/tickets/{overdue[0]['id']}/sla-events", admin_headers, limit=50
    )
    breaches = [e for e in events if e["kind"] == "breach"]
    assert breaches
    assert all(e["details"]["late_seconds"] >= 0 for e in breaches)
