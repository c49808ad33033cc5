"""The catalogue's FundingSource, counted from live pledges and current matches (this
instance's, and remote funders' matches of pledges to its own improvements)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, union_all
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pledges.models import LIVE_STATUSES, Match, Pledge, RemoteMatch


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
        # This instance's matches and, for its own improvements, other instances' funders'
        # (pledges.remote_matches): one statement, so a page's count of them stays fixed.
        local = (
            select(Pledge.improvement_id, Match.amount_cents)
            .join(Pledge, col(Pledge.id) == col(Match.pledge_id))
            .where(col(Pledge.improvement_id).in_(ids))
        )
        remote = (
            select(Pledge.improvement_id, RemoteMatch.amount_cents)
            .join(Pledge, col(Pledge.id) == col(RemoteMatch.pledge_id))
            .where(col(Pledge.improvement_id).in_(ids), col(RemoteMatch.amount_cents) > 0)
        )
        both = union_all(local, remote).subquery()
        matched = dict(
            (
                await session.exec(
                    select(both.c.improvement_id, func.sum(both.c.amount_cents)).group_by(
                        both.c.improvement_id
                    )
                )
            ).all()
        )
        return {
            i: (int(pledged.get(i) or 0), int(matched.get(i) or 0))
            for i in ids
            if i in pledged or i in matched
        }
