"""Property-based contract test: schemathesis generates requests from our own OpenAPI
document and checks every answer — no 5xx, documented status codes and content types,
bodies matching the declared schemas — as a signed-in admin of a real organization.
Schema-valid input may still be refused with a 422 when a rule beyond the schema says
no (an unknown department, a wrong one-time code), so that one check is left out.

Runs synchronously: schemathesis drives the ASGI app from its own event-loop thread
(starting the app's lifespan there), so the set-up uses its own engine too."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.auth import service as auth
from app.config import Settings
from app.db.database import Database
from app.main import create_app
from app.models import Organization, User
from app.models.user import Role
from tests.support.identity import password_hash


async def _admin_token(settings: Settings) -> str:
    database = Database(settings)
    try:
        async with database.system_session() as session:
            slug = f"contract-{uuid.uuid4().hex[:10]}"
            org = Organization(name="Contract", slug=slug)
            session.add(org)
            await session.flush()
            admin = User(
                organization_id=org.id,
                email=f"admin@{slug}.example.com",
                password_hash=password_hash(),
                role=Role.ADMIN,
            )
            session.add(admin)
            await session.flush()
            pair = await auth.open_session(
                session,
                settings,
                admin,
                auth.ClientInfo("127.0.0.1", "contract"),
                datetime.now(UTC),
            )
            await session.commit()
        return pair.access_token
    finally:
        await database.dispose()


def test_api_conforms_to_its_openapi(settings: Settings) -> None:
    token = asyncio.run(_admin_token(settings))
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 0}))
    schema = (
        schemathesis.openapi.from_asgi("/openapi.json", app)
        .include(path_regex="^/api/v1/")
        # Logging out or revoking the run's own session would end the token mid-run.
        .exclude(path_regex="^/api/v1/(auth/logout|sessions/)")
    )
    headers = {"Authorization": f"Bearer {token}"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, report them all
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{error}" for label, error in failures.items())
