"""/api-keys (admins): create (secret shown once), list, read, revoke."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from app.api_keys import service as api_keys
from app.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from app.auth.dependencies import require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.user import ApiKey

router = APIRouter(prefix="/api-keys", tags=["api keys"])

KeyManager = Annotated[Principal, Depends(require(Permission.API_KEYS_MANAGE))]


@router.get("", response_model=Page[ApiKeyRead])
async def list_api_keys(
    _: KeyManager, session: SessionDep, page: PageParamsDep
) -> Page[ApiKeyRead]:
    result = await api_keys.list_api_keys(session, page)
    return Page.of(result, ApiKeyRead.model_validate)


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_api_key(
    body: ApiKeyCreate, principal: KeyManager, session: SessionDep
) -> ApiKeyCreated:
    key, secret = await api_keys.create_api_key(session, principal, body)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.get("/{key_id}", response_model=ApiKeyRead)
async def get_api_key(key_id: uuid.UUID, _: KeyManager, session: SessionDep) -> ApiKey:
    return await api_keys.get_api_key(session, key_id)


@router.delete("/{key_id}", status_code=204, summary="Revoke: the key stops working at once")
async def revoke_api_key(key_id: uuid.UUID, _: KeyManager, session: SessionDep) -> None:
    await api_keys.revoke_api_key(session, key_id)
