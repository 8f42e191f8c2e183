"""`Idempotency-Key` for writes clients retry: the same key and the same request within
24 hours answer the first response and write nothing new; the same key with another
request is a 409.

The route's dependency claims the key by inserting it in the request's transaction
(`INSERT … ON CONFLICT DO NOTHING`): a concurrent retry blocks on the unique index until
the first request commits, then finds its stored answer. A write that fails rolls its
claim back with everything else, so the retry runs afresh.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile

from app.db.base import new_id
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import AppError, Conflict
from app.kit.repository import PlatformRepository, Repository
from app.models.idempotency import IdempotencyKey

TTL = timedelta(hours=24)
PURGE_JOB = "idempotency.purge"
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotentReplay(Exception):
    """The stored answer of an earlier identical request: sent as is."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str]) -> None:
        super().__init__("idempotent replay")
        self.status, self.body, self.headers = status, body, dict(headers)


async def replay_response(_request: Any, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IdempotentReplay)
    return JSONResponse(
        exc.body, status_code=exc.status, headers={**exc.headers, REPLAYED_HEADER: "true"}
    )


def fingerprint(secret: bytes, credential: str, method: str, path: str, body: bytes) -> str:
    """Keyed (HMAC): a stored fingerprint of a body that held a password reveals
    nothing without the server's secret."""
    digest = hmac.new(secret, digestmod=hashlib.sha256)
    for part in (credential.encode(), method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def form_digest(form: FormData) -> bytes:
    """A multipart request as bytes to fingerprint: fields in order, files by name and
    content (read in chunks, then rewound for the route)."""
    digest = hashlib.sha256()
    for name, value in form.multi_items():
        digest.update(name.encode() + b"\0")
        if isinstance(value, UploadFile):
            digest.update((value.filename or "").encode() + b"\0")
            while chunk := await value.read(64 * 1024):
                digest.update(chunk)
            await value.seek(0)
        else:
            digest.update(value.encode())
        digest.update(b"\0")
    return digest.digest()


@dataclass
class Idempotency:
    """What a route holds: `complete()` stores the answer under the claimed key (a no-op
    when the request carried no key)."""

    session: AsyncSession | None = None
    record: IdempotencyKey | None = None

    async def complete(
        self, status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        if self.record is None or self.session is None:
            return
        self.record.response_status = status
        self.record.response_body = jsonable_encoder(body)
        self.record.response_headers = dict(headers or {})
        await self.session.flush()


async def claim(session: AsyncSession, key: str, request_fingerprint: str) -> Idempotency:
    """Claim `key` for this request, or raise: the stored answer (same request) or 409."""
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise AppError("Idempotency-Key must be 1 to 255 printable characters.")
    now = datetime.now(UTC)
    keys = IdempotencyKeyRepository(session)
    for _ in range(2):
        if await keys.insert_new(key, request_fingerprint):
            record = await keys.by_key(key)
            assert record is not None
            return Idempotency(session, record)
        existing = await keys.by_key(key)
        if existing is None:
            continue  # its request rolled back meanwhile: claim again
        if existing.created_at <= now - TTL:
            await session.delete(existing)
            await session.flush()
            continue
        if existing.fingerprint != request_fingerprint:
            raise Conflict("This Idempotency-Key was used for a different request.")
        if existing.response_status is None:
            raise Conflict("A request with this Idempotency-Key is still in progress.")
        raise IdempotentReplay(
            existing.response_status, existing.response_body, existing.response_headers
        )
    raise Conflict("This Idempotency-Key could not be claimed; retry.")


class IdempotencyKeyRepository(Repository[IdempotencyKey]):
    model = IdempotencyKey

    async def insert_new(self, key: str, request_fingerprint: str) -> bool:
        """Claim `key` unless this tenant holds it already (then False)."""
        statement = self.prebuilt(
            "insert_new",
            lambda: self.insert_unless_present(
                ("id", "key", "fingerprint"), ["organization_id", "key"]
            ).returning(IdempotencyKey.__table__.c.id),
        )
        values = {"id": new_id(), "key": key, "fingerprint": request_fingerprint}
        return await self.row(statement, values) is not None

    async def by_key(self, key: str) -> IdempotencyKey | None:
        return await self.one_or_none(self.select().where(IdempotencyKey.key == key))


class ExpiredKeyRepository(PlatformRepository[IdempotencyKey]):
    model = IdempotencyKey

    async def purge(self, older_than: datetime) -> int:
        result = await self.session.execute(
            sa.delete(IdempotencyKey)
            .where(IdempotencyKey.created_at < older_than)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired(uow: UnitOfWork) -> int:
    """Platform sweep (system session): forget keys older than 24 hours."""
    return await ExpiredKeyRepository(uow.session).purge(datetime.now(UTC) - TTL)
