"""SLA-policy bodies: targets are whole minutes (strict integers), conditions name the
real enums, escalations are unique per (target, at_percent, action). Whether
`business_hours_id` names a live calendar of the organization is the service's call: it
needs the database."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.kit.schemas import InputModel, Labels, PatchModel, ReadModel, Title
from app.models.ticket import Priority, TicketChannel
from app.models.user import CustomerTier
from app.sla.clock import EscalationAction
from app.sla.clock import Target as SLATarget

# A year of minutes: far beyond any real target, and a bound the business-time walk
# reaches quickly on any calendar that opens at least now and then.
MAX_MINUTES = 366 * 24 * 60
MAX_POSITION = 1_000_000
MAX_ESCALATIONS = 50
DESCRIPTION_MAX_LENGTH = 2_000

# Strict: `true` is not a number of minutes (lax mode would read it as 1), nor is "60".
Minutes = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_MINUTES, description="Whole minutes of business time, ≥ 1."),
]
Position = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=MAX_POSITION,
        description="Match order: the first active policy by position (then creation) "
        "whose conditions admit a ticket applies.",
    ),
]
Percent = Annotated[
    int, Field(strict=True, ge=1, le=100, description="Percent of the target's minutes.")
]
Description = Annotated[str, Field(max_length=DESCRIPTION_MAX_LENGTH)]

E = TypeVar("E", bound=enum.Enum)


def _no_duplicates(values: list[E]) -> list[E]:
    seen: set[E] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"'{value.value}' is listed twice")
        seen.add(value)
    return values


class SLAConditions(InputModel):
    """Which tickets the policy admits; an empty list (the default) admits every value."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"priorities": ["high", "urgent"], "customer_tiers": ["enterprise"]}]
        }
    )

    priorities: Annotated[list[Priority], AfterValidator(_no_duplicates)] = []
    customer_tiers: Annotated[list[CustomerTier], AfterValidator(_no_duplicates)] = []
    channels: Annotated[list[TicketChannel], AfterValidator(_no_duplicates)] = []


class Escalation(InputModel):
    """At `at_percent` of a target's minutes (business time) the `action` fires, once per
    ticket and target cycle: `notify` writes an in-app notification for the assignee
    and the department's managers (the organization's managers and admins when the
    ticket has neither) and an event; `reassign` hands the ticket to the department's
    online agent who has every one of `skills` and the fewest active tickets below
    their `max_concurrent_tickets` (nobody free: the ticket stays as it is, and the
    event says so); `raise_priority` raises the priority one step, recorded in history,
    which matches the policy again."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"at_percent": 75, "action": "notify", "target": "first_response"}]
        }
    )

    at_percent: Percent
    action: EscalationAction
    target: SLATarget
    skills: Labels = Field(
        default_factory=list, description="For `reassign`: what the new assignee must know."
    )


def _unique_escalations(escalations: list[Escalation]) -> list[Escalation]:
    seen: set[tuple[SLATarget, int, EscalationAction]] = set()
    for escalation in escalations:
        key = (escalation.target, escalation.at_percent, escalation.action)
        if key in seen:
            raise ValueError(
                f"{escalation.action.value} at {escalation.at_percent}% of "
                f"{escalation.target.value} is listed twice"
            )
        seen.add(key)
    return escalations


Escalations = Annotated[
    list[Escalation], Field(max_length=MAX_ESCALATIONS), AfterValidator(_unique_escalations)
]

POLICY_EXAMPLE: dict[str, Any] = {
    "name": "Enterprise urgent",
    "description": "Urgent tickets of enterprise customers, office hours.",
    "position": 10,
    "is_active": True,
    "conditions": {
        "priorities": ["urgent"],
        "customer_tiers": ["enterprise"],
        "channels": [],
    },
    "first_response_minutes": 60,
    "next_reply_minutes": 120,
    "resolution_minutes": 480,
    "business_hours_id": "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1fa6",
    "escalations": [
        {"at_percent": 75, "action": "notify", "target": "first_response"},
        {"at_percent": 100, "action": "reassign", "target": "resolution"},
    ],
}


class SLAPolicyCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                POLICY_EXAMPLE,
                {"name": "Default 24/7", "first_response_minutes": 240, "resolution_minutes": 2880},
            ]
        }
    )

    name: Title
    description: Description = ""
    position: Position = 0
    is_active: bool = Field(default=True, strict=True)
    conditions: SLAConditions = Field(default_factory=SLAConditions)
    first_response_minutes: Minutes
    next_reply_minutes: Minutes | None = None
    resolution_minutes: Minutes
    business_hours_id: uuid.UUID | None = Field(
        default=None, description="A live business-hours calendar; none: 24/7."
    )
    escalations: Escalations = []

    def stored(self) -> dict[str, Any]:
        """The columns' values: enums as their strings, JSON columns as plain objects."""
        values = self.model_dump(mode="json")
        values["business_hours_id"] = self.business_hours_id
        return values


