"""Fixtures that build real things: migrated databases (SQLite and PostgreSQL), apps, clients.

PostgreSQL tests run when TERREAU_TEST_POSTGRES_URL is set (CI sets it); in CI a missing or
unreachable server fails the run instead of skipping, so "green" always means both databases.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient
from support import make_settings

from instance.app import create_app
from instance.config import Settings
from instance.database import Database, upgrade

POSTGRES_ENV = "TERREAU_TEST_POSTGRES_URL"
_counter = itertools.count()


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The server's URL, checked reachable; skips locally when unset, fails in CI."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: set {POSTGRES_ENV}")
        pytest.skip(f"set {POSTGRES_ENV}=postgresql+asyncpg://postgres@127.0.0.1:5432/test to run")
    try:
        asyncio.run(_admin(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        pytest.fail(f"PostgreSQL at {POSTGRES_ENV} is unreachable: {error!r}")
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """A database migrated once per run; each test copies it (CREATE DATABASE … TEMPLATE)."""
    name = f"terreau_template_{os.getpid()}"
    asyncio.run(_admin(postgres_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    upgrade(make_url(postgres_url).set(database=name).render_as_string(hide_password=False))
    yield name
    asyncio.run(_admin(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "terreau.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def _fresh_postgres(request: pytest.FixtureRequest, template: str | None) -> Iterator[str]:
    base = request.getfixturevalue("postgres_url")
    name = f"terreau_test_{os.getpid()}_{next(_counter)}"
    create = f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
    asyncio.run(_admin(base, create))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, new for every test."""
    if request.param == "sqlite":
        path = tmp_path / "terreau.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        yield from _fresh_postgres(request, request.getfixturevalue("postgres_template"))


def _another_database(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, name: str
) -> Iterator[str]:
    """A further migrated database of the same kind as ``database_url`` (another instance's)."""
    if database_url.startswith("sqlite"):
        path = tmp_path / f"{name}.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        yield from _fresh_postgres(request, request.getfixturevalue("postgres_template"))


@pytest.fixture
def postgres_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated PostgreSQL database, for what only PostgreSQL does (SKIP LOCKED…)."""
    yield from _fresh_postgres(request, request.getfixturevalue("postgres_template"))


@pytest.fixture
def second_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    yield from _another_database(request, database_url, tmp_path, "second")


@pytest.fixture
def third_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    yield from _another_database(request, database_url, tmp_path, "third")


@pytest.fixture
def fourth_database_url(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[str]:
    yield from _another_database(request, database_url, tmp_path, "fourth")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    else:
        yield from _fresh_postgres(request, None)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def other_client(client: TestClient) -> Callable[[], TestClient]:
    """Another person's browser on the same running app (own cookies, same event loop)."""

    def make() -> TestClient:
        browser = TestClient(client.app, base_url="http://testserver")
        browser.portal = client.portal
        return browser

    return make


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    database = Database(database_url)
    async with database.session() as db_session:
        yield db_session
    await database.dispose()
