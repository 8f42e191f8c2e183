"""Auth request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_ID = "0191b0d0-8e9f-7a0b-8c1d-2e3f4a5b6c3c"
REFRESH_TOKEN_EXAMPLE = (
    f"{SESSION_ID}.Xq3vJ8kR2mN7pL4tY9wB1cF6hD0sG5aZeUoIiKjMnQw.5d41402abc4b2a76b9719d911017c592"
)


class TokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkxYTNj"
                    "NS0wZTFmLTdhMmItOWMzZC00ZTVmNmE3YjhjOTIiLCJ0eXAiOiJhY2Nlc3MifQ.q5k9Xb2LrW"
                    "8uYvT3nE1sZ6cJ0hG4dF7aM2oP9iKjQwU",
                    "refresh_token": REFRESH_TOKEN_EXAMPLE,
                    "token_type": "bearer",
                    "expires_in": 900,
                }
            ]
        }
    )

    access_token: str = Field(description="Send as `Authorization: Bearer <access_token>`.")
    refresh_token: str = Field(
        description="Trade it at /auth/refresh for a new pair; valid once (rotated)."
    )
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"refresh_token": REFRESH_TOKEN_EXAMPLE}]}
    )
    refresh_token: str = Field(min_length=1, max_length=512)


class TotpEnroll(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"password": "correct-horse-battery-staple"}]},
    )
    password: str = Field(min_length=1, max_length=1024, description="Your current password.")


class TotpEnrollResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/Helpdesk:dana.fischer%40acme.example.com"
                    "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Helpdesk",
                }
            ]
        }
    )

    secret: str = Field(description="Base32 secret for the authenticator app (shown once).")
    otpauth_uri: str = Field(description="The same secret as an otpauth:// URI (QR code).")


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "492039"}]})
    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", description="Six digits from the app.")


class SessionRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": SESSION_ID,
                    "ip_address": "203.0.113.24",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
                    "Firefox/128.0",
                    "created_at": "2025-03-04T07:58:12Z",
                    "last_activity_at": "2025-03-04T09:02:10Z",
                    "expires_at": "2025-04-03T09:02:10Z",
                    "is_active": True,
                    "revoked_at": None,
                    "current": True,
                }
            ]
        },
    )

    id: uuid.UUID
    ip_address: str | None
    user_agent: str
    created_at: datetime
    last_activity_at: datetime
    expires_at: datetime
    is_active: bool
    revoked_at: datetime | None
    current: bool = Field(default=False, description="The session of this request's token.")
