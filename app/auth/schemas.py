"""Auth request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=512)


class TotpEnroll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=1024, description="Your current password.")


class TotpEnrollResponse(BaseModel):
    secret: str = Field(description="Base32 secret for the authenticator app (shown once).")
    otpauth_uri: str = Field(description="The same secret as an otpauth:// URI (QR code).")


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\s*[0-9]{6}\s*$", description="Six digits from the app.")


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ip_address: str | None
    user_agent: str
    created_at: datetime
    last_activity_at: datetime
    expires_at: datetime
    is_active: bool
    revoked_at: datetime | None
    current: bool = False
