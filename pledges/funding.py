"""The catalogue's FundingSource, counted from live pledges and current matches (this
instance's, and remote funders' matches of pledges to its own improvements).

Remote funders' matches count within what the budget leaves. Each funder computes its matches
on its own instance, blind to the others' (and to this instance's programs), so two of them
could together fund an improvement past its budget; only the improvement's own instance sees
every match, so it keeps the budget: live pledges and its own programs' matches first (both
kept within the budget when they are made), then remote matches up to what is left. An
improvement that allows overfunding counts them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, literal, union_all
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.improvements import Improvement
from pledges.models import LIVE_STATUSES, Match, Pledge, RemoteMatch


def counted_remote(remote: int, *, budget: int, pledged: int, local: int, overfunding: bool) -> int:
    """How much of remote funders' matches counts: what the budget leaves, at most."""
    if overfunding:
        return remote
    return min(remote, max(0, budget - pledged - local))


class LedgerFunding:
    """(pledged, matched) per improvement, in two grouped queries whatever the number (and
    a third for the budgets, when remote funders matched some)."""

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
            select(Pledge.improvement_id, literal(False).label("remote"), Match.amount_cents)
            .join(Pledge, col(Pledge.id) == col(Match.pledge_id))
            .where(col(Pledge.improvement_id).in_(ids))
        )
        remote = (
            select(Pledge.improvement_id, literal(True).label("remote"), RemoteMatch.amount_cents)
            .join(Pledge, col(Pledge.id) == col(RemoteMatch.pledge_id))
            .where(col(Pledge.improvement_id).in_(ids), col(RemoteMatch.amount_cents) > 0)
        )
        both = union_all(local, remote).subquery()
        sums = (
            await session.exec(
                select(
                    both.c.improvement_id, both.c.remote, func.sum(both.c.amount_cents)
                ).group_by(both.c.improvement_id, both.c.remote)
            )
        ).all()
        matched = {i: int(total) for i, from_afar, total in sums if not from_afar}
        remote_sums = {i: int(total) for i, from_afar, total in sums if from_afar}
        if remote_sums:
            budgets = await session.exec(
                select(
                    Improvement.id, Improvement.budget_cents, Improvement.allow_overfunding
                ).where(col(Improvement.id).in_(list(remote_sums)))
            )
            for i, budget, overfunding in budgets.all():
                assert i is not None
                local_sum = matched.get(i, 0)
                matched[i] = local_sum + counted_remote(
                    remote_sums[i],
                    budget=budget,
                    pledged=int(pledged.get(i) or 0),
                    local=local_sum,
                    overfunding=overfunding,
                )
        return {
            i: (int(pledged.get(i) or 0), int(matched.get(i) or 0))
            for i in ids
            if i in pledged or i in matched
        }
