"""Tenant-scoped Core statements for the hottest paths (every request's credential
check, ticket reads, lists and writes).

The ORM rule in `app.db.session` adds the tenant and soft-delete criteria to every ORM
statement at execution time; that costs several hundred microseconds per statement and
builds an object per row, which on a one-row read is most of the request. A
`ScopedQuery` is a Core statement that carries the same criteria *in its own text*,
proven once when it is built:

* every tenant table it reads, in every SELECT of the statement (subqueries too), is
  constrained by a top-level `organization_id = :bound_organization` conjunct (the
  organization's own table by `id = :bound_organization`), and every soft-deletable one
  by `deleted_at IS NULL`, unless the query is built with `include_deleted=True`;
* `.where()` only adds conjuncts, so narrowing keeps the proof; a condition that would
  add a table is refused and subqueries inside conditions are proven too; joins,
  unions and new FROMs need a new, proven query;
* only FROMs the proof understands are accepted (tables, joins — an outer join's ON
  scopes only its null-extended side —, subqueries, CTEs, table-valued functions);
  aliases, samples and text are refused;
* an UPDATE (with RETURNING) keeps the same top-level scope of its one table and
  never sets the tenant column; an INSERT writes one row with
  `organization_id = :bound_organization`; neither reads another table or holds a
  subquery;
* `fetch_*` bind `:bound_organization` from the tenant session and refuse an unbound or
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
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnElement

from app.db.appends import APPENDS, flush_pending
from app.db.base import Base
from app.db.driver import Record, compile_for_driver, driver_fetch
from app.db.session import TenantContextMissing, is_system, session_organization
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin

# Not a column name: SQLAlchemy reserves those for the VALUES and SET of INSERT/UPDATE.
ORGANIZATION_PARAM = "bound_organization"
ORGANIZATION: BindParameter[Any] = sa.bindparam(ORGANIZATION_PARAM, type_=sa.Uuid)


class UnscopedQuery(ValueError):
    """A query reads a tenant table without its tenant (or soft-delete) constraint."""


AnySelect = sa.Select[*tuple[Any, ...]]
AnyStatement = AnySelect | sa.Update | sa.Insert


def scope(model: type[Base], *, include_deleted: bool = False) -> list[ColumnElement[bool]]:
    """The conjuncts that scope `model`'s table to the bound organization (and its live
    rows)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return _table_scope(table, include_deleted=include_deleted)


# Shapes of narrowing conditions already proven (structure, FROMs, include_deleted).
_PROVEN_CONDITIONS: set[Any] = set()


