"""/auth (login, refresh, logout, two-factor) and /sessions (the caller's logins)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from app.auth import service as auth
from app.auth.dependencies import (
    PrincipalSessionDep,
    RateLimiterDep,
    SettingsDep,
    UserPrincipal,
    client_ip,
)
from app.auth.schemas import (
    RefreshRequest,
    SessionRead,
    TokenResponse,
    TotpCode,
    TotpEnroll,
    TotpEnrollResponse,
)
from app.db.dependencies import SystemSessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.user import UserSession

router = APIRouter(prefix="/auth", tags=["auth"])
sessions_router = APIRouter(prefix="/sessions", tags=["sessions"])

_NO_CACHE = {"Pragma": "no-cache"}


def _token_response(response: Response, pair: auth.TokenPair) -> TokenResponse:
    response.headers.update(_NO_CACHE)
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


def _basic_client_id(request: Request) -> str | None:
    """Swagger's Authorize dialog may send client_id as HTTP Basic credentials."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Log in (OAuth2 password grant)",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Throttled"}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {
                        "grant_type": "password",
                        "username": "dana.fischer@acme.example.com",
                        "password": "correct-horse-battery-staple",
                        "client_id": "acme",
                        "totp": "492039",
                    }
                }
            }
        }
    },
)
async def issue_token(
    request: Request,
    response: Response,
    system: SystemSessionDep,
    settings: SettingsDep,
    limiter: RateLimiterDep,
    username: Annotated[str, Form(min_length=1, max_length=320, description="Email.")],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    client_id: Annotated[
        str | None,
        Form(max_length=63, description="The organization's slug; empty for superusers."),
    ] = None,
    totp: Annotated[
        str | None, Form(max_length=16, description="One-time code, when 2FA is on.")
    ] = None,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    scope: Annotated[str, Form(max_length=1024)] = "",
    client_secret: Annotated[str | None, Form(max_length=1024)] = None,
) -> TokenResponse:
    """Exchanges email and password for an access token and a refresh token (a new
    session). The body is a form (`application/x-www-form-urlencoded`):

    ```
    curl -X POST "$API/api/v1/auth/token" \\
      -d grant_type=password -d username=dana.fischer@acme.example.com \\
      -d password=correct-horse-battery-staple -d client_id=acme
    ```

    - `username` is the email, `client_id` the organization's slug (empty for platform
      superusers; HTTP Basic credentials may carry it instead). With two-factor
      authentication on, `totp` carries the current six-digit code: without it the answer
      is a 401 of type `totp-required`.
    - Send `access_token` as `Authorization: Bearer …`; it expires after `expires_in`
      seconds (15 minutes unless configured otherwise). Then trade the `refresh_token` at
      `/auth/refresh`.
    - Wrong credentials are one and the same 401, whatever was wrong. Too many attempts
      from one address, or failures for one account, are a 429 with `Retry-After`.
    - No credential needed.
    """
    pair = await auth.login(
        system,
        settings,
        limiter,
        email=username,
        password=password,
        client_id=client_id or _basic_client_id(request),
        totp=totp,
        client=auth.ClientInfo(
            ip=client_ip(request), user_agent=request.headers.get("user-agent", "")
        ),
    )
    return _token_response(response, pair)


@router.post("/refresh", response_model=TokenResponse, summary="Refresh the tokens")
async def refresh_token(
    body: RefreshRequest, response: Response, system: SystemSessionDep, settings: SettingsDep
) -> TokenResponse:
    """Trades a refresh token for a new access token and a new refresh token, and keeps
    the session alive (30 days of inactivity end it unless configured otherwise).

    - Rotation: the refresh token sent stops working. Sending one that was already
      rotated away revokes the whole session (401): the token has leaked or two clients
      raced, so log in again.
    - 401 for a token that is invalid or whose session has ended (logged out, revoked,
      expired, the user deleted).
    - No access token needed.
    """
    pair = await auth.refresh(system, settings, refresh_token=body.refresh_token)
    return _token_response(response, pair)


@router.post("/logout", status_code=204, summary="Log out")
async def logout(principal: UserPrincipal, session: PrincipalSessionDep) -> None:
    """Ends the session of the access token sent: from the next request its access
    tokens are a 401 and its refresh token no longer works. Other sessions of the user
    stay (see `/sessions`).

    **Who:** any signed-in user, platform superusers included; API keys get 403.
    """
    assert principal.session_id is not None
    await auth.revoke_session(session, principal.id, principal.session_id)


