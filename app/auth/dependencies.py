"""Who is calling, and may they? The dependencies every router uses.

`authenticate` turns the bearer credential into a `Principal` and binds the request
session to the principal's organization (the organization always comes from the
credential). `require(Permission.X)` is the one gate: role matrix first, then the
user's unexpired grants.
"""

from __future__ import annotations

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
from app.db.dependencies import DatabaseDep, SessionDep, SystemSessionDep
from app.db.session import bind_tenant
from app.kit.errors import Forbidden, RateLimited, Unauthorized
from app.kit.idempotency import Idempotency, claim, fingerprint
from app.kit.ratelimit import Decision, RateLimiter

bearer = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/auth/token",
    auto_error=False,
    description="A JWT access token from /auth/token, or an API key (`hdk_…`).",
)


def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_rate_limiter(request: Request) -> RateLimiter:
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
    session: SessionDep,
    system: SystemSessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
) -> Principal:
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
        await bind_tenant(session, principal.organization_id)
        await auth.record_activity(
            session,
            principal,
            last_seen=key.last_used_at,
            ip=None,
            user_session=None,
            interval_seconds=settings.activity_write_interval_seconds,
        )
    else:
        claims = tokens.decode_access_token(settings, token)
        if claims is None:
            raise Unauthorized(auth.INVALID_TOKEN)
        lookup_session = system
        if claims.organization_id is not None:
            await bind_tenant(session, claims.organization_id)
            lookup_session = session
        found = await auth.authenticate_access_token(lookup_session, claims)
        if found is None:
            raise Unauthorized(auth.INVALID_TOKEN)
        principal, user, user_session = found
        await auth.record_activity(
            lookup_session,
            principal,
            last_seen=user.last_active_at,
            ip=client_ip(request),
            user_session=user_session,
            interval_seconds=settings.activity_write_interval_seconds,
        )
    structlog.contextvars.bind_contextvars(
        organization_id=str(principal.organization_id or ""), principal=principal.rate_limit_key
    )
    await _enforce_rate_limit(response, principal, settings, limiter)
    return principal


async def _enforce_rate_limit(
    response: Response, principal: Principal, settings: Settings, limiter: RateLimiter
) -> None:
    """Per organization and per credential, the same budget each (`0` switches it off)."""
    limit = settings.rate_limit_per_minute
    if limit <= 0:
        return
    keys = [f"api:{principal.rate_limit_key}"]
    if principal.organization_id is not None:
        keys.append(f"api:org:{principal.organization_id}")
    decisions: list[Decision] = [await limiter.hit(key, limit, 60) for key in keys]
    tightest = min(decisions, key=lambda d: (d.allowed, d.remaining))
    if not tightest.allowed:
        raise RateLimited("Rate limit exceeded; retry later.", headers=tightest.retry_headers())
    response.headers.update(tightest.headers())


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


async def idempotency_key(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retry-safe writes: same key + same request within 24 h → the "
            "first response; same key + another request → 409.",
        ),
    ] = None,
) -> Idempotency:
    """Claims the key for this request (or answers the stored response / a 409)."""
    if key is None:
        return Idempotency()
    request_fingerprint = fingerprint(
        settings.secret_key.get_secret_value().encode(),
        principal.rate_limit_key,
        request.method,
        request.url.path,
        await request.body(),
    )
    return await claim(session, key, request_fingerprint)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency_key)]
