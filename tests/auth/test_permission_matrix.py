"""Every API route, every kind of caller, own and other organization: exact status.

The table below is the contract in executable form: who may call what, and that
another organization's row is a 404 (indistinguishable from a missing one) while a
route the caller's role may not touch is a 403. Each route gets fresh organizations,
and each call a fresh target row, so deletions and revocations cannot leak between
cases. `test_every_route_is_in_the_matrix` keeps the table complete.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth import tokens
from app.db.database import Database
from app.kit.signing_secrets import new_secret
from app.models import (
    ApiKey,
    BusinessHours,
    Channel,
    Customer,
    CustomField,
    Department,
    Notification,
    Organization,
    SLAPolicy,
    User,
    UserPermission,
    WebhookDelivery,
    WebhookSubscription,
)
from app.models.channel import ChannelType, InboundMessage, InboundStatus
from app.models.custom_field import FieldType
from app.models.ticket import Ticket
from app.models.user import Role
from app.tickets.service import open_ticket
from tests.support.identity import API, PASSWORD, Actor, Tenant, add_user, sign_in

ROLES = ("superuser", "admin", "manager", "agent", "customer", "api_key")
STAFF_READERS = frozenset({"admin", "manager", "agent", "api_key"})
WRITERS = frozenset({"admin", "manager", "api_key"})
ADMINS = frozenset({"admin", "api_key"})
PEOPLE = frozenset({"superuser", "admin", "manager", "agent", "customer"})
PLATFORM = frozenset({"superuser"})
ONLY_ADMIN_USER = frozenset({"admin"})  # API keys cannot mint credentials
TENANT_PEOPLE = frozenset({"admin", "manager", "agent", "customer"})
TENANT_PEOPLE_AND_KEYS = TENANT_PEOPLE | {"api_key"}

Targets = dict[str, str]


@dataclass
class World:
    database: Database
    home: Tenant
    away: Tenant
    superuser: Actor
    client: httpx.AsyncClient

    def actor(self, role: str) -> Actor:
        return self.superuser if role == "superuser" else self.home[role]


TargetBuilder = Callable[[World, str, Tenant], Awaitable[Targets]]


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    allowed: frozenset[str]
    status: int  # what an allowed caller gets on its own organization's row
    target: TargetBuilder | None = None  # None: the route names no row
    body: Callable[[World], dict[str, Any]] | None = None
    other_status: int = 404  # an allowed caller on another organization's row
    upload: bool = False  # multipart with one small file instead of a JSON body
    params: dict[str, str] | None = None  # the query string

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def _row(world: World, tenant: Tenant, row: Any, *, deleted: bool = False) -> str:
    async with world.database.tenant_session(tenant.org.id) as session:
        session.add(row)
        await session.flush()
        if deleted:
            row.soft_delete()
        await session.commit()
    return str(row.id)


async def a_user(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": str((await add_user(world.database, tenant.org, Role.AGENT)).id)}


async def a_deleted_user(world: World, _role: str, tenant: Tenant) -> Targets:
    user = await add_user(world.database, tenant.org, Role.AGENT)
    async with world.database.tenant_session(tenant.org.id) as session:
        row = await session.get(User, user.id)
        assert row is not None
        row.soft_delete()
        await session.commit()
    return {"id": str(user.id)}


async def a_grant(world: World, role: str, tenant: Tenant) -> Targets:
    user_id = (await a_user(world, role, tenant))["id"]
    grant = UserPermission(user_id=uuid.UUID(user_id), permission="deleted:read")
    return {"id": user_id, "grant": await _row(world, tenant, grant)}


async def a_department(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, Department(name=unique("dept")))}


async def a_deleted_department(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, Department(name=unique("dept")), deleted=True)}


async def a_customer(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, Customer(name=unique("acct")))}


async def a_deleted_customer(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, Customer(name=unique("acct")), deleted=True)}


def _calendar() -> BusinessHours:
    return BusinessHours(
        name=unique("hours"),
        timezone="Europe/Berlin",
        intervals=[{"weekday": 0, "start": "09:00", "end": "17:00"}],
    )


async def a_calendar(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _calendar())}


async def a_deleted_calendar(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _calendar(), deleted=True)}


def _policy() -> SLAPolicy:
    return SLAPolicy(name=unique("sla"), first_response_minutes=60, resolution_minutes=480)


async def a_policy(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _policy())}


async def a_deleted_policy(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _policy(), deleted=True)}


async def an_api_key(world: World, _role: str, tenant: Tenant) -> Targets:
    _, prefix, key_hash = tokens.new_api_key()
    key = ApiKey(name="k", prefix=prefix, key_hash=key_hash, role=Role.AGENT)
    return {"id": await _row(world, tenant, key)}


async def a_session(world: World, role: str, tenant: Tenant) -> Targets:
    """Own organization: another session of the caller itself; other: a stranger's."""
    if tenant is world.home:
        actor = world.actor(role)
        async with world.database.system_session() as session:
            user = await session.get(User, actor.user_id) if actor.user_id else None
        if user is None:  # an API key has no sessions: any id will do
            return {"id": str(uuid.uuid4())}
        return {"id": _session_id(await sign_in(world.database, "again", user))}
    async with world.database.system_session() as session:
        stranger = await session.get(User, tenant["agent"].user_id)
    assert stranger is not None
    return {"id": _session_id(await sign_in(world.database, "stranger", stranger))}


