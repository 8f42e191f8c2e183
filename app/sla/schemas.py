"""What the API shows of a ticket's SLA clock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from app.kit.schemas import ReadModel
from app.sla.clock import EscalationAction, EventKind, Target


class SLAEventRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191b0e9-3d60-7b1a-8c2d-4e6f8a0b2d01",
                    "ticket_id": "0191b0e9-3d60-7b1a-8c2d-4e6f8a0b2c01",
                    "kind": "pause",
                    "target": "resolution",
                    "cycle": 0,
                    "at": "2025-03-04T16:12:00Z",
                    "at_percent": None,
                    "action": None,
                    "details": {},
                    "created_at": "2025-03-04T16:12:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    ticket_id: uuid.UUID
    kind: EventKind = Field(
        description="`start`, `pause`, `resume`, `fulfil`, `stop` move a clock; `breach` "
        "and `escalate` record what the timer did; `recompute` marks a change of measure "
        "(policy, target, calendar) after which the due times are the same log replayed."
    )
    target: Target | None = Field(description="The clock: null for `recompute`.")
    cycle: int = Field(
        description="0 for the first response and the resolution; the next reply counts "
        "one cycle per unanswered customer comment."
    )
    at: datetime = Field(description="When the event takes effect.")
    at_percent: int | None = Field(description="An escalation's percentage of its target.")
    action: EscalationAction | None = Field(description="An escalation's action.")
    details: dict[str, Any] = Field(
        description="Why (`reason` of a recompute), and for a breach its due time and "
        "how late it was flagged."
    )
    created_at: datetime