class ScopedQuery:
    """A proven tenant-scoped statement (see the module docstring): a SELECT, or an
    UPDATE or INSERT of one tenant table, usually with RETURNING."""

    __slots__ = (
        "froms",
        "include_deleted",
        "parameters",
        "prepared",
        "statement",
    )

    def __init__(self, statement: AnyStatement, *, include_deleted: bool = False) -> None:
        if not isinstance(statement, sa.Select | sa.Update | sa.Insert):
            # A DELETE, text or anything else the proof does not read would pass it.
            raise UnscopedQuery(f"scoped statements are SELECT, UPDATE or INSERT: {statement!r}")
        prove_scoped(statement, include_deleted=include_deleted)
        # A write's parameters: on SQLAlchemy's path a parameter named after a column
        # would otherwise add that column to an UPDATE's SET or an INSERT. (Reads need no
        # list; walking a wide statement on every narrowing costs a list request ~0.1 ms.)
        self.parameters = (
            frozenset() if isinstance(statement, sa.Select) else _parameter_names(statement)
        )
        self.statement = statement
        self.include_deleted = include_deleted
        self.prepared = False
        # Computed once: SQLAlchemy derives FROMs from every column, which is slow on
        # wide selects, and narrowing never changes them.
        self.froms = _froms(statement)

    def _narrowed(self, statement: AnyStatement, added: tuple[Any, ...] = ()) -> Self:
        query = type(self).__new__(type(self))
        query.statement = statement
        query.include_deleted = self.include_deleted
        query.froms = self.froms
        query.parameters = self.parameters
        if added and not isinstance(statement, sa.Select):
            query.parameters = self.parameters.union(*map(_parameter_names, added))
        query.prepared = False
        return query

    def prepare(self) -> Self:
        """For module-level statements run on every request (the session check, a
        ticket's read and write): on asyncpg they are compiled once and executed by
        the driver itself (`app.db.driver`)."""
        for element in visitors.iterate(self.statement):
            if isinstance(element, BindParameter) and (
                element.expanding or element.literal_execute or element.callable is not None
            ):
                raise ValueError(f"a prepared scoped query takes plain parameters only: {element}")
        query = self._narrowed(self.statement)
        query.prepared = True
        return query

    def where(self, *criteria: ColumnElement[bool]) -> Self:
        """AND more conditions: rows can only drop out. A condition that would add a
        FROM (a column of a table not yet read) is refused, and the SELECTs inside a
        condition (subqueries) are proven like the query's own."""
        if isinstance(self.statement, sa.Insert):
            raise TypeError("an INSERT has no conditions to narrow")
        self._prove_additions(criteria)
        return self._narrowed(self.statement.where(*criteria), criteria)

    def order_by(self, *clauses: ColumnElement[Any]) -> Self:
        """Orderings are checked like conditions (a scalar subquery reads rows too)."""
        self._prove_additions(clauses)
        return self._narrowed(self._select().order_by(*clauses))

    def limit(self, limit: int | BindParameter[Any]) -> Self:
        return self._narrowed(self._select().limit(limit))

    def _select(self) -> AnySelect:
        if not isinstance(self.statement, sa.Select):
            raise TypeError("only a SELECT is ordered and limited")
        return self.statement

    def _prove_additions(self, clauses: tuple[ColumnElement[Any], ...]) -> None:
        for clause in clauses:
            # The FROMs a clause implies (its columns' tables; subqueries imply none).
            if any(f not in self.froms for f in clause._from_objects):
                raise UnscopedQuery("a narrowing clause may not add a table to the query")
            self._prove_clause(clause)

    def _prove_clause(self, clause: ColumnElement[Any]) -> None:
        """Proven once per shape: the proof looks at structure only, never at values,
        and proving a subquery costs SQLAlchemy a compilation."""
        cache_key = clause._generate_cache_key()
        kind = type(self.statement)
        shape = (cache_key.key, kind, self.froms, self.include_deleted) if cache_key else None
        if shape is not None and shape in _PROVEN_CONDITIONS:
            return
        if isinstance(self.statement, sa.Select):
            prove_scoped(clause, include_deleted=self.include_deleted, outer=self.froms)
        elif any(isinstance(element, sa.Select) for element in visitors.iterate(clause)):
            raise UnscopedQuery("a scoped write holds no subquery")
        if shape is not None:
            if len(_PROVEN_CONDITIONS) >= 4096:
                _PROVEN_CONDITIONS.clear()
            _PROVEN_CONDITIONS.add(shape)


async def fetch_all(session: AsyncSession, query: ScopedQuery, **params: Any) -> list[Record]:
    """Rows as plain dicts (what response schemas validate fastest, keyed by column)."""
    return await _records(session, query, params)


async def fetch_one_or_none(
    session: AsyncSession, query: ScopedQuery, **params: Any
) -> Record | None:
    records = await _records(session, query, params)
    if len(records) > 1:
        raise sa.exc.MultipleResultsFound("a scoped query expected at most one row")
    return records[0] if records else None


async def _records(
    session: AsyncSession, query: ScopedQuery, params: dict[str, Any]
) -> list[Record]:
    organization_id = session_organization(session.sync_session)
    if organization_id is None or is_system(session.sync_session):
        raise TenantContextMissing("a scoped query needs a tenant session")
    sync = session.sync_session
    if sync.info.get(APPENDS) or sync.new or sync.dirty or sync.deleted:
        # Core bypasses autoflush: see this unit of work's own writes, as ORM reads do.
        await session.run_sync(flush_pending)
    if not isinstance(query.statement, sa.Select) and not query.parameters.issuperset(params):
        unknown = ", ".join(sorted(set(params) - query.parameters))
        raise UnscopedQuery(f"not parameters of this scoped write: {unknown}")
    bound = {**params, ORGANIZATION_PARAM: organization_id}
    dialect = sync.get_bind().dialect
    if query.prepared and dialect.driver == "asyncpg":
        return await driver_fetch(session, compile_for_driver(query.statement, dialect), bound)
    connection = await session.connection()
    result = await connection.execute(query.statement, bound)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