async def a_notification(world: World, role: str, tenant: Tenant) -> Targets:
    """Own organization: one of the caller's; other: one of a stranger's."""
    user_id = world.actor(role).user_id if tenant is world.home else tenant["agent"].user_id
    if user_id is None or role == "superuser":  # no notifications: any id will do
        return {"id": str(uuid.uuid4())}
    async with world.database.tenant_session(tenant.org.id) as session:
        notification = Notification(user_id=user_id, kind="sla_escalation", title="TK-000001")
        session.add(notification)
        await session.commit()
    return {"id": str(notification.id)}


def _session_id(actor: Actor) -> str:
    assert actor.refresh_token is not None
    return actor.refresh_token.split(".")[0]


async def an_organization(world: World, _role: str, _tenant: Tenant) -> Targets:
    async with world.database.system_session() as session:
        org = Organization(name="Target", slug=unique("target"))
        session.add(org)
        await session.commit()
    return {"id": str(org.id)}


async def a_deleted_organization(world: World, role: str, tenant: Tenant) -> Targets:
    targets = await an_organization(world, role, tenant)
    async with world.database.system_session() as session:
        org = await session.get(Organization, uuid.UUID(targets["id"]))
        assert org is not None
        org.soft_delete()
        await session.commit()
    return targets


async def a_ticket(world: World, _role: str, tenant: Tenant) -> Targets:
    """A ticket of the tenant's customer actor: "own" for that customer too."""
    async with world.database.tenant_session(tenant.org.id) as session:
        ticket = await open_ticket(
            world.database.unit_of_work(session),
            subject="Case",
            customer_id=tenant["customer"].user_id,
            created_by_id=None,
        )
        await session.commit()
    return {"id": str(ticket["id"])}


async def a_deleted_ticket(world: World, role: str, tenant: Tenant) -> Targets:
    targets = await a_ticket(world, role, tenant)
    async with world.database.tenant_session(tenant.org.id) as session:
        ticket = await session.get(Ticket, uuid.UUID(targets["id"]))
        assert ticket is not None
        ticket.soft_delete()
        await session.commit()
    return targets


async def a_custom_field(world: World, _role: str, tenant: Tenant) -> Targets:
    field = CustomField(name=f"f_{uuid.uuid4().hex[:10]}", field_type=FieldType.TEXT)
    return {"id": await _row(world, tenant, field)}


async def a_deleted_custom_field(world: World, _role: str, tenant: Tenant) -> Targets:
    field = CustomField(name=f"f_{uuid.uuid4().hex[:10]}", field_type=FieldType.TEXT)
    return {"id": await _row(world, tenant, field, deleted=True)}


async def an_attachment(world: World, role: str, tenant: Tenant) -> Targets:
    """A public file on a ticket of the tenant's customer, uploaded through the API."""
    ticket = (await a_ticket(world, role, tenant))["id"]
    response = await world.client.post(
        f"{API}/tickets/{ticket}/attachments",
        files={"file": ("log.txt", b"disk full", "text/plain")},
        headers=tenant["agent"].headers,
    )
    assert response.status_code == 201, response.text
    return {"id": response.json()["id"]}


