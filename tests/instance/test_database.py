"""The schema comes from the migrations, matches the models, and works on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient
from support import make_settings

import instance.models  # noqa: F401
from catalogue.organisations import Organisation
from instance.accounts import Account
from instance.app import create_app
from instance.database import (
    Database,
    NotMigrated,
    check_migrated,
    head_revision,
    include_object,
    run_migrations,
)


async def test_models_and_migrations_agree(database_url: str) -> None:
    database = Database(database_url)
    async with database.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(
                    sync, opts={"compare_type": True, "include_object": include_object}
                ),
                SQLModel.metadata,
            )
        )
    await database.dispose()
    assert diff == []


async def test_migrations_go_down_and_up_again(database_url: str) -> None:
    database = Database(database_url)
    await run_migrations(database.engine, "base", down=True)
    with pytest.raises(NotMigrated):
        await check_migrated(database.engine)
    await run_migrations(database.engine, "head")
    await check_migrated(database.engine)
    await database.dispose()


async def test_an_unmigrated_database_is_refused_with_the_command_to_run(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    with pytest.raises(NotMigrated, match="terreau migrate"):
        await check_migrated(database.engine)
    await database.dispose()


def test_the_app_does_not_start_on_an_unmigrated_database(
    empty_database_url: str, tmp_path
) -> None:
    app = create_app(make_settings(empty_database_url, tmp_path))
    with pytest.raises(NotMigrated, match="terreau migrate"), TestClient(app):
        pass


def test_head_revision_is_the_latest_migration() -> None:
    assert head_revision() == "0008"


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    async with database.engine.connect() as connection:
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
    await database.dispose()
    assert (journal, foreign_keys) == ("wal", 1)


@pytest.mark.postgres
async def test_postgresql_sessions_run_without_jit(postgres_database_url: str) -> None:
    """JIT start-up costs more than our short statements take."""
    database = Database(postgres_database_url)
    async with database.engine.connect() as connection:
        jit = (await connection.execute(text("SHOW jit"))).scalar()
    await database.dispose()
    assert jit == "off"


@pytest.mark.postgres
async def test_the_commons_page_plans_its_statements_for_their_values(
    postgres_database_url: str,
) -> None:
    """A generic plan for a skewed commons took 21 ms where its own plan takes 0.4 ms."""
    from catalogue.queries import plan_for_these_values

    database = Database(postgres_database_url)
    async with database.session() as session:
        before = (await session.exec(text("SHOW plan_cache_mode"))).one()[0]  # type: ignore[call-overload]
        await plan_for_these_values(session)
        during = (await session.exec(text("SHOW plan_cache_mode"))).one()[0]  # type: ignore[call-overload]
        await session.rollback()
        after = (await session.exec(text("SHOW plan_cache_mode"))).one()[0]  # type: ignore[call-overload]
    await database.dispose()
    assert (before, during, after) == ("auto", "force_custom_plan", "auto")


async def test_foreign_keys_are_enforced(session: AsyncSession) -> None:
    with pytest.raises(IntegrityError):
        await session.exec(  # type: ignore[call-overload]
            text(
                "INSERT INTO membership (account_id, organisation_id, role, created_at) "
                "VALUES (999, 999, 'member', CURRENT_TIMESTAMP)"
            )
        )


async def test_times_come_back_aware_and_in_utc(session: AsyncSession) -> None:
    paris_evening = datetime(2026, 11, 28, 23, 30, tzinfo=timezone(timedelta(hours=1)))
    account = Account(
        email="t@example.org", display_name="T", password_hash="x", created_at=paris_evening
    )
    session.add(account)
    await session.commit()
    session.expunge_all()
    stored = (await session.exec(select(Account))).one()
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at == datetime(2026, 11, 28, 22, 30, tzinfo=UTC)


async def test_naive_times_are_refused(session: AsyncSession) -> None:
    session.add(
        Account(
            email="n@example.org",
            display_name="N",
            password_hash="x",
            created_at=datetime(2026, 1, 1),  # noqa: DTZ001 (the point)
        )
    )
    with pytest.raises(StatementError, match="naive"):
        await session.commit()


async def test_local_slugs_are_unique_but_remote_copies_may_share_them(
    session: AsyncSession,
) -> None:
    session.add(Organisation(uri="http://testserver/orgs/a", slug="a", name="A", kind="cae"))
    session.add(
        Organisation(
            uri="https://other.example/orgs/a",
            origin="other.example",
            slug="a",
            name="A elsewhere",
            kind="cae",
        )
    )
    await session.commit()
    session.add(Organisation(uri="http://testserver/orgs/a2", slug="a", name="A again", kind="cae"))
    with pytest.raises(IntegrityError):
        await session.commit()
