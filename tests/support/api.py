"""Assertions and small helpers the API tests share."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import sqlalchemy as sa

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


def field_locs(body: dict[str, Any]) -> list[list[Any]]:
    assert isinstance(body.get("errors"), list) and body["errors"], body
    return [error["loc"] for error in body["errors"]]


def columns(row: Any) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in sa.inspect(row).mapper.column_attrs}


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
