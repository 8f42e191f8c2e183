"""Signing secrets in the Standard Webhooks format, shared by the channels (senders sign
with them) and the outbound webhooks (we sign with them): `whsec_` + base64 of 32 random
bytes, shown only in the answers that create or rotate one, and rotated with an overlap
in which the replaced secret stays in use beside the new one."""

from __future__ import annotations

import base64
import secrets

from pydantic import ConfigDict, Field

from app.kit.schemas import InputModel

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a documentation example
DEFAULT_OVERLAP_MINUTES = 24 * 60
MAX_OVERLAP_MINUTES = 7 * 24 * 60


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretRotation(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"overlap_minutes": 60}, {"overlap_minutes": 0}]}
    )

    overlap_minutes: int = Field(
        default=DEFAULT_OVERLAP_MINUTES,
        strict=True,
        ge=0,
        le=MAX_OVERLAP_MINUTES,
        description="How long the replaced secret stays in use beside the new one (0: not "
        "at all). Default 24 hours, at most 7 days.",
    )
