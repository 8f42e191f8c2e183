"""Every statement of the custom fields domain: the definitions' CRUD, and what value
validation runs on every ticket write (the live definitions, and the look-up of a
unique value among the other live tickets).

The definitions list reads row dicts (`select_rows`): it only serializes. A single
definition is an ORM object, which the service edits and the session flushes.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository, scoped
from app.models.custom_field import CustomField, EntityType
from app.models.ticket import Ticket

# The order a form shows the fields in; the id makes the key unique for the cursor.
ORDER = [SortKey(CustomField.position), SortKey(CustomField.id)]

_DEFINITION_COLUMNS = (
    "id",
    "entity_type",
    "name",
    "field_type",
    "is_required",
    "is_unique",
    "choices",
    "validation_rules",
)


class CustomFieldRepository(Repository[CustomField]):
    model = CustomField

    # --- definitions ---------------------------------------------------------------------

    async def list_page(
        self,
        page: PageParams,
        *,
        entity_type: EntityType | None = None,
        include_deleted: bool = False,
    ) -> PageResult[Record]:
        statement = self.select_rows(include_deleted=include_deleted)
        if entity_type is not None:
            statement = statement.where(CustomField.entity_type == entity_type)
        return await self.page_rows(statement, page, ORDER)

    async def check_name_free(
        self, name: str, entity_type: EntityType, *, exclude: uuid.UUID | None = None
    ) -> None:
        """Names are unique per organization and entity type, as the partial index
        `uq_custom_fields_name` states them."""
        await self.check_unique(
            CustomField.name == name,
            CustomField.entity_type == entity_type,
            exclude=exclude,
            detail=f"A {entity_type.value} custom field named '{name}' already exists.",
        )

    # --- value validation ----------------------------------------------------------------

    async def live_definitions(self, entity_type: EntityType) -> list[Record]:
        """Every ticket write reads them: built once per tenant and entity type."""
        table = cast(sa.Table, CustomField.__table__)

        def build() -> sa.Select[Any]:
            return (
                self.select_rows(*(table.c[name] for name in _DEFINITION_COLUMNS))
                .where(table.c.entity_type == entity_type)
                .order_by(table.c.position, table.c.id)
            )

        return await self.rows(self.prebuilt(("live_definitions", entity_type), build))

    async def lock_unique_value(self, entity_type: EntityType, name: str) -> None:
        """PostgreSQL: a transaction-scoped advisory lock per organization and field, so
        two writers of one unique field check and write one after the other."""
        if self.dialect != "postgresql":
            return  # SQLite serializes writers on its own
        scope = f"custom_field_unique:{self.organization_id}:{entity_type.value}:{name}"
        key = int.from_bytes(
            hashlib.blake2b(scope.encode(), digest_size=8).digest(), "big", signed=True
        )
        await self.session.execute(scoped(sa.select(sa.func.pg_advisory_xact_lock(key))))

    async def ticket_values_like(
        self, name: str, value: Any, *, exclude: uuid.UUID | None
    ) -> list[dict[str, Any]]:
        """The custom fields of live tickets (other than `exclude`) whose `name` may hold
        `value`: the database narrows (PostgreSQL: jsonb containment; SQLite:
        `json_extract` equality for scalars), the caller decides equality exactly."""
        tickets = cast(sa.Table, Ticket.__table__).c
        column = tickets.custom_fields
        if self.dialect == "postgresql":
            candidate = sa.type_coerce(column, JSONB).contains({name: value})
        else:
            extracted = sa.func.json_extract(column, f"$.{name}")
            if isinstance(value, bool):
                candidate = extracted == int(value)
            elif isinstance(value, str | int | float):
                candidate = extracted == value
            else:
                candidate = extracted.is_not(None)
        statement = sa.select(column).where(*self.scope(Ticket), candidate)
        if exclude is not None:
            statement = statement.where(tickets.id != exclude)
        return [row["custom_fields"] for row in await self.rows(scoped(statement))]
