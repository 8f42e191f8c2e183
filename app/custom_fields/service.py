"""Custom fields: the definitions an organization adds to its records, and the check of
a record's `custom_fields` against them.

Definitions: names unique per organization and entity type among live rows; choices and
rules must fit the field's type. Values: see `validate_values`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.custom_fields.patterns import full_match
from app.custom_fields.repository import CustomFieldRepository
from app.custom_fields.schemas import (
    EMAIL_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    TEXTAREA_MAX_LENGTH,
    URL_MAX_LENGTH,
    CustomFieldCreate,
    CustomFieldUpdate,
)
from app.kit.errors import ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.kit.repository import Record
from app.kit.schemas import MAX_JSON_DEPTH, Email, instant_text
from app.models.custom_field import CustomField, EntityType, FieldType

CHOICE_TYPES = frozenset({FieldType.CHOICE, FieldType.MULTI_CHOICE})
# The longest string each text-like type holds; its length rules must stay within it.
TEXT_LIKE_MAX_LENGTH: dict[FieldType, int] = {
    FieldType.TEXT: TEXT_MAX_LENGTH,
    FieldType.TEXTAREA: TEXTAREA_MAX_LENGTH,
    FieldType.EMAIL: EMAIL_MAX_LENGTH,
    FieldType.URL: URL_MAX_LENGTH,
}
NUMBER_RULES = frozenset({"min", "max"})
TEXT_RULES = frozenset({"min_length", "max_length", "regex"})
REFERENCE_MAX_LENGTH = 500
JSON_MAX_BYTES = 16 * 1024


# --- definitions -------------------------------------------------------------------------


LABEL = "custom field"


async def list_custom_fields(
    session: AsyncSession,
    page: PageParams,
    *,
    entity_type: EntityType | None = None,
    include_deleted: bool = False,
) -> PageResult[Record]:
    return await CustomFieldRepository(session).list_page(
        page, entity_type=entity_type, include_deleted=include_deleted
    )


async def get_custom_field(
    session: AsyncSession, field_id: uuid.UUID, *, include_deleted: bool = False
) -> CustomField:
    return await CustomFieldRepository(session).get_or_404(
        field_id, include_deleted=include_deleted, label=LABEL
    )


async def create_custom_field(session: AsyncSession, data: CustomFieldCreate) -> CustomField:
    rules = data.validation_rules.stored()
    _check_fits_type(data.field_type, data.choices, rules)
    await CustomFieldRepository(session).check_name_free(data.name, data.entity_type)
    field = CustomField(**data.model_dump(exclude={"validation_rules"}), validation_rules=rules)
    session.add(field)
    await session.flush()
    return field


async def update_custom_field(
    session: AsyncSession, field_id: uuid.UUID, data: CustomFieldUpdate
) -> CustomField:
    """Values records already hold are not re-checked against new choices or rules: they
    were valid when written, and are checked again when next changed."""
    fields = CustomFieldRepository(session)
    field = await fields.get_or_404(field_id, label=LABEL)
    changes = data.changes()
    if "choices" in changes or "validation_rules" in changes:
        _check_fits_type(
            field.field_type,
            changes.get("choices", field.choices),
            changes.get("validation_rules", field.validation_rules),
        )
    if "name" in changes:
        await fields.check_name_free(changes["name"], field.entity_type, exclude=field.id)
    apply_changes(field, changes)
    await session.flush()
    return field


async def delete_custom_field(session: AsyncSession, field_id: uuid.UUID) -> None:
    """Records keep their values under the field's name: restoring the definition brings
    them back into use, and until then they are carried along unchecked."""
    (await get_custom_field(session, field_id)).soft_delete()
    await session.flush()


async def restore_custom_field(session: AsyncSession, field_id: uuid.UUID) -> CustomField:
    fields = CustomFieldRepository(session)
    field = await fields.get_or_404(field_id, include_deleted=True, label=LABEL)
    if field.is_deleted:
        await fields.check_name_free(field.name, field.entity_type, exclude=field.id)
        field.restore()
        await session.flush()
    return field


def _check_fits_type(field_type: FieldType, choices: list[str], rules: Mapping[str, Any]) -> None:
    """Choices only on choice types (and there at least one); rules only the ones the
    type can apply, so a definition never promises a check that would not run."""
    errors: list[dict[str, Any]] = []
    if field_type in CHOICE_TYPES and not choices:
        errors.append(field_error("choices", f"a {field_type.value} field needs choices"))
    if field_type not in CHOICE_TYPES and choices:
        errors.append(field_error("choices", "only choice and multi_choice fields have choices"))
    allowed = (
        NUMBER_RULES
        if field_type is FieldType.NUMBER
        else TEXT_RULES
        if field_type in TEXT_LIKE_MAX_LENGTH
        else frozenset()
    )
    for rule, value in rules.items():
        loc = ["body", "validation_rules", rule]
        if rule not in allowed:
            message = f"does not apply to a {field_type.value} field"
            errors.append({"loc": loc, "msg": message, "type": "value_error"})
        elif rule in {"min_length", "max_length"} and value > TEXT_LIKE_MAX_LENGTH[field_type]:
            limit = TEXT_LIKE_MAX_LENGTH[field_type]
            message = f"a {field_type.value} value holds at most {limit} characters"
            errors.append({"loc": loc, "msg": message, "type": "value_error"})
    if errors:
        raise ValidationFailed(
            "The choices or validation rules do not fit the field's type.", errors=errors
        )


# --- values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    """A live definition as value validation reads it: a row of `live_definitions`
    (every ticket creation reads them; no ORM objects needed)."""

    id: uuid.UUID
    entity_type: EntityType
    name: str
    field_type: FieldType
    is_required: bool
    is_unique: bool
    choices: list[str]
    validation_rules: dict[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FieldDefinition:
        return cls(
            **{
                **row,
                "entity_type": EntityType(row["entity_type"]),
                "field_type": FieldType(row["field_type"]),
            }
        )


async def validate_values(
    session: AsyncSession,
    entity_type: EntityType,
    values: dict[str, Any],
    *,
    current: dict[str, Any] | None = None,
    record_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Check a record's `custom_fields` against the organization's live definitions and
    return what to store: `current` (the record's values, None on create) merged with
    `values`, where a key set to null is removed.

    Only the keys sent are checked: stored values stay as they are, even where a
    definition changed or was deleted since (a deleted definition's value may still be
    removed with null). Required fields are checked on the merged result, so an update
    that leaves a required field out keeps it, and one that nulls it fails. An empty
    string or list does not count as a value for a required field.

    `is_unique` is enforced for tickets only; no other entity stores custom values yet
    (the check is skipped for them). On PostgreSQL a transaction-scoped advisory lock
    per field serialises the check with the caller's write, so two concurrent requests
    cannot both claim a value; the lock is released by the caller's commit.

    Every problem is collected and raised once as a 422 with locations
    `["body", "custom_fields", <name>]`.
    """
    repository = CustomFieldRepository(session)
    definitions = {
        row["name"]: FieldDefinition.from_row(row)
        for row in await repository.live_definitions(entity_type)
    }
    result = dict(current or {})
    if not definitions and not values:
        return result

    errors: dict[str, str] = {}
    unique = _merge(definitions, values, result, errors)
    for name, definition in definitions.items():
        if definition.is_required and name not in errors and _is_blank(result.get(name)):
            errors[name] = "required"
    if entity_type is EntityType.TICKET:
        for definition, value in sorted(unique, key=lambda pair: pair[0].name):
            if await _ticket_value_taken(repository, definition, value, record_id):
                errors[definition.name] = "already used by another ticket"

    if errors:
        raise ValidationFailed(
            "Some custom field values are not valid.",
            errors=[
                field_error(("custom_fields", name), message) for name, message in errors.items()
            ],
        )
    return result


