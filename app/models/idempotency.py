"""Stored answers to retried writes (`Idempotency-Key`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin
from app.db.tenancy import TenantMixin


class IdempotencyKey(TenantMixin, CreatedAtMixin, Base):
    """One key per organization. The row is claimed (inserted) before the write runs, in
    the same transaction, so a concurrent retry waits on the unique index and then sees
    the stored answer; a failed write rolls its claim back with it. Kept 24 hours."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "key"),
        sa.Index("ix_idempotency_keys_created_at", "created_at"),
    )

    key: Mapped[str] = mapped_column(sa.String(255))
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # credential, method, path, body
    response_status: Mapped[int | None] = mapped_column(sa.SmallInteger)
    response_body: Mapped[dict[str, Any] | None]
    response_headers: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
