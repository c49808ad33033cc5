"""How much of remote funders' matches an improvement's own instance counts (pure)."""

from __future__ import annotations

import pytest

from pledges.funding import counted_remote


@pytest.mark.parametrize(
    ("remote", "pledged", "local", "overfunding", "counted"),
    [
        (50_000, 70_000, 0, False, 50_000),  # room for all of it
        (100_000, 70_000, 0, False, 80_000),  # up to the budget of 1,500 €
        (100_000, 70_000, 60_000, False, 20_000),  # this instance's programs came first
        (100_000, 150_000, 0, False, 0),  # pledges took it all
        (100_000, 140_000, 30_000, False, 0),  # never below nothing
        (100_000, 70_000, 0, True, 100_000),  # overfunding allowed: all of it
    ],
)
def test_remote_matches_count_within_what_the_budget_leaves(
    remote: int, pledged: int, local: int, overfunding: bool, counted: int
) -> None:
    assert (
        counted_remote(
            remote, budget=150_000, pledged=pledged, local=local, overfunding=overfunding
        )
        == counted
    )
