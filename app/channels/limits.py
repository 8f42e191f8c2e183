"""The inbound routes' own body limit: mail with attachments is far larger than the
API's general limit, so those paths get `MAX_INBOUND_MESSAGE_BYTES` instead, enforced
the same way (Content-Length first, then while the body streams in)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import API_PREFIX
from app.kit.limits import BodySizeLimitMiddleware

INBOUND_PREFIX = f"{API_PREFIX}/inbound/"


class BodySizeLimits:
    """`BodySizeLimitMiddleware` with the general limits, or with the inbound limit on
    the inbound paths."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, multipart_max_bytes: int, inbound_max_bytes: int
    ) -> None:
        self.general = BodySizeLimitMiddleware(
            app, max_bytes=max_bytes, multipart_max_bytes=multipart_max_bytes
        )
        self.inbound = BodySizeLimitMiddleware(
            app, max_bytes=inbound_max_bytes, multipart_max_bytes=inbound_max_bytes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(INBOUND_PREFIX):
            await self.inbound(scope, receive, send)
        else:
            await self.general(scope, receive, send)
