"""The async engine, its sessions, and the migrations that alone make the schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; SQLite leaves foreign keys off unless asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def ensure_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, pool_size: int = 5) -> AsyncEngine:
    if make_url(url).get_backend_name() == "sqlite":
        ensure_sqlite_directory(url)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": POSTGRES_SESSION_SETTINGS},
    )


# JIT compilation pays off only for long analytical queries; ours are short, and its start-up
# can cost more than the query. (Generic plans are avoided where data is skewed: see
# catalogue.queries._declarations.)
POSTGRES_SESSION_SETTINGS = {"jit": "off"}


class Database:
    """One engine per process, and sessions that do not expire objects on commit."""

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


# Made by migrations, not by models: full-text search (SQLite's FTS5 table and its shadow
# tables; PostgreSQL's generated tsvector column and its index) and the catalogue's sort
# indexes, whose mixed ASC/DESC orders the models cannot declare.
UNMODELLED = ("commons_search", "ix_commons_search", "search_vector", "ix_commons_visible_")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """What Alembic compares: everything modelled, not the full-text search structures."""
    return not (
        type_ in ("table", "index", "column") and name is not None and name.startswith(UNMODELLED)
    )


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def run_migrations(
    engine: AsyncEngine, revision: str = "head", *, down: bool = False
) -> None:
    """Upgrade (or downgrade) the schema to ``revision`` in one transaction."""
    step = command.downgrade if down else command.upgrade
    async with engine.begin() as connection:
        await connection.run_sync(
            lambda sync: step(
                alembic_config(engine.url.render_as_string(hide_password=False), sync), revision
            )
        )


def upgrade(url: str, revision: str = "head", *, down: bool = False) -> None:
    """``run_migrations`` for sync callers: the CLI, a test session's setup."""

    async def job() -> None:
        engine = create_engine(url)
        try:
            await run_migrations(engine, revision, down=down)
        finally:
            await engine.dispose()

    asyncio.run(job())


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


class NotMigrated(RuntimeError):
    """The database's schema is not the code's: the message says which command fixes it."""


async def check_migrated(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        state = "has no schema yet" if current is None else f"is at revision {current}"
        raise NotMigrated(
            f"The database {state}; this code needs revision {head}. Run `terreau migrate` first."
        )
