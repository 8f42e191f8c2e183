"""`alembic check` against a fresh PostgreSQL database: the models and the migrations
must describe the same schema."""

from __future__ import annotations

import asyncio
import sys

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from app.cli import PROJECT_ROOT, upgrade_database
from tests.support.services import create_database, drop_database


def main() -> int:
    url = asyncio.run(create_database("helpdesk_check"))
    try:
        upgrade_database("head", url)
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", url)
        try:
            command.check(config)
        except CommandError as exc:
            print(f"alembic check: {exc}", file=sys.stderr)
            return 1
        print("alembic check: no drift")
        return 0
    finally:
        asyncio.run(drop_database(url))


if __name__ == "__main__":
    sys.exit(main())