async def taken_unique_values(
    session: AsyncSession, values: Mapping[str, Any], record_id: uuid.UUID
) -> list[str]:
    """The ticket custom fields among `values` whose unique value another live ticket
    holds (restoring a deleted ticket: live ones may have taken its values meanwhile)."""
    repository = CustomFieldRepository(session)
    taken = []
    for row in await repository.live_definitions(EntityType.TICKET):
        definition = FieldDefinition.from_row(row)
        if definition.is_unique and definition.name in values:
            value = values[definition.name]
            if await _ticket_value_taken(repository, definition, value, record_id):
                taken.append(definition.name)
    return taken


def _merge(
    definitions: Mapping[str, FieldDefinition],
    values: Mapping[str, Any],
    result: dict[str, Any],
    errors: dict[str, str],
) -> list[tuple[FieldDefinition, Any]]:
    """Apply `values` to `result` in place, noting problems in `errors`; returns the
    values set on unique fields, which still need the database's word."""
    unique: list[tuple[FieldDefinition, Any]] = []
    for name, value in values.items():
        definition = definitions.get(name)
        if definition is None:
            if value is None and name in result:
                del result[name]
            else:
                errors[name] = "no such custom field"
            continue
        if value is None:
            result.pop(name, None)
            continue
        try:
            result[name] = _normalise(definition, value)
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if definition.is_unique:
            unique.append((definition, result[name]))
    return unique


