"""Deliveries end to end: an event written with a ticket change reaches a real HTTP
receiver on 127.0.0.1, signed over the exact bytes sent; failures are retried on the
schedule (the clock is moved, not waited for), `Retry-After` is honoured, a ticket's
events arrive in order, a slow endpoint delays no other, an endpoint failing for a day
is disabled and its admins told, and no delivery is lost with Redis or sent twice by
two workers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from standardwebhooks import Webhook

from app.config import Settings
from app.db.database import Database
from app.kit.jobs import ArqJobQueue, WorkerJobQueue, run_job
from app.kit.journal import Journal
from app.kit.outbox import RELAY_JOB, relay_outbox
from app.models.outbox import OutboxEvent
from app.models.webhook import DeliveryStatus, WebhookDelivery
from app.webhooks.schedule import RetrySchedule
from app.webhooks.service import CLAIM_BATCH
from app.webhooks.tasks import MAX_BATCHES, deliver_subscription, sweep_deliveries
from app.worker import RUN_HERE
from tests.support.api import problem
from tests.support.identity import API, Tenant
from tests.support.workers import run_worker_burst
from tests.webhooks.conftest import (
    WEBHOOKS,
    attempts,
    deliveries,
    eventually,
    make_webhook,
    open_ticket,
    subscription,
)
from tests.webhooks.receiver import Received, Receiver, Reply

EXACT = RetrySchedule(jitter=0)


def verify(secret: str, request: Received) -> None:
    Webhook(secret).verify(request.body, request.headers, json_parse=False)


async def delivered(database: Database, tenant: Tenant, webhook_id: str, count: int) -> bool:
    rows = await deliveries(database, tenant, webhook_id)
    return sum(row.status is DeliveryStatus.SUCCEEDED for row in rows) >= count


async def first_attempt_made(database: Database, tenant: Tenant, webhook_id: str) -> bool:
    rows = await deliveries(database, tenant, webhook_id)
    return bool(rows) and rows[0].attempt_count >= 1


async def run_deliveries(database: Database, tenant: Tenant, webhook_id: str, at: datetime) -> int:
    """The subscription's delivery job as a worker runs it, with the clock at `at`."""
    result: int = await run_job(
        database,
        deliver_subscription,
        tenant.org.id,
        subscription_id=webhook_id,
        clock=lambda: at,
        schedule=EXACT,
    )
    return result


async def test_a_ticket_change_is_delivered_signed_over_the_exact_bytes(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, tenant_a, receiver.url(), event_types=["ticket.created"])
    ticket = await open_ticket(client, tenant_a)
    await receiver.wait_for(1)
    [request] = receiver.requests
    verify(webhook["secret"], request)
    [row] = await deliveries(database, tenant_a, webhook["id"])
    assert request.body == row.payload.encode()
    assert request.headers["webhook-id"] == str(row.id)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("helpdesk-webhooks/")
    body = request.json
    assert (body["type"], body["id"]) == ("ticket.created", str(row.event_id))
    assert body["data"] == {"id": ticket["id"], "ticket_number": ticket["ticket_number"]}
    assert body["timestamp"].endswith("Z")
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "B" * 43 + "=").verify(request.body, request.headers)
    await eventually(lambda: delivered(database, tenant_a, webhook["id"], 1))
    [attempt] = await attempts(database, tenant_a, row.id)
    assert (attempt.attempt_number, attempt.status_code, attempt.error) == (1, 204, None)
    assert attempt.duration_ms is not None and attempt.duration_ms >= 0

    listed = await client.get(
        f"{WEBHOOKS}/{webhook['id']}/deliveries", headers=tenant_a["admin"].headers
    )
    [item] = listed.json()["items"]
    assert (item["id"], item["status"], item["attempt_count"], item["last_status_code"]) == (
        str(row.id),
        "succeeded",
        1,
        204,
    )
    detail = await client.get(
        f"{WEBHOOKS}/{webhook['id']}/deliveries/{row.id}", headers=tenant_a["admin"].headers
    )
    assert detail.json()["payload"] == row.payload
    assert [a["status_code"] for a in detail.json()["attempts"]] == [204]
    assert detail.json()["attempts"][0]["request_headers"]["webhook-id"] == str(row.id)