@router.post("/totp/enroll", response_model=TotpEnrollResponse, summary="Start two-factor set-up")
async def enroll_totp(
    body: TotpEnroll, principal: UserPrincipal, session: PrincipalSessionDep
) -> TotpEnrollResponse:
    """Creates a fresh TOTP secret for an authenticator app (also as an `otpauth://` URI
    for a QR code). It is pending until `/auth/totp/confirm` receives a code from it;
    enrolling again replaces a pending secret.

    **Who:** any signed-in user, platform superusers included; API keys get 403.

    **Errors:** 422 when `password` is not your current password; 409 when two-factor
    authentication is already on (turn it off first).
    """
    user = await auth.signed_in_user(session, principal)
    enrollment = await auth.enroll_totp(session, user, body.password)
    return TotpEnrollResponse(secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri)


@router.post("/totp/confirm", status_code=204, summary="Turn two-factor authentication on")
async def confirm_totp(
    body: TotpCode, principal: UserPrincipal, session: PrincipalSessionDep
) -> None:
    """Turns two-factor authentication on with a first code from the enrolled secret.
    From then on a login needs `totp`; every other session of yours ends (it was opened
    without a code), this one stays. A code is accepted once.

    **Who:** any signed-in user, platform superusers included; API keys get 403.

    **Errors:** 422 for a wrong or already used code; 409 when it is already on or no
    enrollment is pending (`/auth/totp/enroll` first).
    """
    user = await auth.signed_in_user(session, principal)
    await auth.confirm_totp(session, user, body.code, current_session=principal.session_id)


@router.post("/totp/disable", status_code=204, summary="Turn two-factor authentication off")
async def disable_totp(
    body: TotpCode, principal: UserPrincipal, session: PrincipalSessionDep
) -> None:
    """Turns two-factor authentication off with a current code and drops the secret;
    every other session of yours ends, this one stays. A user who lost the device asks an
    admin (`PATCH /users/{user_id}` with `two_factor_enabled: false`).

    **Who:** any signed-in user, platform superusers included; API keys get 403.

    **Errors:** 422 for a wrong or already used code; 409 when it is not on.
    """
    user = await auth.signed_in_user(session, principal)
    await auth.disable_totp(session, user, body.code, current_session=principal.session_id)


def _session_read(user_session: UserSession, current: uuid.UUID | None) -> SessionRead:
    read = SessionRead.model_validate(user_session)
    read.current = user_session.id == current
    return read


@sessions_router.get("", response_model=Page[SessionRead], summary="List your sessions")
async def list_sessions(
    principal: UserPrincipal, session: PrincipalSessionDep, page: PageParamsDep
) -> Page[SessionRead]:
    """Your logins, newest first, ended ones included (`is_active`); `current` marks the
    session of the token in use.

    **Who:** any signed-in user, platform superusers included; API keys get 403.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await auth.list_sessions(session, principal.id, page)
    return Page.of(result, lambda user_session: _session_read(user_session, principal.session_id))


@sessions_router.get(
    "/{session_id}", response_model=SessionRead, summary="Get one of your sessions"
)
async def get_session(
    session_id: uuid.UUID, principal: UserPrincipal, session: PrincipalSessionDep
) -> SessionRead:
    """One of your sessions.

    **Who:** any signed-in user, platform superusers included; API keys get 403.

    **Errors:** 404 for another user's session or a missing one (alike).
    """
    user_session = await auth.get_own_session(session, principal.id, session_id)
    return _session_read(user_session, principal.session_id)


@sessions_router.delete("/{session_id}", status_code=204, summary="Revoke one of your sessions")
async def revoke_session(
    session_id: uuid.UUID, principal: UserPrincipal, session: PrincipalSessionDep
) -> None:
    """Ends one of your sessions (a lost laptop, say): its access tokens are a 401 from
    the next request and its refresh token stops working. Revoking an ended session
    changes nothing; revoking the current one logs you out.

    **Who:** any signed-in user, platform superusers included; API keys get 403.

    **Errors:** 404 for another user's session or a missing one (alike).
    """
    await auth.revoke_session(session, principal.id, session_id)
