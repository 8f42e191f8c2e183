"""Request body size limit, enforced while streaming (Content-Length can lie or be absent)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kit.errors import problem_response

UPLOAD_PATH_SUFFIXES = ("/attachments",)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, multipart_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.multipart_max_bytes = multipart_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        # Uploads (multipart to an upload route) get their own, larger ceiling; the
        # attachment service checks each file. Elsewhere a multipart body is no bigger.
        is_upload = content_type.startswith("multipart/form-data") and str(
            scope.get("path", "")
        ).endswith(UPLOAD_PATH_SUFFIXES)
        limit = self.multipart_max_bytes if is_upload else self.max_bytes
        detail = f"The request body exceeds the limit of {limit} bytes."
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem_response(413, detail)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException passes FastAPI's body parsing untouched and is
                    # rendered as a problem by the regular handler.
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited_receive, send)
