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


@router.get("", response_model=Page[ApiKeyRead], summary="List API keys")
async def list_api_keys(
    _: KeyManager, session: SessionDep, page: PageParamsDep
) -> Page[ApiKeyRead]:
    """The organization's API keys, oldest first, revoked and expired ones included;
    never the secret (the `prefix` identifies a key).

    **Who:** admins (`api_keys:manage`), as people: an API key never manages keys (403).

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await api_keys.list_api_keys(session, page)
    return Page.of(result, ApiKeyRead.model_validate)


@router.post("", response_model=ApiKeyCreated, status_code=201, summary="Create an API key")
async def create_api_key(
    body: ApiKeyCreate, principal: KeyManager, session: SessionDep
) -> ApiKeyCreated:
    """Mints a key for an integration. The full `key` is in this response only: store it
    now. Send it as `Authorization: Bearer hdk_…`.

    **Who:** admins (`api_keys:manage`), as people: an API key never manages keys (403).

    - The key acts with `role` (`agent` by default): that role's permissions, less
      `api_keys:manage` and `permissions:manage`. It cannot write comments or upload
      files, which need a person.
    - `expires_at` must be in the future: 422.
    """
    key, secret = await api_keys.create_api_key(session, principal, body)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=secret)


@router.get("/{key_id}", response_model=ApiKeyRead, summary="Get an API key")
async def get_api_key(key_id: uuid.UUID, _: KeyManager, session: SessionDep) -> ApiKey:
    """One API key's metadata (never its secret), revoked or not.

    **Who:** admins (`api_keys:manage`), as people: an API key never manages keys (403).

    **Errors:** 404 for another organization's key or a missing one.
    """
    return await api_keys.get_api_key(session, key_id)


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_api_key(key_id: uuid.UUID, _: KeyManager, session: SessionDep) -> None:
    """Revokes the key at once: its next request is a 401. Revoking is final (a key is
    never restored; create a new one) and revoking a revoked key changes nothing.

    **Who:** admins (`api_keys:manage`), as people: an API key never manages keys (403).

    **Errors:** 404 for another organization's key or a missing one.
    """
    await api_keys.revoke_api_key(session, key_id)
