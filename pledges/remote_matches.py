"""Matches made by funders on other instances, of pledges to our improvements.

Matching stays on the funder's instance: its programs, caps and envelope live there, and it
alone computes its matches, over every pledge it knows. The improvement's own instance only
*counts* them, so that the funded amount it shows, and sends to every copy, is the same
everywhere. It keeps the latest version of each match (a released one as 0), so versions that
arrive out of order, or twice, change nothing.

What a remote match does not do: it is not an input of this instance's own programs (they
match by their rules over the pledges, as ``pledges.matching`` states), and it is not checked
against the funder's rules, which only its instance knows. A funder that misbehaves is an
instance to block, as any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from pledges.ledger import refresh_needs, take_ledger_lock
from pledges.models import Pledge, RemoteMatch
from pledges.operations import MAX_PLEDGE_CENTS


class NotTheSameMatch(ValueError):
    """A match id already held for another origin or pledge."""


@dataclass(frozen=True)
class MatchNews:
    """What a funder's instance says of one of its matches, as of ``changed_at``."""

    uri: str
    origin: str  # the funder's host
    funder_uri: str
    funder_name: str
    program_uri: str
    program_name: str
    amount_cents: int  # 0: released
    currency: str
    changed_at: datetime
    program_ratio: str = ""


def _refuse(field: str, message: str) -> InvalidFields:
    return InvalidFields([InvalidField(field, message)])


async def match_by_uri(session: AsyncSession, uri: str) -> RemoteMatch | None:
    query = select(RemoteMatch).where(RemoteMatch.uri == uri)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def record_remote_match(session: AsyncSession, pledge: Pledge, news: MatchNews) -> bool:
    """Keep ``news`` about a match of ``pledge`` (one of ours, or a copy we count); whether
    the amount counted changed. An older version than the one held is ignored.

    Under the ledger lock, as every change to a funded amount, so a pledge being admitted at
    the same moment sees it. Flushes only. Raises InvalidFields (amount, currency) or
    NotTheSameMatch when ``news.uri`` is held for another origin or pledge."""
    assert pledge.id is not None
    if not 0 <= news.amount_cents <= MAX_PLEDGE_CENTS:
        raise _refuse("amount", N_("This amount is larger than allowed."))
    if news.currency != pledge.currency:
        raise _refuse("currency", N_("A match is in its pledge's currency."))
    await take_ledger_lock(session)
    held = await match_by_uri(session, news.uri)
    if held is None:
        held = RemoteMatch(
            uri=news.uri,
            origin=news.origin,
            pledge_id=pledge.id,
            funder_uri=news.funder_uri,
            program_uri=news.program_uri,
            amount_cents=0,
        )
    elif (held.origin, held.pledge_id) != (news.origin, pledge.id):
        raise NotTheSameMatch(f"{news.uri} is held for another origin or pledge")
    elif news.changed_at < held.changed_at:
        return False
    before = held.amount_cents
    held.funder_uri = news.funder_uri
    held.funder_name = news.funder_name[:200]
    held.program_uri = news.program_uri
    held.program_name = news.program_name[:200]
    held.program_ratio = news.program_ratio[:20]
    held.amount_cents = news.amount_cents
    held.currency = news.currency
    held.changed_at = min(news.changed_at, utcnow())
    session.add(held)
    await session.flush()
    if before != held.amount_cents:
        await refresh_needs(session, {pledge.improvement_id})
    return before != held.amount_cents


async def release_remote_match(
    session: AsyncSession, uri: str, origin: str, changed_at: datetime
) -> bool:
    """The funder released a match we hold (a Delete that names only its id); whether the
    amount counted changed. An unknown match is nothing to release. Flushes only."""
    await take_ledger_lock(session)
    held = await match_by_uri(session, uri)
    if held is None:
        return False
    if held.origin != origin:
        raise NotTheSameMatch(f"{uri} was made on {held.origin}, not on {origin}")
    if changed_at < held.changed_at:
        return False
    before = held.amount_cents
    held.amount_cents = 0
    held.changed_at = min(changed_at, utcnow())
    session.add(held)
    await session.flush()
    pledge = await session.get(Pledge, held.pledge_id)
    if before and pledge is not None:
        await refresh_needs(session, {pledge.improvement_id})
    return before != 0
