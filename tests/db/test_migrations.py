"""Migrations: upgrade, downgrade, upgrade again, on empty PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
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
    # Users' addresses are stored in lower case (look-ups compare them as stored): on
    # SQLite the rule is a pair of triggers, which a rebuild of the table would drop.
    with closing(sqlite3.connect(tmp_path / "helpdesk.db")) as connection:
        connection.execute(
            "INSERT INTO organizations (id, name, slug) VALUES ('o1', 'Acme', 'acme')"
        )
        connection.execute(
            "INSERT INTO users (id, organization_id, email, role) "
            "VALUES ('u1', 'o1', 'jane@example.org', 'customer')"
        )
        for statement in (
            "UPDATE users SET email = 'Jane@Example.org'",
            "INSERT INTO users (id, organization_id, email, role) "
            "VALUES ('u2', 'o1', 'New@Example.ORG', 'customer')",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="ck_users_email_lowercase"):
                connection.execute(statement)
        rows = connection.execute("SELECT email FROM users").fetchall()
    assert rows == [("jane@example.org",)]
