"""Throwaway databases for the benchmarks: a temporary SQLite file, or a new database on a
PostgreSQL server (never the one its URL names), dropped afterwards unless asked to keep it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL as asyncpg takes it (no ``+asyncpg`` driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def postgres_admin(url: str, *statements: str) -> None:
    """Run ``statements`` on the server, outside any transaction (CREATE DATABASE needs it)."""
    connection = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def postgres_database(
    server_url: str, *, keep: bool, one_core: bool = False
) -> AsyncIterator[str]:
    """The URL of ``terreau_bench_<pid>``, made afresh; ``one_core`` turns off parallel
    workers in it, so that a query is measured on one core as the targets say."""
    name = f"terreau_bench_{os.getpid()}"
    statements = [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"]
    if one_core:
        statements.append(f"ALTER DATABASE {name} SET max_parallel_workers_per_gather = 0")
    await postgres_admin(server_url, *statements)
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept PostgreSQL database {name}")
        else:
            await postgres_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def sqlite_database(*, keep: bool) -> Iterator[str]:
    """The URL of ``terreau.db`` in a new temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="terreau-bench-"))
    path = folder / "terreau.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        if keep:
            print(f"kept SQLite database {path}")
        else:
            shutil.rmtree(folder)
