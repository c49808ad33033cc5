"""Commons written by the command line reach other instances, as those made in the pages do.

``terreau demo`` and ``terreau import`` write commons without a page, and used to announce
none of them: the instance actor's outbox stayed empty, so an instance following afterwards
back-filled nothing. Here the real commands (Typer's runner, on the database of the in-process
instance ``a.test``) write the commons; ``b.test`` then follows ``a.test`` and holds them all,
with the figures ``a.test`` counts; followers already there get the import's Create and Update.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from peers import Peer, Peers, drain, local_organisation, rows, running_peers
from sqlmodel import col, select
from typer.testing import CliRunner

from catalogue.commons import Commons
from catalogue.improvements import Improvement, ImprovementStatus
from federation.follows import follow
from federation.models import Following, FollowState, OutboxActivity
from instance.cli import app as cli

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("TERREAU_CONFIG", raising=False)  # --config sets it; undone after
    return CliRunner()


async def terreau(runner: CliRunner, config: Path, *args: str) -> str:
    """Run ``terreau --config CONFIG ARGS`` as an operator would; its output. In a thread:
    the command runs its own event loop."""
    result = await asyncio.to_thread(runner.invoke, cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


async def a_settings_file(runner: CliRunner, tmp_path: Path, database_url: str) -> Path:
    """``terreau init`` for the instance the peer ``a.test`` serves (same address, database)."""
    config = tmp_path / "a.toml"
    await terreau(
        runner, config, "init", "--base-url", "http://a.test", "--database-url", database_url
    )
    return config


async def local_commons(peer: Peer) -> dict[str, Commons]:
    async with peer.federation.sessions() as session:
        query = select(Commons).where(col(Commons.origin).is_(None), col(Commons.hidden).is_(False))
        return {c.uri: c for c in (await session.exec(query)).all()}


async def copies(peer: Peer, origin: str) -> dict[str, Commons]:
    async with peer.federation.sessions() as session:
        query = select(Commons).where(Commons.origin == origin, col(Commons.hidden).is_(False))
        return {c.uri: c for c in (await session.exec(query)).all()}


def announced(outbox: list[OutboxActivity], actor: str, kind: str) -> list[dict[str, Any]]:
    """The commons ``Group``s the instance actor sent as ``kind``."""
    found = [json.loads(r.body) for r in outbox if r.actor_uri == actor and r.type == kind]
    return [f["object"] for f in found if f["object"].get("type") == "Group"]


async def b_follows_a(a: Peer, b: Peer) -> None:
    async with b.federation.sessions() as session:
        await follow(
            session, b.federation, b.federation.config.instance_actor_uri, a.base_url + "/actor"
        )
    await drain(a, b)
    assert [f.state for f in await rows(b, Following)] == [FollowState.ACCEPTED]


async def test_the_demo_s_commons_are_announced_and_a_later_follower_reads_them_back(
    runner: CliRunner, tmp_path: Path, database_url: str, second_database_url: str
) -> None:
    config = await a_settings_file(runner, tmp_path, database_url)
    output = await terreau(runner, config, "demo", "--admin-password", "demo admin password")
    assert "Catalogue: 46 commons, 60 declarations and 16 improvements added." in output

    peers = Peers()
    specs = [
        ("a.test", database_url, tmp_path / "a"),
        ("b.test", second_database_url, tmp_path / "b"),
    ]
    async with running_peers(peers, *specs) as (a, b):
        ours = await local_commons(a)
        assert len(ours) == 46
        outbox = await rows(a, OutboxActivity)
        groups = announced(outbox, "http://a.test/actor", "Create")
        assert sorted(g["id"] for g in groups) == sorted(ours)  # one Create each
        # Sent with the figures of the demo's declarations, written in the same transaction.
        assert {g["id"]: g["usesCount"] for g in groups} == {
            uri: c.uses_count for uri, c in ours.items()
        }
        assert sum(c.uses_count for c in ours.values()) > 0
        # Announcing again is a no-op: the demo adds nothing the second time.
        again = await terreau(runner, config, "demo")
        assert "Catalogue: 0 commons" in again
        assert len(announced(await rows(a, OutboxActivity), "http://a.test/actor", "Create")) == 46

        await b_follows_a(a, b)

        held = await copies(b, "a.test")
        assert sorted(held) == sorted(ours)
        assert {u: (c.name, c.uses_count, c.interested_count) for u, c in held.items()} == {
            u: (c.name, c.uses_count, c.interested_count) for u, c in ours.items()
        }
        # The improvements the demo opened came with them, from each commons' outbox.
        async with a.federation.sessions() as session:
            query = select(Improvement.uri).where(Improvement.status != ImprovementStatus.DRAFT)
            public = set((await session.exec(query)).all())
        async with b.federation.sessions() as session:
            query = select(Improvement.uri).where(col(Improvement.origin) == "a.test")
            assert set((await session.exec(query)).all()) == public


async def test_an_import_is_sent_to_followers_and_read_back_by_later_ones(
    runner: CliRunner,
    tmp_path: Path,
    database_url: str,
    second_database_url: str,
    third_database_url: str,
) -> None:
    config = await a_settings_file(runner, tmp_path, database_url)
    peers = Peers()
    specs = [
        ("a.test", database_url, tmp_path / "a"),
        ("b.test", second_database_url, tmp_path / "b"),
        ("c.test", third_database_url, tmp_path / "c"),
    ]
    async with running_peers(peers, *specs) as (a, b, c):
        for slug in ("cae-nord", "lieu-sud"):  # the file's maintainers
            await local_organisation(a, slug)
        await b_follows_a(a, b)  # before the import: b hears it delivered
        file = DATA / "commons.csv"
        imported = await terreau(runner, config, "import", str(file), "--maintainer", "cae-nord")
        assert "Imported: created 3, updated 0." in imported
        await drain(a, b)
        expected = [
            "http://a.test/commons/guide",
            "http://a.test/commons/serre",
            "http://a.test/commons/yeswiki",
        ]
        assert sorted(await copies(b, "a.test")) == expected

        changed = tmp_path / "changed.csv"
        changed.write_text(
            file.read_text(encoding="utf-8").replace("Les plans d'une serre", "Des plans revus"),
            encoding="utf-8",
        )
        updated = await terreau(runner, config, "import", str(changed), "--maintainer", "cae-nord")
        assert "Imported: created 0, updated 3." in updated
        await drain(a, b)
        serre = (await copies(b, "a.test"))["http://a.test/commons/serre"]
        assert serre.summary == "Des plans revus"
        outbox = await rows(a, OutboxActivity)
        assert len(announced(outbox, "http://a.test/actor", "Create")) == 3
        assert len(announced(outbox, "http://a.test/actor", "Update")) == 3

        # A dry run announces nothing.
        await terreau(runner, config, "import", str(file), "--maintainer", "cae-nord", "--dry-run")
        assert len(await rows(a, OutboxActivity)) == len(outbox)

        # An instance that follows afterwards reads them back, as they read now.
        async with c.federation.sessions() as session:
            await follow(
                session, c.federation, c.federation.config.instance_actor_uri, "http://a.test/actor"
            )
        await drain(a, c)
        held = await copies(c, "a.test")
        assert sorted(held) == expected
        assert held["http://a.test/commons/serre"].summary == "Des plans revus"
