"""Alembic environment: async engine, batch mode on SQLite, lock_timeout on PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (registers every table on the metadata)
from app.config import get_settings
from app.db.base import Base
from app.db.session import ensure_sqlite_directory
from app.db.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def render_item(type_: str, obj: object, _autogen_context: object) -> str | bool:
    # Migrations must not import app types: render the portable core type instead.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Maintained by migrations only (PostgreSQL's stored generated tsvector columns for
# search and their GIN indexes, see 0007): the ORM never maps them, so autogenerate must
# not propose dropping them.
DATABASE_ONLY_COLUMNS = {("tickets", "search_document"), ("ticket_comments", "search_document")}
DATABASE_ONLY_INDEXES = {"ix_tickets_search", "ix_ticket_comments_search"}


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, _compare_to: object
) -> bool:
    if not reflected:
        return True
    if type_ == "column":
        table = getattr(getattr(obj, "table", None), "name", None)
        return (table, name) not in DATABASE_ONLY_COLUMNS
    if type_ == "index":
        return name not in DATABASE_ONLY_INDEXES
    return True


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=database_url().startswith("sqlite"),
        compare_type=True,
        render_item=render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    is_pg = connection.dialect.name == "postgresql"
    if is_pg:
        # Fail fast rather than queue behind a long transaction and block all traffic;
        # and see every row: tenant tables FORCE row-level security even for the owner.
        connection.exec_driver_sql("SET lock_timeout = '10s'")
        connection.exec_driver_sql("SELECT set_config('app.platform', 'on', false)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=not is_pg,
        compare_type=True,
        render_item=render_item,
        include_object=include_object,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    ensure_sqlite_directory(database_url())
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
