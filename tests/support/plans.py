"""Query plans as PostgreSQL makes them for the app: as the tenant (under row-level
security), for a statement's own values and — since asyncpg prepares every statement and
PostgreSQL settles on a generic plan for one after a few executions — without them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import ORGANIZATION_ID, is_system

Bound = tuple[sa.Select[Any], dict[str, Any]]
# What the driver ran: the statement's text ($n placeholders) and its arguments.
Sent = tuple[str, list[Any]]


def scans(plan: Any) -> list[tuple[str, str]]:
    """(node type, relation or index name) of every scan in the plan."""
    found = []
    if isinstance(plan, dict):
        if "Node Type" in plan and "Relation Name" in plan:
            found.append((plan["Node Type"], plan["Relation Name"]))
        if "Index Name" in plan:
            found.append((plan["Node Type"], plan["Index Name"]))
        for value in plan.values():
            found += scans(value)
    elif isinstance(plan, list):
        for item in plan:
            found += scans(item)
    return found


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction (begun: a tenant session's
    role and organization are set, so row-level security applies to what runs on it)."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    role, tenant, platform = await raw.fetchrow(
        "SELECT current_user, current_setting('app.organization_id', true), "
        "current_setting('app.platform', true)"
    )
    if is_system(session.sync_session):
        assert platform == "on"
    else:
        assert (role, tenant) == ("helpdesk_app", str(session.info[ORGANIZATION_ID]))
    return raw


def driver_statement(session: AsyncSession, bound: Bound) -> Sent:
    """The statement as the asyncpg dialect sends it (`$n` placeholders, IN lists
    expanded) and its arguments in placeholder order, each through its type's bind
    processor, as execution would (JSON serialized, enums as their values, timestamps
    normalized). Public API only: `construct_expanded_state` brings processors for the
    expanded IN values alone; the others come from each bind's type."""
    statement, arguments = bound
    dialect = session.get_bind().dialect
    compiled = statement.compile(dialect=dialect)
    expanded = compiled.construct_expanded_state(arguments)
    assert expanded.positiontup is not None, "not a positional paramstyle"
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
        for name, bind in compiled.binds.items()
    }
    processors.update(expanded.processors)
    values = []
    for name in expanded.positiontup:
        value = expanded.parameters[name]
        process = processors.get(name)
        values.append(process(value) if process is not None else value)
    return expanded.statement, values


@contextmanager
def sent(session: AsyncSession) -> Iterator[list[Sent]]:
    """Every statement the session's connection runs meanwhile, as the driver got it."""
    found: list[Sent] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        found.append((statement, list(parameters or ())))

    engine = session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


async def plan(session: AsyncSession, statement: Bound) -> list[tuple[str, str]]:
    return await plan_of(session, driver_statement(session, statement))


async def plan_of(session: AsyncSession, statement: Sent) -> list[tuple[str, str]]:
    """The scans of the plan for the statement's own values."""
    sql, arguments = statement
    raw = await driver(session)
    rows = await raw.fetch(f"EXPLAIN (FORMAT JSON) {sql}", *arguments)
    found = rows[0][0]
    return scans(json.loads(found) if isinstance(found, str) else found)


async def generic_plan(session: AsyncSession, statement: Bound) -> list[tuple[str, str]]:
    return await generic_plan_of(session, driver_statement(session, statement))


async def generic_plan_of(session: AsyncSession, statement: Sent) -> list[tuple[str, str]]:
    """`EXPLAIN EXECUTE` of the statement PREPAREd, under `force_generic_plan` (an
    EXPLAIN with bound values would plan for those values)."""
    sql, arguments = statement
    assert arguments, "a statement without parameters has no generic plan to check"
    raw = await driver(session)
    await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    types = [parameter.name for parameter in (await raw.prepare(sql)).get_parameters()]
    name = f"shape_{uuid.uuid4().hex[:12]}"
    await raw.execute(f"PREPARE {name}({', '.join(types)}) AS {sql}")
    literals = ", ".join(literal(argument) for argument in arguments)
    rows = await raw.fetch(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({literals})")
    await raw.execute(f"DEALLOCATE {name}")
    found = json.loads(rows[0][0]) if isinstance(rows[0][0], str) else rows[0][0]
    assert re.search(r"\$[0-9]", json.dumps(found)), "not a generic plan"
    return scans(found)


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, list | tuple):  # an array parameter
        return "ARRAY[" + ", ".join(literal(item) for item in value) + "]"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"