def _channel() -> Channel:
    return Channel(type=ChannelType.CHAT, name=unique("chat"), secret="whsec_" + "A" * 43)


async def a_channel(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _channel())}


async def a_deleted_channel(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _channel(), deleted=True)}


async def a_failed_message(world: World, role: str, tenant: Tenant) -> Targets:
    """A stored chat event that failed (no author): its retry fails again, a 202."""
    channel = (await a_channel(world, role, tenant))["id"]
    message = InboundMessage(
        channel_id=uuid.UUID(channel),
        external_id=unique("evt"),
        content_type="application/json",
        raw_body=b'{"event_id": "e"}',
        status=InboundStatus.FAILED,
    )
    return {"id": channel, "inbox": await _row(world, tenant, message)}


# Nothing listens there: a test event or a replay fails at once, as a refused connection.
HOOK_URL = "http://127.0.0.1:9/hook"


def _webhook() -> WebhookSubscription:
    return WebhookSubscription(url=HOOK_URL, events=["*"], secret=new_secret())


async def a_webhook(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _webhook())}


async def a_deleted_webhook(world: World, _role: str, tenant: Tenant) -> Targets:
    return {"id": await _row(world, tenant, _webhook(), deleted=True)}


async def a_delivery(world: World, role: str, tenant: Tenant) -> Targets:
    webhook = (await a_webhook(world, role, tenant))["id"]
    delivery = WebhookDelivery(
        subscription_id=uuid.UUID(webhook),
        event_id=uuid.uuid4(),
        event_type="ticket.created",
        payload="{}",
    )
    return {"id": webhook, "delivery": await _row(world, tenant, delivery)}


def new_org(_: World) -> dict[str, Any]:
    slug = unique("new")
    return {
        "name": "New",
        "slug": slug,
        "admin": {"email": f"admin@{slug}.example.com", "password": "a-long-password-1"},
    }


