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


@router.get("", response_model=Page[CustomerRead])
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
    result = await customers.list_customers(
        session, page, q=q, customer_tier=customer_tier, include_deleted=include_deleted
    )
    return Page.of(result, CustomerRead.model_validate)


@router.post("", response_model=CustomerRead, status_code=201)
async def create_customer(
    body: CustomerCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CustomerRead:
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = CustomerRead.model_validate(await customers.create_customer(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{customer_id}", response_model=CustomerRead)
async def get_customer(customer_id: uuid.UUID, _: Reader, session: SessionDep) -> Customer:
    return await customers.get_customer(session, customer_id)


@router.patch("/{customer_id}", response_model=CustomerRead)
async def update_customer(
    customer_id: uuid.UUID, body: CustomerUpdate, _: Writer, session: SessionDep
) -> Customer:
    return await customers.update_customer(session, customer_id, body)


@router.delete("/{customer_id}", status_code=204)
async def delete_customer(customer_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    await customers.delete_customer(session, customer_id)


@router.post("/{customer_id}/restore", response_model=CustomerRead)
async def restore_customer(customer_id: uuid.UUID, _: Writer, session: SessionDep) -> Customer:
    return await customers.restore_customer(session, customer_id)
