"""Fixtures for federation: two or four in-process instances on one fake network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from peers import Peer, Peers, running_peers


@pytest.fixture
async def pair(
    database_url: str, second_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Peer, Peer, Peers]]:
    """Two instances, ``a.test`` and ``b.test``, each with its own database, on one network."""
    network = Peers()
    specs = [
        ("a.test", database_url, tmp_path / "a"),
        ("b.test", second_database_url, tmp_path / "b"),
    ]
    async with running_peers(network, *specs) as (a, b):
        yield a, b, network


@pytest.fixture
async def network(
    database_url: str,
    second_database_url: str,
    third_database_url: str,
    fourth_database_url: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[Peer, Peer, Peer, Peer, Peers]]:
    """Four instances: ``a.test`` holds the commons, ``b.test`` pledges to it, ``c.test``
    funds, ``d.test`` is a rogue one."""
    peers = Peers()
    specs = [
        ("a.test", database_url, tmp_path / "a"),
        ("b.test", second_database_url, tmp_path / "b"),
        ("c.test", third_database_url, tmp_path / "c"),
        ("d.test", fourth_database_url, tmp_path / "d"),
    ]
    async with running_peers(peers, *specs) as (a, b, c, d):
        yield a, b, c, d, peers