CASES = [
    # platform
    Case("GET", "/organizations", PLATFORM, 200),
    Case("POST", "/organizations", PLATFORM, 201, body=new_org),
    Case("GET", "/organizations/{id}", PLATFORM, 200, an_organization, other_status=200),
    Case(
        "PATCH",
        "/organizations/{id}",
        PLATFORM,
        200,
        an_organization,
        body=lambda _: {"name": "Renamed"},
        other_status=200,
    ),
    Case("DELETE", "/organizations/{id}", PLATFORM, 204, an_organization, other_status=204),
    Case(
        "POST",
        "/organizations/{id}/restore",
        PLATFORM,
        200,
        a_deleted_organization,
        other_status=200,
    ),
    # the caller's own organization
    Case("GET", "/organizations/current", STAFF_READERS, 200),
    Case("PATCH", "/organizations/current", ADMINS, 200, body=lambda _: {"settings": {"a": 1}}),
    # users
    Case("GET", "/users", STAFF_READERS, 200),
    Case(
        "POST",
        "/users",
        WRITERS,
        201,
        body=lambda _: {"email": f"{unique('u')}@example.com", "role": "agent"},
    ),
    Case("GET", "/users/me", PEOPLE, 200),
    Case("PATCH", "/users/me", PEOPLE, 200, body=lambda _: {"first_name": "Me"}),
    Case("GET", "/users/{id}", STAFF_READERS, 200, a_user),
    Case("PATCH", "/users/{id}", WRITERS, 200, a_user, body=lambda _: {"first_name": "X"}),
    Case("DELETE", "/users/{id}", WRITERS, 204, a_user),
    Case("POST", "/users/{id}/restore", WRITERS, 200, a_deleted_user),
    Case("GET", "/users/{id}/permissions", ONLY_ADMIN_USER, 200, a_user),
    Case(
        "POST",
        "/users/{id}/permissions",
        ONLY_ADMIN_USER,
        201,
        a_user,
        body=lambda _: {"permission": "deleted:read"},
    ),
    Case("DELETE", "/users/{id}/permissions/{grant}", ONLY_ADMIN_USER, 204, a_grant),
    # sessions and self-service security
    Case("GET", "/sessions", PEOPLE, 200),
    Case("GET", "/sessions/{id}", PEOPLE, 200, a_session),
    Case("DELETE", "/sessions/{id}", PEOPLE, 204, a_session),
    Case("POST", "/auth/logout", PEOPLE, 204),
    Case("GET", "/notifications", TENANT_PEOPLE, 200),
    Case("POST", "/notifications/read", TENANT_PEOPLE, 200),
    Case("POST", "/notifications/{id}/read", TENANT_PEOPLE, 200, a_notification),
    Case("POST", "/auth/totp/enroll", PEOPLE, 200, body=lambda _: {"password": PASSWORD}),
    # Allowed callers reach the rule: no enrolment yet / 2FA not on → 409.
    Case("POST", "/auth/totp/confirm", PEOPLE, 409, body=lambda _: {"code": "000000"}),
    Case("POST", "/auth/totp/disable", PEOPLE, 409, body=lambda _: {"code": "000000"}),
    # departments and customer accounts
    Case("GET", "/departments", STAFF_READERS, 200),
    Case("POST", "/departments", WRITERS, 201, body=lambda _: {"name": unique("d")}),
    Case("GET", "/departments/{id}", STAFF_READERS, 200, a_department),
    Case("PATCH", "/departments/{id}", WRITERS, 200, a_department, body=lambda _: {"email": None}),
    Case("DELETE", "/departments/{id}", WRITERS, 204, a_department),
    Case("POST", "/departments/{id}/restore", WRITERS, 200, a_deleted_department),
    Case("GET", "/customers", STAFF_READERS, 200),
    Case("POST", "/customers", WRITERS, 201, body=lambda _: {"name": unique("c")}),
    Case("GET", "/customers/{id}", STAFF_READERS, 200, a_customer),
    Case("PATCH", "/customers/{id}", WRITERS, 200, a_customer, body=lambda _: {"notes": "vip"}),
    Case("DELETE", "/customers/{id}", WRITERS, 204, a_customer),
    Case("POST", "/customers/{id}/restore", WRITERS, 200, a_deleted_customer),
    # business hours: staff read them (`sla:read`), admins write (`sla:manage`)
    Case("GET", "/business-hours", STAFF_READERS, 200),
    Case(
        "POST",
        "/business-hours",
        ADMINS,
        201,
        body=lambda _: {
            "name": unique("hours"),
            "timezone": "UTC",
            "intervals": [{"weekday": 0, "start": "09:00", "end": "17:00"}],
        },
    ),
    Case("GET", "/business-hours/{id}", STAFF_READERS, 200, a_calendar),
    Case(
        "PATCH",
        "/business-hours/{id}",
        ADMINS,
        200,
        a_calendar,
        body=lambda _: {"holidays": ["2025-12-24"]},
    ),
    Case("DELETE", "/business-hours/{id}", ADMINS, 204, a_calendar),
    Case("POST", "/business-hours/{id}/restore", ADMINS, 200, a_deleted_calendar),
    # SLA policies: the same gates as business hours
    Case("GET", "/sla-policies", STAFF_READERS, 200),
    Case(
        "POST",
        "/sla-policies",
        ADMINS,
        201,
        body=lambda _: {
            "name": unique("sla"),
            "first_response_minutes": 60,
            "resolution_minutes": 480,
        },
    ),
    Case("GET", "/sla-policies/{id}", STAFF_READERS, 200, a_policy),
    Case("PATCH", "/sla-policies/{id}", ADMINS, 200, a_policy, body=lambda _: {"position": 3}),
    Case("DELETE", "/sla-policies/{id}", ADMINS, 204, a_policy),
    Case("POST", "/sla-policies/{id}/restore", ADMINS, 200, a_deleted_policy),
    Case(
        "GET",
        "/sla-policies/{id}/preview",
        STAFF_READERS,
        200,
        a_policy,
        params={"start": "2025-03-07T14:00:00Z"},
    ),
    # inbound channels: admins (`channels:manage`); the webhooks themselves are signed
    Case("GET", "/channels", ADMINS, 200),
    Case("POST", "/channels", ADMINS, 201, body=lambda _: {"type": "chat", "name": unique("c")}),
    Case("GET", "/channels/{id}", ADMINS, 200, a_channel),
    Case("PATCH", "/channels/{id}", ADMINS, 200, a_channel, body=lambda _: {"name": "Renamed"}),
    Case("DELETE", "/channels/{id}", ADMINS, 204, a_channel),
    Case("POST", "/channels/{id}/restore", ADMINS, 200, a_deleted_channel),
    Case("POST", "/channels/{id}/rotate-secret", ADMINS, 200, a_channel),
    Case("GET", "/channels/{id}/inbox", ADMINS, 200, a_channel),
    Case("POST", "/channels/{id}/inbox/{inbox}/retry", ADMINS, 202, a_failed_message),
    # outbound webhooks: admins (`webhooks:manage`)
    Case("GET", "/webhooks", ADMINS, 200),
    Case("POST", "/webhooks", ADMINS, 201, body=lambda _: {"url": HOOK_URL}),
    Case("GET", "/webhooks/{id}", ADMINS, 200, a_webhook),
    Case("PATCH", "/webhooks/{id}", ADMINS, 200, a_webhook, body=lambda _: {"description": "x"}),
    Case("DELETE", "/webhooks/{id}", ADMINS, 204, a_webhook),
    Case("POST", "/webhooks/{id}/restore", ADMINS, 200, a_deleted_webhook),
    Case("POST", "/webhooks/{id}/rotate-secret", ADMINS, 200, a_webhook),
    Case("POST", "/webhooks/{id}/test", ADMINS, 202, a_webhook),
    Case("GET", "/webhooks/{id}/deliveries", ADMINS, 200, a_webhook),
    Case("GET", "/webhooks/{id}/deliveries/{delivery}", ADMINS, 200, a_delivery),
    Case("POST", "/webhooks/{id}/deliveries/{delivery}/replay", ADMINS, 202, a_delivery),
    # API keys: admins (users) only
    Case("GET", "/api-keys", ONLY_ADMIN_USER, 200),
    Case("POST", "/api-keys", ONLY_ADMIN_USER, 201, body=lambda _: {"name": "k"}),
    Case("GET", "/api-keys/{id}", ONLY_ADMIN_USER, 200, an_api_key),
    Case("DELETE", "/api-keys/{id}", ONLY_ADMIN_USER, 204, an_api_key),
    # tickets: customers act on their own only (the target belongs to the customer actor)
    Case("GET", "/tickets", TENANT_PEOPLE_AND_KEYS, 200),
    Case(
        "POST",
        "/tickets",
        TENANT_PEOPLE_AND_KEYS,
        201,
        body=lambda world: {"subject": "Help", "customer_id": str(world.home["customer"].user_id)},
    ),
    Case("GET", "/tickets/{id}", TENANT_PEOPLE_AND_KEYS, 200, a_ticket),
    Case(
        "PATCH", "/tickets/{id}", STAFF_READERS, 200, a_ticket, body=lambda _: {"priority": "high"}
    ),
    Case("DELETE", "/tickets/{id}", WRITERS, 204, a_ticket),
    Case("POST", "/tickets/{id}/restore", WRITERS, 200, a_deleted_ticket),
    Case("GET", "/tickets/{id}/comments", TENANT_PEOPLE_AND_KEYS, 200, a_ticket),
    # API keys pass the gate but cannot author comments (a comment has a person).
    Case(
        "POST",
        "/tickets/{id}/comments",
        TENANT_PEOPLE,
        201,
        a_ticket,
        body=lambda _: {"content": "Any news?"},
    ),
    Case("GET", "/tickets/{id}/history", STAFF_READERS, 200, a_ticket),
    Case("GET", "/tickets/{id}/sla-events", STAFF_READERS, 200, a_ticket),
    Case("GET", "/tickets/{id}/attachments", TENANT_PEOPLE_AND_KEYS, 200, a_ticket),
    # Like comments, an upload needs a person as its uploader.
    Case("POST", "/tickets/{id}/attachments", TENANT_PEOPLE, 201, a_ticket, upload=True),
    Case("GET", "/attachments/{id}/download", TENANT_PEOPLE_AND_KEYS, 200, an_attachment),
    # custom field definitions: everyone reads them (forms need them), admins write
    Case("GET", "/custom-fields", TENANT_PEOPLE_AND_KEYS, 200),
    Case(
        "POST",
        "/custom-fields",
        ADMINS,
        201,
        body=lambda _: {"name": f"f_{uuid.uuid4().hex[:10]}", "field_type": "text"},
    ),
    Case("GET", "/custom-fields/{id}", TENANT_PEOPLE_AND_KEYS, 200, a_custom_field),
    Case(
        "PATCH", "/custom-fields/{id}", ADMINS, 200, a_custom_field, body=lambda _: {"label": "X"}
    ),
    Case("DELETE", "/custom-fields/{id}", ADMINS, 204, a_custom_field),
    Case("POST", "/custom-fields/{id}/restore", ADMINS, 200, a_deleted_custom_field),
    # the change feed
    Case("GET", "/changes", STAFF_READERS, 200),
    # reports: managers and admins
    Case(
        "GET",
        "/reports/sla",
        WRITERS,
        200,
        params={"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"},
    ),
]
UNAUTHENTICATED_ROUTES = {
    "POST /auth/token",
    "POST /auth/refresh",
    # Signed by the channel's secret instead (tests/channels).
    "POST /inbound/email/{id}",
    "POST /inbound/chat/{id}",
}


