"""API keys: integration principals with a role. Stored as a SHA-256 digest; the full
key exists only in the creation response. Revoking is final (keys are not restored)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.api_keys.repository import ApiKeyRepository
from app.api_keys.schemas import ApiKeyCreate
from app.auth import tokens
from app.auth.principal import Principal
from app.kit.errors import ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.records import field_error
from app.models.user import ApiKey
from app.users.service import check_may_assign


async def list_api_keys(session: AsyncSession, page: PageParams) -> PageResult[ApiKey]:
    return await ApiKeyRepository(session).page_all(page)


async def get_api_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    return await ApiKeyRepository(session).get_or_404(key_id, label="API key")


async def create_api_key(
    session: AsyncSession, actor: Principal, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    check_may_assign(actor, data.role)
    if data.expires_at is not None and data.expires_at <= datetime.now(UTC):
        raise ValidationFailed(
            "The key would be born expired.",
            errors=[field_error("expires_at", "must be in the future")],
        )
    secret, prefix, key_hash = tokens.new_api_key()
    key = ApiKey(
        name=data.name,
        role=data.role,
        prefix=prefix,
        key_hash=key_hash,
        created_by_id=actor.user_id,
        expires_at=data.expires_at,
    )
    session.add(key)
    await session.flush()
    return key, secret


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID) -> None:
    key = await get_api_key(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.flush()
