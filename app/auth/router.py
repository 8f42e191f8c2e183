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


@router.post("/refresh", response_model=TokenResponse, summary="Rotate a refresh token")
async def refresh_token(
    body: RefreshRequest, response: Response, system: SystemSessionDep, settings: SettingsDep
) -> TokenResponse:
    pair = await auth.refresh(system, settings, refresh_token=body.refresh_token)
    return _token_response(response, pair)


@router.post("/logout", status_code=204, summary="Revoke the current session")
async def logout(principal: UserPrincipal, session: PrincipalSessionDep) -> None:
    assert principal.session_id is not None
    await auth.revoke_session(session, principal.id, principal.session_id)


@router.post("/totp/enroll", response_model=TotpEnrollResponse, summary="Start 2FA set-up")
async def enroll_totp(
    body: TotpEnroll, principal: UserPrincipal, session: PrincipalSessionDep
) -> TotpEnrollResponse:
    user = await auth.signed_in_user(session, principal)
    enrollment = await auth.enroll_totp(session, user, body.password)
    return TotpEnrollResponse(secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri)


@router.post("/totp/confirm", status_code=204, summary="Turn 2FA on with a first code")
async def confirm_totp(
    body: TotpCode, principal: UserPrincipal, session: PrincipalSessionDep
) -> None:
    user = await auth.signed_in_user(session, principal)
    await auth.confirm_totp(session, user, body.code, current_session=principal.session_id)


@router.post("/totp/disable", status_code=204, summary="Turn 2FA off (needs a current code)")
async def disable_totp(
    body: TotpCode, principal: UserPrincipal, session: PrincipalSessionDep
) -> None:
    user = await auth.signed_in_user(session, principal)
    await auth.disable_totp(session, user, body.code, current_session=principal.session_id)


def _session_read(user_session: UserSession, current: uuid.UUID | None) -> SessionRead:
    read = SessionRead.model_validate(user_session)
    read.current = user_session.id == current
    return read


@sessions_router.get("", response_model=Page[SessionRead], summary="The caller's sessions")
async def list_sessions(
    principal: UserPrincipal, session: PrincipalSessionDep, page: PageParamsDep
) -> Page[SessionRead]:
    result = await auth.list_sessions(session, principal.id, page)
    return Page.of(result, lambda user_session: _session_read(user_session, principal.session_id))


@sessions_router.get("/{session_id}", response_model=SessionRead)
async def get_session(
    session_id: uuid.UUID, principal: UserPrincipal, session: PrincipalSessionDep
) -> SessionRead:
    user_session = await auth.get_own_session(session, principal.id, session_id)
    return _session_read(user_session, principal.session_id)


@sessions_router.delete("/{session_id}", status_code=204, summary="Revoke one of your sessions")
async def revoke_session(
    session_id: uuid.UUID, principal: UserPrincipal, session: PrincipalSessionDep
) -> None:
    await auth.revoke_session(session, principal.id, session_id)
