"""Field types and base models every domain's schemas share.

Input models forbid unknown fields (no mass assignment of `organization_id`, `role`,
counters…); output models read from ORM objects. `PatchModel` keeps PATCH honest: only
the fields sent are applied, and `null` is accepted only where the column is nullable.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class InputModel(BaseModel):
    # No blanket whitespace stripping: passwords and message bodies keep every
    # character; fields that want trimming say so in their type (Name, Title, …).
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold U+0000; refuse it here, where the field is known.
        if _has_nul(value):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PatchModel(InputModel):
    """Every field optional; explicit `null` only for names in `__nullable__`."""

    __nullable__: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _null_only_where_nullable(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.__nullable__:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The document says what the server accepts: a field outside `__nullable__` is
        optional but never null (its Python type admits None only to tell "left out"
        from a value)."""
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name, field in cls.model_fields.items():
            if name in cls.__nullable__:
                continue
            prop = target.get("properties", {}).get(field.alias or name)
            if prop is None:
                continue
            branches = prop.get("anyOf")
            if branches and {"type": "null"} in branches:
                kept = [branch for branch in branches if branch != {"type": "null"}]
                del prop["anyOf"]
                if len(kept) == 1:
                    prop.update(kept[0])
                else:
                    prop["anyOf"] = kept
            if prop.get("default", ...) is None:
                del prop["default"]
        return schema


@lru_cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _valid_timezone(name: str) -> str:
    if name not in _known_timezones():
        raise ValueError("not an IANA time zone (e.g. Europe/Berlin, UTC)")
    return name


def _lower(value: str) -> str:
    return value.lower()


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(_lower)]
# Shared aliases carry constraints, not `Field(...)`: a FieldInfo inside an alias is one
# object for every model using it, and a default one model gives the field (timezone
# "UTC" on users) leaked into the others on some FastAPI/Pydantic versions — a required
# business-hours `timezone` became optional.
Password = Annotated[str, StringConstraints(min_length=12, max_length=256)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=150)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)]
Timezone = Annotated[str, StringConstraints(max_length=50), AfterValidator(_valid_timezone)]
Language = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=10)
]
Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", min_length=2, max_length=63)
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Labels = Annotated[list[Label], Field(max_length=100), AfterValidator(_dedupe)]
DomainName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=255,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$",
    ),
    AfterValidator(_lower),
]


def _as_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the representable range") from None


_ISO_8601 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _iso_8601_text(value: Any) -> Any:
    """What the document promises (`format: date-time`), not Pydantic's lax extras: a
    number, or a numeric string, would otherwise be read as seconds since 1970."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_8601.match(value):
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2026-01-31T09:30:00Z")
    return value


def instant_text(moment: datetime) -> str:
    """An instant as the API writes it (in JSON payloads and details too): UTC, `Z`."""
    return _as_utc(moment).isoformat().replace("+00:00", "Z")


# An instant with an offset, normalised to UTC (where the year 9999 with a negative
# offset overflows: a 422, not a 500).
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601_text), AfterValidator(_as_utc)]

MAX_JSON_DEPTH = 8
MAX_JSON_BYTES = 64 * 1024


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form objects (settings, custom field values) stay small and shallow: they are
    stored, indexed and sent back on every read."""

    def depth(node: Any, level: int) -> int:
        if level > MAX_JSON_DEPTH:
            return level
        if isinstance(node, dict):
            return max((depth(v, level + 1) for v in node.values()), default=level)
        if isinstance(node, list):
            return max((depth(v, level + 1) for v in node), default=level)
        return level

    if depth(value, 1) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if len(json.dumps(value, default=str)) > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 1024} KiB")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
