"""Tenant-scoped Core reads for the hottest paths (every request's credential check,
ticket reads and lists).

The ORM rule in `app.db.session` adds the tenant and soft-delete criteria to every ORM
statement at execution time; that costs several hundred microseconds per statement and
builds an object per row, which on a one-row read is most of the request. A
`ScopedQuery` is a Core SELECT that carries the same criteria *in its own text*,
proven once when it is built:

* every tenant table it reads, in every SELECT of the statement (subqueries too), is
  constrained by a top-level `organization_id = :organization_id` conjunct (the
  organization's own table by `id = :organization_id`), and every soft-deletable one
  by `deleted_at IS NULL`, unless the query is built with `include_deleted=True`;
* `.where()` only adds conjuncts, so narrowing keeps the proof; nothing else (joins,
  unions, new FROMs) can be added without building and proving a new query;
* `fetch_*` bind `:organization_id` from the tenant session and refuse an unbound or
  system session, so the organization always comes from the credential.

PostgreSQL row-level security still applies underneath (the session runs as the app
role with the tenant set), exactly as for ORM statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnElement

from app.db.base import Base
from app.db.session import TenantContextMissing, is_system, session_organization
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin

ORGANIZATION_PARAM = "organization_id"
ORGANIZATION: BindParameter[Any] = sa.bindparam(ORGANIZATION_PARAM, type_=sa.Uuid)


class UnscopedQuery(ValueError):
    """A query reads a tenant table without its tenant (or soft-delete) constraint."""


AnySelect = sa.Select[*tuple[Any, ...]]


def scope(model: type[Base], *, include_deleted: bool = False) -> list[ColumnElement[bool]]:
    """The conjuncts that scope `model`'s table to the bound organization (and its live
    rows)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return _table_scope(table, include_deleted=include_deleted)


class ScopedQuery:
    """A proven tenant-scoped SELECT (see the module docstring)."""

    __slots__ = ("statement",)

    def __init__(self, statement: AnySelect, *, include_deleted: bool = False) -> None:
        prove_scoped(statement, include_deleted=include_deleted)
        self.statement = statement

    @classmethod
    def _narrowed(cls, statement: AnySelect) -> Self:
        query = cls.__new__(cls)
        query.statement = statement
        return query

    def where(self, *criteria: ColumnElement[bool]) -> Self:
        return self._narrowed(self.statement.where(*criteria))

    def order_by(self, *clauses: Any) -> Self:
        return self._narrowed(self.statement.order_by(*clauses))

    def limit(self, limit: int) -> Self:
        return self._narrowed(self.statement.limit(limit))

    def with_for_update(self) -> Self:
        return self._narrowed(self.statement.with_for_update())


Record = dict[str, Any]


async def fetch_all(session: AsyncSession, query: ScopedQuery, **params: Any) -> list[Record]:
    """Rows as plain dicts (what response schemas validate fastest, keyed by column)."""
    result = await _execute(session, query, params)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


async def fetch_one_or_none(
    session: AsyncSession, query: ScopedQuery, **params: Any
) -> Record | None:
    result = await _execute(session, query, params)
    row = result.one_or_none()
    return dict(zip(result.keys(), row, strict=True)) if row is not None else None


async def _execute(
    session: AsyncSession, query: ScopedQuery, params: dict[str, Any]
) -> sa.CursorResult[Any]:
    organization_id = session_organization(session.sync_session)
    if organization_id is None or is_system(session.sync_session):
        raise TenantContextMissing("a scoped query needs a tenant session")
    connection = await session.connection()
    result: sa.CursorResult[Any] = await connection.execute(
        query.statement, {**params, ORGANIZATION_PARAM: organization_id}
    )
    return result


# --- the proof -------------------------------------------------------------------------


def prove_scoped(statement: AnySelect, *, include_deleted: bool = False) -> None:
    for select in _selects(statement):
        conjuncts = list(_conjuncts(select.whereclause))
        for join in _joins(select.get_final_froms()):
            conjuncts.extend(_conjuncts(join.onclause))
        for table in _tables(select.get_final_froms()):
            missing = [
                str(condition)
                for condition in _table_scope(table, include_deleted=include_deleted)
                if not any(_same(condition, conjunct) for conjunct in conjuncts)
            ]
            if missing:
                raise UnscopedQuery(f"{table.name} is read without {' AND '.join(missing)}")


def _table_scope(table: sa.Table, *, include_deleted: bool) -> list[ColumnElement[bool]]:
    rule = _rules().get(table)
    if rule is None:
        return []
    key_column, soft_delete = rule
    conditions: list[ColumnElement[bool]] = [table.c[key_column] == ORGANIZATION]
    if soft_delete and not include_deleted:
        conditions.append(table.c.deleted_at.is_(None))
    return conditions


def _rules() -> dict[sa.Table, tuple[str, bool]]:
    """Tenant tables → (the column naming the tenant, soft-deletable?), from the models.
    Rebuilt when models were added since, so no table is ever judged by a stale map."""
    mappers = Base.registry.mappers
    if len(mappers) != _RULES_BUILT_FROM[0]:
        _RULES.clear()
        for mapper in mappers:
            cls, table = mapper.class_, mapper.local_table
            if not isinstance(table, sa.Table):
                continue
            soft_delete = issubclass(cls, SoftDeleteMixin)
            if issubclass(cls, TenantMixin):
                _RULES[table] = ("organization_id", soft_delete)
            elif issubclass(cls, TenantRootMixin):
                _RULES[table] = ("id", soft_delete)
        _RULES_BUILT_FROM[0] = len(mappers)
    return _RULES


_RULES: dict[sa.Table, tuple[str, bool]] = {}
_RULES_BUILT_FROM = [-1]


def _selects(statement: AnySelect) -> Iterator[AnySelect]:
    for element in visitors.iterate(statement):
        if isinstance(element, sa.Select):
            yield element


def _conjuncts(clause: ColumnElement[Any] | None) -> Iterator[ColumnElement[Any]]:
    """Top-level AND terms only: a constraint inside an OR proves nothing."""
    if clause is None:
        return
    if isinstance(clause, sa.BooleanClauseList) and clause.operator is operators.and_:
        for inner in clause.clauses:
            yield from _conjuncts(inner)
    else:
        yield clause


def _joins(froms: Sequence[Any]) -> Iterator[sa.Join]:
    for item in froms:
        if isinstance(item, sa.Join):
            yield item
            yield from _joins([item.left, item.right])


def _tables(froms: Sequence[Any]) -> Iterator[sa.Table]:
    for item in froms:
        if isinstance(item, sa.Table):
            yield item
        elif isinstance(item, sa.Join):
            yield from _tables([item.left, item.right])
        elif isinstance(item, sa.Alias) and item.element in _rules():
            # The proof matches columns of the table itself; an alias would slip past it.
            raise UnscopedQuery(f"scoped queries read {item.element} without an alias")


def _same(required: ColumnElement[Any], found: ColumnElement[Any]) -> bool:
    if isinstance(required, BinaryExpression) and isinstance(found, BinaryExpression):
        return (
            required.operator is found.operator
            and _same_column(required.left, found.left)
            and _same_operand(required.right, found.right)
        )
    return bool(required.compare(found))


def _same_column(required: Any, found: Any) -> bool:
    # ORM attributes compile to annotated copies of the table's column.
    return (
        isinstance(found, sa.Column)
        and found.table is required.table
        and found.name == required.name
    )


def _same_operand(required: Any, found: Any) -> bool:
    if isinstance(required, BindParameter):
        return isinstance(found, BindParameter) and found.key == required.key
    return bool(required.compare(found))
