"""How pages list pledges: each one's status in words, and what the reader may do with it.

Shared by the improvement page's pledge section, the page of a remote commons (the pledges
made here to its improvements) and an organisation's page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.organisations import Organisation
from instance.i18n import gettext as _
from pledges.models import PLEDGE_STATUS_LABELS, Pledge, PledgeStatus


def pledge_status_label(pledge: Pledge) -> str:
    """A pledge's status in the reader's language, saying when a refund is due."""
    if pledge.refund_due:
        return _("Refused by the commons after it was paid: refund due")
    for key, label in PLEDGE_STATUS_LABELS.items():
        if key == pledge.status:
            return _(label)
    return pledge.status


@dataclass(frozen=True)
class PledgeActions:
    """What the reader may do with a pledge: members of the pledging organisation cancel
    it; the treasurers (the commons' maintainers, the instance's admins) record its payment
    and its refund, on the instance where it was made."""

    cancel: bool = False
    pay: bool = False
    refund: bool = False
    receipt: bool = False


def pledge_actions(pledge: Pledge, *, member: bool, treasurer: bool) -> PledgeActions:
    ours = pledge.origin is None  # a copy's payment is recorded where it was made
    return PledgeActions(
        cancel=member and pledge.status == PledgeStatus.PLEDGED,
        pay=treasurer and ours and pledge.status == PledgeStatus.PLEDGED,
        refund=treasurer and ours and pledge.refundable,
        receipt=(member or treasurer) and pledge.status == PledgeStatus.PAID,
    )


@dataclass(frozen=True)
class ListedPledge:
    pledge: Pledge
    organisation: Organisation
    actions: PledgeActions


async def local_pledges_by_improvement(
    session: AsyncSession,
    improvement_ids: list[int],
    *,
    my_organisation_ids: set[int | None],
    treasurer: bool,
) -> dict[int, list[ListedPledge]]:
    """The pledges this instance's organisations made to these improvements, oldest first, by
    improvement: a remote commons' page shows them (its origin counts them, not us)."""
    found: dict[int, list[ListedPledge]] = {}
    if not improvement_ids:
        return found
    query = (
        select(Pledge, Organisation)
        .join(Organisation, col(Organisation.id) == col(Pledge.organisation_id))
        .where(col(Pledge.improvement_id).in_(improvement_ids), col(Organisation.origin).is_(None))
        .order_by(col(Pledge.pledged_at), col(Pledge.id))
    )
    for pledge, organisation in (await session.exec(query)).all():
        member = organisation.id in my_organisation_ids
        actions = pledge_actions(pledge, member=member, treasurer=treasurer)
        found.setdefault(pledge.improvement_id, []).append(
            ListedPledge(pledge, organisation, actions)
        )
    return found
