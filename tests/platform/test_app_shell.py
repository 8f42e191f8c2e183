"""The HTTP shell: problems for every error, units of work, health, metrics, request ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from app.config import Settings
from app.db.dependencies import SessionDep
from app.db.session import bind_tenant
from app.kit.errors import NotFound
from app.main import create_app
from app.models import Department, Organization

PROBLEM = "application/problem+json"


class DepartmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organization_id: uuid.UUID
    name: str


def _probe_router() -> APIRouter:
    """Routes that exercise the shell the way real domain routers will."""
    router = APIRouter(prefix="/probe")

    @router.post("/departments", status_code=201)
    async def create(body: DepartmentIn, session: SessionDep) -> dict[str, str]:
        await bind_tenant(session, body.organization_id)
        department = Department(name=body.name)
        session.add(department)
        await session.flush()
        if body.name == "explode-after-flush":
            raise RuntimeError("boom: secret internals")
        return {"id": str(department.id)}

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("No such thing.")

    return router


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    application.include_router(_probe_router())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_created_means_committed(
    client: httpx.AsyncClient, app: FastAPI, org_a: Organization
) -> None:
    response = await client.post(
        "/probe/departments", json={"organization_id": str(org_a.id), "name": "Field"}
    )
    assert response.status_code == 201
    async with app.state.database.tenant_session(org_a.id) as session:
        assert await session.get(Department, uuid.UUID(response.json()["id"])) is not None


async def test_error_after_flush_rolls_back_and_hides_internals(
    client: httpx.AsyncClient, app: FastAPI, org_a: Organization
) -> None:
    response = await client.post(
        "/probe/departments",
        json={"organization_id": str(org_a.id), "name": "explode-after-flush"},
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "secret" not in response.text and "Traceback" not in response.text
    # The id a caller quotes to support, and the headers every other answer carries.
    assert len(response.headers["x-request-id"]) == 32
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    quoted = await client.post(
        "/probe/departments",
        json={"organization_id": str(org_a.id), "name": "explode-after-flush"},
        headers={"X-Request-ID": "support-case-42"},
    )
    assert quoted.status_code == 500
    assert quoted.headers["x-request-id"] == "support-case-42"
    async with app.state.database.tenant_session(org_a.id) as session:
        names = await session.scalars(sa.select(Department.name))
        assert "explode-after-flush" not in names.all()


async def test_unknown_field_is_422_problem_with_field_errors(
    client: httpx.AsyncClient, org_a: Organization
) -> None:
    response = await client.post(
        "/probe/departments",
        json={"organization_id": str(org_a.id), "name": "x", "role": "admin"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["errors"][0]["loc"] == ["body", "role"]


async def test_unique_violation_is_409_problem(
    client: httpx.AsyncClient, org_a: Organization
) -> None:
    payload = {"organization_id": str(org_a.id), "name": "Twins"}
    assert (await client.post("/probe/departments", json=payload)).status_code == 201
    response = await client.post("/probe/departments", json=payload)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert "uq_" not in response.text and "INSERT" not in response.text


async def test_domain_and_routing_errors_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/probe/missing")
    assert (missing.status_code, missing.json()["detail"]) == (404, "No such thing.")
    assert missing.headers["content-type"] == PROBLEM
    unknown = await client.get("/no/such/route")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    wrong_method = await client.delete("/healthz")
    assert wrong_method.status_code == 405 and wrong_method.headers["content-type"] == PROBLEM


async def test_oversized_body_is_413_with_or_without_content_length(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    big = b"x" * (settings.max_request_body_bytes + 1)
    declared = await client.post("/probe/departments", content=big)
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield big[: len(big) // 2]

    streamed = await client.post(
        "/probe/departments", content=stream(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_health_ready_metrics_and_request_id(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    echoed = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32
    metrics = await client.get("/metrics")
    assert 'helpdesk_http_requests_total{method="GET",route="/healthz",status="200"}' in (
        metrics.text
    )


async def test_openapi_and_docs_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and "/readyz" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_readyz_checks_real_redis_and_reports_outage(
    settings: Settings, test_redis_url: str
) -> None:
    app = create_app(settings.model_copy(update={"redis_url": test_redis_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            ready = await c.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
            # Redis going away after start-up: a real client against a closed port.
            healthy = app.state.redis
            app.state.redis = Redis.from_url("redis://127.0.0.1:1/0")
            try:
                down = await c.get("/readyz")
            finally:
                await app.state.redis.aclose()
                app.state.redis = healthy
    assert down.status_code == 503 and down.headers["content-type"] == PROBLEM
    assert "redis" in down.json()["detail"]
