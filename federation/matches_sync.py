"""Matches from funders' instances: ``Create``, ``Update`` and ``Delete`` of a match Commitment.

Only the improvement's own instance acts on them: it counts each match in the improvement's
funded amount (``pledges.remote_matches``) and, when the amount counted moved, sends its
Article again, so that the funder, the pledging organisation's instance and every follower
show the same total. Any other instance (a follower of the funder) ignores them: it hears the
total from the improvement's origin.

Origin rule: the match's ``id`` and its ``provider`` (the funder) are on the signer's host,
and the activity's ``actor`` is the provider. A match of a pledge we have not received yet is
held (``Missing``) until the pledge arrives.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.errors import InvalidFields
from catalogue.improvements import Improvement
from federation.activities import reference
from federation.handlers import Missing, Unusable, handles, speaking_organisation
from federation.instances import host_of
from federation.models import InboxItem
from federation.pledges_documents import BadCommitment, MatchCommitment, is_match, parse_match
from federation.pledges_sync import funding_moved
from federation.service import Federation
from pledges import operations as pledge_ops
from pledges.models import Pledge, RemoteMatch
from pledges.remote_matches import (
    MatchNews,
    NotTheSameMatch,
    record_remote_match,
    release_remote_match,
)

log = logging.getLogger("terreau.federation.matches")


def read_match(activity: dict[str, Any], speaker: str) -> MatchCommitment:
    """The match an activity carries, once the origin rule holds; raises Unusable."""
    try:
        match = parse_match(activity.get("object"))
    except BadCommitment as error:
        raise Unusable(f"match: {error}") from None
    host = host_of(speaker)
    if host_of(match.uri) != host or match.provider != speaker:
        raise Unusable(f"a match is spoken for by its funder ({match.provider}), not {speaker}")
    if reference(activity.get("actor")) != match.provider:
        raise Unusable("a match's activity is by its funder")
    return match


async def _improvement(
    session: AsyncSession, federation: Federation, match: MatchCommitment
) -> Improvement | None:
    """Our improvement the match is about; None when it is another instance's."""
    if host_of(match.improvement) != federation.config.domain:
        return None
    query = select(Improvement).where(Improvement.uri == match.improvement)
    improvement = (await session.exec(query)).first()
    if improvement is None or improvement.origin is not None:
        raise Unusable(f"unknown improvement {match.improvement!r}")
    return improvement


async def _funder_name(session: AsyncSession, federation: Federation, uri: str) -> str:
    """The funder organisation's name, as its actor says (cached, or fetched)."""
    _actor, fields = await speaking_organisation(session, federation, uri, "matching")
    return str(fields.get("name", ""))


async def _count(
    session: AsyncSession,
    federation: Federation,
    match: MatchCommitment,
    amount_cents: int,
    item: InboxItem,
) -> None:
    improvement = await _improvement(session, federation, match)
    if improvement is None:
        item.error = "a match of another instance's improvement: counted at its origin"
        return
    pledge = await pledge_ops.pledge_by_uri(session, match.pledge)
    if pledge is None:
        raise Missing(match.pledge, "a match of a pledge not received yet")
    if pledge.improvement_id != improvement.id:
        raise Unusable(f"pledge {match.pledge} is not to {match.improvement}")
    news = MatchNews(
        uri=match.uri,
        origin=host_of(match.uri),
        funder_uri=match.provider,
        funder_name=await _funder_name(session, federation, match.provider),
        program_uri=match.program,
        program_name=match.program_name,
        amount_cents=amount_cents,
        currency=match.currency,
        changed_at=match.updated or item.received_at,
        program_ratio=match.program_ratio,
    )
    try:
        changed = await record_remote_match(session, pledge, news)
    except (InvalidFields, NotTheSameMatch) as error:
        raise Unusable(f"match {match.uri}: {error}") from None
    if changed:
        log.info("match %s: %d cents counted", match.uri, amount_cents)
        await funding_moved(session, federation, improvement)


@handles("Create", "Update")
async def on_match(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    """A funder matched a pledge to one of our improvements, or changed how much."""
    if not is_match(activity.get("object")):
        return
    match = read_match(activity, item.actor_uri)
    await _count(session, federation, match, match.amount_cents, item)


@handles("Delete")
async def on_match_delete(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    """A funder released a match: with the match as it was (ours), kept as released even
    when it had not arrived yet; with only its id (a Tombstone), released if we hold it."""
    carried = activity.get("object")
    if is_match(carried):
        match = read_match(activity, item.actor_uri)
        await _count(session, federation, match, 0, item)
        return
    uri = reference(carried)
    if not uri or host_of(uri) != host_of(item.actor_uri):
        return
    try:
        changed = await release_remote_match(session, uri, host_of(uri), item.received_at)
    except NotTheSameMatch as error:
        raise Unusable(str(error)) from None
    if changed:
        held = await _held_improvement(session, uri)
        if held is not None:
            await funding_moved(session, federation, held)


async def _held_improvement(session: AsyncSession, match_uri: str) -> Improvement | None:
    query = (
        select(Improvement)
        .join(Pledge, Pledge.improvement_id == Improvement.id)  # type: ignore[arg-type]
        .join(RemoteMatch, RemoteMatch.pledge_id == Pledge.id)  # type: ignore[arg-type]
        .where(RemoteMatch.uri == match_uri)
    )
    return (await session.exec(query)).first()
