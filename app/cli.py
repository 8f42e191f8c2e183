"""`helpdesk` command line: serve, worker, migrate, create-org, create-superuser, demo."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.config import Settings, get_settings
from app.db.database import Database

cli = typer.Typer(
    help="Multi-tenant helpdesk and field-service backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
ModelT = TypeVar("ModelT", bound=BaseModel)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code change (dev).")] = False,
) -> None:
    """Serve the HTTP API with uvicorn (request log in development)."""
    import uvicorn

    log_level, access_log = uvicorn_logging(get_settings())
    console.print(_listening(host, port), soft_wrap=True, markup=False, highlight=False)
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        log_level=log_level,
        access_log=access_log,
    )


def uvicorn_logging(settings: Settings) -> tuple[str, bool]:
    """uvicorn's log level and whether it logs each request: in development at
    LOG_LEVEL (INFO by default) with the access log, one line per request; elsewhere
    warnings and errors only and no access log (requests are counted in `/metrics`)."""
    if settings.environment == "development":
        return settings.log_level.lower(), True
    return ("error" if settings.log_level == "ERROR" else "warning"), False


def _listening(host: str, port: int) -> str:
    """Where `serve` listens, as a URL to open (the wildcard addresses as loopback)."""
    wildcard = host in ("", "0.0.0.0", "::")  # noqa: S104 - naming it, not binding it
    shown = "127.0.0.1" if wildcard else f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    where = " (all interfaces)" if wildcard else ""
    return f"serving on {url}{where} - API docs at {url}/docs"


@cli.command()
def worker() -> None:
    """Run a worker (needs REDIS_URL): SLA timers, outbox relay, deliveries, sweeps."""
    from app.worker import run

    asyncio.run(run(get_settings()))


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (creates the app role and RLS policies on PostgreSQL)."""
    upgrade_database(revision)
    console.print(f"[green]database at {revision}[/green]")


def upgrade_database(revision: str = "head", database_url: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    command.upgrade(config, revision)


@cli.command("create-superuser")
def create_superuser(
    email: Annotated[str, typer.Option(help="Login email.")],
    password: Annotated[str, typer.Option(help="Password (min. 12 characters).")],
) -> None:
    """Create a platform superuser (idempotent: an existing email changes nothing)."""
    from app.users import service as users
    from app.users.schemas import SuperuserCreate

    data = _validated(SuperuserCreate, {"email": email, "password": password})

    async def run() -> bool:
        database = Database(get_settings())
        try:
            async with database.system_session() as session:
                if await users.get_superuser_by_email(session, data.email) is not None:
                    return False
                await users.create_superuser(session, data)
                await session.commit()
                return True
        finally:
            await database.dispose()

    created = asyncio.run(run())
    console.print(f"superuser {data.email} " + ("created" if created else "already exists"))


@cli.command("create-org")
def create_org(
    name: Annotated[str, typer.Option(help="Display name.")],
    slug: Annotated[str, typer.Option(help="Login client_id: lowercase letters, digits, -.")],
    admin_email: Annotated[str, typer.Option(help="First admin's email.")],
    admin_password: Annotated[str, typer.Option(help="First admin's password (12+ chars).")],
    domain: Annotated[str | None, typer.Option(help="Email domain.")] = None,
) -> None:
    """Create an organization and its first admin (idempotent on the slug)."""
    from app.organizations import service as organizations
    from app.organizations.schemas import OrganizationCreate

    data = _validated(
        OrganizationCreate,
        {
            "name": name,
            "slug": slug,
            "domain": domain,
            "admin": {"email": admin_email, "password": admin_password},
        },
    )

    async def run() -> bool:
        database = Database(get_settings())
        try:
            async with database.system_session() as session:
                if await organizations.get_by_slug(session, data.slug) is not None:
                    return False
                await organizations.create_organization(session, data)
                await session.commit()
                return True
        finally:
            await database.dispose()

    created = asyncio.run(run())
    console.print(f"organization {slug} " + ("created" if created else "already exists"))


@cli.command()
def demo(
    tickets: Annotated[int, typer.Option(help="Tickets to create.", min=0)] = 300,
) -> None:
    """Seed the demo organization (once; rerunning changes nothing)."""
    from app.demo import service as demo_seed
    from app.organizations import service as organizations

    async def run() -> bool:
        database = Database(get_settings())
        try:
            async with database.system_session() as session:
                if await organizations.get_by_slug(session, demo_seed.DEMO_SLUG) is not None:
                    return False
                org, _ = await organizations.create_organization(
                    session, demo_seed.demo_organization()
                )
                await session.commit()
            # The organization must exist before a tenant session can write into it, so
            # seeding is a second transaction; if it fails the organization is removed,
            # leaving nothing half-seeded and letting a rerun start clean.
            progress = Progress(
                TextColumn("seeding demo"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            )
            with progress:
                task = progress.add_task("tickets", total=tickets)
                try:
                    tenant = database.tenant_unit(org.id)
                    try:
                        await demo_seed.seed_demo_content(
                            tenant,
                            tickets=tickets,
                            progress=lambda n: progress.advance(task, n),
                        )
                        await tenant.commit()
                    finally:
                        await tenant.close()
                except BaseException:
                    await _remove_organization(database, org.id)
                    raise
                return True
        finally:
            await database.dispose()

    created = asyncio.run(run())
    if not created:
        console.print("demo organization already seeded")
    console.print(
        f"demo login: client_id=[bold]{demo_seed.DEMO_SLUG}[/bold] "
        f"username=[bold]{demo_seed.DEMO_ADMIN_EMAIL}[/bold] "
        f"password=[bold]{demo_seed.DEMO_PASSWORD}[/bold]",
        soft_wrap=True,  # one line even when not a terminal (rich wraps at 80 columns)
    )


async def _remove_organization(database: Database, organization_id: uuid.UUID) -> None:
    from app.organizations.repository import PlatformOrganizationRepository

    async with database.system_session() as session:
        await PlatformOrganizationRepository(session).remove(organization_id)
        await session.commit()


def _validated(schema: type[ModelT], values: dict[str, Any]) -> ModelT:
    """The API's own validation for CLI input: same rules, errors on the terminal."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            console.print(f"[red]{where}: {error['msg']}[/red]")
        raise typer.Exit(code=2) from None


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()


if __name__ == "__main__":
    main()
