"""Every statement of the tickets domain: tickets, comments, history, and the reads of
other tables a ticket's rules need (assignees, departments).

Reads return row dicts (`select_rows`): ticket paths only serialize or compare them.
The customer-visibility rule lives here once: customers read their own tickets only,
and public comments only — as unknown to them as a missing row otherwise.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, REGCONFIG, TSVECTOR

from app.auth.principal import Principal
from app.db.base import new_id
from app.db.types import UtcNow
from app.kit.journal import Computed, Journal
from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository, prebuilt, scoped
from app.kit.sequences import COUNTER_ID, SequenceRepository
from app.models.ticket import (
    CommentType,
    Priority,
    Ticket,
    TicketChannel,
    TicketComment,
    TicketHistory,
    TicketStatus,
)
from app.models.user import STAFF_ROLES, AvailabilityStatus, Department, Role, User

# (ticket id, the version it is locked at, the columns to set)
TicketWrite = tuple[uuid.UUID, int, dict[str, Any]]

TICKET_SEQUENCE = "ticket"
TICKET_PREFIX = "TK-"
# The bound reader of a customer's own-tickets condition.
VIEWER = "viewer_id"


Payload = dict[str, Any] | Computed
# A new ticket's number: the number, or SQL taking it (`TicketRepository.next_number`).
TicketNumber = str | sa.ColumnElement[str]


@dataclass(frozen=True, eq=False)
class Numbering:
    counter: sa.CTE
    number: sa.ColumnElement[str]
    add_to_payload: Callable[[sa.BindParameter[Any]], sa.ColumnElement[Any]]


def _ticket_params(values: dict[str, Any]) -> dict[str, Any]:
    return {f"ticket_{name}": value for name, value in values.items()}


def format_ticket_number(value: int) -> str:
    return f"{TICKET_PREFIX}{value:06d}"


TICKETS = cast(sa.Table, Ticket.__table__)
# Ticket columns whose default is Python's (not SQL's): unapplied in a statement that
# carries other INSERTs as CTEs (`TicketRepository.insert_numbered`).
PYTHON_DEFAULTS = frozenset(
    column.name
    for column in TICKETS.c
    if column.default is not None and not column.default.is_clause_element
)
COMMENTS = cast(sa.Table, TicketComment.__table__)
HISTORY = cast(sa.Table, TicketHistory.__table__)
# Statements name the tables' columns, not the mapped attributes: a statement of Core
# columns is compiled and run as Core, without the ORM's per-statement work.
T, C, H = TICKETS.c, COMMENTS.c, HISTORY.c
# A reply's delivery (attempts, the mail server's last error) is for staff.
CUSTOMER_COMMENT_COLUMNS = tuple(
    column
    for column in COMMENTS.c
    if not column.name.startswith("delivery_") and column.name != "outgoing_message_id"
)
U = cast(sa.Table, User.__table__).c
D = cast(sa.Table, Department.__table__).c

Sort = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "priority",
    "-priority",
    "resolution_due_at",
]
SORT_KEYS: dict[str, list[SortKey]] = {
    "created_at": [SortKey(T.created_at), SortKey(T.id)],
    "-created_at": [SortKey(T.created_at, True), SortKey(T.id, True)],
    "updated_at": [SortKey(T.updated_at), SortKey(T.id)],
    "-updated_at": [SortKey(T.updated_at, True), SortKey(T.id, True)],
    "priority": [SortKey(T.priority_rank), SortKey(T.id)],
    "-priority": [SortKey(T.priority_rank, True), SortKey(T.id, True)],
    "resolution_due_at": [SortKey(T.resolution_due_at, nullable=True), SortKey(T.id)],
}

# What a write may set; the rest is the database's (priority_rank, timestamps, version)
# or fixed at creation (number, organization).
WRITABLE = frozenset(TICKETS.c.keys()) - {
    "id",
    "organization_id",
    "ticket_number",
    "priority_rank",
    "version",
    "created_at",
    "updated_at",
}

# The bare column, as the partial index `ix_tickets_sla_breach` states it: PostgreSQL
# does not prove that `sla_breach IS true` implies it, and would not use that index.
_SLA_BREACHED: sa.ColumnElement[bool] = T.sla_breach

MAX_SEARCH_TERMS = 8
_WORD = re.compile(r"\w+", re.UNICODE)
# The stored tsvector of tickets and of comments (migration 0007; PostgreSQL only, hence
# not mapped), named unqualified: each SELECT that matches it reads one of the two.
_SEARCH_DOCUMENT = sa.column("search_document", TSVECTOR)


@dataclass(frozen=True, slots=True)
class TicketFilters:
    statuses: Sequence[TicketStatus] = ()
    priorities: Sequence[Priority] = ()
    channel: TicketChannel | None = None
    assigned_agent_id: uuid.UUID | None = None
    unassigned: bool = False
    customer_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    tag: str | None = None
    sla_breach: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    q: str | None = None


def stored_tag(tag: str) -> str:
    """A tag as tickets store it (trimmed, lower-cased)."""
    return tag.strip().lower()


def prefix_query(q: str) -> str | None:
    """`printer jam` → `printer:* & jam:*`. Words only (\\w+), so nothing the user types
    can be read as a tsquery operator."""
    words = _WORD.findall(q.lower())[:MAX_SEARCH_TERMS]
    return " & ".join(f"{word}:*" for word in words) or None


class TicketRepository(Repository[Ticket]):
    model = Ticket

    # --- tickets -------------------------------------------------------------------------

    def _visible(self, own: bool, include_deleted: bool) -> sa.Select[Any]:
        """The ticket rows a reader may read: a customer (`own`) only theirs, the
        `viewer_id` parameter."""
        statement = self.select_rows(include_deleted=include_deleted)
        if own:
            statement = statement.where(T.customer_id == sa.bindparam(VIEWER))
        return statement

    async def get(
        self,
        actor: Principal,
        ticket_id: uuid.UUID,
        *,
        lock: bool = False,
        include_deleted: bool = False,
    ) -> Record | None:
        """One ticket `actor` may read; `lock` holds its row until the transaction ends
        (every write locks first, so writers of one ticket queue, never interleave)."""
        return await self.row(*self.get_statement(actor, ticket_id, lock, include_deleted))

    def get_statement(
        self, actor: Principal, ticket_id: uuid.UUID, lock: bool, include_deleted: bool
    ) -> tuple[sa.Select[Any], dict[str, Any]]:
        own = actor.is_customer
        statement = self.prebuilt(
            ("get", own, lock, include_deleted), lambda: self._get(own, lock, include_deleted)
        )
        return statement, {"ticket_id": ticket_id, VIEWER: actor.id}

    def _get(self, own: bool, lock: bool, include_deleted: bool) -> sa.Select[Any]:
        statement = self._visible(own, include_deleted).where(T.id == sa.bindparam("ticket_id"))
        return statement.with_for_update() if lock else statement

    async def list_visible(
        self,
        actor: Principal,
        filters: TicketFilters,
        page: PageParams,
        sort: Sort,
        *,
        include_deleted: bool = False,
    ) -> PageResult[Record]:
        statement, arguments = self.list_statement(
            actor, filters, page, sort, include_deleted=include_deleted
        )
        return await self.fetch_page(statement, arguments, page, SORT_KEYS[sort])

    def list_statement(
        self,
        actor: Principal,
        filters: TicketFilters,
        page: PageParams,
        sort: Sort,
        *,
        include_deleted: bool = False,
    ) -> tuple[sa.Select[Any], dict[str, Any]]:
        """The statement of one page of the list and its bound values."""
        own = actor.is_customer
        given = self.filter_conditions(filters)
        conditions = tuple(sorted(given))
        arguments = {name: value for values in given.values() for name, value in values.items()}
        statement, values = self.prebuilt_page(
            ("list", own, include_deleted, conditions),
            lambda: self.filtered(own, conditions, include_deleted=include_deleted),
            page,
            SORT_KEYS[sort],
        )
        return statement, {**arguments, **values, VIEWER: actor.id}

    def filter_conditions(self, filters: TicketFilters) -> dict[str, dict[str, Any]]:
        """The filters given, each as the name of its condition in `filtered` and the
        values that condition binds: the names alone decide the statement, so every list
        with the same kinds of filters runs one statement."""
        conditions: dict[str, dict[str, Any]] = {}
        for name, values in (("status", filters.statuses), ("priority", filters.priorities)):
            distinct = sorted(set(values))
            # One value keeps `=`: `(organization_id, status, created_at)` then yields rows
            # in order, which an IN list would not on PostgreSQL 15.
            if len(distinct) == 1:
                conditions[name] = {name: distinct[0]}
            elif distinct:
                conditions[f"{name}_in"] = {f"{name}_in": distinct}
        if filters.unassigned:
            conditions["unassigned"] = {}
        elif filters.assigned_agent_id is not None:
            conditions["assigned_agent_id"] = {"assigned_agent_id": filters.assigned_agent_id}
        if filters.tag is not None:
            tag = stored_tag(filters.tag)
            conditions["tag"] = {"tag": [tag] if self.dialect == "postgresql" else tag}
        if filters.sla_breach is not None:
            conditions["sla_breached" if filters.sla_breach else "sla_not_breached"] = {}
        if filters.q:
            conditions.update(self._search_condition(filters.q))
        for name, value in (
            ("channel", filters.channel),
            ("customer_id", filters.customer_id),
            ("department_id", filters.department_id),
            ("created_after", filters.created_after),
            ("created_before", filters.created_before),
        ):
            if value is not None:
                conditions[name] = {name: value}
        return conditions

    def filtered(
        self, own: bool, conditions: Sequence[str], *, include_deleted: bool = False
    ) -> sa.Select[Any]:
        """The list's statement before ordering and paging (the one filter builder): the
        visible tickets that meet each of `conditions`, named as `filter_conditions`
        names them, their values bound."""
        statement = self._visible(own, include_deleted)
        return statement.where(*(self._condition(name, own) for name in conditions))

    def _condition(self, name: str, own: bool) -> sa.ColumnElement[bool]:
        bound: sa.BindParameter[Any] = sa.bindparam(name)
        match name:
            case (
                "status"
                | "priority"
                | "channel"
                | "assigned_agent_id"
                | "customer_id"
                | "department_id"
            ):
                return T[name] == bound
            case "status_in" | "priority_in":
                column = T[name.removesuffix("_in")]
                return column.in_(sa.bindparam(name, expanding=True))
            case "unassigned":
                return T.assigned_agent_id.is_(None)
            case "created_after":
                return T.created_at >= bound
            case "created_before":
                return T.created_at < bound
            case "sla_breached":
                return _SLA_BREACHED
            case "sla_not_breached":
                return sa.not_(_SLA_BREACHED)
            case "tag":
                return self._has_tag()
            case "search_fragment":
                return self._matches(own, with_words=False)
            case "search_words":
                return self._matches(own, with_words=True)
        raise ValueError(f"no ticket filter {name!r}")

    def _has_tag(self) -> sa.ColumnElement[bool]:
        if self.dialect == "postgresql":
            # JSONB containment (`tag` binds a one-tag list): served by the GIN index.
            return sa.type_coerce(T.tags, JSONB).contains(sa.bindparam("tag", type_=JSONB))
        each = sa.func.json_each(T.tags).table_valued("value")
        return sa.exists(sa.select(each.c.value).where(each.c.value == sa.bindparam("tag")))

    def _search_condition(self, q: str) -> dict[str, dict[str, Any]]:
        """`q` as a condition: `search_words` (PostgreSQL, when `q` has words: their
        tsquery, or a LIKE pattern of the fragment) or else `search_fragment` (the
        pattern only)."""
        if self.dialect != "postgresql":
            return {"search_fragment": {"search_fragment": f"%{_escape_like(q.lower())}%"}}
        fragment = f"%{_escape_like(q)}%"
        words = prefix_query(q)
        if words is None:  # only punctuation: nothing for full text, the fragment may match
            return {"search_fragment": {"search_fragment": fragment}}
        return {"search_words": {"search_words": words, "search_fragment": fragment}}

    def _matches(self, own: bool, *, with_words: bool) -> sa.ColumnElement[bool]:
        """`q`: subject, description and comments, with partial words. PostgreSQL:
        full text over the stored documents and their GIN indexes (each word a prefix,
        all required), plus a trigram match on the subject for fragments inside words.
        SQLite: case-insensitive LIKE, a scan fine for a demo-sized database. Customers
        never match through internal notes (their existence must not leak)."""
        comments = self._comment_conditions(own)
        if self.dialect != "postgresql":
            pattern: sa.BindParameter[str] = sa.bindparam("search_fragment")
            in_comments = sa.select(C.ticket_id).where(
                *comments, sa.func.lower(C.content).like(pattern, escape="/")
            )
            return sa.or_(
                sa.func.lower(T.subject).like(pattern, escape="/"),
                sa.func.lower(T.description).like(pattern, escape="/"),
                T.id.in_(in_comments),
            )
        if not with_words:
            return T.subject.ilike(sa.bindparam("search_fragment"), escape="/")
        fragment_match = T.subject.ilike(sa.bindparam("search_fragment"), escape="/")
        query = sa.func.to_tsquery(sa.cast("simple", REGCONFIG), sa.bindparam("search_words"))
        in_comments = sa.select(C.ticket_id).where(*comments, _SEARCH_DOCUMENT.op("@@")(query))
        return sa.or_(_SEARCH_DOCUMENT.op("@@")(query), fragment_match, T.id.in_(in_comments))

    async def next_number(self) -> TicketNumber:
        """The number of the ticket this transaction is about to insert with
        `insert_numbered`. On PostgreSQL that INSERT takes it — the SQL returned here is
        its part of the statement — so the organization's counter row, which every
        create queues on until its commit, is locked as late as possible. Elsewhere
        (SQLite serializes writers anyway) it is taken now."""
        if self.dialect == "postgresql":
            return self._numbering().number
        value = await SequenceRepository(self.session).next_value(TICKET_SEQUENCE)
        return format_ticket_number(value)

    def with_number(self, payload: dict[str, Any], number: TicketNumber) -> Payload:
        """An event payload with `"ticket_number"`, for the journal written with the
        ticket (`insert_numbered`): the payload itself, or SQL adding the number."""
        if isinstance(number, str):
            return {**payload, "ticket_number": number}
        return Computed(payload, self._numbering().add_to_payload)

    async def insert_numbered(
        self, values: dict[str, Any], number: TicketNumber, journal: Journal
    ) -> Record:
        """Insert a ticket numbered `number` (from `next_number`) and write `journal`
        with it: on PostgreSQL in one statement (the counter, the ticket and the journal
        rows, data-modifying CTEs of one INSERT), elsewhere the ticket, then the
        journal. `values` names every column with a Python-side default: SQLAlchemy
        leaves those unset (NULL) in an INSERT that carries other INSERTs as CTEs."""
        columns = tuple(sorted(values))
        if isinstance(number, str):
            numbered = {**values, "ticket_number": number}
            ticket = await self._insert_ticket((*columns, "ticket_number"), numbered)
            await journal.write()
            return ticket
        shape, journal_values = journal.take()

        def build() -> sa.Insert:
            if missing := PYTHON_DEFAULTS.difference(columns):
                raise ValueError(f"name the ticket's {sorted(missing)}: see insert_numbered")
            numbering = self._numbering()
            insert = self._ticket_insert(columns, ticket_number=numbering.number)
            return insert.add_cte(numbering.counter, *journal.ctes(shape))

        statement = self.prebuilt(("insert_numbered", columns, shape), build)
        params = {**_ticket_params(values), **journal_values, COUNTER_ID: new_id()}
        [row] = await self.rows(statement, params)
        return row

    def _numbering(self) -> Numbering:
        """This tenant's counter CTE and the SQL over it (one object per tenant, so the
        journal rows that name the number keep one shape)."""

        def build() -> Numbering:
            counter = (
                SequenceRepository(self.session)
                .next_value_statement(TICKET_SEQUENCE)
                .cte("ticket_counter")
            )
            digits = sa.cast(counter.c.value, sa.Text)
            number = sa.select(
                sa.literal(TICKET_PREFIX)
                + sa.func.lpad(digits, sa.func.greatest(6, sa.func.length(digits)), "0")
            ).scalar_subquery()

            def add_to_payload(payload: sa.BindParameter[Any]) -> sa.ColumnElement[Any]:
                return sa.cast(payload, JSONB).op("||")(
                    sa.func.jsonb_build_object("ticket_number", number)
                )

            return Numbering(counter, number, add_to_payload)

        return prebuilt((type(self), self.organization_id, "numbering"), build)

    async def _insert_ticket(self, columns: tuple[str, ...], values: dict[str, Any]) -> Record:
        statement = self.prebuilt(("insert", columns), lambda: self._ticket_insert(columns))
        [row] = await self.rows(statement, _ticket_params(values))
        return row

    def _ticket_insert(self, columns: tuple[str, ...], **computed: Any) -> sa.Insert:
        """An INSERT of the tenant's ticket with `columns` bound as `ticket_<column>`
        (`_ticket_params`), and `computed` column expressions. Not by the column's own
        name: SQLAlchemy binds a parameter named after a column to that column in every
        INSERT of the statement that leaves it out, the journal's CTEs included."""
        bound = {name: sa.bindparam(f"ticket_{name}", type_=T[name].type) for name in columns}
        return self.insert_row({**bound, **computed}).returning(*TICKETS.c)

    async def write(self, ticket_id: uuid.UUID, version: int, values: dict[str, Any]) -> Record:
        """Set `values` on a ticket this transaction holds locked at `version`: one UPDATE
        that checks and bumps the version and stamps `updated_at` (deleted tickets too:
        restore writes one)."""
        if not values or not WRITABLE.issuperset(values):
            raise ValueError(f"not writable ticket columns: {sorted(set(values) - WRITABLE)}")
        columns = tuple(sorted(values))
        statement = self.prebuilt(("write", columns), lambda: self._write(columns))
        params = {f"new_{name}": value for name, value in values.items()}
        row = await self.row(
            statement, {**params, "ticket_id": ticket_id, "locked_version": version}
        )
        if row is None:
            raise LookupError("the ticket was not locked at that version")
        return row

    async def write_many(self, writes: Sequence[TicketWrite]) -> None:
        """`write` for many tickets, nothing returned: one executemany per set of columns
        (a worker's batch; the caller has the rows it claimed). The rows are locked, so
        each version still holds, as `write` would have checked."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for ticket_id, version, values in writes:
            if not values or not WRITABLE.issuperset(values):
                raise ValueError(f"not writable ticket columns: {sorted(set(values) - WRITABLE)}")
            params = {f"new_{name}": value for name, value in values.items()}
            groups.setdefault(tuple(sorted(values)), []).append(
                {**params, "ticket_id": ticket_id, "locked_version": version}
            )
        for columns, rows in groups.items():
            statement = self.prebuilt(("write_many", columns), partial(self._update, columns))
            await self.session.execute(statement, rows)

    def _write(self, columns: tuple[str, ...]) -> sa.Update:
        return self._update(columns).returning(*TICKETS.c)

    def _update(self, columns: tuple[str, ...]) -> sa.Update:
        return (
            self.update(include_deleted=True)
            # Not named after a column: an UPDATE's parameter named so would join its SET.
            .where(T.id == sa.bindparam("ticket_id"), T.version == sa.bindparam("locked_version"))
            .values(
                version=T.version + 1,
                updated_at=UtcNow(),
                **{name: sa.bindparam(f"new_{name}", type_=T[name].type) for name in columns},
            )
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Record]:
        """Up to `limit` live tickets whose next SLA deadline is at or before `now`,
        earliest first, locked until the transaction ends. On PostgreSQL rows another
        transaction holds are skipped, so concurrent workers claim disjoint batches and
        an API write in progress is not waited for (its commit sets the next deadline)."""

        def build() -> sa.Select[Any]:
            statement = (
                self.select_rows()
                .where(T.sla_next_deadline <= sa.bindparam("now"))
                .order_by(T.sla_next_deadline)
                .limit(sa.bindparam("limit"))
            )
            skip_locked = self.dialect == "postgresql"
            return statement.with_for_update(skip_locked=skip_locked)

        return await self.rows(self.prebuilt("claim_due", build), {"now": now, "limit": limit})

    async def measured_by(
        self,
        policy_ids: Sequence[uuid.UUID],
        statuses: frozenset[TicketStatus],
        *,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Record]:
        """The next `limit` live tickets in `statuses` that the policies measure, by id
        after `after`, locked until the transaction ends."""
        statement = self.select_rows().where(
            T.sla_policy_id.in_(list(policy_ids)), T.status.in_(sorted(statuses))
        )
        if after is not None:
            statement = statement.where(T.id > after)
        return await self.rows(statement.order_by(T.id).limit(limit).with_for_update())

    async def defer_deadline(self, ticket_id: uuid.UUID, until: datetime) -> None:
        """Move a ticket's due deadline to `until` (a timer that failed is retried then);
        a deadline that is not due is left alone."""
        statement = (
            self.update()
            .where(T.id == ticket_id, T.sla_next_deadline <= UtcNow())
            .values(sla_next_deadline=until)
        )
        await self.session.execute(statement)

    # --- what a ticket's rules read of other tables -------------------------------------

    async def user_with_role(self, user_id: uuid.UUID, roles: frozenset[Role]) -> bool:
        def build() -> sa.Select[Any]:
            statement = sa.select(U.id).where(
                *self.scope(User), U.id == sa.bindparam("user_id"), U.role.in_(sorted(roles))
            )
            return scoped(statement)

        statement = self.prebuilt(("user_with_role", roles), build)
        return await self.row(statement, {"user_id": user_id}) is not None

    async def department_exists(self, department_id: uuid.UUID) -> bool:
        def build() -> sa.Select[Any]:
            statement = sa.select(D.id).where(
                *self.scope(Department), D.id == sa.bindparam("department_id")
            )
            return scoped(statement)

        statement = self.prebuilt("department_exists", build)
        return await self.row(statement, {"department_id": department_id}) is not None

    async def agent_load(
        self, agent_id: uuid.UUID, active: frozenset[TicketStatus], *, exclude: uuid.UUID | None
    ) -> tuple[int | None, int]:
        """The agent's ticket limit and active ticket count. Locks the agent's row first,
        so two concurrent assignments cannot both take the last free slot."""

        def build_limit() -> sa.Select[Any]:
            statement = sa.select(U.max_concurrent_tickets).where(
                *self.scope(User), U.id == sa.bindparam("agent_id")
            )
            return scoped(statement.with_for_update())

        def build_count() -> sa.Select[Any]:
            statement = self.select_rows(sa.func.count()).where(
                T.assigned_agent_id == sa.bindparam("agent_id"), T.status.in_(sorted(active))
            )
            if exclude is not None:
                statement = statement.where(T.id != sa.bindparam("exclude_id"))
            return statement

        arguments = {"agent_id": agent_id, "exclude_id": exclude}
        limit = await self.scalar(self.prebuilt("agent_limit", build_limit), arguments)
        count = self.prebuilt(("agent_count", active, exclude is not None), build_count)
        return limit, int(await self.scalar(count, arguments) or 0)

    async def free_agent(
        self,
        department_id: uuid.UUID | None,
        skills: Sequence[str],
        active: frozenset[TicketStatus],
        *,
        exclude: uuid.UUID | None,
    ) -> uuid.UUID | None:
        """The department's online agent (other than `exclude`) who has every one of
        `skills` and the fewest active tickets below their limit; locked, so a
        concurrent assignment cannot take the same last slot. None when nobody is free."""
        if department_id is None:
            return None
        agents = sa.select(U.id, U.skills, U.max_concurrent_tickets).where(
            *self.scope(User),
            U.department_id == department_id,
            U.role == Role.AGENT,
            U.availability_status == AvailabilityStatus.ONLINE,
        )
        needed = set(skills)
        candidates = [
            agent
            for agent in await self.rows(scoped(agents))
            if agent["id"] != exclude and needed <= set(agent["skills"])
        ]
        if not candidates:
            return None
        loads = (
            self.select_rows(T.assigned_agent_id, sa.func.count().label("active"))
            .where(
                T.assigned_agent_id.in_([agent["id"] for agent in candidates]),
                T.status.in_(sorted(active)),
            )
            .group_by(T.assigned_agent_id)
        )
        load = {row["assigned_agent_id"]: row["active"] for row in await self.rows(loads)}
        candidates.sort(key=lambda agent: (load.get(agent["id"], 0), agent["id"]))
        for agent in candidates:
            if load.get(agent["id"], 0) >= agent["max_concurrent_tickets"]:
                continue
            limit, count = await self.agent_load(agent["id"], active, exclude=None)
            if limit is not None and count < limit:
                agent_id: uuid.UUID = agent["id"]
                return agent_id
        return None

    async def escalation_recipients(
        self, assignee_id: uuid.UUID | None, department_id: uuid.UUID | None
    ) -> list[uuid.UUID]:
        """Who hears of an escalation: the assignee, the department's manager and its
        managers; when that is nobody, the organization's managers and admins."""
        department_manager = (
            sa.select(D.manager_id)
            .where(*self.scope(Department), D.id == department_id)
            .scalar_subquery()
        )
        concerned = sa.or_(
            U.id == assignee_id,
            U.id == department_manager,
            sa.and_(U.department_id == department_id, U.role == Role.MANAGER),
        )
        staff = sa.select(U.id).where(*self.scope(User), U.role.in_(sorted(STAFF_ROLES)))
        found = [row["id"] for row in await self.rows(scoped(staff.where(concerned)))]
        if found:
            return found
        leads = staff.where(U.role.in_([Role.MANAGER, Role.ADMIN]))
        return [row["id"] for row in await self.rows(scoped(leads.order_by(U.id)))]

    # --- comments and history -------------------------------------------------------------

    def _comment_conditions(self, own: bool) -> list[sa.ColumnElement[bool]]:
        conditions = self.scope(TicketComment)
        if own:
            conditions.append(C.comment_type == CommentType.PUBLIC)
        return conditions

    async def comments(
        self, actor: Principal, ticket_id: uuid.UUID, page: PageParams
    ) -> PageResult[Record]:
        columns = CUSTOMER_COMMENT_COLUMNS if actor.is_customer else COMMENTS.c
        statement = sa.select(*columns).where(
            *self._comment_conditions(actor.is_customer), C.ticket_id == ticket_id
        )
        return await self.page_rows(scoped(statement), page, [SortKey(C.id)])

    async def insert_comment(self, values: dict[str, Any]) -> Record:
        columns = tuple(sorted(values))

        def build() -> sa.Insert:
            bound = {name: sa.bindparam(name, type_=C[name].type) for name in columns}
            statement = sa.insert(COMMENTS).values(organization_id=self.organization_id, **bound)
            return scoped(statement.returning(*COMMENTS.c))

        [row] = await self.rows(self.prebuilt(("insert_comment", columns), build), values)
        return row

    async def history(self, ticket_id: uuid.UUID, page: PageParams) -> PageResult[Record]:
        statement = sa.select(*HISTORY.c).where(
            *self.scope(TicketHistory), H.ticket_id == ticket_id
        )
        return await self.page_rows(scoped(statement), page, [SortKey(H.id)])


def _escape_like(text: str) -> str:
    # "/" rather than a backslash: SQLAlchemy 2.0 and 2.1 render a backslash ESCAPE
    # differently, and only one of them as the single character PostgreSQL expects.
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")