def _is_blank(value: Any) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _normalise(definition: FieldDefinition, value: Any) -> Any:
    """The value to store, or ValueError with a message for the client."""
    return _NORMALISERS[definition.field_type](definition, value)


def _no_nul(text: str) -> str:
    # PostgreSQL's jsonb cannot hold U+0000; refuse it here, where the field is known.
    if "\x00" in text:
        raise ValueError("text must not contain NUL (U+0000) characters")
    return text


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return _no_nul(value)


def _text_rules(definition: FieldDefinition, text: str) -> str:
    limit = TEXT_LIKE_MAX_LENGTH[definition.field_type]
    rules = definition.validation_rules
    min_length = rules.get("min_length")
    max_length = min(rules.get("max_length", limit), limit)
    if min_length is not None and len(text) < min_length:
        raise ValueError(f"must be at least {min_length} characters long")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters long")
    pattern = rules.get("regex")
    if pattern is not None and not full_match(pattern, text):
        raise ValueError(f"must match the pattern {pattern}")
    return text


def _text(definition: FieldDefinition, value: Any) -> str:
    return _text_rules(definition, _string(value))


def _number(definition: FieldDefinition, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    low, high = definition.validation_rules.get("min"), definition.validation_rules.get("max")
    if low is not None and value < low:
        raise ValueError(f"must be at least {low}")
    if high is not None and value > high:
        raise ValueError(f"must be at most {high}")
    return value


_email = TypeAdapter(Email)


def _email_address(definition: FieldDefinition, value: Any) -> str:
    try:
        address = _email.validate_python(_string(value))
    except ValidationError:
        raise ValueError("must be a valid email address") from None
    return _text_rules(definition, address)


_http_url = TypeAdapter(AnyHttpUrl)
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")


def _url(definition: FieldDefinition, value: Any) -> str:
    """Stored as sent, once it parses as an absolute http(s) URL with a host: links are
    shown and followed, so the text a person typed is kept."""
    text = _string(value)
    if len(text) > URL_MAX_LENGTH:
        raise ValueError(f"must be at most {URL_MAX_LENGTH} characters long")
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in {"http", "https"} or not rest or _URL_FORBIDDEN.search(text):
        raise ValueError("must be an absolute http or https URL")
    try:
        parsed = _http_url.validate_python(text)
    except ValidationError:
        raise ValueError("must be an absolute http or https URL") from None
    if not parsed.host:
        raise ValueError("must be an absolute http or https URL")
    return _text_rules(definition, text)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _date(_definition: FieldDefinition, value: Any) -> str:
    text = _string(value)
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError("must be a date as YYYY-MM-DD") from None


def _datetime(_definition: FieldDefinition, value: Any) -> str:
    """RFC 3339 with an offset, stored in UTC the way the API writes its own instants."""
    text = _string(value)
    try:
        if not _RFC3339.fullmatch(text):
            raise ValueError
        return instant_text(datetime.fromisoformat(text.upper()))
    except (ValueError, OverflowError):
        raise ValueError("must be an RFC 3339 date-time with an offset") from None


def _boolean(_definition: FieldDefinition, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _choice(definition: FieldDefinition, value: Any) -> str:
    if not isinstance(value, str) or value not in definition.choices:
        raise ValueError("must be one of the field's choices")
    return value


def _multi_choice(definition: FieldDefinition, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of the field's choices")
    if any(not isinstance(item, str) or item not in definition.choices for item in value):
        raise ValueError("must be a list of the field's choices")
    if len(set(value)) != len(value):
        raise ValueError("must not repeat a choice")
    return list(value)


def _reference(_definition: FieldDefinition, value: Any) -> str:
    """A reference to a stored file (normally an attachment id). Not resolved here: the
    file may be uploaded after the record exists. A UUID is kept in canonical form."""
    text = _string(value).strip()
    if not text or len(text) > REFERENCE_MAX_LENGTH or _URL_FORBIDDEN.search(text):
        raise ValueError(
            f"must be a file reference (an attachment id) of 1 to {REFERENCE_MAX_LENGTH} "
            "characters without spaces"
        )
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _json(_definition: FieldDefinition, value: Any) -> Any:
    _check_json(value)
    try:
        size = len(json.dumps(value, allow_nan=False))
    except ValueError:
        raise ValueError("must be JSON (no NaN or Infinity)") from None
    if size > JSON_MAX_BYTES:
        raise ValueError(f"must be at most {JSON_MAX_BYTES // 1024} KiB as JSON")
    return value


def _check_json(value: Any) -> None:
    """Plain JSON, shallow enough to serialise without deep recursion (iteratively, so a
    hostile nesting cannot exhaust the stack here either)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"must not be nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, str):
            _no_nul(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ValueError("object keys must be strings")
                _no_nul(key)
                pending.append((item, depth + 1))
        elif isinstance(node, list):
            pending.extend((item, depth + 1) for item in node)
        elif node is not None and not isinstance(node, bool | int | float):
            raise ValueError("must be JSON")


_NORMALISERS: dict[FieldType, Callable[[FieldDefinition, Any], Any]] = {
    FieldType.TEXT: _text,
    FieldType.TEXTAREA: _text,
    FieldType.NUMBER: _number,
    FieldType.EMAIL: _email_address,
    FieldType.URL: _url,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
    FieldType.BOOLEAN: _boolean,
    FieldType.CHOICE: _choice,
    FieldType.MULTI_CHOICE: _multi_choice,
    FieldType.FILE: _reference,
    FieldType.IMAGE: _reference,
    FieldType.JSON: _json,
}


# --- uniqueness --------------------------------------------------------------------------


async def _ticket_value_taken(
    repository: CustomFieldRepository,
    definition: FieldDefinition,
    value: Any,
    record_id: uuid.UUID | None,
) -> bool:
    """Python decides equality exactly over the database's candidates: a number is never
    equal to a boolean, and a multi_choice value is a set."""
    name = definition.name
    await repository.lock_unique_value(definition.entity_type, name)
    wanted = _comparable(definition.field_type, value)
    for stored in await repository.ticket_values_like(name, value, exclude=record_id):
        if name in stored and _comparable(definition.field_type, stored[name]) == wanted:
            return True
    return False


def _comparable(field_type: FieldType, value: Any) -> Any:
    if field_type is FieldType.MULTI_CHOICE and isinstance(value, list):
        return frozenset(_canonical(item) for item in value)
    return _canonical(value)


def _canonical(value: Any) -> Any:
    """A hashable form in which equal JSON values are equal and only they (Python alone
    would call `true` equal to `1`)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    return ("null", None)
