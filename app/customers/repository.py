"""Every statement of the customers domain (customer accounts).

Lists read row dicts (`select_rows`): they only serialize. A single account is an ORM
object, which the service edits and the session flushes.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository
from app.models.user import Customer, CustomerTier

ORDER = [SortKey(Customer.id)]


class CustomerRepository(Repository[Customer]):
    model = Customer

    async def list_page(
        self,
        page: PageParams,
        *,
        q: str | None = None,
        customer_tier: CustomerTier | None = None,
        include_deleted: bool = False,
    ) -> PageResult[Record]:
        """`q`: the name contains it, case-insensitively."""
        statement = self.select_rows(include_deleted=include_deleted)
        if q:
            statement = statement.where(
                sa.func.lower(Customer.name).contains(q.lower(), autoescape=True)
            )
        if customer_tier is not None:
            statement = statement.where(Customer.customer_tier == customer_tier)
        return await self.page_rows(statement, page, ORDER)

    async def check_name_free(self, name: str, *, exclude: uuid.UUID | None = None) -> None:
        """Names are unique per organization regardless of case, as the partial index
        `uq_customers_name` states them."""
        await self.check_unique(
            sa.func.lower(Customer.name) == name.lower(),
            exclude=exclude,
            detail=f"A customer account named '{name}' already exists.",
        )

    async def check_external_id_free(
        self, external_id: str, *, exclude: uuid.UUID | None = None
    ) -> None:
        await self.check_unique(
            Customer.external_id == external_id,
            exclude=exclude,
            detail=f"A customer account with external_id '{external_id}' already exists.",
        )
