"""Logins, sessions, token checks, grants and one-time codes: the identity rules.

Credential look-ups that happen before the organization is known (login by slug, a
refresh token, an API key, a superuser's token) run in the system session; everything
after runs in the caller's tenant session. The statements are the repositories'
(`app.auth.repository`, and `app.api_keys.repository` for keys).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from app.api_keys.repository import ApiKeyPrefixRepository, ApiKeyRepository
from app.auth import tokens
from app.auth.passwords import verify_password
from app.auth.permissions import Permission
from app.auth.principal import Principal, PrincipalKind
from app.auth.repository import (
    GrantRepository,
    PlatformAccountRepository,
    PlatformSessionRepository,
    SessionCheckRepository,
    accounts,
    own_sessions,
)
from app.config import Settings
from app.db.base import new_id
from app.kit.errors import Conflict, NotFound, RateLimited, Unauthorized, ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.ratelimit import RateLimiter
from app.kit.records import field_error
from app.models.user import ApiKey, Role, User, UserSession

INVALID_CREDENTIALS = "Invalid credentials."
INVALID_TOKEN = "The access token is invalid, expired or revoked."  # noqa: S105
TOTP_ISSUER = "Helpdesk"
TOTP_DIGITS = 6


class TotpRequired(Unauthorized):
    slug, title = "totp-required", "One-time code required"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str | None
    user_agent: str


# --- login, refresh, logout -------------------------------------------------------


async def login(
    system: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    *,
    email: str,
    password: str,
    client_id: str | None,
    totp: str | None,
    client: ClientInfo,
) -> TokenPair:
    """Password (+ one-time code) → a new session. Every failure looks the same and
    costs the same argon2 verification. Each attempt is counted against the account
    *before* the password is checked (so concurrent guesses cannot slip past the
    budget); a successful login clears the count."""
    account = _account_key(client_id, email)
    await _spend_login_budget(settings, limiter, client.ip, account)
    users = PlatformAccountRepository(system)
    user = await users.login_user(email, client_id)
    matches, rehash = await verify_password(password, user.password_hash if user else None)
    if user is None or not matches:
        raise Unauthorized(INVALID_CREDENTIALS)
    now = datetime.now(UTC)
    if user.two_factor_enabled:
        if not totp:
            raise TotpRequired("This account requires a one-time code: send `totp`.")
        await users.lock(user)  # one login per code step
        if not _accept_totp(user, totp, now):
            raise Unauthorized(INVALID_CREDENTIALS)
    await limiter.clear(account, settings.login_account_window_seconds)
    if rehash is not None:
        user.password_hash = rehash
    user.last_login_at = now
    user.last_active_at = now
    user.last_login_ip = client.ip
    return await open_session(system, settings, user, client, now)


def _account_key(client_id: str | None, email: str) -> str:
    return f"login:account:{client_id or ''}:{email.strip().lower()}"


async def _spend_login_budget(
    settings: Settings, limiter: RateLimiter, ip: str | None, account_key: str
) -> None:
    per_ip = await limiter.hit(
        f"login:ip:{ip or 'unknown'}",
        settings.login_ip_max_attempts,
        settings.login_ip_window_seconds,
    )
    if not per_ip.allowed:
        raise RateLimited(
            "Too many login attempts from this address.", headers=per_ip.retry_headers()
        )
    per_account = await limiter.hit(
        account_key, settings.login_account_max_failures, settings.login_account_window_seconds
    )
    if not per_account.allowed:
        raise RateLimited(
            "Too many failed logins for this account; try again later.",
            headers=per_account.retry_headers(),
        )


async def open_session(
    system: AsyncSession, settings: Settings, user: User, client: ClientInfo, now: datetime
) -> TokenPair:
    user_session = UserSession(
        id=new_id(),  # set now: the refresh token embeds it
        organization_id=user.organization_id,
        user_id=user.id,
        ip_address=client.ip,
        user_agent=client.user_agent[:512],
        last_activity_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        refresh_token_hash="",
    )
    refresh_token, user_session.refresh_token_hash = tokens.new_refresh_token(
        settings, user_session.id
    )
    system.add(user_session)
    await system.flush()
    return _token_pair(settings, user, user_session, refresh_token, now)


def _token_pair(
    settings: Settings, user: User, user_session: UserSession, refresh_token: str, now: datetime
) -> TokenPair:
    claims = tokens.AccessClaims(
        user_id=user.id, session_id=user_session.id, organization_id=user.organization_id
    )
    return TokenPair(
        access_token=tokens.issue_access_token(settings, claims, now),
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl_seconds,
    )


async def refresh(system: AsyncSession, settings: Settings, *, refresh_token: str) -> TokenPair:
    """Rotate: the presented token becomes invalid, a new one is returned. Presenting a
    token we really issued for this session but already rotated away means it leaked
    (or was raced): the whole session is revoked and that revocation is committed with
    the 401. Tokens carry a MAC, so guessing a session id revokes nothing."""
    parsed = tokens.parse_refresh_token(settings, refresh_token)
    if parsed is None:  # not one we issued (a forged token must not revoke anything)
        raise Unauthorized("The refresh token is invalid.")
    session_id, secret = parsed
    now = datetime.now(UTC)
    found = await PlatformSessionRepository(system).live_for_refresh(session_id, now)
    if found is None:
        raise Unauthorized("The refresh token is invalid or its session has ended.")
    user_session, user = found
    if not tokens.digests_match(secret, user_session.refresh_token_hash):
        _revoke(user_session, now)
        raise Unauthorized(
            "This refresh token was already used; the session has been revoked.",
            keep_writes=True,
        )
    new_token, user_session.refresh_token_hash = tokens.new_refresh_token(settings, user_session.id)
    user_session.last_activity_at = now
    user_session.expires_at = now + timedelta(seconds=settings.refresh_token_ttl_seconds)
    user.last_active_at = now
    return _token_pair(settings, user, user_session, new_token, now)


def _revoke(user_session: UserSession, now: datetime) -> None:
    if user_session.is_active:
        user_session.is_active = False
        user_session.revoked_at = now


# --- every request ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal
    last_active_at: datetime | None


async def authenticate_access_token(
    session: AsyncSession, claims: tokens.AccessClaims
) -> Authenticated | None:
    """`session` is the tenant session of `claims.organization_id` (or the system session
    for a superuser's token). Runs on every request: one prebuilt three-column read."""
    now = datetime.now(UTC)
    if claims.organization_id is None:
        return await _authenticate_superuser(session, claims, now)
    row = await SessionCheckRepository(session).live_session(claims.session_id, claims.user_id, now)
    if row is None:
        return None
    principal = Principal(
        kind=PrincipalKind.USER,
        id=claims.user_id,
        organization_id=claims.organization_id,
        role=None if row["is_superuser"] else Role(row["role"]),
        session_id=claims.session_id,
    )
    return Authenticated(principal, row["last_active_at"])


async def _authenticate_superuser(
    system: AsyncSession, claims: tokens.AccessClaims, now: datetime
) -> Authenticated | None:
    row = await PlatformSessionRepository(system).live_superuser_session(claims.session_id, now)
    if row is None:
        return None
    if row["id"] != claims.user_id or row["organization_id"] is not None or not row["is_superuser"]:
        return None
    principal = Principal(
        kind=PrincipalKind.USER,
        id=row["id"],
        organization_id=None,
        role=None,
        session_id=claims.session_id,
    )
    return Authenticated(principal, row["last_active_at"])


async def find_api_key(system: AsyncSession, token: str) -> ApiKey | None:
    """A live key (not revoked, not expired, organization not deleted) matching `token`."""
    prefix = tokens.api_key_prefix(token)
    if prefix is None:
        return None
    key = await ApiKeyPrefixRepository(system).by_prefix(prefix)
    now = datetime.now(UTC)
    if (
        key is None
        or not tokens.digests_match(token, key.key_hash)
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
    ):
        return None
    return key


def api_key_principal(key: ApiKey) -> Principal:
    return Principal(
        kind=PrincipalKind.API_KEY, id=key.id, organization_id=key.organization_id, role=key.role
    )


def activity_due(last_seen: datetime | None, interval_seconds: int) -> bool:
    """The throttle: at most one activity write per principal per interval."""
    if last_seen is None:
        return True
    return (datetime.now(UTC) - last_seen).total_seconds() >= interval_seconds


async def record_activity(
    session: AsyncSession,
    principal: Principal,
    *,
    ip: str | None,
    user_session_id: uuid.UUID | None,
) -> None:
    """The seed's `update_last_active`, without bumping `updated_at` (activity is not an
    edit). Runs in its own short transaction after the request's (see `authenticate`),
    so the row lock it takes never widens a request's locks."""
    now = datetime.now(UTC)
    if principal.kind is PrincipalKind.API_KEY:
        await ApiKeyRepository(session).mark_used(principal.id, now)
        return
    await accounts(session).mark_active(principal.id, now, ip)
    if user_session_id is not None:
        await own_sessions(session).mark_active(user_session_id, now)


async def has_grant(session: AsyncSession, user_id: uuid.UUID, permission: Permission) -> bool:
    return await GrantRepository(session).holds(user_id, permission)


# --- the user's own account and sessions ----------------------------------------------
# `session` is the caller's: their tenant's, or the system session for a superuser.


async def signed_in_user(session: AsyncSession, principal: Principal) -> User:
    user = await accounts(session).get(principal.id)
    if user is None:  # deleted between the credential check and here
        raise Unauthorized(INVALID_TOKEN)
    return user


async def list_sessions(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams
) -> PageResult[UserSession]:
    return await own_sessions(session).page_of(user_id, page)


async def get_own_session(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> UserSession:
    """Another user's session is as missing as a nonexistent one."""
    user_session = await own_sessions(session).own(user_id, session_id)
    if user_session is None:
        raise NotFound("No such session.")
    return user_session


async def revoke_session(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    _revoke(await get_own_session(session, user_id, session_id), datetime.now(UTC))
    await session.flush()


async def revoke_all_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> None:
    """After a password change, a deletion or a 2FA change: every other login ends."""
    await own_sessions(session).revoke_all(user_id, datetime.now(UTC), keep=keep)


# --- one-time codes (TOTP) --------------------------------------------------------


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The 30-second step `code` belongs to, allowing one step of clock drift."""
    code = code.strip()
    # ASCII digits only: `str.isdigit` and `\d` also accept other scripts' digits.
    if not (len(code) == TOTP_DIGITS and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if tokens.same_text(totp.generate_otp(step), code):
            return step
    return None


def _accept_totp(user: User, code: str, now: datetime) -> bool:
    """Valid and not used before: a code observed once cannot be replayed."""
    if user.totp_secret is None:
        return False
    step = _matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_used_step is not None and step <= user.totp_last_used_step):
        return False
    user.totp_last_used_step = step
    return True


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    secret: str
    otpauth_uri: str


async def enroll_totp(session: AsyncSession, user: User, password: str) -> TotpEnrollment:
    """A fresh secret, pending until a code from it is confirmed. Asks for the password
    again: a stolen access token alone must not be able to lock the owner out."""
    if user.two_factor_enabled:
        raise Conflict("Two-factor authentication is already enabled; disable it first.")
    matches, _ = await verify_password(password, user.password_hash)
    if not matches:
        raise ValidationFailed(
            "The password is wrong.",
            errors=[field_error("password", "wrong password")],
        )
    user.totp_secret = pyotp.random_base32()
    user.totp_last_used_step = None
    await session.flush()
    uri = pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    return TotpEnrollment(secret=user.totp_secret, otpauth_uri=uri)


def _code_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[field_error("code", message)])


async def confirm_totp(
    session: AsyncSession, user: User, code: str, *, current_session: uuid.UUID | None
) -> None:
    """Turns 2FA on; every other session of the user ends (they were opened without it)."""
    await accounts(session).lock(user)
    if user.two_factor_enabled:
        raise Conflict("Two-factor authentication is already enabled.")
    if user.totp_secret is None:
        raise Conflict("Start with POST /auth/totp/enroll.")
    if not _accept_totp(user, code, datetime.now(UTC)):
        raise _code_error("The one-time code is not valid.")
    user.two_factor_enabled = True
    await revoke_all_sessions(session, user.id, keep=current_session)
    await session.flush()


async def disable_totp(
    session: AsyncSession, user: User, code: str, *, current_session: uuid.UUID | None
) -> None:
    await accounts(session).lock(user)
    if not user.two_factor_enabled:
        raise Conflict("Two-factor authentication is not enabled.")
    if not _accept_totp(user, code, datetime.now(UTC)):
        raise _code_error("The one-time code is not valid.")
    reset_totp(user)
    await revoke_all_sessions(session, user.id, keep=current_session)
    await session.flush()


def reset_totp(user: User) -> None:
    user.two_factor_enabled = False
    user.totp_secret = None
    user.totp_last_used_step = None
