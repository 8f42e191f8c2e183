"""Application factory: settings → engine, Redis, job runner, middleware, routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from app.api_keys.router import router as api_keys_router
from app.attachments.router import router as attachments_router
from app.auth.router import router as auth_router
from app.auth.router import sessions_router
from app.business_hours.router import router as business_hours_router
from app.changes.router import router as changes_router
from app.channels.limits import BodySizeLimits
from app.channels.router import inbound_router
from app.channels.router import router as channels_router
from app.config import API_PREFIX, Settings, get_settings
from app.custom_fields.router import router as custom_fields_router
from app.customers.router import router as customers_router
from app.db.database import Database
from app.departments.router import router as departments_router
from app.health.router import router as health_router
from app.kit.errors import PROBLEM_RESPONSES, document_problems, install_error_handlers
from app.kit.idempotency import IdempotentReplay, replay_response
from app.kit.jobs import ArqJobQueue, InProcessJobQueue
from app.kit.ratelimit import MemoryRateLimiter, RedisRateLimiter
from app.kit.security_headers import SecurityHeadersMiddleware
from app.notifications.router import router as notifications_router
from app.observability import RequestContextMiddleware, configure_logging
from app.organizations.router import router as organizations_router
from app.reports.router import router as reports_router
from app.sla.timers import TimerLoop
from app.sla_policies.router import router as sla_policies_router
from app.tickets.router import router as tickets_router
from app.users.router import router as users_router
from app.webhooks import connections
from app.webhooks.router import router as webhooks_router

# FastAPI tries routes one by one, so a route's place in the list is part of its cost:
# the busiest come first (the tickets API, and the inbound hooks email providers and chat
# platforms call).
API_ROUTERS = (
    tickets_router,
    inbound_router,
    attachments_router,
    changes_router,
    custom_fields_router,
    users_router,
    customers_router,
    departments_router,
    business_hours_router,
    sla_policies_router,
    reports_router,
    notifications_router,
    channels_router,
    webhooks_router,
    organizations_router,
    api_keys_router,
    sessions_router,
    auth_router,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        app.state.database = database
        timers: TimerLoop | None = None
        app.state.redis = None
        app.state.rate_limiter = MemoryRateLimiter()
        if settings.redis_url:
            from arq import create_pool
            from arq.connections import RedisSettings

            redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
            app.state.redis = redis
            app.state.rate_limiter = RedisRateLimiter(
                redis, prefix=f"{settings.redis_key_prefix}:ratelimit"
            )
            database.jobs = ArqJobQueue(redis, settings.job_queue_name)
        else:
            from app.worker import PERIODIC_SECONDS, TASKS

            runner = InProcessJobQueue(database, TASKS, PERIODIC_SECONDS)
            runner.start_periodic()
            database.jobs = runner
            if settings.sla_timers_in_process:
                timers = TimerLoop(database)
                timers.start()
        # What exists now lives as long as the process (modules, routes, mappers, the
        # engines): moved out of the collector's sight, a full collection no longer
        # walks it — on list requests the collector's share of the CPU halves.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if timers is not None:
                await timers.close()
            await database.jobs.close()
            await connections.close_all()
            await database.dispose()

    # Swagger UI (/docs) and ReDoc (/redoc) load their scripts from the installed
    # package, not a CDN: they work offline and behind a strict proxy.
    app = FastAPIOffline(
        title="Helpdesk API",
        version="1.0.0",
        summary="Multi-tenant helpdesk and field-service backend",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_exception_handler(IdempotentReplay, replay_response)
    app.add_middleware(
        BodySizeLimits,
        max_bytes=settings.max_request_body_bytes,
        multipart_max_bytes=settings.max_attachment_bytes + 64 * 1024,
        inbound_max_bytes=settings.max_inbound_message_bytes,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
        )
    app.add_middleware(SecurityHeadersMiddleware, api_prefix=API_PREFIX)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    document_problems(app)
    return app


def app_factory() -> Any:
    """uvicorn --factory entry point."""
    return create_app()
