"""Customer accounts: name and external id unique per organization among live rows."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.repository import CustomerRepository
from app.customers.schemas import CustomerCreate, CustomerUpdate
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes
from app.kit.repository import Record
from app.models.user import Customer, CustomerTier

LABEL = "customer account"


async def list_customers(
    session: AsyncSession,
    page: PageParams,
    *,
    q: str | None = None,
    customer_tier: CustomerTier | None = None,
    include_deleted: bool = False,
) -> PageResult[Record]:
    return await CustomerRepository(session).list_page(
        page, q=q, customer_tier=customer_tier, include_deleted=include_deleted
    )


async def get_customer(
    session: AsyncSession, customer_id: uuid.UUID, *, include_deleted: bool = False
) -> Customer:
    return await CustomerRepository(session).get_or_404(
        customer_id, include_deleted=include_deleted, label=LABEL
    )


async def create_customer(session: AsyncSession, data: CustomerCreate) -> Customer:
    await _check_unique_fields(CustomerRepository(session), data.name, data.external_id)
    customer = Customer(**data.model_dump())
    session.add(customer)
    await session.flush()
    return customer


async def update_customer(
    session: AsyncSession, customer_id: uuid.UUID, data: CustomerUpdate
) -> Customer:
    customers = CustomerRepository(session)
    customer = await customers.get_or_404(customer_id, label=LABEL)
    changes = data.changes()
    await _check_unique_fields(
        customers, changes.get("name"), changes.get("external_id"), exclude=customer.id
    )
    apply_changes(customer, changes)
    await session.flush()
    return customer


async def delete_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Its users keep their `customer_id` and their tickets; restore brings it back."""
    (await get_customer(session, customer_id)).soft_delete()
    await session.flush()


async def restore_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    customers = CustomerRepository(session)
    customer = await customers.get_or_404(customer_id, include_deleted=True, label=LABEL)
    if customer.is_deleted:
        await _check_unique_fields(
            customers, customer.name, customer.external_id, exclude=customer.id
        )
        customer.restore()
        await session.flush()
    return customer


async def _check_unique_fields(
    customers: CustomerRepository,
    name: str | None,
    external_id: str | None,
    *,
    exclude: uuid.UUID | None = None,
) -> None:
    if name is not None:
        await customers.check_name_free(name, exclude=exclude)
    if external_id is not None:
        await customers.check_external_id_free(external_id, exclude=exclude)
