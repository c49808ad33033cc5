"""How far each improvement is funded: what the catalogue shows, wherever the money is counted.

The catalogue does not count money itself: pledges and matches live in ``pledges`` (issue #4),
which depends on the catalogue and not the other way round. It plugs a FundingSource in; until
then nothing is pledged, so every improvement shows its whole budget as still needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.improvements import Improvement


@dataclass(frozen=True)
class Funding:
    budget_cents: int
    pledged_cents: int = 0
    matched_cents: int = 0
    currency: str = "EUR"

    @property
    def funded_cents(self) -> int:
        return self.pledged_cents + self.matched_cents

    @property
    def remaining_cents(self) -> int:
        return max(0, self.budget_cents - self.funded_cents)

    @property
    def percent(self) -> int:
        """Whole percent funded, rounded down (never shows 100 % before it is reached)."""
        if self.budget_cents <= 0:
            return 0
        return self.funded_cents * 100 // self.budget_cents


class FundingSource(Protocol):
    async def totals(
        self, session: AsyncSession, improvement_ids: Iterable[int]
    ) -> dict[int, tuple[int, int]]:
        """(pledged, matched) cents per improvement id; missing ids have none."""
        ...


class NothingPledgedYet:
    async def totals(
        self, session: AsyncSession, improvement_ids: Iterable[int]
    ) -> dict[int, tuple[int, int]]:
        return {}


async def funding_of(
    session: AsyncSession, improvements: Iterable[Improvement], source: FundingSource
) -> dict[int, Funding]:
    """Funding per improvement id, in one query to the source whatever the number of items."""
    items = [i for i in improvements if i.id is not None]
    totals = await source.totals(session, [i.id for i in items if i.id is not None])
    result: dict[int, Funding] = {}
    for item in items:
        assert item.id is not None
        pledged, matched = totals.get(item.id, (0, 0))
        if item.origin is not None and item.origin_funded_cents is not None:
            # A copy from another instance: its money is counted at its origin, which reports
            # one funded figure (pledges and matches together).
            pledged, matched = item.origin_funded_cents, 0
        result[item.id] = Funding(item.budget_cents, pledged, matched, item.currency)
    return result
