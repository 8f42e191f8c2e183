"""The API document (`/openapi.json`, Swagger UI at `/docs`) teaches the API: every
operation has a summary and a description, and every request body and every 2xx JSON
response shows an example, one the API would accept or could answer.

An example may sit on the media type (`example`/`examples`) or on the component schema
it refers to; for a page (`{"items": [...], "next_cursor": ...}`) one on the item schema
is enough. Examples are checked where they are declared, against the Pydantic models the
routes use: FastAPI drops every `null` from the document it serves (fastapi/fastapi#5559),
so a response example is checked as written, and a request example must not need a
`null` (the document would show a different request).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from app.config import API_PREFIX, Settings
from app.health.router import router as health_router
from app.main import API_ROUTERS, create_app

Operation = tuple[str, str, dict[str, Any]]  # method, path, operation object

JSON_MEDIA = re.compile(r"^application/(.+\+)?json$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@pytest.fixture(scope="module")
def document(settings: Settings) -> dict[str, Any]:
    """The document of the app as built (not started: it needs no database)."""
    return create_app(settings).openapi()


def _routes() -> dict[tuple[str, str], APIRoute]:
    routes: dict[tuple[str, str], APIRoute] = {}
    for prefix, routers in (("", (health_router,)), (API_PREFIX, API_ROUTERS)):
        for router in routers:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                for method in route.methods:
                    routes[(method.upper(), prefix + route.path)] = route
    return routes


ROUTES = _routes()


def _operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _route(method: str, path: str) -> APIRoute:
    route = ROUTES.get((method, path))
    assert route is not None, f"{method} {path}: no route in API_ROUTERS or the health router"
    return route


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = _resolve(document, media.get("schema", {}))
    if schema.get("examples") or schema.get("example") is not None:
        return True
    # A page: an example of its item does.
    items = schema.get("properties", {}).get("items", {})
    if items.get("type") == "array" and "items" in items:
        item = _resolve(document, items["items"])
        return bool(item.get("examples")) or item.get("example") is not None
    return False


def _success_json(operation: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            for media_type, media in response.get("content", {}).items():
                if JSON_MEDIA.match(media_type):
                    yield status, media_type, media


def _media_examples(media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    return found + [example["value"] for example in media.get("examples", {}).values()]


def _model_examples(model: type[BaseModel]) -> list[Any]:
    return list(model.model_json_schema().get("examples", []))


def _nulls(value: Any, where: str = "") -> list[str]:
    if value is None:
        return [where or "(the example)"]
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in _nulls(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [n for i, item in enumerate(value) for n in _nulls(item, f"{where}[{i}]")]
    return []


def _instants_without_z(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if INSTANT.match(value) and not value.endswith("Z") else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in _instants_without_z(item)]
    if isinstance(value, list):
        return [s for item in value for s in _instants_without_z(item)]
    return []


def _page_item(model: Any) -> type[BaseModel] | None:
    """The item model of a `Page[Item]`, or None for any other model."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    fields = model.model_fields
    if set(fields) != {"items", "next_cursor"}:
        return None
    [item] = get_args(fields["items"].annotation)
    return item if isinstance(item, type) and issubclass(item, BaseModel) else None


def test_the_document_is_complete_enough_to_check(document: dict[str, Any]) -> None:
    operations = list(_operations(document))
    assert len(operations) > 60
    for method, path, _ in operations:
        _route(method, path)


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in _operations(document):
        route = _route(method, path)
        generated = route.name.replace("_", " ").title()  # FastAPI's fallback summary
        summary = operation.get("summary", "").strip()
        if not summary or summary == generated:
            missing.append(f"{method} {path}: no summary of its own")
        if len(operation.get("description", "").strip()) < 40:
            missing.append(f"{method} {path}: no description")
    assert not missing, "\n".join(missing)


def test_every_body_and_success_response_has_an_example(document: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in _operations(document):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not _has_example(document, media):
                missing.append(f"{method} {path}: request body ({media_type})")
        for status, media_type, media in _success_json(operation):
            if not _has_example(document, media):
                missing.append(f"{method} {path}: {status} response ({media_type})")
    assert not missing, "\n".join(missing)


def test_request_examples_are_accepted(document: dict[str, Any]) -> None:
    """What the document shows for a JSON or urlencoded body validates against the route's
    model, and was written without nulls (which the served document would lose).
    Multipart uploads are left out: their example cannot carry a file."""
    problems = []
    checked = 0
    for method, path, operation in _operations(document):
        content = operation.get("requestBody", {}).get("content", {})
        media = content.get("application/json") or content.get("application/x-www-form-urlencoded")
        if media is None:
            continue
        route = _route(method, path)
        assert route.body_field is not None, f"{method} {path}"
        model = route.body_field.field_info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), f"{method} {path}"
        declared = [
            *_model_examples(model),
            *(
                example["value"]
                for example in (
                    getattr(route.body_field.field_info, "openapi_examples", None) or {}
                ).values()
            ),
        ]
        served = [*_media_examples(media), *_resolve(document, media["schema"]).get("examples", [])]
        for example in declared:
            problems += [f"{method} {path}: null at {n}" for n in _nulls(example)]
        for example in [*declared, *served]:
            checked += 1
            try:
                model.model_validate(example)
            except ValueError as exc:
                problems.append(f"{method} {path}: {example!r} is refused: {exc}")
    assert checked > 20
    assert not problems, "\n".join(problems)


def test_response_examples_are_real_answers(document: dict[str, Any]) -> None:
    """A success example validates against the response model, shows every field of its
    object (a read model's example is a full object) and writes instants in UTC (`Z`)."""
    problems = []
    checked = 0
    for method, path, operation in _operations(document):
        route = _route(method, path)
        for status, media_type, _media in _success_json(operation):
            declared = route.responses.get(int(status)) or route.responses.get(status) or {}
            declared_media = declared.get("content", {})
            media_examples = _media_examples(declared_media.get(media_type, {}))
            model = route.response_model
            if model is None:  # a hand-built response: its example is all there is
                assert media_examples, f"{method} {path}"
                continue
            item = _page_item(model)
            whole = [(TypeAdapter(model), example) for example in media_examples]
            objects: list[tuple[type[BaseModel], Any]] = []
            for candidate in (item, model):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    objects += [(candidate, e) for e in _model_examples(candidate)]
            for adapter, example in [*whole, *((TypeAdapter(m), e) for m, e in objects)]:
                checked += 1
                try:
                    adapter.validate_python(example)
                except ValueError as exc:
                    problems.append(f"{method} {path}: {example!r} is not an answer: {exc}")
                problems += [
                    f"{method} {path}: instant {s!r} is not UTC (…Z)"
                    for s in _instants_without_z(example)
                ]
            for object_model, example in objects:
                left_out = set(object_model.model_fields) - set(example)
                if left_out:
                    problems.append(
                        f"{method} {path}: the {object_model.__name__} example leaves out "
                        f"{sorted(left_out)}"
                    )
    assert checked > 40
    assert not problems, "\n".join(problems)
