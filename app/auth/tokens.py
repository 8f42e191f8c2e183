"""Credentials on the wire: JWT access tokens, opaque refresh tokens, API keys.

* Access token: HS256 JWT (`sub` user, `sid` session, `org` organization or null for a
  superuser, `typ` "access"), short-lived. Only the algorithm we sign with is accepted,
  so `alg: none` and key-confusion tricks fail. The session row is checked on every
  request, which is what makes revocation immediate.
* Refresh token: `<session id>.<256 random bits>.<HMAC>`; the session stores the SHA-256
  of the one currently valid secret, the HMAC proves we issued it (only a genuine old
  token counts as a replay).
* API key: `hdk_<12 hex prefix>_<256 random bits>`; the prefix finds the row, the
  SHA-256 of the whole key must match. Random secrets this long need no slow hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from app.config import Settings

ALGORITHM = "HS256"
ISSUER = "helpdesk"
ACCESS = "access"
API_KEY_SCHEME = "hdk"
MAX_ACCESS_TOKEN_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    organization_id: uuid.UUID | None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_match(secret: str, expected_digest: str) -> bool:
    return same_text(digest(secret), expected_digest)


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of two strings of any characters (`compare_digest` refuses
    `str` arguments that are not ASCII, and what a client sends may not be)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def issue_access_token(settings: Settings, claims: AccessClaims, now: datetime) -> str:
    payload = {
        "iss": ISSUER,
        "typ": ACCESS,
        "sub": str(claims.user_id),
        "sid": str(claims.session_id),
        "org": str(claims.organization_id) if claims.organization_id else None,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp()),
    }
    return jwt.encode(payload, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims | None:
    """None for anything not a valid, unexpired access token of ours."""
    if len(token) > MAX_ACCESS_TOKEN_LENGTH:  # ours are ~300 characters; keeps the cache small
        return None
    secret = settings.secret_key.get_secret_value()
    verified = _verified.get((secret, token))
    if verified is None:
        verified = _verify_access_token(secret, token)
        if verified is None:
            return None  # failures are not remembered: a retry is verified afresh
        if len(_verified) >= VERIFIED_CACHE_SIZE:
            _verified.clear()
        _verified[(secret, token)] = verified
    claims, expires_at = verified
    return claims if time.time() < expires_at else None


# Signatures verified once per token: a client sends the same token on every call until
# it expires, and verifying it is a noticeable share of a request. Expiry depends on the
# moment, so it is checked on every call; session revocation is checked by the caller.
_verified: dict[tuple[str, str], tuple[AccessClaims, int]] = {}
VERIFIED_CACHE_SIZE = 4096
# Replicas' clocks differ slightly: a token issued "in the future" by a few seconds is ours.
CLOCK_LEEWAY_SECONDS = 30


def _verify_access_token(secret: str, token: str) -> tuple[AccessClaims, int] | None:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "sid", "iss", "typ"], "verify_exp": False},
        )
        if payload.get("typ") != ACCESS or not isinstance(payload["exp"], int):
            return None
        org = payload.get("org")
        claims = AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            session_id=uuid.UUID(payload["sid"]),
            organization_id=uuid.UUID(org) if org else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None
    return claims, payload["exp"]


def _refresh_mac(settings: Settings, session_id: str, secret: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    mac = hmac.new(key, f"refresh:{session_id}:{secret}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def new_refresh_token(settings: Settings, session_id: uuid.UUID) -> tuple[str, str]:
    """(token for the client, digest for the session row)."""
    secret = secrets.token_urlsafe(32)
    mac = _refresh_mac(settings, str(session_id), secret)
    return f"{session_id}.{secret}.{mac}", digest(secret)


def parse_refresh_token(settings: Settings, token: str) -> tuple[uuid.UUID, str] | None:
    """(session id, secret) of a token we issued, or None (malformed or forged)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    session_part, secret, mac = parts
    if not secret or not same_text(mac, _refresh_mac(settings, session_part, secret)):
        return None
    try:
        return uuid.UUID(session_part), secret
    except ValueError:
        return None


def new_api_key() -> tuple[str, str, str]:
    """(key shown once, prefix stored in clear, digest stored)."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, digest(key)


def api_key_prefix(token: str) -> str | None:
    scheme, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != API_KEY_SCHEME or len(prefix) != 12 or not secret:
        return None
    return prefix