async def test_only_subscribed_event_types_are_delivered(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook = await make_webhook(
        client, tenant_a, receiver.url(), event_types=["ticket.comment_added"]
    )
    ticket = await open_ticket(client, tenant_a)
    response = await client.post(
        f"{API}/tickets/{ticket['id']}/comments",
        json={"content": "On our way."},
        headers=tenant_a["agent"].headers,
    )
    assert response.status_code == 201, response.text
    await receiver.wait_for(1)
    await asyncio.sleep(0.3)
    assert [r.json["type"] for r in receiver.requests] == ["ticket.comment_added"]
    assert len(await deliveries(database, tenant_a, webhook["id"])) == 1


async def test_a_receiver_down_then_up_gets_the_delivery_once_with_the_same_id(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, tenant_a, receiver.url())
    await receiver.stop()
    await open_ticket(client, tenant_a)
    await eventually(lambda: first_attempt_made(database, tenant_a, webhook["id"]))
    [row] = await deliveries(database, tenant_a, webhook["id"])
    [failed] = await attempts(database, tenant_a, row.id)
    assert failed.status_code is None and failed.error is not None
    assert row.status is DeliveryStatus.PENDING and row.next_attempt_at is not None
    await receiver.start()
    await run_deliveries(
        database, tenant_a, webhook["id"], datetime.now(UTC) + timedelta(minutes=1)
    )
    await eventually(lambda: delivered(database, tenant_a, webhook["id"], 1))
    [request] = receiver.requests
    assert request.headers["webhook-id"] == str(row.id)
    verify(webhook["secret"], request)
    assert [a.status_code for a in await attempts(database, tenant_a, row.id)] == [None, 204]


async def test_a_500_is_retried_on_the_backoff_schedule_until_given_up(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    receiver.answer = lambda _request: Reply(500, body=b"boom " * 500)
    webhook = await make_webhook(client, tenant_a, receiver.url())
    await open_ticket(client, tenant_a)
    await eventually(lambda: first_attempt_made(database, tenant_a, webhook["id"]))
    [row] = await deliveries(database, tenant_a, webhook["id"])
    assert row.last_attempt_at is not None and row.next_attempt_at is not None
    first_failure = row.last_attempt_at
    first_wait = (row.next_attempt_at - row.last_attempt_at).total_seconds()
    assert 4 <= first_wait <= 6  # 5 s, give or take the jitter
    # Each retry at its time: the waits double up to a day, except that the retry a
    # day-long step would put past the first failure's day comes at that day's end,
    # where the endpoint is disabled.
    clock, waits = row.next_attempt_at, []
    while not (await subscription(database, tenant_a, webhook["id"])).disabled_at:
        assert await run_deliveries(database, tenant_a, webhook["id"], clock) == 1
        [row] = await deliveries(database, tenant_a, webhook["id"])
        assert row.status is DeliveryStatus.PENDING and row.next_attempt_at is not None
        waits.append((row.next_attempt_at - clock).total_seconds())
        clock = row.next_attempt_at
    assert len(waits) == 9
    assert waits[:7] == [30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600]
    assert first_wait + sum(waits[:8]) == pytest.approx(24 * 3600)  # the 8th: to the day's end
    assert waits[8] == 24 * 3600
    disabled = await subscription(database, tenant_a, webhook["id"])
    assert disabled.disabled_at is not None and disabled.failing_since == first_failure
    assert disabled.disabled_at == first_failure + timedelta(hours=24)
    # Enabled again past the three days of the window: one more failure gives up.
    enabled = await client.patch(
        f"{WEBHOOKS}/{webhook['id']}", json={"is_active": True}, headers=tenant_a["admin"].headers
    )
    assert enabled.status_code == 200, enabled.text
    # What waited is due at once: the app sends it (within the window, retried again).
    tried = row.attempt_count

    async def sent_again() -> bool:
        [now] = await deliveries(database, tenant_a, webhook["id"])
        return now.attempt_count > tried and now.next_attempt_at is not None

    await eventually(sent_again)
    clock += timedelta(days=1)
    assert clock - row.created_at > timedelta(days=3)
    assert await run_deliveries(database, tenant_a, webhook["id"], clock) == 1
    [row] = await deliveries(database, tenant_a, webhook["id"])
    assert row.status is DeliveryStatus.FAILED and row.next_attempt_at is None
    tried = await attempts(database, tenant_a, row.id)
    assert [a.attempt_number for a in tried] == list(range(1, len(tried) + 1))
    assert {a.status_code for a in tried} == {500}
    assert all(len((a.response_excerpt or "").encode()) <= 1024 for a in tried)
    # Nothing more is sent once given up.
    assert await run_deliveries(database, tenant_a, webhook["id"], clock + timedelta(days=9)) == 0


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    receiver.answer = lambda _request: Reply(429, headers={"Retry-After": "120"})
    webhook = await make_webhook(client, tenant_a, receiver.url())
    await open_ticket(client, tenant_a)
    await eventually(lambda: first_attempt_made(database, tenant_a, webhook["id"]))
    [row] = await deliveries(database, tenant_a, webhook["id"])
    assert row.next_attempt_at is not None and row.last_attempt_at is not None
    assert (row.next_attempt_at - row.last_attempt_at).total_seconds() == pytest.approx(120, abs=1)
    assert row.last_status_code == 429
    # Not due before: a run at 60 s sends nothing.
    assert (
        await run_deliveries(
            database, tenant_a, webhook["id"], row.last_attempt_at + timedelta(seconds=60)
        )
        == 0
    )
    http_date = "Wed, 21 Oct 2099 07:28:00 GMT"
    receiver.answer = lambda _request: Reply(503, headers={"Retry-After": http_date})
    at = row.last_attempt_at + timedelta(seconds=121)
    assert await run_deliveries(database, tenant_a, webhook["id"], at) == 1
    [row] = await deliveries(database, tenant_a, webhook["id"])
    assert row.next_attempt_at is not None
    assert (row.next_attempt_at - at).total_seconds() == pytest.approx(24 * 3600, abs=1)  # capped


async def test_a_tickets_events_arrive_in_order_and_a_slow_endpoint_delays_no_other(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    slow_path, fast_path = "/slow", "/fast"
    receiver.answer = lambda r: Reply(204, delay=1.5 if r.path == slow_path else 0)
    slow = await make_webhook(client, tenant_a, receiver.url(slow_path))
    fast = await make_webhook(client, tenant_a, receiver.url(fast_path))
    ticket = await open_ticket(client, tenant_a, priority="low")
    for priority in ("medium", "high", "urgent"):
        response = await client.patch(
            f"{API}/tickets/{ticket['id']}",
            json={"priority": priority},
            headers=tenant_a["agent"].headers,
        )
        assert response.status_code == 200, response.text
    await receiver.wait_for(4, fast_path)
    # The slow endpoint has its first request, still unanswered: nothing else of the
    # ticket went to it, and the fast one got all four meanwhile.
    assert len(receiver.at(slow_path)) == 1
    for path, webhook in ((fast_path, fast), (slow_path, slow)):
        await receiver.wait_for(4, path, seconds=15)
        got = receiver.at(path)
        assert [r.json["type"] for r in got] == ["ticket.created"] + ["ticket.updated"] * 3
        changes = [r.json["data"]["changes"]["priority"]["new"] for r in got[1:]]
        assert changes == ["medium", "high", "urgent"]
        for request in got:
            verify(webhook["secret"], request)


async def test_a_day_of_failures_disables_the_endpoint_and_tells_the_admins(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    receiver.answer = lambda _request: Reply(502)
    webhook = await make_webhook(client, tenant_a, receiver.url())
    await open_ticket(client, tenant_a)
    await eventually(lambda: first_attempt_made(database, tenant_a, webhook["id"]))
    row = await subscription(database, tenant_a, webhook["id"])
    assert row.failing_since is not None and row.disabled_at is None
    await run_deliveries(database, tenant_a, webhook["id"], row.failing_since + timedelta(hours=23))
    assert (await subscription(database, tenant_a, webhook["id"])).disabled_at is None
    await run_deliveries(database, tenant_a, webhook["id"], row.failing_since + timedelta(hours=25))
    row = await subscription(database, tenant_a, webhook["id"])
    assert row.disabled_at is not None and "HTTP 502" in (row.disabled_reason or "")
    headers = tenant_a["admin"].headers
    got = (await client.get(f"{WEBHOOKS}/{webhook['id']}", headers=headers)).json()
    assert got["disabled_at"] is not None and got["failing_since"] is not None
    notes = (await client.get(f"{API}/notifications", headers=headers)).json()["items"]
    [note] = [n for n in notes if n["kind"] == "webhook_disabled"]
    assert note["data"]["webhook_id"] == webhook["id"]
    agent_notes = await client.get(f"{API}/notifications", headers=tenant_a["agent"].headers)
    assert "webhook_disabled" not in agent_notes.text

    # Disabled: new events create nothing for it, a test or replay is refused.
    sent = len(receiver.requests)
    await open_ticket(client, tenant_a)
    await asyncio.sleep(0.3)
    assert len(await deliveries(database, tenant_a, webhook["id"])) == 1
    problem(await client.post(f"{WEBHOOKS}/{webhook['id']}/test", headers=headers), 409)
    assert len(receiver.requests) == sent

    # Enabled again: the streak is forgotten and a success keeps it so.
    receiver.answer = lambda _request: Reply(200)
    enabled = await client.patch(
        f"{WEBHOOKS}/{webhook['id']}", json={"is_active": True}, headers=headers
    )
    assert enabled.json()["disabled_at"] is None and enabled.json()["failing_since"] is None
    await eventually(lambda: delivered(database, tenant_a, webhook["id"], 1))
    assert (await subscription(database, tenant_a, webhook["id"])).failing_since is None


async def test_a_success_clears_the_failure_streak(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    receiver.answer = lambda _request: Reply(500)
    webhook = await make_webhook(client, tenant_a, receiver.url())
    await open_ticket(client, tenant_a)
    await eventually(lambda: first_attempt_made(database, tenant_a, webhook["id"]))
    assert (await subscription(database, tenant_a, webhook["id"])).failing_since is not None
    receiver.answer = lambda _request: Reply(201)
    await run_deliveries(database, tenant_a, webhook["id"], datetime.now(UTC) + timedelta(hours=1))
    assert (await subscription(database, tenant_a, webhook["id"])).failing_since is None


async def test_replay_sends_a_delivered_event_again_with_its_id(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, tenant_a, receiver.url())
    await open_ticket(client, tenant_a)
    await eventually(lambda: delivered(database, tenant_a, webhook["id"], 1))
    [row] = await deliveries(database, tenant_a, webhook["id"])
    url = f"{WEBHOOKS}/{webhook['id']}/deliveries/{row.id}/replay"
    replayed = await client.post(url, headers=tenant_a["admin"].headers)
    assert replayed.status_code == 202, replayed.text
    assert (replayed.json()["id"], replayed.json()["status"]) == (str(row.id), "pending")
    await receiver.wait_for(2)
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(row.id)
    await eventually(lambda: delivered(database, tenant_a, webhook["id"], 1))
    assert [a.attempt_number for a in await attempts(database, tenant_a, row.id)] == [1, 2]
    missing = f"{WEBHOOKS}/{webhook['id']}/deliveries/{uuid.uuid4()}/replay"
    problem(await client.post(missing, headers=tenant_a["admin"].headers), 404)


async def test_the_test_endpoint_sends_to_that_endpoint_only(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    tested = await make_webhook(
        client, tenant_a, receiver.url("/tested"), event_types=["ticket.deleted"]
    )
    await make_webhook(client, tenant_a, receiver.url("/other"))
    response = await client.post(
        f"{WEBHOOKS}/{tested['id']}/test", headers=tenant_a["admin"].headers
    )
    assert response.status_code == 202, response.text
    await receiver.wait_for(1, "/tested")
    [request] = receiver.requests
    assert request.headers["webhook-id"] == response.json()["id"]
    assert request.json["type"] == "webhook.test"
    assert request.json["data"]["webhook_id"] == tested["id"]
    verify(tested["secret"], request)
    listed = await client.get(
        f"{WEBHOOKS}/{tested['id']}/deliveries",
        params={"event_type": "webhook.test", "status": "succeeded"},
        headers=tenant_a["admin"].headers,
    )
    await eventually(lambda: delivered(database, tenant_a, tested["id"], 1))
    assert len(receiver.at("/other")) == 0
    assert listed.status_code == 200


async def test_during_a_rotation_both_secrets_verify(
    client: httpx.AsyncClient, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, tenant_a, receiver.url())
    headers = tenant_a["admin"].headers
    rotate = f"{WEBHOOKS}/{webhook['id']}/rotate-secret"
    new = (await client.post(rotate, json={"overlap_minutes": 60}, headers=headers)).json()
    await client.post(f"{WEBHOOKS}/{webhook['id']}/test", headers=headers)
    await receiver.wait_for(1)
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(webhook["secret"], request)
    verify(new["secret"], request)
    newest = (await client.post(rotate, json={"overlap_minutes": 0}, headers=headers)).json()
    await client.post(f"{WEBHOOKS}/{webhook['id']}/test", headers=headers)
    await receiver.wait_for(2)
    request = receiver.requests[1]
    verify(newest["secret"], request)
    with pytest.raises(Exception, match="signature"):
        verify(new["secret"], request)


async def test_one_organizations_events_never_reach_anothers_endpoint(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    receiver: Receiver,
) -> None:
    mine = await make_webhook(client, tenant_a, receiver.url("/a"))
    theirs = await make_webhook(client, tenant_b, receiver.url("/b"))
    await open_ticket(client, tenant_a)
    await receiver.wait_for(1, "/a")
    await asyncio.sleep(0.3)
    assert receiver.at("/b") == []
    assert await deliveries(database, tenant_b, theirs["id"]) == []
    [row] = await deliveries(database, tenant_a, mine["id"])
    headers = tenant_b["admin"].headers
    base = f"{WEBHOOKS}/{mine['id']}/deliveries"
    problem(await client.get(base, headers=headers), 404)
    problem(await client.get(f"{base}/{row.id}", headers=headers), 404)
    problem(await client.post(f"{base}/{row.id}/replay", headers=headers), 404)
    # Their own webhook's path with our delivery's id: missing too.
    problem(
        await client.get(f"{WEBHOOKS}/{theirs['id']}/deliveries/{row.id}", headers=headers), 404
    )


# --- workers: Redis lost, two at once ------------------------------------------------------


@pytest.fixture
async def arq_redis(test_redis_url: str, settings: Settings) -> AsyncIterator[ArqRedis]:
    redis = await create_pool(RedisSettings.from_dsn(test_redis_url))
    yield redis
    keys = [k async for k in redis.scan_iter(f"{settings.job_queue_name}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def record_events(database: Database, tenant: Tenant, count: int) -> None:
    """Ticket events of `count` tickets, written as a service writes them."""
    uow = database.tenant_unit(tenant.org.id)
    try:
        journal = Journal(uow)
        for _ in range(count):
            aggregate = uuid.uuid4()
            journal.event(
                "ticket.created",
                aggregate_type="ticket",
                aggregate_id=aggregate,
                payload={"id": str(aggregate)},
            )
        await journal.write()
        await uow.commit()
    finally:
        await uow.close()


async def test_with_redis_flushed_the_sweep_still_delivers(
    client: httpx.AsyncClient,
    settings: Settings,
    arq_redis: ArqRedis,
    tenant_a: Tenant,
    receiver: Receiver,
) -> None:
    webhook = await make_webhook(client, tenant_a, receiver.url())
    database = Database(settings)
    database.jobs = ArqJobQueue(arq_redis, settings.job_queue_name)
    try:
        await record_events(database, tenant_a, 3)
        await asyncio.sleep(0.15)  # the relay's coalescing slot
        await run_job(database, relay_outbox, tenant_a.org.id)
        assert len(await deliveries(database, tenant_a, webhook["id"])) == 3
        # Redis loses everything queued: the delivery job is gone.
        keys = [k async for k in arq_redis.scan_iter(f"{settings.job_queue_name}*")]
        keys += [k async for k in arq_redis.scan_iter("arq:job:webhooks.deliver*")]
        await arq_redis.delete(*keys)
        assert await arq_redis.queued_jobs(queue_name=settings.job_queue_name) == []
        assert await run_job(database, sweep_deliveries, None) >= 0
        await run_worker_burst(arq_redis, settings, database)
        await eventually(lambda: delivered(database, tenant_a, webhook["id"], 3))
        ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
        assert len(ids) == 3 and set(ids.values()) == {1}
    finally:
        await database.dispose()


async def test_a_worker_sends_the_deliveries_its_relay_created(
    client: httpx.AsyncClient,
    settings: Settings,
    arq_redis: ArqRedis,
    tenant_a: Tenant,
    receiver: Receiver,
) -> None:
    """No delivery job goes through Redis: the relay's worker sends them at once."""
    webhook = await make_webhook(client, tenant_a, receiver.url())
    database = Database(settings)
    jobs = WorkerJobQueue(
        arq_redis,
        settings.job_queue_name,
        database=database,
        here=RUN_HERE,
        room=2,
        time_limit=60,
    )
    database.jobs = jobs
    try:
        await record_events(database, tenant_a, 3)
        await run_job(database, relay_outbox, tenant_a.org.id)
        await jobs.drain()
        assert await delivered(database, tenant_a, webhook["id"], 3)
        assert len(receiver.requests) == 3
        queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
        assert [job.function for job in queued] == [RELAY_JOB]  # record_events' own
    finally:
        await jobs.close()
        await database.dispose()


async def test_two_workers_never_send_one_delivery_twice(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    receiver.answer = lambda _request: Reply(204, delay=0.05)
    webhook = await make_webhook(client, tenant_a, receiver.url(), is_active=False)
    headers = tenant_a["admin"].headers
    # Inactive while events are written: none is delivered, so the first to take them
    # below is one of the two workers racing.
    await make_webhook(client, tenant_a, receiver.url("/other"))
    plain = Database(database.settings)
    try:
        await client.patch(f"{WEBHOOKS}/{webhook['id']}", json={"is_active": True}, headers=headers)
        await record_events(plain, tenant_a, 40)
        await run_job(plain, relay_outbox, tenant_a.org.id)
        assert len(await deliveries(plain, tenant_a, webhook["id"])) == 40
        now = datetime.now(UTC) + timedelta(seconds=1)
        runs = await asyncio.gather(
            *(run_deliveries(plain, tenant_a, webhook["id"], now) for _ in range(2))
        )
        await eventually(lambda: delivered(plain, tenant_a, webhook["id"], 40))
        got = Counter(r.headers["webhook-id"] for r in receiver.at("/hook"))
        assert len(got) == 40 and set(got.values()) == {1}
        rows = await deliveries(plain, tenant_a, webhook["id"])
        assert {row.attempt_count for row in rows} == {1}
        assert sum(runs) <= 40
    finally:
        await plain.dispose()


async def test_payload_bodies_are_compact_json(
    client: httpx.AsyncClient, tenant_a: Tenant, receiver: Receiver
) -> None:
    await make_webhook(client, tenant_a, receiver.url())
    await open_ticket(client, tenant_a)
    await receiver.wait_for(1)
    body = receiver.requests[0].body
    assert body == json.dumps(json.loads(body), separators=(",", ":")).encode()


async def test_an_event_relayed_twice_makes_one_delivery(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    """A relay that dies between its handlers and its commit leaves its events to the
    next one: relaying them again adds nothing, and holds up nothing."""
    webhook = await make_webhook(client, tenant_a, receiver.url(), is_active=False)
    await client.patch(
        f"{WEBHOOKS}/{webhook['id']}", json={"is_active": True}, headers=tenant_a["admin"].headers
    )
    await record_events(database, tenant_a, 2)
    await run_job(database, relay_outbox, tenant_a.org.id)
    first = await deliveries(database, tenant_a, webhook["id"])
    assert len(first) == 2
    async with database.tenant_session(tenant_a.org.id) as session:
        await session.execute(sa.update(OutboxEvent).values(dispatched_at=None))
        await session.commit()
    assert await run_job(database, relay_outbox, tenant_a.org.id) == 2
    again = await deliveries(database, tenant_a, webhook["id"])
    assert sorted(row.id for row in again) == sorted(row.id for row in first)
    async with database.tenant_session(tenant_a.org.id) as session:
        held = await session.scalar(
            sa.select(sa.func.count()).where(OutboxEvent.relay_after.is_not(None))
        )
    assert held == 0


async def test_a_job_sends_its_share_and_leaves_the_rest_free_for_the_next(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, tenant_a, receiver.url())
    share = MAX_BATCHES * CLAIM_BATCH
    # No job runner attached: the delivery jobs below are the only ones.
    plain = Database(database.settings)
    try:
        await record_events(plain, tenant_a, share + 5)
        await run_job(plain, relay_outbox, tenant_a.org.id)
        # Due an hour from now: the app's own periodic sweep (real time) leaves them to
        # the jobs below, which run with the clock two hours ahead.
        async with plain.tenant_session(tenant_a.org.id) as session:
            await session.execute(
                sa.update(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == uuid.UUID(webhook["id"]))
                .values(next_attempt_at=datetime.now(UTC) + timedelta(hours=1))
            )
            await session.commit()
        now = datetime.now(UTC) + timedelta(hours=2)

        assert await run_deliveries(plain, tenant_a, webhook["id"], now) == share
        rows = await deliveries(plain, tenant_a, webhook["id"])
        waiting = [row for row in rows if row.status is DeliveryStatus.PENDING]
        # Claimed by nobody: the job took no lease on what it was not going to send.
        assert len(waiting) == 5
        assert all(
            row.next_attempt_at is not None and row.next_attempt_at <= now for row in waiting
        )
        assert await run_deliveries(plain, tenant_a, webhook["id"], now) == 5
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == share + 5
    finally:
        await plain.dispose()
