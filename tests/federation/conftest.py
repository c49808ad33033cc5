"""Fixtures for federation: two in-process instances on one fake network, and their objects."""

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
