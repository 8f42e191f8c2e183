"""Organizations with a signed-in actor of every kind, for API tests.

Users are created directly with one shared password hash, so `login()` works for all
of them; the fixtures' own sessions are opened by the auth service without the argon2
round (tests/auth exercises `/auth/token` itself)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import httpx
from pwdlib import PasswordHash

from app.auth import service as auth
from app.auth import tokens
from app.config import API_PREFIX
from app.db.database import Database
from app.models.organization import Organization
from app.models.user import ApiKey, Customer, Department, Role, User

PASSWORD = "correct-horse-battery"
API = API_PREFIX

ROLES = (Role.ADMIN, Role.MANAGER, Role.AGENT, Role.CUSTOMER)


@lru_cache
def password_hash() -> str:
    return PasswordHash.recommended().hash(PASSWORD)


@dataclass
class Actor:
    name: str
    token: str
    user_id: uuid.UUID | None = None
    email: str | None = None
    refresh_token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Tenant:
    org: Organization
    actors: dict[str, Actor] = field(default_factory=dict)
    department_id: uuid.UUID | None = None
    customer_account_id: uuid.UUID | None = None

    @property
    def slug(self) -> str:
        return self.org.slug

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    client_id: str | None = None,
    **extra: str,
) -> httpx.Response:
    form = {"username": email, "password": password, **extra}
    if client_id is not None:
        form["client_id"] = client_id
    return await client.post(f"{API}/auth/token", data=form)


async def sign_in(database: Database, name: str, user: User) -> Actor:
    """A session opened by the same service `/auth/token` uses, minus the argon2 check
    (tests/auth covers that path): keeps per-test set-up in milliseconds."""
    async with database.system_session() as session:
        pair = await auth.open_session(
            session,
            database.settings,
            user,
            auth.ClientInfo(ip="127.0.0.1", user_agent="tests"),
            datetime.now(UTC),
        )
        await session.commit()
    return Actor(
        name=name,
        token=pair.access_token,
        refresh_token=pair.refresh_token,
        user_id=user.id,
        email=user.email,
    )


async def add_user(database: Database, org: Organization, role: Role, **fields: object) -> User:
    async with database.tenant_session(org.id) as session:
        defaults: dict[str, object] = {
            "email": f"{role.value}-{uuid.uuid4().hex[:8]}@{org.slug}.example.com",
            "password_hash": password_hash(),
        }
        user = User(role=role, **(defaults | fields))
        session.add(user)
        await session.commit()
    return user


async def make_tenant(database: Database, name: str) -> Tenant:
    suffix = uuid.uuid4().hex[:10]
    async with database.system_session() as session:
        org = Organization(name=f"{name} {suffix}", slug=f"{name.lower()}-{suffix}")
        session.add(org)
        await session.commit()
    tenant = Tenant(org=org)
    async with database.tenant_session(org.id) as session:
        department = Department(name="Support")
        account = Customer(name="Acme")
        session.add_all([department, account])
        await session.flush()
        tenant.department_id, tenant.customer_account_id = department.id, account.id
        key, prefix, key_hash = tokens.new_api_key()
        session.add(ApiKey(name="integration", prefix=prefix, key_hash=key_hash, role=Role.ADMIN))
        await session.commit()
    tenant.actors["api_key"] = Actor(name="api_key", token=key)
    for role in ROLES:
        extra = {"customer_id": account.id} if role is Role.CUSTOMER else {}
        user = await add_user(database, org, role, **extra)
        tenant.actors[role.value] = await sign_in(database, role.value, user)
    return tenant


async def make_superuser(database: Database) -> Actor:
    email = f"root-{uuid.uuid4().hex[:8]}@platform.example.com"
    async with database.system_session() as session:
        user = User(
            organization_id=None, email=email, password_hash=password_hash(), is_superuser=True
        )
        session.add(user)
        await session.commit()
    return await sign_in(database, "superuser", user)
