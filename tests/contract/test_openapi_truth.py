"""The OpenAPI document says what the server does: nullability of PATCH fields, the
methods a path allows, the error answers every operation may give."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.kit.schemas import PatchModel
from tests.support.identity import API, Tenant


def _patch_models() -> dict[str, type[PatchModel]]:
    found: dict[str, type[PatchModel]] = {}
    pending: list[type[PatchModel]] = list(PatchModel.__subclasses__())
    while pending:
        model = pending.pop()
        found[model.__name__] = model
        pending += model.__subclasses__()
    return found


def _admits_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or {"type": "null"} in prop.get("anyOf", [])


def test_patch_fields_are_nullable_in_the_document_exactly_where_the_server_takes_null(
    app: FastAPI,
) -> None:
    schemas = app.openapi()["components"]["schemas"]
    checked = 0
    for name, model in _patch_models().items():
        if name not in schemas:
            continue
        properties = schemas[name]["properties"]
        nullable = {prop for prop, schema in properties.items() if _admits_null(schema)}
        assert nullable == set(model.__nullable__), name
        checked += 1
    assert checked >= 7


async def test_a_non_nullable_patch_field_refuses_null(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await client.patch(
        f"{API}/departments/00000000-0000-7000-8000-000000000001",
        json={"name": None},
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 422
    assert ["body", "name"] in [error["loc"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/tickets/0192f0c8-0000-7000-8000-00000000abcd", "GET, PATCH, DELETE"),
        ("POST", "/tickets/0192f0c8-0000-7000-8000-00000000abcd", "GET, PATCH, DELETE"),
        ("DELETE", "/tickets", "GET, POST"),
        ("GET", "/auth/token", "POST"),
        # /users/{user_id} fits too, but /users/me is its own resource.
        ("OPTIONS", "/users/me", "GET, PATCH"),
    ],
)
async def test_405_lists_every_method_the_path_serves(
    client: httpx.AsyncClient, tenant_a: Tenant, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, f"{API}{path}", headers=tenant_a["admin"].headers)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"


def test_error_answers_are_documented(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            label = f"{method.upper()} {path}"
            if path.startswith(API):
                assert "503" in responses, label
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if "If-Match" in headers:
                assert "412" in responses, label
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert "application/problem+json" in response.get("content", {}), (
                        label,
                        status,
                    )


def test_custom_fields_of_a_ticket_are_bounded_by_their_count(app: FastAPI) -> None:
    schema = app.openapi()["components"]["schemas"]["TicketCreate"]["properties"]
    custom_fields = schema["custom_fields"]
    assert custom_fields.get("maxProperties") == 200
    assert "maxLength" not in custom_fields


@pytest.mark.parametrize(
    "body",
    [b'{"name": "Nig\xffht"}', b'{"name": ', b"\xff\xfe"],
    ids=["not-utf8", "malformed", "binary"],
)
async def test_an_unreadable_body_is_one_422(
    client: httpx.AsyncClient, tenant_a: Tenant, body: bytes
) -> None:
    response = await client.post(
        f"{API}/departments",
        content=body,
        headers={**tenant_a["admin"].headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"][0] == "body"
