"""Report bodies: what the SLA report groups by, and the figures of a group."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SLAGroupBy(enum.StrEnum):
    POLICY = "policy"
    PRIORITY = "priority"
    AGENT = "agent"
    DEPARTMENT = "department"
    CHANNEL = "channel"


class SLAReportDurations(BaseModel):
    """Nearest rank: the smallest value that at least that share of the values is at or
    below. Null when no ticket of the group has a value."""

    median: int | None = Field(description="Seconds; half of the values are at or below it.")
    p90: int | None = Field(description="Seconds; nine in ten values are at or below it.")


class SLAReportFigures(BaseModel):
    tickets: int = Field(description="Tickets an SLA policy measures, created in the range.")
    breached: int = Field(description="Those with `sla_breach`.")
    compliance_percent: float | None = Field(
        description="The share of the tickets not breached, in percent to two decimals; "
        "null without tickets."
    )
    first_response_seconds: SLAReportDurations = Field(
        description="Over `time_to_first_response`, of the tickets answered."
    )
    resolution_seconds: SLAReportDurations = Field(
        description="Over `time_to_resolution`, of the tickets resolved."
    )


class SLAReportGroup(SLAReportFigures):
    key: str | None = Field(
        description="The policy, agent or department id, or the priority or channel; null "
        "for the tickets without an agent or a department."
    )
    label: str | None = Field(
        description="The policy's or department's name, the agent's name (or email), or "
        "the priority or channel itself; null for the group without one, and for a "
        "policy, agent or department deleted since."
    )


_FIGURES: dict[str, Any] = {
    "tickets": 120,
    "breached": 9,
    "compliance_percent": 92.5,
    "first_response_seconds": {"median": 1260, "p90": 5400},
    "resolution_seconds": {"median": 14400, "p90": 86400},
}


class SLAReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_by": "policy",
                    "groups": [
                        {
                            "key": "0192b4d6-4c5d-7e6f-8a7b-8c9d0e1f2a3b",
                            "label": "Enterprise urgent",
                            **_FIGURES,
                        },
                        {
                            "key": "0192b4d6-4c5d-7e6f-8a7b-8c9d0e1f2a3c",
                            "label": "Default 24/7",
                            "tickets": 3,
                            "breached": 1,
                            "compliance_percent": 66.67,
                            "first_response_seconds": {"median": 600, "p90": 2400},
                            "resolution_seconds": {"median": None, "p90": None},
                        },
                    ],
                    "total": {
                        "tickets": 123,
                        "breached": 10,
                        "compliance_percent": 91.87,
                        "first_response_seconds": {"median": 1200, "p90": 5400},
                        "resolution_seconds": {"median": 14400, "p90": 86400},
                    },
                }
            ]
        }
    )

    group_by: SLAGroupBy
    groups: list[SLAReportGroup] = Field(
        description="Most tickets first, then by `key` (the null key last)."
    )
    total: SLAReportFigures = Field(description="The same figures over every group.")