# --- the proof -------------------------------------------------------------------------


def prove_scoped(
    statement: sa.ClauseElement,
    *,
    include_deleted: bool = False,
    outer: frozenset[Any] = frozenset(),
) -> None:
    """Every SELECT in `statement` reads only scoped tables. Tables of the enclosing
    query (`outer`, and the top SELECT's own for nested ones) are correlated by SQLAlchemy
    when a subquery mentions them — they refer to the outer, scoped rows — unless the
    subquery turned correlation off, in which case they must be scoped again.

    An UPDATE or INSERT writes one tenant table and reads no other (see `_prove_write`)."""
    if isinstance(statement, sa.Update | sa.Insert):
        _prove_write(statement, include_deleted=include_deleted)
        return
    if any(isinstance(element, UpdateBase) for element in visitors.iterate(statement)):
        raise UnscopedQuery("a scoped read holds no INSERT, UPDATE or DELETE")
    in_from_clause: set[int] = set()  # SELECTs of FROM subqueries: never correlated
    for depth, select in enumerate(_selects(statement)):
        own_froms = select.get_final_froms()
        if depth == 0 and not outer:
            outer = frozenset(own_froms)
            correlated: frozenset[Any] = frozenset()
        elif (
            id(select) in in_from_clause
            or not _auto_correlates(select)
            # SQLAlchemy correlates only when a FROM of the subquery's own is left: one
            # that reads nothing but the outer tables reads them afresh, unscoped.
            or all(item in outer for item in own_froms)
        ):
            correlated = frozenset()
        else:
            correlated = outer
        for item in own_froms:
            if isinstance(item, sa.Subquery | sa.CTE) and not isinstance(item, sa.Lateral):
                in_from_clause.add(id(item.element))
        where = list(_conjuncts(select.whereclause))
        froms = [f for f in own_froms if f not in correlated]
        for table, on_conjuncts in _tables(froms):
            missing = _missing_scope(table, where + on_conjuncts, include_deleted=include_deleted)
            if missing:
                raise UnscopedQuery(f"{table.name} is read without {missing}")


def _missing_scope(
    table: sa.Table, conjuncts: list[ColumnElement[Any]], *, include_deleted: bool
) -> str:
    """The scope conditions of `table` none of `conjuncts` states ("" if all are)."""
    return " AND ".join(
        str(condition)
        for condition in _table_scope(table, include_deleted=include_deleted)
        if not any(_same(condition, conjunct) for conjunct in conjuncts)
    )


def _parameter_names(clause: sa.ClauseElement) -> frozenset[str]:
    return frozenset(
        element.key for element in visitors.iterate(clause) if isinstance(element, BindParameter)
    )


def _prove_write(statement: sa.Update | sa.Insert, *, include_deleted: bool) -> None:
    """An UPDATE keeps its table's scope in its top-level WHERE and never reassigns the
    tenant; an INSERT writes one row whose tenant is the bound organization. Neither
    reads another table nor holds a subquery: the proof stays about one table."""
    table = statement.table
    if not isinstance(table, sa.Table):
        raise UnscopedQuery(f"scoped writes go to a table, not {table!r}")
    _prove_one_table(statement, table)
    values: Any = statement._values  # column (or its name) -> value; no public accessor
    written = {getattr(key, "key", key): value for key, value in (values or {}).items()}
    if isinstance(statement, sa.Update):
        _prove_update(statement, table, written, include_deleted=include_deleted)
    else:
        _prove_insert(statement, table, written)


