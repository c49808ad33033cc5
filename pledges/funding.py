"""The catalogue's FundingSource, counted from live pledges and current matches."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pledges.models import LIVE_STATUSES, Match, Pledge


class LedgerFunding:
    """(pledged, matched) per improvement, in two grouped queries whatever the number."""

    async def totals(
        self, session: AsyncSession, improvement_ids: Iterable[int]
    ) -> dict[int, tuple[int, int]]:
        ids = list(improvement_ids)
        if not ids:
            return {}
        pledged = dict(
            (
                await session.exec(
                    select(Pledge.improvement_id, func.sum(Pledge.amount_cents))
                    .where(
                        col(Pledge.improvement_id).in_(ids), col(Pledge.status).in_(LIVE_STATUSES)
                    )
                    .group_by(col(Pledge.improvement_id))
                )
            ).all()
        )
        matched = dict(
            (
                await session.exec(
                    select(Pledge.improvement_id, func.sum(Match.amount_cents))
                    .join(Pledge, col(Pledge.id) == col(Match.pledge_id))
                    .where(col(Pledge.improvement_id).in_(ids))
                    .group_by(col(Pledge.improvement_id))
                )
            ).all()
        )
        return {
            i: (int(pledged.get(i) or 0), int(matched.get(i) or 0))
            for i in ids
            if i in pledged or i in matched
        }
