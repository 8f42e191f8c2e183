"""Liveness, readiness and metrics: unauthenticated, outside /api/v1."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.db.dependencies import DatabaseDep
from app.kit.errors import problem_response
from app.observability import metrics_response

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness: the process serves requests",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    """Answers as long as the process serves HTTP; it checks no dependency (that is
    `/readyz`). For a container's liveness probe. No credential needed.
    """
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database (and Redis, when configured) answer",
    responses={
        200: {
            "description": "Every dependency answers",
            "content": {
                "application/json": {
                    "example": {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
                }
            },
        },
        503: {"description": "A dependency is down"},
    },
)
async def readyz(request: Request, database: DatabaseDep) -> JSONResponse:
    """Checks that the database answers (as the owner and as the application role) and,
    when configured, Redis; for a load balancer's readiness probe. A 503 problem names
    the failing dependency. No credential needed.
    """
    checks: dict[str, str] = {}
    # Both logins: the owner's (system session) and the app role's (every tenant request;
    # a wrong DATABASE_APP_URL fails only there).
    engines = {database.engine, database.tenant_engine}
    try:
        for engine in engines:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # readiness reports, it does not crash
        checks["database"] = "unavailable"
    redis = getattr(request.app.state, "redis", None)
    if redis is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "unavailable"
    if any(v != "ok" for v in checks.values()):
        failing = ", ".join(k for k, v in checks.items() if v != "ok")
        return problem_response(503, f"Not ready: {failing} unavailable.")
    return JSONResponse({"status": "ok", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Request counts and latencies in the Prometheus text format, for a scraper.
    Served outside `/api/v1`, without a credential: keep it off the public network.
    """
    return metrics_response(request)
