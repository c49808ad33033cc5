"""A funder's matches go out: ``Create``, ``Update`` and ``Delete`` of a match Commitment.

Matches change inside money transactions all over the code (a pledge made here or relayed from
afar, a program edited, a contributor approved…), and the ledger already records each change.
So nothing is published where the change happens: the worker reads the ledger past the last
entry it published (``MatchFeed``) and says, per match, where it went since then. A change
made by a process that died before publishing is announced by the next pass; two workers
never announce it twice (the mark moves under the ledger lock).

Each activity is by the program's funder organisation, to the commons' origin when the
commons is another instance's (that instance counts the match in the improvement's funded
amount and sends its Article again, so every copy agrees), to the funder's followers and to
the instance actor's followers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.improvements import Improvement
from catalogue.organisations import Organisation
from federation.activities import new_activity_id
from federation.declarations_feed import commons_inbox
from federation.media import AS_CONTEXT, PUBLIC
from federation.models import MatchFeed
from federation.outbox import follower_inboxes, publish
from federation.pledges_documents import MatchCommitment, match_document
from federation.service import Federation
from federation.vocabulary import context_url
from pledges.ledger import match_uri, take_ledger_lock
from pledges.models import LedgerEntry, Match, MatchingProgram, Pledge

log = logging.getLogger("terreau.federation.matches")

#: Ledger entries one pass publishes at most; the rest waits for the next pass.
MAX_ENTRIES_PER_PASS = 2000


@dataclass(frozen=True)
class MatchMove:
    """Where one match went over a run of ledger entries: from ``before`` to ``after`` cents."""

    program: int
    pledge: int
    before: int
    after: int
    at: datetime

    @property
    def kind(self) -> str | None:
        """The activity that says it: None when it ends where it started (made and released
        between two passes, or adjusted back)."""
        if self.before == self.after:
            return None
        if self.before == 0:
            return "Create"
        return "Delete" if self.after == 0 else "Update"


def moves(entries: Sequence[LedgerEntry]) -> list[MatchMove]:
    """Per (program, pledge), from its first entry's starting point to its last entry's
    amount, in the order the matches first moved. Pure: the ledger in, the news out."""
    first: dict[tuple[int, int], LedgerEntry] = {}
    last: dict[tuple[int, int], LedgerEntry] = {}
    for entry in entries:
        key = (entry.program_id, entry.pledge_id)
        first.setdefault(key, entry)
        last[key] = entry
    return [
        MatchMove(
            program=key[0],
            pledge=key[1],
            before=start.amount_after_cents - start.delta_cents,
            after=last[key].amount_after_cents,
            at=last[key].at,
        )
        for key, start in first.items()
    ]


async def _mark(session: AsyncSession) -> int:
    return (await session.get(MatchFeed, 1, populate_existing=True) or MatchFeed()).last_entry_id


async def _unpublished(session: AsyncSession, mark: int) -> list[LedgerEntry]:
    query = (
        select(LedgerEntry)
        .where(col(LedgerEntry.id) > mark)
        .order_by(col(LedgerEntry.id))
        .limit(MAX_ENTRIES_PER_PASS)
    )
    return list((await session.exec(query)).all())


async def has_unpublished(session: AsyncSession) -> bool:
    """Whether the ledger moved past the mark: one read, so an idle pass writes nothing."""
    newest = (await session.exec(select(func.max(LedgerEntry.id)))).one()
    return newest is not None and newest > await _mark(session)


@dataclass(frozen=True)
class _Parts:
    program: MatchingProgram
    funder: Organisation
    pledge: Pledge
    improvement: Improvement
    commons: Commons


async def _parts(session: AsyncSession, move: MatchMove) -> _Parts:
    program = await session.get(MatchingProgram, move.program)
    pledge = await session.get(Pledge, move.pledge)
    assert program is not None and pledge is not None  # ledger rows reference both (RESTRICT)
    funder = await session.get(Organisation, program.funder_id)
    improvement = await session.get(Improvement, pledge.improvement_id)
    assert funder is not None and improvement is not None
    commons = await session.get(Commons, improvement.commons_id)
    assert commons is not None
    return _Parts(program, funder, pledge, improvement, commons)


def _as_time(moment: datetime) -> str:
    """To the microsecond: two moves of one match within a second must still be ordered."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _document(
    federation: Federation, parts: _Parts, amount_cents: int, at: datetime
) -> dict[str, Any]:
    base_url = federation.config.base_url
    assert parts.program.id is not None and parts.pledge.id is not None
    document = match_document(
        MatchCommitment(
            uri=match_uri(base_url, parts.program.id, parts.pledge.id),
            provider=parts.funder.uri,
            receiver=parts.commons.uri,
            improvement=parts.improvement.uri,
            pledge=parts.pledge.uri,
            program=f"{base_url}/programs/{parts.program.id}",
            program_name=parts.program.name,
            amount_cents=amount_cents,
            currency=parts.pledge.currency,
            program_ratio=parts.program.ratio,
        )
    )
    document["updated"] = _as_time(at)
    return document


