"""Small, domain-free steps services repeat: apply a patch, name a field's error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db.base import Base


def apply_changes(record: Base, changes: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the given attributes; returns {field: (old, new)} for those that changed."""
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in changes.items():
        old = getattr(record, name)
        if old != value:
            setattr(record, name, value)
            changed[name] = (old, value)
    return changed


def field_error(
    field: str | tuple[str, ...], message: str, *, location: str = "body"
) -> dict[str, Any]:
    """One entry of a 422's `errors`, shaped like FastAPI's own (a nested field is a
    tuple: ("custom_fields", "sku"))."""
    path = list(field) if isinstance(field, tuple) else [field]
    return {"loc": [location, *path], "msg": message, "type": "value_error"}
