"""Migrations: upgrade, downgrade, upgrade again, on empty PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import PROJECT_ROOT
from app.db.base import Base
from tests.support.services import create_database, drop_database


def _config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


def _round_trip(url: str) -> None:
    config = _config(url)
    command.upgrade(config, "head")
    assert asyncio.run(_tables(url)) == set(Base.metadata.tables)
    command.downgrade(config, "base")
    assert asyncio.run(_tables(url)) == set()
    command.upgrade(config, "head")
    assert asyncio.run(_tables(url)) == set(Base.metadata.tables)


def test_round_trip_on_postgresql() -> None:
    url = asyncio.run(create_database("helpdesk_migr"))
    try:
        _round_trip(url)
        command.check(_config(url))  # raises on drift between models and migrations
    finally:
        asyncio.run(drop_database(url))


def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'helpdesk.db'}")
