"""Custom field definition bodies.

The shape of a definition is checked here (a key-like name, distinct choices, known rule
keys that are consistent with each other); whether choices and rules fit the field's
type is the service's call, because a PATCH does not carry the type it must fit.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Self

from fastapi.openapi.models import Example
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.custom_fields.patterns import compile_pattern
from app.kit.schemas import InputModel, PatchModel, ReadModel
from app.models.custom_field import EntityType, FieldType

# The longest value each text-like type stores; length rules may narrow, never widen it.
TEXT_MAX_LENGTH = 1_000
TEXTAREA_MAX_LENGTH = 10_000
EMAIL_MAX_LENGTH = 320
URL_MAX_LENGTH = 2_000
REGEX_MAX_LENGTH = 500
MAX_CHOICES = 500

FieldName = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="The key in a record's `custom_fields`: lower-case letters, digits and "
        "underscores, starting with a letter.",
    ),
]
FieldLabel = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
HelpText = Annotated[str, Field(max_length=2_000)]
# Strict: `true` is not a position (lax mode would read it as 1).
Position = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
Choice = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _distinct(choices: list[str]) -> list[str]:
    # Refused rather than silently deduplicated: a repeated choice is usually a typo
    # for another one, and the admin should see which.
    if len(set(choices)) != len(choices):
        raise ValueError("choices must be distinct")
    return choices


Choices = Annotated[list[Choice], Field(max_length=MAX_CHOICES), AfterValidator(_distinct)]


def _json_number(value: Any) -> Any:
    """JSON numbers only: no numeric strings, no booleans, nothing a JSON column cannot
    hold. Checked before the union so a refusal is one error, not one per member."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


RuleNumber = Annotated[int | float, BeforeValidator(_json_number)]
RuleLength = Annotated[int, Field(strict=True, ge=0, le=TEXTAREA_MAX_LENGTH)]


def _compiles(pattern: str) -> str:
    compile_pattern(pattern)
    return pattern


Regex = Annotated[
    str,
    Field(min_length=1, max_length=REGEX_MAX_LENGTH),
    AfterValidator(_compiles),
]


class ValidationRules(InputModel):
    """Constraints on a value. `min`/`max` bound numbers; `min_length`, `max_length` and
    `regex` (RE2 syntax: Python's without backreferences or lookaround, matched against
    the whole value in linear time) bound text-like values.
    Allowed values of choice fields live in `choices`, not here."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"regex": "PRN-[0-9]{4}"}, {"min": 1, "max": 10000}]}
    )

    min: RuleNumber | None = None
    max: RuleNumber | None = None
    min_length: RuleLength | None = None
    max_length: RuleLength | None = None
    regex: Regex | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        if (
            self.min_length is not None
            and self.max_length is not None
            and self.min_length > self.max_length
        ):
            raise ValueError("min_length must not be greater than max_length")
        return self

    def stored(self) -> dict[str, Any]:
        """What the definition keeps: only the rules that are set."""
        return self.model_dump(exclude_none=True)


ASSET_TAG_FIELD: dict[str, Any] = {
    "name": "asset_tag",
    "label": "Asset tag",
    "field_type": "text",
    "entity_type": "ticket",
    "is_required": False,
    "is_unique": True,
    "choices": [],
    "validation_rules": {"regex": "PRN-[0-9]{4}"},
    "help_text": "The label on the device, e.g. PRN-0314.",
    "position": 10,
}
CUSTOM_FIELD_CREATE_EXAMPLES: dict[str, Example] = {
    "text": {
        "summary": "A unique text field with a pattern",
        "value": ASSET_TAG_FIELD,
    },
    "choice": {
        "summary": "A required choice field",
        "value": {
            "name": "product_area",
            "label": "Product area",
            "field_type": "choice",
            "is_required": True,
            "choices": ["Billing", "Hardware", "Software"],
            "position": 20,
        },
    },
    "number": {
        "summary": "A number field with bounds",
        "value": {
            "name": "affected_users",
            "label": "Affected users",
            "field_type": "number",
            "validation_rules": {"min": 1, "max": 10000},
            "position": 30,
        },
    },
}


class CustomFieldCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in CUSTOM_FIELD_CREATE_EXAMPLES.values()]}
    )

    name: FieldName
    label: FieldLabel = ""
    field_type: FieldType = Field(description="Fixed once the field exists.")
    entity_type: EntityType = Field(
        default=EntityType.TICKET, description="The records this field belongs to; fixed."
    )
    is_required: bool = False
    is_unique: bool = Field(
        default=False,
        description="No two live records of the organization share a value (enforced for tickets).",
    )
    choices: Choices = Field(
        default_factory=list, description="Required for choice and multi_choice, else empty."
    )
    validation_rules: ValidationRules = Field(default_factory=ValidationRules)
    help_text: HelpText = ""
    position: Position = 0


class CustomFieldUpdate(PatchModel):
    """`field_type` and `entity_type` are not here: values already stored were checked
    against them, and changing either would leave those values meaning something else.
    A field of another type is a new field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"label": "Asset tag (on the device)", "is_required": True},
                {"validation_rules": {"regex": "(PRN|SCN)-[0-9]{4}"}},
                {"choices": ["Billing", "Hardware", "Software", "Network"], "position": 15},
            ]
        }
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset()

    name: FieldName | None = None
    label: FieldLabel | None = None
    is_required: bool | None = None
    is_unique: bool | None = None
    choices: Choices | None = None
    validation_rules: ValidationRules | None = Field(
        default=None, description="Replaces the rules as a whole; `{}` clears them."
    )
    help_text: HelpText | None = None
    position: Position | None = None

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if self.validation_rules is not None:
            changes["validation_rules"] = self.validation_rules.stored()
        return changes


class CustomFieldRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191a3d0-4b5c-7d6e-8f7a-9b0c1d2e3f1a",
                    **ASSET_TAG_FIELD,
                    "created_at": "2024-11-05T10:00:00Z",
                    "updated_at": "2024-11-05T10:00:00Z",
                    "deleted_at": None,
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    label: str
    field_type: FieldType
    entity_type: EntityType
    is_required: bool
    is_unique: bool
    choices: list[str]
    validation_rules: dict[str, Any]
    help_text: str
    position: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