def _prove_one_table(statement: sa.Update | sa.Insert, table: sa.Table) -> None:
    if statement._independent_ctes:
        raise UnscopedQuery("a scoped write has no WITH clause")
    for element in visitors.iterate(statement):
        if isinstance(element, sa.Select | sa.CTE):
            raise UnscopedQuery("a scoped write holds no subquery")
        if isinstance(element, UpdateBase) and element is not statement:
            raise UnscopedQuery("a scoped write is one statement")
        if isinstance(element, sa.TextClause) or (
            isinstance(element, sa.ColumnClause) and element.table is None
        ):
            raise UnscopedQuery("a scoped write holds no SQL text the proof cannot read")
        if isinstance(element, ColumnElement) and any(
            f is not table for f in element._from_objects
        ):
            raise UnscopedQuery(f"a scoped write of {table.name} reads no other table")


def _prove_update(
    statement: sa.Update, table: sa.Table, written: dict[str, Any], *, include_deleted: bool
) -> None:
    if not written:
        # Without values SQLAlchemy sets every column a parameter is given for.
        raise UnscopedQuery("a scoped update names the columns it sets")
    rule = _rules().get(table)
    if rule is not None and rule[0] in written:
        raise UnscopedQuery(f"a scoped update may not reassign {table.name}'s tenant")
    where = list(_conjuncts(statement.whereclause))
    missing = _missing_scope(table, where, include_deleted=include_deleted)
    if missing:
        raise UnscopedQuery(f"{table.name} is updated without {missing}")


def _prove_insert(statement: sa.Insert, table: sa.Table, written: dict[str, Any]) -> None:
    if statement._multi_values or statement.select is not None or not written:
        raise UnscopedQuery("a scoped insert writes one row of given values")
    if getattr(statement, "_post_values_clause", None) is not None:
        # ON CONFLICT … DO UPDATE would write the conflicting row, whoever's it is.
        raise UnscopedQuery("a scoped insert has no ON CONFLICT clause")
    rule = _rules().get(table)
    if rule is None:
        return
    if rule[0] != "organization_id":
        raise UnscopedQuery(f"{table.name} rows are not inserted through scoped writes")
    tenant = written.get("organization_id")
    if not (isinstance(tenant, BindParameter) and tenant.key == ORGANIZATION_PARAM):
        raise UnscopedQuery(
            f"{table.name} is inserted without organization_id = :bound_organization"
        )


def _froms(statement: AnyStatement) -> frozenset[Any]:
    if isinstance(statement, sa.Select):
        return frozenset(statement.get_final_froms())
    if isinstance(statement, sa.Update):
        return frozenset({statement.table})
    return frozenset()


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


def _auto_correlates(select: AnySelect) -> bool:
    return bool(select._auto_correlate) and select._correlate_except is None


def _selects(statement: sa.ClauseElement) -> Iterator[AnySelect]:
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


def _tables(
    froms: Sequence[Any], on: tuple[ColumnElement[Any], ...] = ()
) -> Iterator[tuple[sa.Table, list[ColumnElement[Any]]]]:
    """Each table read, with the join conditions that filter *its* rows: an inner
    join's ON filters both sides, an outer join's only the side it may null-extend
    (the preserved side keeps every row whatever the ON says), a full join's neither.
    Only FROM shapes the proof understands are accepted."""
    for item in froms:
        if isinstance(item, sa.Table):
            yield item, list(on)
        elif isinstance(item, sa.Join):
            conditions = tuple(_conjuncts(item.onclause))
            if item.full:
                left_on, right_on = on, on
            elif item.isouter:
                left_on, right_on = on, on + conditions
            else:
                left_on, right_on = on + conditions, on + conditions
            yield from _tables([item.left], left_on)
            yield from _tables([item.right], right_on)
        elif isinstance(item, sa.TableValuedAlias):
            continue  # a function's rows (json_each, generate_series), no table
        elif isinstance(item, sa.Subquery | sa.CTE | sa.Lateral) and isinstance(
            item.element, sa.Select | sa.CompoundSelect
        ):
            continue  # the SELECTs inside are proven on their own
        else:
            # Aliases, samples, text, lightweight table() clauses: the proof matches the
            # columns of the table itself, which these would slip past.
            raise UnscopedQuery(f"scoped queries cannot read from {item!r}")


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
