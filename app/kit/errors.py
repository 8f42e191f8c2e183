"""RFC 9457 problem details: domain errors carry their status; one set of handlers renders."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.config import API_PREFIX
from app.kit.security_headers import SECURITY_HEADERS
from app.observability import REQUEST_ID_HEADER, request_id

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://helpdesk.dev/problems/"

log = structlog.get_logger(__name__)


class AppError(Exception):
    """A failure the client can act on. Subclasses set status, slug and title."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        keep_writes: bool = False,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers
        # The unit of work commits before this error is answered: for refusals that must
        # leave a trace (a replayed refresh token revokes its session, then answers 401).
        self.keep_writes = keep_writes


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        headers = {"WWW-Authenticate": "Bearer", **(kwargs.pop("headers", None) or {})}
        super().__init__(detail, headers=headers, **kwargs)


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class ValidationFailed(AppError):
    status, slug, title = 422, "validation-error", "Validation failed"


class RateLimited(AppError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


_STATUS_SLUGS = {
    cls.status: (cls.slug, cls.title)
    for cls in (
        AppError,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        ValidationFailed,
        RateLimited,
        ServiceUnavailable,
    )
}
_STATUS_SLUGS[405] = ("method-not-allowed", "Method not allowed")


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def _documented(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# Every API route may answer these; documenting them lets clients (and the contract
# tests) rely on the body shape of an error.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Bad request"),
    401: _documented("Missing, invalid, expired or revoked credential"),
    403: _documented("The caller's role may not do this"),
    404: _documented("No such resource in the caller's organization"),
    409: _documented("Conflicts with the current state (a unique value, the last admin…)"),
    413: _documented("Body over the configured limit"),
    422: _documented("Invalid input; `errors` lists the fields"),
    429: _documented("Rate limited; see Retry-After"),
}
_STATUS_SLUGS[500] = ("internal-error", "Internal server error")


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    default_slug, default_title = _STATUS_SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic's `input` may echo secrets (passwords) back; keep location, message, type.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def _constraint_name(exc: IntegrityError) -> str:
    diag = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    return diag or str(exc.orig)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422, "The request is not valid.", slug="validation-error", errors=_field_errors(exc)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 400 and exc.detail == FASTAPI_UNPARSABLE_BODY:
        # One rule for a body that cannot be read as its content type, whether it is
        # malformed JSON (FastAPI's 422) or bytes that are not UTF-8 (its 400).
        return problem_response(
            422,
            "The request body could not be read: JSON must be well-formed UTF-8, "
            "forms well-formed multipart or urlencoded.",
            errors=[{"loc": ["body"], "msg": "unreadable body", "type": "body_unreadable"}],
        )
    if exc.status_code == 405:
        # The router names the methods of the first route on the path only, where a
        # path's methods are often spread over several routes (RFC 9110 §15.5.6).
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(exc.status_code, str(exc.detail), headers=headers or None)


# What FastAPI answers (400) when a body fails to parse other than as malformed JSON.
FASTAPI_UNPARSABLE_BODY = "There was an error parsing the body"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods the API document gives the request's path; where a literal path and
    a parameter path both fit (`/users/me`, `/users/{user_id}`), the literal one names
    the resource. Paths outside the document: the methods some route serves there."""
    segments = request.url.path.split("/")
    documented: dict[int, set[str]] = {}  # path parameters → methods
    for template, operations in request.app.openapi().get("paths", {}).items():
        parts = template.split("/")
        parameters = sum(part.startswith("{") for part in parts)
        if len(parts) == len(segments) and all(
            part.startswith("{") or part == segment
            for part, segment in zip(parts, segments, strict=True)
        ):
            documented.setdefault(parameters, set()).update(m.upper() for m in operations)
    if documented:
        methods = documented[min(documented)]
        return [method for method in HTTP_METHODS if method in methods]
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    """A constraint the service did not pre-check: never a 500, never the SQL text."""
    assert isinstance(exc, IntegrityError)
    name = _constraint_name(exc)
    log.info("integrity_error", constraint=name)
    if "fk_" in name or "foreign key" in name.lower():
        return problem_response(
            422, "A referenced resource does not exist.", slug="invalid-reference"
        )
    return problem_response(409, "The request conflicts with an existing resource.")


def _sqlstate(exc: DBAPIError) -> str:
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return ""


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """Class 22 (data exception: a NUL character in text, a number out of range) is
    the client's input the schema let through; anything else is ours."""
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated:
        # The database restarted or the network dropped the connection; the pool has
        # already replaced it. If it dropped during COMMIT the outcome is unknown, so the
        # answer says how to retry safely.
        log.warning("database_connection_lost")
        return problem_response(
            503,
            "The database connection was lost; retry the request "
            "(writes with the same Idempotency-Key, so a retry cannot apply twice).",
            slug="database-unavailable",
            headers={"Retry-After": "1"},
        )
    if _sqlstate(exc) in {"40001", "40P01"}:
        # A serialization failure or deadlock: nothing was written; a retry succeeds.
        log.info("transient_conflict", sqlstate=_sqlstate(exc))
        return problem_response(
            503,
            "The request collided with a concurrent one; retry it.",
            slug="transient-conflict",
            headers={"Retry-After": "1"},
        )
    if _sqlstate(exc).startswith("22"):
        log.info("data_exception", sqlstate=_sqlstate(exc))
        # Reached by query and form values (bodies are checked field by field earlier),
        # so the location is the request as a whole.
        message = "text must not contain NUL characters; numbers must be within range"
        return problem_response(
            422,
            f"A value cannot be stored: {message}.",
            slug="invalid-value",
            errors=[{"loc": ["request"], "msg": message, "type": "invalid_value"}],
        )
    return await _unhandled(request, exc)


async def _stale_data(_request: Request, _exc: Exception) -> JSONResponse:
    return problem_response(412, "The resource was modified concurrently; reload it and retry.")


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", exc_info=exc)
    # Answered by Starlette's outermost middleware, past our header middlewares: the
    # request id (which the caller quotes to support) and the security headers are
    # added here.
    headers = dict(SECURITY_HEADERS)
    if (rid := request_id(request)) is not None:
        headers[REQUEST_ID_HEADER] = rid
    return problem_response(500, "An unexpected error occurred.", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(StaleDataError, _stale_data)
    app.add_exception_handler(Exception, _unhandled)


def _complete_error_responses(schema: dict[str, Any]) -> None:
    """What every operation may answer beyond its own documentation: a 503 while the
    database is unreachable (API routes), a 412 where an `If-Match` precondition can
    fail, and the problem body on every error response."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path.startswith(API_PREFIX):
                responses.setdefault("503", _documented(UNAVAILABLE))
            headers = {
                p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
            }
            if "if-match" in headers:
                responses.setdefault("412", _documented(STALE))
            for status, response in responses.items():
                if status[:1] in {"4", "5"} and "content" not in response:
                    response["content"] = _documented(response["description"])["content"]


UNAVAILABLE = "The database is unreachable; retry after `Retry-After` seconds"
STALE = "`If-Match` names an older version than the current one; reload and retry"


def document_problems(app: FastAPI) -> None:
    """Publish the `Problem` schema the documented error responses point at."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        _complete_error_responses(schema)
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
