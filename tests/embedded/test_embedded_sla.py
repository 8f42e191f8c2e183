"""SLAs in `make run`: the timer loop runs inside the API process on SQLite, flags the
demo's overdue tickets, and the demo shows a ticket in every `sla_status`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.embedded.conftest import embedded_settings
from tests.embedded.test_embedded_paths import walk
from tests.support.identity import API

EVERY_STATUS = {None, "first_response_due", "resolution_due", "paused", "breached", "fulfilled"}


@pytest.fixture
async def served(embedded_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app exactly as `make run` serves it: the timer loop runs in process."""
    application = create_app(embedded_settings(embedded_url, tmp_path, timers=True))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://served") as client:
            yield client


async def test_the_demo_shows_every_sla_status_once_the_loop_has_run(
    served: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    tickets: list[dict[str, object]] = []
    for _ in range(100):
        tickets = await walk(served, f"{API}/tickets", admin_headers, limit=200)
        overdue = [t for t in tickets if t["sla_status"] == "breached"]
        if overdue:
            break
        await asyncio.sleep(0.1)
    assert {t["sla_status"] for t in tickets} == EVERY_STATUS
    # The loop flagged them: each breached ticket's log says when and how late.
    events = await walk(
        served, f"{API}/tickets/{overdue[0]['id']}/sla-events", admin_headers, limit=50
    )
    breaches = [e for e in events if e["kind"] == "breach"]
    assert breaches
    assert all(e["details"]["late_seconds"] >= 0 for e in breaches)
