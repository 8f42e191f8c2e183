"""Channel secrets and the Standard Webhooks check every inbound delivery passes before
its body is looked at.

A secret (`app.kit.signing_secrets`) is an HMAC key, so unlike an API
key it cannot be stored as a digest: the channel row keeps it (as the TOTP secrets of
users are kept) and the API shows it only in the answers that create or rotate it.
During a rotation's overlap the previous secret verifies too, so a sender can switch at
its own pace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from standardwebhooks import Webhook, WebhookVerificationError

from app.channels.repository import InboundChannel
from app.kit.errors import AppError

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class InvalidSignature(AppError):
    status, slug, title = 401, "invalid-signature", "Invalid webhook signature"

    def __init__(self, detail: str | None = None) -> None:
        # A webhook caller authenticates by signature, not by a bearer token.
        super().__init__(detail, headers={"WWW-Authenticate": 'StandardWebhooks realm="inbound"'})


def verifying_secrets(channel: InboundChannel, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [channel.secret]
    expires = channel.previous_secret_expires_at
    if channel.previous_secret and expires is not None and expires > now:
        found.append(channel.previous_secret)
    return found


def verify(channel: InboundChannel, body: bytes, headers: Mapping[str, str], now: datetime) -> None:
    """The body was signed with one of the channel's secrets within ±5 minutes of now;
    otherwise `InvalidSignature`. Nothing of the body is parsed here."""
    signed = {name: value for name in SIGNATURE_HEADERS if (value := headers.get(name))}
    if len(signed) < len(SIGNATURE_HEADERS):
        raise InvalidSignature(
            "Sign the request: webhook-id, webhook-timestamp and webhook-signature headers "
            "(Standard Webhooks)."
        )
    for secret in verifying_secrets(channel, now):
        try:
            Webhook(secret).verify(body, signed, json_parse=False)
        # A malformed header (no comma, bad base64) is a failed check like a wrong one.
        except (WebhookVerificationError, ValueError, TypeError):
            continue
        return
    raise InvalidSignature(
        "The signature does not match the channel's secret, or the timestamp is more than "
        "5 minutes away from now."
    )
