"""Every statement of the reports domain: figures over the organization's tickets,
computed by the database in one statement per report.

The SLA report reads the tickets an SLA policy measures, created in a range (the range
scan of `ix_tickets_created`). Percentiles are nearest rank, from `ROW_NUMBER` and
`COUNT` windows partitioned by the group: the same text runs on PostgreSQL and on
SQLite, which has no ordered-set aggregate (`percentile_disc`). The groups and the total
come from one pass over the tickets, joined to the names of the policies, agents or
departments afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from app.db.base import Base
from app.kit.repository import Record, Repository, scoped
from app.models.sla import SLAPolicy
from app.models.ticket import Ticket
from app.models.user import Department, User
from app.reports.schemas import SLAGroupBy

TICKETS = cast(sa.Table, Ticket.__table__)
USERS = cast(sa.Table, User.__table__)
DEPARTMENTS = cast(sa.Table, Department.__table__)
POLICIES = cast(sa.Table, SLAPolicy.__table__)

GROUP_KEYS: dict[SLAGroupBy, sa.Column[Any]] = {
    SLAGroupBy.POLICY: TICKETS.c.sla_policy_id,
    SLAGroupBy.PRIORITY: TICKETS.c.priority,
    SLAGroupBy.AGENT: TICKETS.c.assigned_agent_id,
    SLAGroupBy.DEPARTMENT: TICKETS.c.department_id,
    SLAGroupBy.CHANNEL: TICKETS.c.channel,
}
# The percentiles reported, in percent.
MEDIAN, P90 = 50, 90
METRICS = {
    "first_response": TICKETS.c.time_to_first_response,
    "resolution": TICKETS.c.time_to_resolution,
}


def _rank(value: sa.ColumnElement[Any], *group: sa.ColumnElement[Any]) -> Any:
    """The value's position among the group's values, smallest first. Nulls get a
    partition of their own: PostgreSQL sorts them last and SQLite first, and neither
    may shift the ranks of the values."""
    return sa.func.row_number().over(partition_by=[*group, value.is_(None)], order_by=value)


def _count(value: sa.ColumnElement[Any], *group: sa.ColumnElement[Any]) -> Any:
    """How many of the group's values are not null."""
    return sa.func.count(value).over(partition_by=list(group) or None)


def _nearest_rank(
    value: sa.ColumnElement[Any], rank: sa.ColumnElement[Any], count: sa.ColumnElement[Any], p: int
) -> Any:
    """The value whose rank is the first to reach `p` percent of the count: compared in
    integers, so no rounding moves it."""
    return sa.func.min(sa.case((rank * 100 >= count * p, value)))


Join = tuple[sa.Table, sa.ColumnElement[bool]]


class ReportRepository(Repository[Ticket]):
    model = Ticket

    def _label(
        self, group_by: SLAGroupBy, key: sa.ColumnElement[Any]
    ) -> tuple[sa.ColumnElement[Any], Join | None]:
        """The name of the group `key` names, and the join that reads it. The joined row
        carries the tenant and live-row criteria in its ON: a policy, agent or
        department deleted since names nothing."""
        if group_by is SLAGroupBy.POLICY:
            return POLICIES.c.name, self._by_id(SLAPolicy, key)
        if group_by is SLAGroupBy.DEPARTMENT:
            return DEPARTMENTS.c.name, self._by_id(Department, key)
        if group_by is SLAGroupBy.AGENT:
            name = sa.func.trim(USERS.c.first_name + " " + USERS.c.last_name)
            return sa.func.coalesce(sa.func.nullif(name, ""), USERS.c.email), self._by_id(User, key)
        return key, None  # a priority or a channel names itself

    def _by_id(self, model: type[Base], key: sa.ColumnElement[Any]) -> Join:
        table = cast(sa.Table, model.__table__)
        return table, sa.and_(table.c.id == key, *self.scope(model))

    async def sla_figures(
        self, start: datetime, end: datetime, group_by: SLAGroupBy
    ) -> list[Record]:
        """One row per group (`is_total` false: `group_key`, `label` and the figures) in
        report order, and one row of the figures over all groups (`is_total` true)."""
        key = GROUP_KEYS[group_by]
        windows = []
        for name, value in METRICS.items():
            windows += [
                value.label(name),
                _rank(value, key).label(f"{name}_rank"),
                _count(value, key).label(f"{name}_count"),
                _rank(value).label(f"{name}_overall_rank"),
                _count(value).label(f"{name}_overall_count"),
            ]
        population = (
            self.select_rows(
                key.label("group_key"),
                sa.case((TICKETS.c.sla_breach, 1), else_=0).label("breached"),
                *windows,
            )
            .where(
                TICKETS.c.created_at >= start,
                TICKETS.c.created_at < end,
                TICKETS.c.sla_policy_id.is_not(None),
            )
            .cte("population")
        )
        p = population.c

        def figures(scope: str) -> list[Any]:
            columns = [
                sa.func.count().label("tickets"),
                sa.func.coalesce(sa.func.sum(p.breached), 0).label("breached"),
            ]
            for name in METRICS:
                rank, count = p[f"{name}{scope}_rank"], p[f"{name}{scope}_count"]
                columns += [
                    _nearest_rank(p[name], rank, count, MEDIAN).label(f"{name}_median"),
                    _nearest_rank(p[name], rank, count, P90).label(f"{name}_p90"),
                ]
            return columns

        groups = sa.select(sa.false().label("is_total"), p.group_key, *figures("")).group_by(
            p.group_key
        )
        total = sa.select(
            sa.true().label("is_total"), sa.null().label("group_key"), *figures("_overall")
        )
        result = sa.union_all(groups, total).subquery("figures")
        label, joined = self._label(group_by, result.c.group_key)
        source = result if joined is None else result.outerjoin(*joined)
        statement = (
            sa.select(*result.c, label.label("label"))
            .select_from(source)
            .order_by(
                result.c.is_total,
                result.c.tickets.desc(),
                result.c.group_key.is_(None),
                result.c.group_key,
            )
        )
        return await self.rows(scoped(statement))
