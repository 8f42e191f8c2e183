"""/users and /users/me against the contract: creation, email uniqueness, role rules, the
last admin, mass assignment, references, profile and password changes, deletion and
restore, tenancy, filters and keyset paging. Every refusal is read back from the
database to prove nothing changed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.auth.permissions import ROLE_PERMISSIONS
from app.db.database import Database
from app.models.organization import Organization
from app.models.user import Role, User, UserSession
from tests.support.identity import API, PASSWORD, Actor, Tenant, add_user, login

USERS = f"{API}/users"
ME = f"{USERS}/me"
NEW_PASSWORD = "a-different-long-passphrase"
PROBLEM_JSON = "application/problem+json"

# Columns any authenticated request may touch (activity tracking): never an edit.
ACTIVITY = frozenset({"last_active_at", "last_login_at", "last_login_ip", "totp_last_used_step"})
SECRETS = frozenset({"password", "password_hash", "totp_secret", "totp_last_used_step"})
# The seed's user fields a user body carries.
SEED_FIELDS = frozenset(
    {
        "id",
        "organization_id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "role",
        "is_superuser",
        "customer_tier",
        "customer_id",
        "department_id",
        "timezone",
        "language",
        "skills",
        "certifications",
        "max_concurrent_tickets",
        "availability_status",
        "email_notifications",
        "sms_notifications",
        "push_notifications",
        "two_factor_enabled",
        "last_active_at",
        "last_login_ip",
        "created_at",
        "updated_at",
    }
)


# --- helpers ------------------------------------------------------------------------


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in body.get("errors") or []]


def assert_no_secrets(body: dict[str, Any]) -> None:
    assert not SECRETS & body.keys(), body.keys()
    assert PASSWORD not in str(body) and NEW_PASSWORD not in str(body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def read_user(database: Database, org: Organization, user_id: uuid.UUID) -> User | None:
    """The row as stored, soft-deleted or not."""
    async with database.tenant_session(org.id) as session:
        return await session.scalar(
            sa.select(User).where(User.id == user_id).execution_options(include_deleted=True)
        )


async def snapshot(database: Database, org: Organization, user_id: uuid.UUID) -> dict[str, Any]:
    user = await read_user(database, org, user_id)
    assert user is not None
    return {
        attr.key: getattr(user, attr.key)
        for attr in sa.inspect(User).column_attrs
        if attr.key not in ACTIVITY
    }


async def users_with_email(database: Database, org: Organization, email: str) -> list[User]:
    async with database.tenant_session(org.id) as session:
        rows = await session.scalars(
            sa.select(User)
            .where(sa.func.lower(User.email) == email.lower())
            .execution_options(include_deleted=True)
        )
        return list(rows)


async def live_user_ids(database: Database, org: Organization) -> set[uuid.UUID]:
    async with database.tenant_session(org.id) as session:
        return set(await session.scalars(sa.select(User.id)))


async def active_session_count(database: Database, org: Organization, user_id: uuid.UUID) -> int:
    async with database.tenant_session(org.id) as session:
        count = await session.scalar(
            sa.select(sa.func.count())
            .select_from(UserSession)
            .where(UserSession.user_id == user_id, UserSession.is_active)
        )
        return int(count or 0)


async def new_user(
    client: httpx.AsyncClient,
    tenant: Tenant,
    role: Role = Role.AGENT,
    *,
    password: str | None = PASSWORD,
    **fields: Any,
) -> dict[str, Any]:
    """A user created through the API by the tenant's admin."""
    body: dict[str, Any] = {"email": unique_email(role.value), "role": role.value, **fields}
    if password is not None:
        body["password"] = password
    response = await client.post(USERS, json=body, headers=tenant["admin"].headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def sign_in(
    client: httpx.AsyncClient, tenant: Tenant, email: str, password: str = PASSWORD
) -> dict[str, str]:
    response = await login(client, email, password, client_id=tenant.slug)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def ids_of(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


# --- creation -----------------------------------------------------------------------


@pytest.mark.parametrize("creator", ["admin", "manager"])
async def test_admin_and_manager_create_users_with_the_seed_fields(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, creator: str
) -> None:
    sent: dict[str, Any] = {
        "email": unique_email("ada"),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "role": "agent",
        "customer_tier": "premium",
        "department_id": str(tenant_a.department_id),
        "timezone": "Europe/Berlin",
        "language": "de",
        "skills": ["billing", "hardware"],
        "certifications": ["itil"],
        "max_concurrent_tickets": 7,
        "availability_status": "online",
        "email_notifications": False,
        "sms_notifications": True,
        "push_notifications": False,
    }
    response = await client.post(
        USERS, json={**sent, "password": NEW_PASSWORD}, headers=tenant_a[creator].headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() >= SEED_FIELDS
    assert_no_secrets(body)
    assert {key: body[key] for key in sent} == sent
    assert body["organization_id"] == str(tenant_a.org.id)
    assert body["is_superuser"] is False
    assert body["two_factor_enabled"] is False
    assert body["deleted_at"] is None

    stored = await read_user(database, tenant_a.org, uuid.UUID(body["id"]))
    assert stored is not None
    assert stored.organization_id == tenant_a.org.id
    assert stored.role is Role.AGENT
    assert stored.email == sent["email"]
    assert stored.department_id == tenant_a.department_id
    assert stored.skills == ["billing", "hardware"]
    assert stored.max_concurrent_tickets == 7
    assert stored.password_hash is not None
    assert NEW_PASSWORD not in stored.password_hash

    # The password set at creation is the one that logs in.
    headers = await sign_in(client, tenant_a, sent["email"], NEW_PASSWORD)
    me = await client.get(ME, headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == body["id"]
    assert me.json()["role"] == "agent"


async def test_minimal_user_gets_the_seed_defaults_and_cannot_log_in_without_password(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    email = unique_email("minimal")
    response = await client.post(
        USERS, json={"email": email, "role": "customer"}, headers=tenant_a["admin"].headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert_no_secrets(body)
    assert {key: body[key] for key in body if key in SEED_FIELDS - {"id", "created_at"}} == {
        "organization_id": str(tenant_a.org.id),
        "email": email,
        "first_name": "",
        "last_name": "",
        "phone": None,
        "role": "customer",
        "is_superuser": False,
        "customer_tier": "basic",
        "customer_id": None,
        "department_id": None,
        "timezone": "UTC",
        "language": "en",
        "skills": [],
        "certifications": [],
        "max_concurrent_tickets": 10,
        "availability_status": "offline",
        "email_notifications": True,
        "sms_notifications": False,
        "push_notifications": True,
        "two_factor_enabled": False,
        "last_active_at": None,
        "last_login_ip": None,
        "updated_at": body["updated_at"],
    }
    stored = await read_user(database, tenant_a.org, uuid.UUID(body["id"]))
    assert stored is not None and stored.password_hash is None
    assert (await login(client, email, PASSWORD, client_id=tenant_a.slug)).status_code == 401


@pytest.mark.parametrize(
    ("actor", "role", "status"),
    [
        ("admin", "admin", 201),
        ("admin", "manager", 201),
        ("manager", "admin", 403),
        ("manager", "manager", 201),
        ("manager", "customer", 201),
        ("agent", "customer", 403),
        ("customer", "customer", 403),
        # A key may create users but never set a password: keys mint no credentials.
        ("api_key", "agent", 403),
    ],
)
async def test_who_may_create_which_role(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    actor: str,
    role: str,
    status: int,
) -> None:
    email = unique_email(role)
    response = await client.post(
        USERS,
        json={"email": email, "password": PASSWORD, "role": role},
        headers=tenant_a[actor].headers,
    )

    rows = await users_with_email(database, tenant_a.org, email)
    if status == 201:
        assert response.status_code == 201, response.text
        assert response.json()["role"] == role
        assert [(u.id, u.role) for u in rows] == [(uuid.UUID(response.json()["id"]), Role(role))]
    else:
        assert_problem(response, status)
        assert rows == []


# --- email uniqueness -----------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["same", "lower", "upper"])
async def test_email_is_unique_per_organization_case_insensitively(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, spelling: str
) -> None:
    # Stored addresses are lower case (the database refuses others), whatever was sent.
    written = f"Mixed.Case-{uuid.uuid4().hex[:8]}@Example.COM"
    stored = written.lower()
    await add_user(database, tenant_a.org, Role.AGENT, email=stored)
    sent = {"same": written, "lower": stored, "upper": written.upper()}[spelling]

    response = await client.post(
        USERS, json={"email": sent, "role": "agent"}, headers=tenant_a["admin"].headers
    )

    assert_problem(response, 409)
    assert [u.email for u in await users_with_email(database, tenant_a.org, stored)] == [stored]


async def test_changing_email_to_a_taken_one_conflicts(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.email is not None and agent.user_id is not None
    target = await new_user(client, tenant_a)
    before = await snapshot(database, tenant_a.org, uuid.UUID(target["id"]))

    response = await client.patch(
        f"{USERS}/{target['id']}",
        json={"email": agent.email.upper(), "first_name": "Changed"},
        headers=tenant_a["admin"].headers,
    )

    assert_problem(response, 409)
    assert await snapshot(database, tenant_a.org, uuid.UUID(target["id"])) == before
    assert len(await users_with_email(database, tenant_a.org, agent.email)) == 1


async def test_same_email_is_fine_in_another_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    email = unique_email("shared")
    first = await client.post(
        USERS,
        json={"email": email, "password": PASSWORD, "role": "agent"},
        headers=tenant_a["admin"].headers,
    )
    second = await client.post(
        USERS,
        json={"email": email, "password": NEW_PASSWORD, "role": "customer"},
        headers=tenant_b["admin"].headers,
    )

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert len(await users_with_email(database, tenant_a.org, email)) == 1
    assert len(await users_with_email(database, tenant_b.org, email)) == 1
    # Each organization's login is its own account.
    await sign_in(client, tenant_a, email, PASSWORD)
    await sign_in(client, tenant_b, email, NEW_PASSWORD)


async def test_deleted_users_email_is_reusable_and_restoring_into_a_clash_conflicts(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    first = await new_user(client, tenant_a)
    email, first_id = first["email"], uuid.UUID(first["id"])
    assert (await client.delete(f"{USERS}/{first_id}", headers=admin)).status_code == 204

    second = await client.post(USERS, json={"email": email, "role": "agent"}, headers=admin)
    assert second.status_code == 201, second.text

    before = await snapshot(database, tenant_a.org, first_id)
    restore = await client.post(f"{USERS}/{first_id}/restore", headers=admin)
    assert_problem(restore, 409)
    assert await snapshot(database, tenant_a.org, first_id) == before
    assert before["deleted_at"] is not None
    assert len(await users_with_email(database, tenant_a.org, email)) == 2


async def test_restore_goes_through_once_the_email_clash_is_gone(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    first = await new_user(client, tenant_a)
    first_id = uuid.UUID(first["id"])
    assert (await client.delete(f"{USERS}/{first_id}", headers=admin)).status_code == 204
    second = await client.post(
        USERS, json={"email": first["email"], "role": "agent"}, headers=admin
    )
    assert second.status_code == 201, second.text
    deleted = await client.delete(f"{USERS}/{second.json()['id']}", headers=admin)
    assert deleted.status_code == 204

    restore = await client.post(f"{USERS}/{first_id}/restore", headers=admin)

    assert restore.status_code == 200, restore.text
    assert restore.json()["deleted_at"] is None
    restored = await read_user(database, tenant_a.org, first_id)
    assert restored is not None and restored.deleted_at is None


# --- role rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("PATCH", {"first_name": "Mallory"}, id="rename"),
        pytest.param("PATCH", {"role": "agent"}, id="demote"),
        pytest.param("PATCH", {"password": NEW_PASSWORD}, id="set-password"),
        pytest.param("DELETE", None, id="delete"),
    ],
)
async def test_manager_cannot_change_or_delete_an_admin(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    # A second admin, so the last-admin rule cannot be what refuses.
    await new_user(client, tenant_a, Role.ADMIN)
    admin = tenant_a["admin"]
    assert admin.user_id is not None
    before = await snapshot(database, tenant_a.org, admin.user_id)

    response = await client.request(
        method, f"{USERS}/{admin.user_id}", json=body, headers=tenant_a["manager"].headers
    )

    assert_problem(response, 403)
    assert await snapshot(database, tenant_a.org, admin.user_id) == before
    assert (await client.get(ME, headers=admin.headers)).status_code == 200


async def test_manager_cannot_restore_an_admin(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    second = await new_user(client, tenant_a, Role.ADMIN)
    second_id = uuid.UUID(second["id"])
    deleted = await client.delete(f"{USERS}/{second_id}", headers=tenant_a["admin"].headers)
    assert deleted.status_code == 204

    response = await client.post(
        f"{USERS}/{second_id}/restore", headers=tenant_a["manager"].headers
    )

    assert_problem(response, 403)
    stored = await read_user(database, tenant_a.org, second_id)
    assert stored is not None and stored.deleted_at is not None


async def test_manager_cannot_make_someone_an_admin(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent_id = tenant_a["agent"].user_id
    assert agent_id is not None
    before = await snapshot(database, tenant_a.org, agent_id)

    response = await client.patch(
        f"{USERS}/{agent_id}", json={"role": "admin"}, headers=tenant_a["manager"].headers
    )

    assert_problem(response, 403)
    assert await snapshot(database, tenant_a.org, agent_id) == before


async def test_nobody_raises_their_own_role(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    manager = tenant_a["manager"]
    assert manager.user_id is not None
    before = await snapshot(database, tenant_a.org, manager.user_id)

    response = await client.patch(
        f"{USERS}/{manager.user_id}", json={"role": "admin"}, headers=manager.headers
    )

    assert_problem(response, 403)
    assert await snapshot(database, tenant_a.org, manager.user_id) == before
    me = await client.get(ME, headers=manager.headers)
    assert me.json()["role"] == "manager"


async def test_admin_changes_roles_below_and_to_admin(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    target = await new_user(client, tenant_a, Role.CUSTOMER)
    for role in ("agent", "manager", "admin", "agent"):
        response = await client.patch(
            f"{USERS}/{target['id']}", json={"role": role}, headers=tenant_a["admin"].headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == role
        stored = await read_user(database, tenant_a.org, uuid.UUID(target["id"]))
        assert stored is not None and stored.role is Role(role)


# --- the last admin ------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["admin", "api_key"])
@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("DELETE", None, id="delete"),
        pytest.param("PATCH", {"role": "manager"}, id="demote"),
    ],
)
async def test_last_admin_cannot_be_deleted_or_demoted(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    actor: str,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    admin = tenant_a["admin"]
    assert admin.user_id is not None
    before = await snapshot(database, tenant_a.org, admin.user_id)

    response = await client.request(
        method, f"{USERS}/{admin.user_id}", json=body, headers=tenant_a[actor].headers
    )

    assert_problem(response, 409)
    assert await snapshot(database, tenant_a.org, admin.user_id) == before
    assert (await client.get(ME, headers=admin.headers)).status_code == 200


@pytest.mark.parametrize("actor", ["admin", "api_key"])
async def test_last_admin_can_be_deleted_once_another_exists(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, actor: str
) -> None:
    admin = tenant_a["admin"]
    assert admin.user_id is not None
    await new_user(client, tenant_a, Role.ADMIN)

    response = await client.delete(f"{USERS}/{admin.user_id}", headers=tenant_a[actor].headers)

    assert response.status_code == 204, response.text
    stored = await read_user(database, tenant_a.org, admin.user_id)
    assert stored is not None and stored.deleted_at is not None


@pytest.mark.parametrize("actor", ["admin", "api_key"])
async def test_last_admin_can_be_demoted_once_another_exists(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, actor: str
) -> None:
    admin = tenant_a["admin"]
    assert admin.user_id is not None
    await new_user(client, tenant_a, Role.ADMIN)

    response = await client.patch(
        f"{USERS}/{admin.user_id}", json={"role": "manager"}, headers=tenant_a[actor].headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "manager"
    stored = await read_user(database, tenant_a.org, admin.user_id)
    assert stored is not None and stored.role is Role.MANAGER


async def test_a_deleted_admin_is_not_another_admin(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"]
    assert admin.user_id is not None
    second = await new_user(client, tenant_a, Role.ADMIN)
    deleted = await client.delete(f"{USERS}/{second['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    before = await snapshot(database, tenant_a.org, admin.user_id)

    delete = await client.delete(f"{USERS}/{admin.user_id}", headers=admin.headers)
    demote = await client.patch(
        f"{USERS}/{admin.user_id}", json={"role": "agent"}, headers=admin.headers
    )

    assert_problem(delete, 409)
    assert_problem(demote, 409)
    assert await snapshot(database, tenant_a.org, admin.user_id) == before


# --- mass assignment ----------------------------------------------------------------------


SELF_FORBIDDEN = [
    pytest.param({"role": "admin"}, "role", id="role"),
    pytest.param({"organization_id": "OTHER_ORG"}, "organization_id", id="organization_id"),
    pytest.param({"is_superuser": True}, "is_superuser", id="is_superuser"),
    pytest.param({"email": "NEW_EMAIL"}, "email", id="email"),
    pytest.param({"first_name": "Sneaky", "role": "admin"}, "role", id="role-with-allowed-field"),
    pytest.param({"customer_id": None}, "customer_id", id="customer_id"),
    pytest.param({"department_id": "DEPARTMENT"}, "department_id", id="department_id"),
    pytest.param({"two_factor_enabled": False}, "two_factor_enabled", id="two_factor_enabled"),
    pytest.param({"deleted_at": None}, "deleted_at", id="deleted_at"),
    pytest.param({"skills": ["root"]}, "skills", id="skills"),
]


def _resolve(body: dict[str, Any], tenant: Tenant, other: Organization) -> dict[str, Any]:
    placeholders = {
        "OTHER_ORG": str(other.id),
        "NEW_EMAIL": unique_email("takeover"),
        "DEPARTMENT": str(tenant.department_id),
    }
    return {
        key: placeholders.get(value, value) if isinstance(value, str) else value
        for key, value in body.items()
    }


@pytest.mark.parametrize("actor", ["manager", "agent", "customer"])
@pytest.mark.parametrize(("body", "field"), SELF_FORBIDDEN)
async def test_patch_me_rejects_fields_outside_the_profile(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    org_b: Organization,
    actor: str,
    body: dict[str, Any],
    field: str,
) -> None:
    me = tenant_a[actor]
    assert me.user_id is not None
    before = await snapshot(database, tenant_a.org, me.user_id)

    response = await client.patch(ME, json=_resolve(body, tenant_a, org_b), headers=me.headers)

    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await snapshot(database, tenant_a.org, me.user_id) == before
    again = await client.get(ME, headers=me.headers)
    assert again.json()["role"] == actor
    assert again.json()["organization_id"] == str(tenant_a.org.id)
    assert again.json()["is_superuser"] is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("organization_id", "OTHER_ORG"),
        ("is_superuser", True),
        ("id", "NEW_ID"),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("deleted_at", "2020-01-01T00:00:00Z"),
        ("two_factor_enabled", True),
        ("totp_secret", "JBSWY3DPEHPK3PXP"),
        ("password_hash", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"),
        ("last_login_ip", "203.0.113.7"),
    ],
)
async def test_patch_user_rejects_fields_nobody_may_set(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    org_b: Organization,
    field: str,
    value: Any,
) -> None:
    agent_id = tenant_a["agent"].user_id
    assert agent_id is not None
    if value == "OTHER_ORG":
        value = str(org_b.id)
    elif value == "NEW_ID":
        value = str(uuid.uuid4())
    before = await snapshot(database, tenant_a.org, agent_id)

    response = await client.patch(
        f"{USERS}/{agent_id}",
        json={field: value, "first_name": "Changed"},
        headers=tenant_a["admin"].headers,
    )

    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await snapshot(database, tenant_a.org, agent_id) == before


@pytest.mark.parametrize("field", ["organization_id", "is_superuser", "id", "two_factor_enabled"])
async def test_create_user_rejects_fields_nobody_may_set(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    org_b: Organization,
    field: str,
) -> None:
    email = unique_email("mass")
    value: Any = {
        "organization_id": str(org_b.id),
        "is_superuser": True,
        "id": str(uuid.uuid4()),
        "two_factor_enabled": True,
    }[field]

    response = await client.post(
        USERS,
        json={"email": email, "role": "agent", field: value},
        headers=tenant_a["admin"].headers,
    )

    problem = assert_problem(response, 422)
    assert ["body", field] in error_locs(problem)
    assert await users_with_email(database, tenant_a.org, email) == []


# --- references ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "manager", "admin"])
async def test_customer_account_only_for_customer_users_on_create(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str
) -> None:
    email = unique_email(role)

    response = await client.post(
        USERS,
        json={"email": email, "role": role, "customer_id": str(tenant_a.customer_account_id)},
        headers=tenant_a["admin"].headers,
    )

    problem = assert_problem(response, 422)
    assert error_locs(problem) == [["body", "customer_id"]]
    assert await users_with_email(database, tenant_a.org, email) == []


async def test_customer_user_belongs_to_an_account_of_the_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    for account in (tenant_b.customer_account_id, uuid.uuid4()):
        email = unique_email("customer")
        response = await client.post(
            USERS,
            json={"email": email, "role": "customer", "customer_id": str(account)},
            headers=admin,
        )
        problem = assert_problem(response, 422)
        assert error_locs(problem) == [["body", "customer_id"]]
        assert await users_with_email(database, tenant_a.org, email) == []

    email = unique_email("customer")
    response = await client.post(
        USERS,
        json={
            "email": email,
            "role": "customer",
            "customer_id": str(tenant_a.customer_account_id),
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["customer_id"] == str(tenant_a.customer_account_id)
    [stored] = await users_with_email(database, tenant_a.org, email)
    assert stored.customer_id == tenant_a.customer_account_id


@pytest.mark.parametrize(
    ("target", "body"),
    [
        pytest.param("customer", {"role": "agent"}, id="customer-to-agent-keeping-account"),
        pytest.param("agent", {"customer_id": "ACCOUNT"}, id="agent-given-account"),
        pytest.param("customer", {"customer_id": "RANDOM"}, id="unknown-account"),
        pytest.param("customer", {"customer_id": "FOREIGN"}, id="other-orgs-account"),
    ],
)
async def test_customer_account_rules_on_update(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    target: str,
    body: dict[str, Any],
) -> None:
    user_id = tenant_a[target].user_id
    assert user_id is not None
    values = {
        "ACCOUNT": str(tenant_a.customer_account_id),
        "RANDOM": str(uuid.uuid4()),
        "FOREIGN": str(tenant_b.customer_account_id),
    }
    body = {k: values.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = await snapshot(database, tenant_a.org, user_id)

    response = await client.patch(
        f"{USERS}/{user_id}", json=body, headers=tenant_a["admin"].headers
    )

    problem = assert_problem(response, 422)
    assert error_locs(problem) == [["body", "customer_id"]]
    assert await snapshot(database, tenant_a.org, user_id) == before


async def test_customer_becomes_agent_when_the_account_is_cleared(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    customer_id = tenant_a["customer"].user_id
    assert customer_id is not None

    response = await client.patch(
        f"{USERS}/{customer_id}",
        json={"role": "agent", "customer_id": None},
        headers=tenant_a["admin"].headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "agent"
    assert response.json()["customer_id"] is None
    stored = await read_user(database, tenant_a.org, customer_id)
    assert stored is not None and stored.role is Role.AGENT and stored.customer_id is None


@pytest.mark.parametrize("department", ["random", "other-org"])
async def test_unknown_department_is_rejected(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    department: str,
) -> None:
    department_id = str(uuid.uuid4() if department == "random" else tenant_b.department_id)
    admin = tenant_a["admin"].headers
    email = unique_email("dept")

    created = await client.post(
        USERS,
        json={"email": email, "role": "agent", "department_id": department_id},
        headers=admin,
    )
    agent_id = tenant_a["agent"].user_id
    assert agent_id is not None
    before = await snapshot(database, tenant_a.org, agent_id)
    updated = await client.patch(
        f"{USERS}/{agent_id}", json={"department_id": department_id}, headers=admin
    )

    assert error_locs(assert_problem(created, 422)) == [["body", "department_id"]]
    assert error_locs(assert_problem(updated, 422)) == [["body", "department_id"]]
    assert await users_with_email(database, tenant_a.org, email) == []
    assert await snapshot(database, tenant_a.org, agent_id) == before


# --- field validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "Europe/Atlantis"),
        ("timezone", ""),
        ("timezone", "+02:00"),
        ("language", "english"),
        ("language", "EN"),
        ("language", "e"),
        ("language", "en_US"),
        ("language", ""),
    ],
)
async def test_invalid_timezone_or_language_is_rejected_everywhere(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, field: str, value: str
) -> None:
    admin = tenant_a["admin"].headers
    agent = tenant_a["agent"]
    assert agent.user_id is not None
    email = unique_email("tz")
    before = await snapshot(database, tenant_a.org, agent.user_id)

    created = await client.post(
        USERS, json={"email": email, "role": "agent", field: value}, headers=admin
    )
    updated = await client.patch(f"{USERS}/{agent.user_id}", json={field: value}, headers=admin)
    own = await client.patch(ME, json={field: value}, headers=agent.headers)

    for response in (created, updated, own):
        assert ["body", field] in error_locs(assert_problem(response, 422))
    assert await users_with_email(database, tenant_a.org, email) == []
    assert await snapshot(database, tenant_a.org, agent.user_id) == before


async def test_valid_timezone_and_language_are_accepted(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    response = await client.post(
        USERS,
        json={
            "email": unique_email("tz"),
            "role": "agent",
            "timezone": "America/Argentina/Buenos_Aires",
            "language": "pt-BR",
        },
        headers=tenant_a["admin"].headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["timezone"] == "America/Argentina/Buenos_Aires"
    assert response.json()["language"] == "pt-BR"


async def test_skills_and_certifications_are_trimmed_and_deduplicated(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    response = await client.post(
        USERS,
        json={
            "email": unique_email("skills"),
            "role": "agent",
            "skills": ["  billing ", "billing", "networking", " networking\t", "vip"],
            "certifications": ["itil ", " itil", "ccna"],
        },
        headers=admin,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["skills"] == ["billing", "networking", "vip"]
    assert body["certifications"] == ["itil", "ccna"]
    user_id = uuid.UUID(body["id"])
    stored = await read_user(database, tenant_a.org, user_id)
    assert stored is not None
    assert stored.skills == ["billing", "networking", "vip"]
    assert stored.certifications == ["itil", "ccna"]

    before = await snapshot(database, tenant_a.org, user_id)
    blank = await client.patch(f"{USERS}/{user_id}", json={"skills": ["ok", "   "]}, headers=admin)
    assert_problem(blank, 422)
    assert await snapshot(database, tenant_a.org, user_id) == before


async def test_skills_are_trimmed_and_deduplicated_on_update(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    user_id = tenant_a["agent"].user_id
    assert user_id is not None

    updated = await client.patch(
        f"{USERS}/{user_id}", json={"skills": [" hardware", "hardware ", "billing"]}, headers=admin
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["skills"] == ["hardware", "billing"]
    stored = await read_user(database, tenant_a.org, user_id)
    assert stored is not None and stored.skills == ["hardware", "billing"]


# --- /users/me ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "customer"])
async def test_me_returns_the_user_with_the_roles_permissions(
    client: httpx.AsyncClient, tenant_a: Tenant, name: str
) -> None:
    actor = tenant_a[name]

    response = await client.get(ME, headers=actor.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert_no_secrets(body)
    assert body.keys() >= SEED_FIELDS
    assert body["id"] == str(actor.user_id)
    assert body["email"] == actor.email
    assert body["role"] == name
    assert body["organization_id"] == str(tenant_a.org.id)
    assert body["is_superuser"] is False
    expected = sorted(p.value for p in ROLE_PERMISSIONS[Role(name)])
    assert sorted(body["permissions"]) == expected
    assert len(body["permissions"]) == len(expected)


async def test_me_is_for_people_not_api_keys(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    assert_problem(await client.get(ME, headers=tenant_a["api_key"].headers), 403)
    assert_problem(
        await client.patch(ME, json={"first_name": "Bot"}, headers=tenant_a["api_key"].headers),
        403,
    )


async def test_me_for_a_superuser(client: httpx.AsyncClient, superuser: Actor) -> None:
    response = await client.get(ME, headers=superuser.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert_no_secrets(body)
    assert body["id"] == str(superuser.user_id)
    assert body["is_superuser"] is True
    assert body["organization_id"] is None
    assert body["permissions"] == ["organizations:manage"]


async def test_me_without_a_credential_is_401(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(ME), 401)
    assert_problem(await client.get(ME, headers=bearer("not-a-token")), 401)


@pytest.mark.parametrize("name", ["admin", "manager", "agent", "customer"])
async def test_patch_me_edits_the_profile(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str
) -> None:
    actor = tenant_a[name]
    assert actor.user_id is not None
    profile: dict[str, Any] = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone": "+1 555 0100",
        "timezone": "America/New_York",
        "language": "en-US",
        "availability_status": "busy",
        "email_notifications": False,
        "sms_notifications": True,
        "push_notifications": False,
    }

    response = await client.patch(ME, json=profile, headers=actor.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert_no_secrets(body)
    assert {key: body[key] for key in profile} == profile
    assert body["role"] == name
    assert sorted(body["permissions"]) == sorted(p.value for p in ROLE_PERMISSIONS[Role(name)])
    stored = await snapshot(database, tenant_a.org, actor.user_id)
    assert {key: stored[key] for key in profile} == profile

    cleared = await client.patch(ME, json={"phone": None}, headers=actor.headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["phone"] is None
    assert (await snapshot(database, tenant_a.org, actor.user_id))["phone"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"first_name": None},
        {"timezone": None},
        {"availability_status": "asleep"},
        {"email_notifications": "sometimes"},
        {"first_name": "x" * 151},
    ],
)
async def test_patch_me_rejects_bad_profile_values(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, body: dict[str, Any]
) -> None:
    actor = tenant_a["agent"]
    assert actor.user_id is not None
    before = await snapshot(database, tenant_a.org, actor.user_id)

    response = await client.patch(ME, json=body, headers=actor.headers)

    [field] = body
    assert ["body", field] in error_locs(assert_problem(response, 422))
    assert await snapshot(database, tenant_a.org, actor.user_id) == before


async def test_superuser_edits_own_profile(
    client: httpx.AsyncClient, database: Database, superuser: Actor
) -> None:
    response = await client.patch(ME, json={"first_name": "Root"}, headers=superuser.headers)

    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Root"
    assert response.json()["is_superuser"] is True
    async with database.system_session() as session:
        stored = await session.get(User, superuser.user_id)
        assert stored is not None and stored.first_name == "Root"


# --- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"password": NEW_PASSWORD}, "current_password", id="no-current"),
        pytest.param(
            {"password": NEW_PASSWORD, "current_password": "wrong-password-123"},
            "current_password",
            id="wrong-current",
        ),
        pytest.param(
            {"password": NEW_PASSWORD, "current_password": ""}, "current_password", id="empty"
        ),
        pytest.param({"password": "short", "current_password": PASSWORD}, "password", id="short"),
    ],
)
async def test_password_change_needs_the_current_password(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    body: dict[str, Any],
    loc: str,
) -> None:
    agent = tenant_a["agent"]
    assert agent.user_id is not None and agent.email is not None
    before = await snapshot(database, tenant_a.org, agent.user_id)

    response = await client.patch(ME, json=body, headers=agent.headers)

    assert ["body", loc] in error_locs(assert_problem(response, 422))
    assert_no_secrets(response.json())
    assert await snapshot(database, tenant_a.org, agent.user_id) == before
    assert await active_session_count(database, tenant_a.org, agent.user_id) == 1
    assert (await client.get(ME, headers=agent.headers)).status_code == 200
    new = await login(client, agent.email, NEW_PASSWORD, client_id=tenant_a.slug)
    assert new.status_code == 401
    await sign_in(client, tenant_a, agent.email, PASSWORD)


async def test_password_change_ends_the_users_other_sessions(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"]
    assert agent.user_id is not None and agent.email is not None
    other = await sign_in(client, tenant_a, agent.email)
    bystander = tenant_a["manager"]
    assert await active_session_count(database, tenant_a.org, agent.user_id) == 2

    response = await client.patch(
        ME, json={"password": NEW_PASSWORD, "current_password": PASSWORD}, headers=agent.headers
    )

    assert response.status_code == 200, response.text
    assert_no_secrets(response.json())
    assert_problem(await client.get(ME, headers=other), 401)
    assert (await client.get(ME, headers=agent.headers)).status_code == 200
    assert await active_session_count(database, tenant_a.org, agent.user_id) == 1
    assert (await client.get(ME, headers=bystander.headers)).status_code == 200
    assert (await login(client, agent.email, PASSWORD, client_id=tenant_a.slug)).status_code == 401
    await sign_in(client, tenant_a, agent.email, NEW_PASSWORD)


@pytest.mark.parametrize("actor", ["admin", "manager"])
async def test_setting_someone_elses_password_ends_their_sessions(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, actor: str
) -> None:
    target = await new_user(client, tenant_a)
    target_id = uuid.UUID(target["id"])
    first = await sign_in(client, tenant_a, target["email"])
    second = await sign_in(client, tenant_a, target["email"])

    response = await client.patch(
        f"{USERS}/{target_id}", json={"password": NEW_PASSWORD}, headers=tenant_a[actor].headers
    )

    assert response.status_code == 200, response.text
    assert_no_secrets(response.json())
    assert_problem(await client.get(ME, headers=first), 401)
    assert_problem(await client.get(ME, headers=second), 401)
    assert await active_session_count(database, tenant_a.org, target_id) == 0
    assert (await client.get(ME, headers=tenant_a[actor].headers)).status_code == 200
    wrong = await login(client, target["email"], PASSWORD, client_id=tenant_a.slug)
    assert wrong.status_code == 401
    await sign_in(client, tenant_a, target["email"], NEW_PASSWORD)


# --- delete and restore -------------------------------------------------------------------------


async def test_deleted_user_is_locked_out(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    target = await new_user(client, tenant_a)
    target_id = uuid.UUID(target["id"])
    old = await sign_in(client, tenant_a, target["email"])
    assert (await client.get(ME, headers=old)).status_code == 200

    deleted = await client.delete(f"{USERS}/{target_id}", headers=admin)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_problem(await client.get(ME, headers=old), 401)
    unknown = await login(client, unique_email("nobody"), PASSWORD, client_id=tenant_a.slug)
    refused = await login(client, target["email"], PASSWORD, client_id=tenant_a.slug)
    assert_problem(refused, 401)
    assert refused.json() == unknown.json()
    assert_problem(await client.get(f"{USERS}/{target_id}", headers=admin), 404)
    assert target["id"] not in ids_of(await client.get(USERS, headers=admin))
    stored = await read_user(database, tenant_a.org, target_id)
    assert stored is not None and stored.deleted_at is not None
    assert await active_session_count(database, tenant_a.org, target_id) == 0
    assert_problem(await client.delete(f"{USERS}/{target_id}", headers=admin), 404)


async def test_restored_user_logs_in_again_but_old_tokens_stay_dead(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    target = await new_user(client, tenant_a)
    target_id = uuid.UUID(target["id"])
    old = await sign_in(client, tenant_a, target["email"])
    assert (await client.delete(f"{USERS}/{target_id}", headers=admin)).status_code == 204

    restored = await client.post(f"{USERS}/{target_id}/restore", headers=admin)

    assert restored.status_code == 200, restored.text
    assert restored.json()["id"] == target["id"]
    assert restored.json()["deleted_at"] is None
    assert_no_secrets(restored.json())
    stored = await read_user(database, tenant_a.org, target_id)
    assert stored is not None and stored.deleted_at is None
    fresh = await sign_in(client, tenant_a, target["email"])
    assert (await client.get(ME, headers=fresh)).status_code == 200
    # The sessions were revoked, not just hidden: the old token stays dead.
    assert_problem(await client.get(ME, headers=old), 401)
    assert (await client.get(f"{USERS}/{target_id}", headers=admin)).status_code == 200


async def test_missing_users_are_404(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    admin = tenant_a["admin"].headers
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"{USERS}/{missing}"),
        ("PATCH", f"{USERS}/{missing}"),
        ("DELETE", f"{USERS}/{missing}"),
        ("POST", f"{USERS}/{missing}/restore"),
    ]:
        body = {"first_name": "X"} if method == "PATCH" else None
        assert_problem(await client.request(method, path, json=body, headers=admin), 404)
    assert_problem(await client.get(f"{USERS}/not-a-uuid", headers=admin), 422)


# --- who sees whom ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "?role=agent", "/{agent}", "/{customer}"])
async def test_customers_never_see_other_users(
    client: httpx.AsyncClient, tenant_a: Tenant, path: str
) -> None:
    url = USERS + path.format(
        agent=tenant_a["agent"].user_id, customer=tenant_a["customer"].user_id
    )
    assert_problem(await client.get(url, headers=tenant_a["customer"].headers), 403)


@pytest.mark.parametrize("actor", ["admin", "manager", "agent", "api_key"])
async def test_another_orgs_user_reads_as_missing(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant, actor: str
) -> None:
    headers = tenant_a[actor].headers

    foreign = await client.get(f"{USERS}/{tenant_b['agent'].user_id}", headers=headers)
    missing = await client.get(f"{USERS}/{uuid.uuid4()}", headers=headers)

    assert_problem(foreign, 404)
    assert foreign.json() == missing.json()
    assert foreign.headers["content-type"] == missing.headers["content-type"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"first_name": "Hijacked"}),
        ("PATCH", "", {"password": NEW_PASSWORD}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
    ],
)
async def test_another_orgs_user_cannot_be_changed(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    victim = tenant_b["agent"]
    assert victim.user_id is not None
    before = await snapshot(database, tenant_b.org, victim.user_id)
    headers = tenant_a["admin"].headers

    foreign = await client.request(
        method, f"{USERS}/{victim.user_id}{suffix}", json=body, headers=headers
    )
    missing = await client.request(
        method, f"{USERS}/{uuid.uuid4()}{suffix}", json=body, headers=headers
    )

    assert_problem(foreign, 404)
    assert foreign.json() == missing.json()
    assert await snapshot(database, tenant_b.org, victim.user_id) == before
    assert (await client.get(ME, headers=victim.headers)).status_code == 200


# --- lists: filters, include_deleted, paging ---------------------------------------------------


async def test_list_filters(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    dept, account = str(tenant_a.department_id), str(tenant_a.customer_account_id)
    zelda = await new_user(
        client, tenant_a, Role.AGENT, department_id=dept, first_name="Zelda", last_name="Quux"
    )
    plain_agent = await new_user(client, tenant_a, Role.AGENT)
    quuxley = await new_user(
        client, tenant_a, Role.CUSTOMER, customer_id=account, last_name="QUUXLEY"
    )
    manager = await new_user(client, tenant_a, Role.MANAGER, department_id=dept)
    fixture = {name: str(tenant_a[name].user_id) for name in tenant_a.actors if name != "api_key"}
    everyone = {*fixture.values(), zelda["id"], plain_agent["id"], quuxley["id"], manager["id"]}
    assert everyone == {str(i) for i in await live_user_ids(database, tenant_a.org)}

    async def listed(params: dict[str, str]) -> set[str]:
        return ids_of(await client.get(USERS, params=params, headers=admin))

    assert await listed({}) == everyone
    assert await listed({"role": "agent"}) == {fixture["agent"], zelda["id"], plain_agent["id"]}
    assert await listed({"role": "customer"}) == {fixture["customer"], quuxley["id"]}
    assert await listed({"role": "manager"}) == {fixture["manager"], manager["id"]}
    assert await listed({"role": "admin"}) == {fixture["admin"]}
    assert await listed({"department_id": dept}) == {zelda["id"], manager["id"]}
    assert await listed({"department_id": dept, "role": "agent"}) == {zelda["id"]}
    assert await listed({"department_id": str(tenant_b.department_id)}) == set()
    assert await listed({"customer_id": account}) == {fixture["customer"], quuxley["id"]}
    assert await listed({"customer_id": str(tenant_b.customer_account_id)}) == set()
    assert await listed({"q": "quux"}) == {zelda["id"], quuxley["id"]}
    assert await listed({"q": "ZELDA"}) == {zelda["id"]}
    assert await listed({"q": plain_agent["email"].split("@")[0].upper()}) == {plain_agent["id"]}
    assert await listed({"q": "quux", "role": "customer"}) == {quuxley["id"]}
    # LIKE wildcards are literal characters, not patterns.
    assert await listed({"q": "%"}) == set()
    assert await listed({"q": "_"}) == set()

    for params in ({"role": "superhero"}, {"department_id": "nope"}, {"q": ""}):
        assert_problem(await client.get(USERS, params=params, headers=admin), 422)


@pytest.mark.parametrize(
    ("actor", "status"),
    [("admin", 200), ("api_key", 200), ("manager", 403), ("agent", 403), ("customer", 403)],
)
async def test_include_deleted_is_for_admins(
    client: httpx.AsyncClient, tenant_a: Tenant, actor: str, status: int
) -> None:
    gone = await new_user(client, tenant_a)
    deleted = await client.delete(f"{USERS}/{gone['id']}", headers=tenant_a["admin"].headers)
    assert deleted.status_code == 204
    headers = tenant_a[actor].headers

    response = await client.get(USERS, params={"include_deleted": "true"}, headers=headers)

    if status == 403:
        assert_problem(response, 403)
        return
    assert response.status_code == 200, response.text
    rows = {item["id"]: item for item in response.json()["items"]}
    assert gone["id"] in rows
    assert rows[gone["id"]]["deleted_at"] is not None
    assert gone["id"] not in ids_of(await client.get(USERS, headers=headers))


async def test_manager_lists_without_deleted(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    response = await client.get(
        USERS, params={"include_deleted": "false"}, headers=tenant_a["manager"].headers
    )
    assert response.status_code == 200, response.text


async def test_keyset_pagination_serves_every_user_exactly_once(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    admin = tenant_a["admin"].headers
    for _ in range(5):
        await new_user(client, tenant_a, password=None)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0

    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(USERS, params=params, headers=admin)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        if pages == 1:
            # A row inserted mid-walk sorts after the cursor and is served once.
            await new_user(client, tenant_a, password=None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 2
        assert pages < 20

    expected = {str(i) for i in await live_user_ids(database, tenant_a.org)}
    assert len(expected) == 10
    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    assert pages == 5


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "201"}, ["query", "limit"]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
        ({"cursor": "WyJub3QtYS11dWlkIl0"}, ["query", "cursor"]),
    ],
)
async def test_bad_page_parameters_are_422(
    client: httpx.AsyncClient, tenant_a: Tenant, params: dict[str, str], loc: list[str]
) -> None:
    response = await client.get(USERS, params=params, headers=tenant_a["admin"].headers)
    assert loc in error_locs(assert_problem(response, 422))
