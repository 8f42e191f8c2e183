"""Who is calling, and may they? The dependencies every router uses.

`authenticate` turns the bearer credential into a `Principal` and binds the request
session to the principal's organization (the organization always comes from the
credential). `require(Permission.X)` is the one gate: role matrix first, then the
user's unexpired grants.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Header, Query, Request, Response
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth
from app.auth import tokens
from app.auth.permissions import Permission
from app.auth.principal import Principal, PrincipalKind
from app.config import API_PREFIX, Settings
from app.db.database import Database
from app.db.dependencies import SessionDep, SystemSessionDep, UnitOfWorkDep
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import Forbidden, RateLimited, Unauthorized
from app.kit.idempotency import Idempotency, claim, fingerprint, form_digest
from app.kit.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

bearer = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/auth/token",
    auto_error=False,
    description="A JWT access token from /auth/token, or an API key (`hdk_…`).",
)


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def authenticate(
    request: Request,
    response: Response,
    token: Annotated[str | None, Depends(bearer)],
    uow: UnitOfWorkDep,
) -> Principal:
    # Every request passes here: the app-wide objects are read off the app state rather
    # than resolved as three more dependencies.
    state = request.app.state
    database: Database = state.database
    settings: Settings = state.settings
    limiter: RateLimiter = state.rate_limiter
    if not token:
        raise Unauthorized("Send `Authorization: Bearer <access token or API key>`.")
    if token.startswith(f"{tokens.API_KEY_SCHEME}_"):
        # Keys are found by their global prefix before the organization is known: a
        # short read in the system session, closed before the request's own work.
        async with database.system_session() as lookup:
            key = await auth.find_api_key(lookup, token)
        if key is None:
            raise Unauthorized("The API key is invalid, expired or revoked.")
        principal = auth.api_key_principal(key)
        assert principal.organization_id is not None
        await uow.bind_tenant(principal.organization_id)
        if auth.activity_due(key.last_used_at, settings.activity_write_interval_seconds):
            _record_activity_after_commit(database, uow, principal, None, None)
    else:
        claims = tokens.decode_access_token(settings, token)
        if claims is None:
            raise Unauthorized(auth.INVALID_TOKEN)
        if claims.organization_id is not None:
            await uow.bind_tenant(claims.organization_id)
            found = await auth.authenticate_access_token(uow.session, claims)
        else:
            # A superuser belongs to no tenant: a short read in the system session (only
            # platform routes open the request's own system session).
            async with database.system_session() as lookup:
                found = await auth.authenticate_access_token(lookup, claims)
        if found is None:
            raise Unauthorized(auth.INVALID_TOKEN)
        principal = found.principal
        if auth.activity_due(found.last_active_at, settings.activity_write_interval_seconds):
            _record_activity_after_commit(
                database, uow, principal, client_ip(request), principal.session_id
            )
    structlog.contextvars.bind_contextvars(
        organization_id=str(principal.organization_id or ""), principal=principal.rate_limit_key
    )
    await _enforce_rate_limit(response, principal, settings, limiter)
    return principal


def _record_activity_after_commit(
    database: Database,
    uow: UnitOfWork,
    principal: Principal,
    ip: str | None,
    user_session_id: uuid.UUID | None,
) -> None:
    """Best effort, in its own transaction once the request's has committed: a failure
    here never fails the request, and the activity UPDATE's row lock never joins the
    request's locks (where it could deadlock with, say, the last-admin check)."""

    async def write() -> None:
        try:
            org = principal.organization_id
            activity = database.tenant_unit(org) if org else database.system_unit()
            try:
                await auth.record_activity(
                    activity.session, principal, ip=ip, user_session_id=user_session_id
                )
                await activity.commit()
            finally:
                await activity.close()
        except Exception:
            log.warning("activity_write_failed", exc_info=True)

    uow.after_commit(write)


async def _enforce_rate_limit(
    response: Response, principal: Principal, settings: Settings, limiter: RateLimiter
) -> None:
    """Per credential, then per organization (a larger budget, so one busy credential
    cannot starve its colleagues). A refused call does not spend the organization's."""
    limit = settings.rate_limit_per_minute
    if limit <= 0:
        return
    decision = await limiter.hit(f"api:{principal.rate_limit_key}", limit, 60)
    if decision.allowed and principal.organization_id is not None:
        organization = await limiter.hit(
            f"api:org:{principal.organization_id}", settings.organization_rate_limit, 60
        )
        if not organization.allowed or organization.remaining < decision.remaining:
            decision = organization
    if not decision.allowed:
        raise RateLimited("Rate limit exceeded; retry later.", headers=decision.retry_headers())
    response.headers.update(decision.headers())


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def may(session: AsyncSession, principal: Principal, permission: Permission) -> bool:
    """The single answer to "may this principal do X": role matrix, then grants."""
    if permission in principal.role_permissions:
        return True
    user_id = principal.user_id
    if user_id is None or principal.is_superuser:
        return False
    return await auth.has_grant(session, user_id, permission)


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: CurrentPrincipal, session: SessionDep) -> Principal:
        if not await may(session, principal, permission):
            raise Forbidden(f"This action needs the `{permission.value}` permission.")
        return principal

    check.__name__ = f"require_{permission.name.lower()}"
    return check


async def require_user(principal: CurrentPrincipal) -> Principal:
    """Self-service routes (profile, sessions, 2FA, logout) need a person, not a key."""
    if principal.kind is not PrincipalKind.USER:
        raise Forbidden("API keys have no user account; this route is for signed-in users.")
    return principal


UserPrincipal = Annotated[Principal, Depends(require_user)]


async def principal_session(
    principal: CurrentPrincipal, session: SessionDep, system: SystemSessionDep
) -> AsyncSession:
    """The session the caller's own rows live in: their tenant's, or the system session
    for a platform superuser (who belongs to no organization)."""
    return system if principal.is_superuser else session


PrincipalSessionDep = Annotated[AsyncSession, Depends(principal_session)]


async def include_deleted_param(
    principal: CurrentPrincipal,
    session: SessionDep,
    include_deleted: Annotated[
        bool, Query(description="Admins only: list soft-deleted rows too.")
    ] = False,
) -> bool:
    if include_deleted and not await may(session, principal, Permission.DELETED_READ):
        raise Forbidden("Only admins may list deleted rows.")
    return include_deleted


IncludeDeletedDep = Annotated[bool, Depends(include_deleted_param)]


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe writes: same key + same request within 24 h → the "
        "first response again (a replay, marked `Idempotent-Replayed: true`); same key + "
        "another request → 409. 1 to 255 printable characters, otherwise 400.",
    ),
]


async def claim_idempotency(
    request: Request, principal: Principal, session: AsyncSession, key: str | None
) -> Idempotency:
    """The first thing a retry-safe POST route does (after its permission gate): claims
    `key` for this request, or answers the stored response / a 409. A call rather than
    a dependency: FastAPI re-solves the whole sub-tree of every dependency a dependency
    names (authentication, the session) on each request, which on the busiest routes
    cost more than the claim itself."""
    if key is None:
        return Idempotency()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # The body stream was consumed into the parsed form (uploads): digest that.
        body = await form_digest(await request.form())
    else:
        body = await request.body()
    settings: Settings = request.app.state.settings
    request_fingerprint = fingerprint(
        settings.secret_key.get_secret_value().encode(),
        principal.rate_limit_key,
        request.method,
        # The query is part of the request (`force_assignment=true` is another one).
        f"{request.url.path}?{request.url.query}" if request.url.query else request.url.path,
        body,
    )
    return await claim(session, key, request_fingerprint)
