"""The proof every repository statement passes in the test suite: each table it reads or
writes is constrained to the session's organization (and to live rows, unless the
statement opted into deleted ones) in the very SELECT, UPDATE or DELETE that reads it.

`conftest.py` runs `prove` on every statement a repository marks (`TENANT_SCOPED`) that
any test executes, so a repository method is proven by the tests that exercise it; the
rule needs no list of statements. It is strict on purpose: a conjunct inside an OR
proves nothing; a subquery restates the scope of every table it names, correlated or
not (SQLAlchemy correlates only to the immediate parent); SQL text, literal columns,
prefixes and suffixes are refused, because no proof can read them (`count(*)`'s star is
the one literal accepted).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import operators, visitors

from app.db.base import Base
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin

PROVEN: list[str] = []  # the kind of each statement proven (tests check the hook runs)


class UnprovenStatement(AssertionError):
    pass


def prove(
    statement: sa.ClauseElement, organization_id: uuid.UUID, *, include_deleted: bool
) -> None:
    elements = list(visitors.iterate(statement))
    for element in elements:
        _refuse_unreadable(element)
    for element in elements:
        if isinstance(element, sa.Select):
            _prove_select(element, organization_id, include_deleted)
        elif isinstance(element, sa.Update | sa.Delete):
            _prove_write(element, organization_id, include_deleted)
        elif isinstance(element, sa.Insert):
            _prove_insert(element, organization_id)
    PROVEN.append(type(statement).__name__)


def _refuse_unreadable(element: Any) -> None:
    if isinstance(element, sa.TextClause | sa.TextualSelect):
        raise UnprovenStatement(f"SQL text cannot be proven: {element}")
    if isinstance(element, sa.ColumnClause) and element.is_literal and element.name != "*":
        raise UnprovenStatement(f"a literal column cannot be proven: {element}")
    for attribute in ("_prefixes", "_suffixes", "_hints", "_statement_hints"):
        if getattr(element, attribute, None):
            raise UnprovenStatement(f"{attribute.strip('_')} cannot be proven: {element}")


def _rule(table: sa.FromClause) -> tuple[str, bool] | None:
    """(the column naming the tenant, soft-deletable?) of a tenant table."""
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            cls = mapper.class_
            soft = issubclass(cls, SoftDeleteMixin)
            if issubclass(cls, TenantMixin):
                return "organization_id", soft
            if issubclass(cls, TenantRootMixin):
                return "id", soft
    return None


def _prove_select(select: sa.Select[Any], org: uuid.UUID, include_deleted: bool) -> None:
    where = list(_conjuncts(select.whereclause))
    for table, on in _tables(select.get_final_froms()):
        _require_scope(table, where + on, org, include_deleted, select)


def _prove_write(statement: sa.Update | sa.Delete, org: uuid.UUID, include_deleted: bool) -> None:
    table = statement.table
    if not isinstance(table, sa.Table):
        raise UnprovenStatement(f"writes go to a table, not {table!r}")
    # UPDATE … FROM / DELETE … USING: a column of another table in the WHERE (outside a
    # subquery, whose SELECT is proven on its own) joins that table unscoped.
    others = {
        column.table.name
        for column in _outside_subqueries(statement.whereclause)
        if isinstance(column, sa.ColumnClause)
        and column.table is not None
        and column.table.name != table.name
    }
    if others:
        raise UnprovenStatement(f"a write of {table.name} reads {sorted(others)} unscoped")
    _require_scope(table, list(_conjuncts(statement.whereclause)), org, include_deleted, statement)
    sets_tenant = isinstance(statement, sa.Update) and "organization_id" in (
        statement.compile().params
    )
    if sets_tenant and _rule(table) is not None:
        raise UnprovenStatement(f"an UPDATE of {table.name} sets organization_id")


def _prove_insert(statement: sa.Insert, org: uuid.UUID) -> None:
    table = statement.table
    rule = _rule(table) if isinstance(table, sa.Table) else None
    if rule is None:
        raise UnprovenStatement(f"INSERT into a table that is not a tenant's: {table!r}")
    if statement.select is not None:
        raise UnprovenStatement("INSERT … SELECT cannot be proven")
    tenants = {
        name: value
        for name, value in statement.compile().params.items()
        if re.fullmatch(r"organization_id(_m?\d+)?", name)
    }
    if not tenants or any(value != org for value in tenants.values()):
        raise UnprovenStatement(f"INSERT into {table.name} of rows not all the tenant's: {tenants}")


def _require_scope(
    table: sa.FromClause,
    conjuncts: list[Any],
    org: uuid.UUID,
    include_deleted: bool,
    where: Any,
) -> None:
    base = table.element if isinstance(table, sa.Alias) else table
    rule = _rule(base)
    if rule is None:
        return
    column, soft = rule
    if not any(_is_tenant_condition(c, table, column, org) for c in conjuncts):
        raise UnprovenStatement(f"{table.name} is read without its tenant in {where}")
    if soft and not include_deleted and not any(_is_live_condition(c, table) for c in conjuncts):
        raise UnprovenStatement(f"{table.name} is read without deleted_at IS NULL in {where}")


def _names(found: Any, table: sa.FromClause, column: str) -> bool:
    return (
        isinstance(found, sa.Column | sa.ColumnClause)
        and not getattr(found, "is_literal", False)
        and found.table is not None
        and found.table.name == table.name
        and found.name == column
    )


def _is_tenant_condition(clause: Any, table: sa.FromClause, column: str, org: uuid.UUID) -> bool:
    return (
        isinstance(clause, sa.BinaryExpression)
        and clause.operator is operators.eq
        and _names(clause.left, table, column)
        and isinstance(clause.right, sa.BindParameter)
        and clause.right.value == org
    )


def _is_live_condition(clause: Any, table: sa.FromClause) -> bool:
    return (
        isinstance(clause, sa.BinaryExpression)
        and clause.operator is operators.is_
        and _names(clause.left, table, "deleted_at")
        and isinstance(clause.right, sa.Null)
    )


def _outside_subqueries(clause: Any) -> Iterator[Any]:
    if clause is None:
        return
    stack = [clause]
    while stack:
        element = stack.pop()
        if isinstance(element, sa.Select | sa.CompoundSelect | sa.ScalarSelect | sa.Exists):
            continue
        yield element
        stack.extend(element.get_children())


def _conjuncts(clause: Any) -> Iterator[Any]:
    """Top-level AND terms only: a condition inside an OR proves nothing."""
    if clause is None:
        return
    if isinstance(clause, sa.BooleanClauseList) and clause.operator is operators.and_:
        for inner in clause.clauses:
            yield from _conjuncts(inner)
    else:
        yield clause


def _tables(froms: Any, on: tuple[Any, ...] = ()) -> Iterator[tuple[sa.FromClause, list[Any]]]:
    """Each table read, with the join conditions that filter its rows: an inner join's ON
    filters both sides, an outer join's only the side it may null-extend, a full join's
    neither. Subqueries, CTEs and laterals are proven as the SELECTs they hold."""
    for item in froms:
        if isinstance(item, sa.Table) or (
            isinstance(item, sa.Alias) and isinstance(item.element, sa.Table)
        ):
            yield item, list(on)
        elif isinstance(item, sa.Join):
            conditions = tuple(_conjuncts(item.onclause))
            if item.full:
                left, right = on, on
            elif item.isouter:
                left, right = on, on + conditions
            else:
                left, right = on + conditions, on + conditions
            yield from _tables([item.left], left)
            yield from _tables([item.right], right)
        elif isinstance(item, sa.TableValuedAlias):
            continue  # a function's rows (json_each), no table
        elif isinstance(item, sa.Subquery | sa.CTE | sa.Lateral):
            continue  # the statements inside are proven on their own
        else:
            raise UnprovenStatement(f"cannot read from {item!r}")