def expected(case: Case, role: str, scope: str) -> int:
    if role not in case.allowed:
        return 403
    return case.other_status if scope == "other" else case.status


async def _call(
    client: httpx.AsyncClient,
    case: Case,
    targets: Targets,
    headers: dict[str, str],
    world: World | None = None,
) -> httpx.Response:
    path = API + case.path.format(**targets)
    if case.upload:
        files = {"file": ("note.txt", b"hello", "text/plain")}
        return await client.request(case.method, path, files=files, headers=headers)
    body = case.body(world) if case.body and world else None
    return await client.request(case.method, path, json=body, params=case.params, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_route_by_role_and_organization(
    case: Case,
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    superuser: Actor,
) -> None:
    world = World(database, tenant_a, tenant_b, superuser, client)
    scopes = {"own": tenant_a, "other": tenant_b} if case.target else {"own": tenant_a}
    outcomes: dict[tuple[str, str], tuple[int, int]] = {}
    for role in ROLES:
        for scope, tenant in scopes.items():
            targets = await case.target(world, role, tenant) if case.target else {}
            response = await _call(client, case, targets, world.actor(role).headers, world)
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"
            outcomes[(role, scope)] = (response.status_code, expected(case, role, scope))
    wrong = {key: got for key, (got, want) in outcomes.items() if got != want}
    assert not wrong, f"{case.id}: (role, scope) -> got {wrong}; want {outcomes}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_route_without_credentials_is_401(case: Case, client: httpx.AsyncClient) -> None:
    targets = {
        "id": str(uuid.uuid4()),
        "grant": str(uuid.uuid4()),
        "inbox": str(uuid.uuid4()),
        "delivery": str(uuid.uuid4()),
    }
    response = await _call(client, case, targets, {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_other_organizations_row_looks_exactly_like_a_missing_one(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    foreign = (
        await a_user(World(database, tenant_a, tenant_b, tenant_a["admin"], client), "", tenant_b)
    )["id"]
    headers = tenant_a["agent"].headers
    theirs = await client.get(f"{API}/users/{foreign}", headers=headers)
    missing = await client.get(f"{API}/users/{uuid.uuid4()}", headers=headers)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


def test_every_route_is_in_the_matrix(app: FastAPI) -> None:
    """A new route of this API must say who may call it, here."""
    spec_routes = {
        f"{method.upper()} {path.removeprefix(API)}"
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(API)
        for method in operations
    }
    named_ids = re.compile(
        r"\{(user|organization|department|customer|key|session|ticket|field|attachment"
        r"|business_hours|sla_policy|notification|channel|webhook)_id\}"
    )
    table = {
        case.id.replace("{grant}", "{grant_id}")
        .replace("{inbox}", "{inbox_id}")
        .replace("{delivery}", "{delivery_id}")
        for case in CASES
    }
    assert {named_ids.sub("{id}", r) for r in spec_routes} - UNAUTHENTICATED_ROUTES == table
