"""/customers: customer accounts, CRUD + restore."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.customers import service as customers
from app.customers.schemas import CustomerCreate, CustomerRead, CustomerUpdate
from app.db.dependencies import SessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.user import Customer, CustomerTier

router = APIRouter(prefix="/customers", tags=["customers"])

Reader = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CUSTOMERS_WRITE))]


@router.get("", response_model=Page[CustomerRead], summary="List customer accounts")
async def list_customers(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name contains.")
    ] = None,
    customer_tier: CustomerTier | None = None,
) -> Page[CustomerRead]:
    """The organization's customer accounts (the companies or households customer users
    belong to), oldest first. `q` matches part of the name; `customer_tier` filters.

    **Who:** agents, managers and admins (`customers:read`). `include_deleted=true` adds
    soft-deleted accounts and is for admins (`deleted:read`), 403 for others.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await customers.list_customers(
        session, page, q=q, customer_tier=customer_tier, include_deleted=include_deleted
    )
    return Page.of(result, CustomerRead.model_validate)


@router.post("", response_model=CustomerRead, status_code=201, summary="Create a customer account")
async def create_customer(
    body: CustomerCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CustomerRead:
    """Creates a customer account; customer users join it through their `customer_id`
    (`POST /users` with role `customer`).

    **Who:** managers and admins (`customers:write`).

    - `name` and `external_id` are unique among the organization's live accounts: 409.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = CustomerRead.model_validate(await customers.create_customer(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{customer_id}", response_model=CustomerRead, summary="Get a customer account")
async def get_customer(customer_id: uuid.UUID, _: Reader, session: SessionDep) -> Customer:
    """One customer account.

    **Who:** agents, managers and admins (`customers:read`).

    **Errors:** 404 for another organization's account, a missing or a deleted one.
    """
    return await customers.get_customer(session, customer_id)


@router.patch("/{customer_id}", response_model=CustomerRead, summary="Update a customer account")
async def update_customer(
    customer_id: uuid.UUID, body: CustomerUpdate, _: Writer, session: SessionDep
) -> Customer:
    """Changes the fields sent and keeps the others; `email`, `phone`, `domain` and
    `external_id` may be cleared with `null`.

    **Who:** managers and admins (`customers:write`).

    **Errors:** 409 when `name` or `external_id` is taken by another live account; 404 for
    another organization's account, a missing or a deleted one.
    """
    return await customers.update_customer(session, customer_id, body)


@router.delete("/{customer_id}", status_code=204, summary="Delete a customer account (soft)")
async def delete_customer(customer_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    """Soft-deletes the account: it leaves lists and reads, while its users keep their
    `customer_id` and their tickets. `POST /customers/{customer_id}/restore` brings it
    back.

    **Who:** managers and admins (`customers:write`).

    **Errors:** 404 for another organization's account, a missing or an already deleted
    one.
    """
    await customers.delete_customer(session, customer_id)


@router.post(
    "/{customer_id}/restore", response_model=CustomerRead, summary="Restore a customer account"
)
async def restore_customer(customer_id: uuid.UUID, _: Writer, session: SessionDep) -> Customer:
    """Undoes a soft delete; a live account is returned unchanged.

    **Who:** managers and admins (`customers:write`).

    **Errors:** 409 when a live account took its `name` or `external_id` meanwhile; 404 for
    another organization's account or a missing one.
    """
    return await customers.restore_customer(session, customer_id)
