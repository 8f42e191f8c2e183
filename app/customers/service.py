"""Customer accounts: name and external id unique per organization among live rows."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.kit.records import apply_changes, check_unique, get_or_404
from app.models.user import Customer, CustomerTier


def customers_query(
    *,
    q: str | None = None,
    customer_tier: CustomerTier | None = None,
    include_deleted: bool = False,
) -> sa.Select[Customer]:
    statement = sa.select(Customer)
    if q:
        statement = statement.where(
            sa.func.lower(Customer.name).contains(q.lower(), autoescape=True)
        )
    if customer_tier is not None:
        statement = statement.where(Customer.customer_tier == customer_tier)
    if include_deleted:
        statement = statement.execution_options(include_deleted=True)
    return statement


async def get_customer(
    session: AsyncSession, customer_id: uuid.UUID, *, include_deleted: bool = False
) -> Customer:
    return await get_or_404(
        session, Customer, customer_id, include_deleted=include_deleted, label="customer account"
    )


async def create_customer(session: AsyncSession, data: CustomerCreate) -> Customer:
    await _check_unique_fields(session, data.name, data.external_id)
    customer = Customer(**data.model_dump())
    session.add(customer)
    await session.flush()
    return customer


async def update_customer(
    session: AsyncSession, customer_id: uuid.UUID, data: CustomerUpdate
) -> Customer:
    customer = await get_customer(session, customer_id)
    changes = data.changes()
    await _check_unique_fields(
        session, changes.get("name"), changes.get("external_id"), exclude=customer.id
    )
    apply_changes(customer, changes)
    await session.flush()
    return customer


async def delete_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Its users keep their `customer_id` and their tickets; restore brings it back."""
    (await get_customer(session, customer_id)).soft_delete()
    await session.flush()


async def restore_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    customer = await get_customer(session, customer_id, include_deleted=True)
    if customer.is_deleted:
        await _check_unique_fields(
            session, customer.name, customer.external_id, exclude=customer.id
        )
        customer.restore()
        await session.flush()
    return customer


async def _check_unique_fields(
    session: AsyncSession,
    name: str | None,
    external_id: str | None,
    *,
    exclude: uuid.UUID | None = None,
) -> None:
    if name is not None:
        await check_unique(
            session,
            Customer,
            sa.func.lower(Customer.name) == name.lower(),
            exclude=exclude,
            detail=f"A customer account named '{name}' already exists.",
        )
    if external_id is not None:
        await check_unique(
            session,
            Customer,
            Customer.external_id == external_id,
            exclude=exclude,
            detail=f"A customer account with external_id '{external_id}' already exists.",
        )
