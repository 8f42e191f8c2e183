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


async def pages(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int, **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following next_cursor until it is null."""
    found: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(200):
        query = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page.keys() == {"items", "next_cursor"}
        assert len(page["items"]) <= limit
        found.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("pagination never ended")


async def page_ids(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], limit: int, **params: Any
) -> list[list[str]]:
    """The ids of every page of a list."""
    every = await pages(client, url, headers, limit, **params)
    return [[item["id"] for item in page] for page in every]
