"""The repository base: every statement of a tenant domain starts here.

A domain's `repository.py` subclasses `Repository` for its model and builds each of its
statements on one of two base statements, both carrying the tenant and soft-delete
criteria in their own text:

* `select()` — ORM objects, for a unit of work that edits an aggregate (objects track
  their changes and are flushed together). The session's ORM rule scopes these a
  second time (`with_loader_criteria`), relationship loads included.
* `select_rows(*columns)` — row mappings of the table's columns, for hot reads that only
  serialize (GET, lists): no identity map, no per-row objects. The ORM rule cannot see
  a Core statement, so a tenant session accepts one only with the `TENANT_SCOPED` mark
  that `scoped()` sets (statement building lives in repositories and the journal only:
  `tests/db/test_statement_placement.py`).

The statements every request runs are built once per tenant and shape with `prebuilt`,
their varying values bound at execution. Statements for other tables (a subquery, a
join) take `scope(Model)`; writes take `insert_row` and `update()` (ORM objects are
written by the session's flush). The test suite proves every marked statement it runs
(`tests/support/statement_proof.py`): each table it reads or writes is constrained to
the session's organization — and to live rows, unless the statement opted into deleted
ones — in the SELECT, UPDATE or DELETE that reads it.

`PlatformRepository` is the twin for the system session (platform code: superuser
endpoints, credential look-ups before a tenant is known, sweeps across tenants): its
base statement carries the soft-delete criteria only, and it refuses a tenant session.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.db.base import Base
from app.db.session import TENANT_SCOPED, TenantContextMissing, is_system, session_organization
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin
from app.kit.errors import Conflict, NotFound
from app.kit.pagination import PageParams, PageResult, SortKey, page_bounds, page_result, paged

ModelT = TypeVar("ModelT", bound=Base)
PREBUILT_LIMIT = 8192
# Insertion-ordered: a hit moves its entry to the end, so the first is the least recent.
_PREBUILT: dict[Hashable, Any] = {}
Record = dict[str, Any]
AnySelect = sa.Select[Any]
Statement = TypeVar("Statement", bound=sa.Executable)
Built = TypeVar("Built")


def scoped(statement: Statement, *, include_deleted: bool = False) -> Statement:
    """Mark a statement built by a repository (see the module docstring)."""
    options: dict[str, Any] = {TENANT_SCOPED: True}
    if include_deleted:
        options["include_deleted"] = True
    return statement.execution_options(**options)


def stated(
    column: sa.ColumnElement[Any] | QueryableAttribute[Any], value: Any
) -> sa.ColumnElement[bool]:
    """`column = value`, the value written into the statement's text rather than bound:
    for the condition of a partial index. asyncpg prepares every statement, and the
    generic plan PostgreSQL settles on for one (made without the values) cannot use a
    partial index whose condition it would have to prove from a bound value."""
    return column == sa.literal(value, column.type, literal_execute=True)


def prebuilt(key: Hashable, build: Callable[[], Built]) -> Built:
    """The statement `build` makes for `key`, built once and reused — for the statements
    every request runs, whose construction and cache key otherwise cost more than their
    execution. What varies per call is a bound parameter (`sa.bindparam`) given at
    execution; the tenant's criteria are in the statement, so `key` names the tenant.
    Bounded: the least recently used statements go first."""
    statement = _PREBUILT.pop(key, None)
    if statement is None:
        statement = build()
        if len(_PREBUILT) >= PREBUILT_LIMIT:
            del _PREBUILT[next(iter(_PREBUILT))]
    _PREBUILT[key] = statement
    return cast(Built, statement)


class Repository(Generic[ModelT]):
    model: ClassVar[type[Base]]

    def __init__(self, session: AsyncSession) -> None:
        organization_id = session_organization(session.sync_session)
        if organization_id is None or is_system(session.sync_session):
            raise TenantContextMissing(f"{type(self).__name__} needs a tenant session")
        self.session = session
        self.organization_id: uuid.UUID = organization_id
        self.dialect: str = session.get_bind().dialect.name

    # --- building -----------------------------------------------------------------------

    def scope(
        self, model: type[Base] | None = None, *, include_deleted: bool = False
    ) -> list[sa.ColumnElement[bool]]:
        """The conditions that keep `model` (default: this repository's) to the tenant's
        (live) rows."""
        model = model or self.model
        table = cast(sa.Table, model.__table__)
        if issubclass(model, TenantMixin):
            conditions = [table.c.organization_id == self.organization_id]
        elif issubclass(model, TenantRootMixin):
            conditions = [table.c.id == self.organization_id]
        else:
            raise TypeError(f"{model.__name__} is not a tenant model")
        if issubclass(model, SoftDeleteMixin) and not include_deleted:
            conditions.append(table.c.deleted_at.is_(None))
        return conditions

    def select(self, *, include_deleted: bool = False) -> sa.Select[tuple[ModelT]]:
        statement = sa.select(self.model).where(*self.scope(include_deleted=include_deleted))
        return scoped(cast(sa.Select[tuple[ModelT]], statement), include_deleted=include_deleted)

    def select_rows(
        self, *columns: sa.ColumnElement[Any], include_deleted: bool = False
    ) -> AnySelect:
        """The given columns, or all of the table's."""
        table = cast(sa.Table, self.model.__table__)
        statement = sa.select(*(columns or table.c)).where(
            *self.scope(include_deleted=include_deleted)
        )
        return scoped(statement, include_deleted=include_deleted)

    def insert_row(self, values: Mapping[str, Any]) -> sa.Insert:
        """An INSERT of one row of this repository's table, the tenant's. One row per
        statement: SQLAlchemy caches the compiled form of a single-row VALUES, never of a
        multi-row one."""
        stamped = {**values, "organization_id": self.organization_id}
        return scoped(sa.insert(cast(sa.Table, self.model.__table__)).values(stamped))

    def insert_unless_present(
        self,
        columns: Sequence[str],
        key: Sequence[str | sa.ColumnElement[Any]],
        *,
        where: sa.ColumnElement[bool] | None = None,
    ) -> sa.Insert:
        """An INSERT of one row of this repository's table, the tenant's, with `columns`
        bound by name at execution (a statement built once, `prebuilt`), that inserts
        nothing when a row of the same unique `key` (the columns or expressions of a
        unique index, partial by `where`) is there already: of concurrent inserts of one
        key exactly one inserts and none fails."""
        table = cast(sa.Table, self.model.__table__)
        bound = {name: sa.bindparam(name, type_=table.c[name].type) for name in columns}
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(table)
            .values({**bound, "organization_id": self.organization_id})
            .on_conflict_do_nothing(index_elements=list(key), index_where=where)
        )
        return scoped(statement)

    def update(self, *, include_deleted: bool = False) -> sa.Update:
        table = cast(sa.Table, self.model.__table__)
        statement = sa.update(table).where(*self.scope(include_deleted=include_deleted))
        return scoped(statement, include_deleted=include_deleted)

    # --- running ------------------------------------------------------------------------

    async def one_or_none(
        self, statement: AnySelect, params: Mapping[str, Any] | None = None
    ) -> ModelT | None:
        found = (await self.session.execute(statement, params)).scalar_one_or_none()
        return cast(ModelT | None, found)

    async def all(
        self, statement: AnySelect, params: Mapping[str, Any] | None = None
    ) -> Sequence[ModelT]:
        found = (await self.session.execute(statement, params)).scalars().all()
        return cast(Sequence[ModelT], found)

    async def row(
        self, statement: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> Record | None:
        mapping = (await self.session.execute(statement, params)).mappings().one_or_none()
        return dict(mapping) if mapping is not None else None

    async def rows(
        self, statement: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> list[Record]:
        return [dict(m) for m in (await self.session.execute(statement, params)).mappings()]

    def prebuilt(self, shape: Hashable, build: Callable[[], Statement]) -> Statement:
        """This tenant's statement of `shape`, built by `build` once (see `prebuilt`);
        per dialect too, as `build` may differ by it (row locks on PostgreSQL only)."""
        return prebuilt((type(self), self.dialect, self.organization_id, shape), build)

    async def scalar(
        self, statement: sa.Executable, params: Mapping[str, Any] | None = None
    ) -> Any:
        return (await self.session.execute(statement, params)).scalar()

    async def get_or_404(
        self, record_id: uuid.UUID, *, include_deleted: bool = False, label: str | None = None
    ) -> ModelT:
        """The object by id; another organization's row is exactly as missing as a
        nonexistent one."""
        statement = self.select(include_deleted=include_deleted).where(self.model.id == record_id)
        record = await self.one_or_none(statement)
        if record is None:
            raise NotFound(f"No such {label or self.model.__name__.lower()}.")
        return record

    async def advisory_lock(self, scope: str, *, wait: bool = True) -> bool:
        """PostgreSQL: this tenant's advisory lock named `scope`, held until the
        transaction ends — waited for, or (`wait=False`) taken only if free; returns
        whether it is held. Elsewhere (SQLite serializes writers) always True."""
        if self.dialect != "postgresql":
            return True
        lock = sa.func.pg_advisory_xact_lock if wait else sa.func.pg_try_advisory_xact_lock
        statement = prebuilt(
            ("advisory_lock", wait), lambda: scoped(sa.select(lock(sa.bindparam("key"))))
        )
        digest = hashlib.blake2b(f"{scope}:{self.organization_id}".encode(), digest_size=8)
        held = await self.scalar(
            statement, {"key": int.from_bytes(digest.digest(), "big", signed=True)}
        )
        return wait or bool(held)

    async def check_unique(
        self, *criteria: sa.ColumnElement[bool], exclude: uuid.UUID | None = None, detail: str
    ) -> None:
        """A 409 before the flush rather than an IntegrityError after it: the message can
        say which value clashes. Live rows only (the unique indexes are partial too); the
        database's index still settles a race between two requests."""
        statement = self.select_rows(self.model.__table__.c.id).where(*criteria)
        if exclude is not None:
            statement = statement.where(self.model.__table__.c.id != exclude)
        if await self.row(statement.limit(1)) is not None:
            raise Conflict(detail)

    async def page(
        self, statement: AnySelect, params: PageParams, keys: Sequence[SortKey]
    ) -> PageResult[ModelT]:
        """One keyset page of ORM objects (a `select()`)."""
        shape, values = page_bounds(params, keys)
        result = await self.session.execute(paged(statement, keys, shape), values)
        return page_result(cast(Sequence[ModelT], result.scalars().all()), params, keys)

    async def page_rows(
        self, statement: AnySelect, params: PageParams, keys: Sequence[SortKey]
    ) -> PageResult[Record]:
        """One keyset page of row dicts (a `select_rows()`)."""
        shape, values = page_bounds(params, keys)
        return await self.fetch_page(paged(statement, keys, shape), values, params, keys)

    def prebuilt_page(
        self,
        shape: Hashable,
        build: Callable[[], AnySelect],
        params: PageParams,
        keys: Sequence[SortKey],
    ) -> tuple[AnySelect, dict[str, Any]]:
        """The page statement of a list every request runs, built once per `shape` and
        seek (see `prebuilt`) from `build`'s unordered statement, and the page's bound
        values; `fetch_page` runs it."""
        seek, values = page_bounds(params, keys)
        order = tuple((str(key.column), key.descending, key.nullable) for key in keys)
        statement = self.prebuilt(("page", shape, order, seek), lambda: paged(build(), keys, seek))
        return statement, values

    async def fetch_page(
        self,
        statement: AnySelect,
        arguments: Mapping[str, Any],
        params: PageParams,
        keys: Sequence[SortKey],
    ) -> PageResult[Record]:
        """The page of row dicts a `paged` statement returns for its bound `arguments`."""
        result = await self.session.execute(statement, arguments)
        return page_result([dict(m) for m in result.mappings()], params, keys)


class PlatformRepository(Generic[ModelT]):
    model: ClassVar[type[Base]]

    def __init__(self, session: AsyncSession) -> None:
        if not is_system(session.sync_session):
            raise TypeError(f"{type(self).__name__} runs in the system session only")
        self.session = session

    def select(self, *, include_deleted: bool = False) -> AnySelect:
        statement = sa.select(self.model)
        if issubclass(self.model, SoftDeleteMixin) and not include_deleted:
            statement = statement.where(self.model.__table__.c.deleted_at.is_(None))
        if include_deleted:
            statement = statement.execution_options(include_deleted=True)
        return statement

    async def one_or_none(self, statement: AnySelect) -> ModelT | None:
        found = (await self.session.execute(statement)).scalar_one_or_none()
        return cast(ModelT | None, found)

    async def all(self, statement: AnySelect) -> Sequence[ModelT]:
        return cast(Sequence[ModelT], (await self.session.execute(statement)).scalars().all())

    async def get_or_404(
        self, record_id: uuid.UUID, *, include_deleted: bool = False, label: str | None = None
    ) -> ModelT:
        statement = self.select(include_deleted=include_deleted).where(self.model.id == record_id)
        record = await self.one_or_none(statement)
        if record is None:
            raise NotFound(f"No such {label or self.model.__name__.lower()}.")
        return record

    async def page(
        self, statement: AnySelect, params: PageParams, keys: Sequence[SortKey]
    ) -> PageResult[Any]:
        shape, values = page_bounds(params, keys)
        result = await self.session.execute(paged(statement, keys, shape), values)
        return page_result(list(result.scalars().all()), params, keys)