class SLAPolicyUpdate(PatchModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"is_active": False},
                {"resolution_minutes": 960, "next_reply_minutes": 60},
                {"conditions": {"priorities": ["high", "urgent"]}, "position": 5},
            ]
        }
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset({"next_reply_minutes", "business_hours_id"})

    name: Title | None = None
    description: Description | None = None
    position: Position | None = None
    is_active: bool | None = Field(default=None, strict=True)
    conditions: SLAConditions | None = None
    first_response_minutes: Minutes | None = None
    next_reply_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    business_hours_id: uuid.UUID | None = None
    escalations: Escalations | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, in their stored form."""
        values = self.model_dump(mode="json", exclude_unset=True)
        if "business_hours_id" in values:
            values["business_hours_id"] = self.business_hours_id
        return values


class SLAConditionsRead(ReadModel):
    priorities: list[Priority] = []
    customer_tiers: list[CustomerTier] = []
    channels: list[TicketChannel] = []


class EscalationRead(ReadModel):
    at_percent: int
    action: EscalationAction
    target: SLATarget
    skills: list[str] = []


class SLAPolicyRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192b4d6-4c5d-7e6f-8a7b-8c9d0e1f2a3b",
                    **POLICY_EXAMPLE,
                    "created_at": "2024-11-02T08:00:00Z",
                    "updated_at": "2025-01-20T13:37:42Z",
                    "deleted_at": None,
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    description: str
    position: int
    is_active: bool
    conditions: SLAConditionsRead
    first_response_minutes: int
    next_reply_minutes: int | None
    resolution_minutes: int
    business_hours_id: uuid.UUID | None
    escalations: list[EscalationRead]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class PreviewCalendar(BaseModel):
    business_hours_id: uuid.UUID | None = Field(
        description="The calendar counted in; null: 24/7 (none set, or it was deleted)."
    )
    timezone: str


class EscalationPreview(BaseModel):
    target: SLATarget
    at_percent: int
    action: EscalationAction
    due_at: datetime | None


class SLAPreview(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "policy_id": "0192b4d6-4c5d-7e6f-8a7b-8c9d0e1f2a3b",
                    "start": "2025-03-07T14:00:00Z",
                    "calendar": {
                        "business_hours_id": "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1fa6",
                        "timezone": "Europe/Berlin",
                    },
                    "first_response_due_at": "2025-03-07T15:00:00Z",
                    "next_reply_due_at": "2025-03-10T09:00:00Z",
                    "resolution_due_at": "2025-03-10T14:00:00Z",
                    "escalations": [
                        {
                            "target": "first_response",
                            "at_percent": 75,
                            "action": "notify",
                            "due_at": "2025-03-07T14:45:00Z",
                        }
                    ],
                    "matches": True,
                }
            ]
        }
    )

    policy_id: uuid.UUID
    start: datetime
    calendar: PreviewCalendar
    first_response_due_at: datetime | None
    next_reply_due_at: datetime | None
    resolution_due_at: datetime | None
    escalations: list[EscalationPreview]
    matches: bool | None = Field(
        default=None,
        description="Only when `priority` is given: whether the policy's priority "
        "condition admits it.",
    )