async def current_match(
    session: AsyncSession, federation: Federation, program_id: int, pledge_id: int
) -> dict[str, Any] | None:
    """The match of ``pledge_id`` by ``program_id`` as it stands, for whoever fetches its id;
    None when there is none now (never made, or released)."""
    match = (
        await session.exec(
            select(Match).where(Match.program_id == program_id, Match.pledge_id == pledge_id)
        )
    ).first()
    if match is None:
        return None
    last = (
        await session.exec(
            select(func.max(LedgerEntry.at)).where(
                LedgerEntry.program_id == program_id, LedgerEntry.pledge_id == pledge_id
            )
        )
    ).one()
    parts = await _parts(session, MatchMove(program_id, pledge_id, 0, match.amount_cents, last))
    return _document(federation, parts, match.amount_cents, last)


async def ever_matched(session: AsyncSession, program_id: int, pledge_id: int) -> bool:
    """Whether the ledger ever recorded this match (a released one answers 410, not 404)."""
    query = select(LedgerEntry.id).where(
        LedgerEntry.program_id == program_id, LedgerEntry.pledge_id == pledge_id
    )
    return (await session.exec(query.limit(1))).first() is not None


def match_activity(
    federation: Federation, move: MatchMove, kind: str, parts: _Parts
) -> dict[str, Any]:
    """The activity that tells ``move``; a Delete carries the match as it last was, with the
    time of its release, so an instance that never held it keeps it as released."""
    config = federation.config
    amount = move.before if kind == "Delete" else move.after
    document = _document(federation, parts, amount, move.at)
    return {
        "@context": [AS_CONTEXT, context_url(config)],
        "id": new_activity_id(config),
        "type": kind,
        "actor": parts.funder.uri,
        "object": document,
        "to": [parts.commons.uri],
        "cc": [PUBLIC, f"{parts.funder.uri}/followers"],
    }


async def publish_match_changes(session: AsyncSession, federation: Federation) -> int:
    """Publish what the ledger says past the mark, and move the mark; how many activities were
    queued. The activities and their inboxes are made first (a commons' inbox may need a
    fetch) and that read transaction ends; then the ledger lock is taken and the mark read
    again: if another worker moved it meanwhile, this pass publishes nothing. The caller
    commits."""
    mark = await _mark(session)
    entries = await _unpublished(session, mark)
    if not entries:
        return 0
    last = entries[-1].id or mark
    planned: list[tuple[dict[str, Any], list[str]]] = []
    for move in moves(entries):
        kind = move.kind
        if kind is None:
            continue
        parts = await _parts(session, move)
        inboxes = [await commons_inbox(session, federation, parts.commons)]
        inboxes += await follower_inboxes(session, parts.funder.uri)
        inboxes += await follower_inboxes(session, federation.config.instance_actor_uri)
        activity = match_activity(federation, move, kind, parts)
        planned.append((activity, [inbox for inbox in inboxes if inbox]))
    # SQLite cannot turn a read begun before another writer's commit into a write: start
    # the writing transaction afresh (fetches above may also have written actor rows).
    await session.commit()
    await take_ledger_lock(session)
    if await _mark(session) != mark:
        log.info("match changes past %d published by another worker", mark)
        return 0
    for activity, inboxes in planned:
        await publish(session, federation.config, activity, inboxes)
    feed = await session.get(MatchFeed, 1) or MatchFeed(id=1)
    feed.last_entry_id = last
    session.add(feed)
    await session.flush()
    return len(planned)


async def publish_pending_matches(federation: Federation) -> int:
    """One worker step: publish the ledger's news, if any, in a transaction of its own."""
    async with federation.sessions() as session:
        if not await has_unpublished(session):
            return 0
        published = await publish_match_changes(session, federation)
        await session.commit()
    return published
