"""A commons tells its followers about its improvements: Create, Update and Delete of Articles.

Sent by the commons' own actor, so a Mastodon account following ``@yeswiki@host`` sees each
improvement in its timeline, and to the instance actor's followers (other Terreau instances,
which follow the instance rather than each commons). Kept in the commons' outbox, where a
server that follows later reads them back.

One entry point, ``publish_improvement_changes``, called after anything that may change what
an improvement's Article says (its text, budget or status; a pledge, a payment, a match). It
compares the Article with what was last sent (``ImprovementPublication.fingerprint``) and sends
only what changed: a Create when an improvement first leaves draft, an Update when its summary
line or a machine term changed, a Delete when it goes back to draft. Cancelled is a status:
sent as an Update, so followers see it was cancelled rather than have it vanish. Because it
compares with what was sent rather than reacting to events, a missed call is caught up by the
next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.improvements import Improvement, ImprovementStatus
from catalogue.operations import lock_all_commons
from catalogue.organisations import Organisation
from federation.activities import activity
from federation.actors import as_precise_time, as_time, instance_actor
from federation.commons_feed import is_public
from federation.improvements import (
    ARTICLE,
    Matcher,
    SummaryFacts,
    SummaryWriter,
    article_document,
    fingerprint,
    matchers_text,
)
from federation.media import AS_CONTEXT, PUBLIC
from federation.models import ImprovementPublication, OutboxActivity
from federation.outbox import follower_inboxes, publish
from federation.service import Federation
from federation.vocabulary import context_url
from pledges.funding import LedgerFunding
from pledges.models import Match, MatchingProgram, Pledge, RemoteMatch


async def _matchers(session: AsyncSession, ids: list[int]) -> dict[int, list[Matcher]]:
    """Per improvement, the programs whose matches it holds now (ratio and funder's name)."""
    if not ids:
        return {}
    rows = await session.exec(
        select(Pledge.improvement_id, MatchingProgram.ratio, Organisation.name)
        .distinct()
        .select_from(Match)
        .join(Pledge, col(Pledge.id) == col(Match.pledge_id))
        .join(MatchingProgram, col(MatchingProgram.id) == col(Match.program_id))
        .join(Organisation, col(Organisation.id) == col(MatchingProgram.funder_id))
        .where(col(Pledge.improvement_id).in_(ids), col(Match.amount_cents) > 0)
    )
    # Funders on other instances that match pledges to our improvements, as their matches say.
    remote = await session.exec(
        select(Pledge.improvement_id, RemoteMatch.program_ratio, RemoteMatch.funder_name)
        .distinct()
        .select_from(RemoteMatch)
        .join(Pledge, col(Pledge.id) == col(RemoteMatch.pledge_id))
        .where(
            col(Pledge.improvement_id).in_(ids),
            col(RemoteMatch.amount_cents) > 0,
            col(RemoteMatch.program_ratio) != "",
            col(RemoteMatch.funder_name) != "",
        )
    )
    found: dict[int, list[Matcher]] = {}
    for improvement_id, ratio, funder in [*rows.all(), *remote.all()]:
        found.setdefault(improvement_id, []).append(Matcher(ratio, funder))
    return found


async def _candidates(
    session: AsyncSession, ids: Iterable[int], funding: bool, commons_ids: Iterable[int]
) -> list[tuple[Improvement, Commons]]:
    """Local improvements to look at: those named, those of ``commons_ids``, and with
    ``funding`` every one that has a pledge (a pledge on one improvement can move another's
    matches: envelopes are shared)."""
    wanted = set(ids)
    if funding:
        wanted.update((await session.exec(select(Pledge.improvement_id).distinct())).all())
    of_commons = set(commons_ids)
    if of_commons:
        query = select(Improvement.id).where(col(Improvement.commons_id).in_(of_commons))
        wanted.update(i for i in (await session.exec(query)).all() if i is not None)
    if not wanted:
        return []
    rows = await session.exec(
        select(Improvement, Commons)
        .join(Commons, col(Commons.id) == col(Improvement.commons_id))
        .where(col(Improvement.id).in_(wanted), col(Improvement.origin).is_(None))
        .order_by(col(Improvement.id))
    )
    return list(rows.all())


async def unsent_improvement_ids(session: AsyncSession) -> list[int]:
    """Local improvements past draft that were never sent (opened by the demo loader or an
    import, or before this instance federated them): ``publish_improvement_changes`` of these
    puts them in their commons' outboxes, where later followers read them back."""
    sent = select(ImprovementPublication.improvement_uri)
    query = select(Improvement.id).where(
        col(Improvement.origin).is_(None),
        Improvement.status != ImprovementStatus.DRAFT,
        col(Improvement.uri).not_in(sent),
    )
    return [i for i in (await session.exec(query.order_by(col(Improvement.id)))).all() if i]


def _withdrawal(improvement: Improvement) -> dict[str, Any]:
    return {
        "id": improvement.uri,
        "type": "Tombstone",
        "formerType": ARTICLE,
        "deleted": as_time(utcnow()),
    }


def _article(
    improvement: Improvement,
    commons: Commons,
    funding: tuple[int, int],
    matchers: list[Matcher],
    describe: SummaryWriter,
    *,
    published: datetime,
    updated: datetime | None,
) -> dict[str, Any]:
    pledged, matched = funding
    facts = SummaryFacts(
        budget_cents=improvement.budget_cents,
        funded_cents=pledged + matched,
        currency=improvement.currency,
        status=improvement.status,
        matchers=matchers_text(matchers),
    )
    return article_document(
        improvement,
        commons_uri=commons.uri,
        funded_cents=facts.funded_cents,
        summary=describe(facts),
        # To the microsecond: copies keep the newest version, and a day of pledges sends
        # several within a second, which a retried delivery may bring out of order.
        published=as_precise_time(published),
        updated=as_precise_time(updated) if updated is not None else None,
    )


async def current_article(
    session: AsyncSession, describe: SummaryWriter, improvement: Improvement, commons: Commons
) -> dict[str, Any] | None:
    """The Article as it reads now, for a server that fetches its id (Mastodon does when a
    person pastes the address in its search); None for a draft, a copy, or an improvement of
    a hidden or merged commons. Times are those of what was sent, when it was."""
    if (
        improvement.id is None
        or improvement.origin is not None
        or improvement.status == ImprovementStatus.DRAFT
        or not is_public(commons)
    ):
        return None
    totals = await LedgerFunding().totals(session, [improvement.id])
    matchers = await _matchers(session, [improvement.id])
    query = select(ImprovementPublication).where(
        ImprovementPublication.improvement_uri == improvement.uri
    )
    publication = (await session.exec(query)).first()
    return _article(
        improvement,
        commons,
        totals.get(improvement.id, (0, 0)),
        matchers.get(improvement.id, []),
        describe,
        published=publication.published_at if publication else improvement.created_at,
        updated=publication.updated_at if publication else None,
    )


async def publish_improvement_changes(
    session: AsyncSession,
    federation: Federation,
    describe: SummaryWriter,
    improvement_ids: Iterable[int] = (),
    *,
    funding: bool = False,
    commons_ids: Iterable[int] = (),
) -> list[OutboxActivity]:
    """Send what changed about these improvements (and those of ``commons_ids``, and, with
    ``funding``, every one with a pledge); the activities queued. Flushes only: the caller
    commits.

    Drafts are never sent; neither are improvements of a hidden or merged commons, whose actor
    is gone. ``describe`` words the summary line (the instance's default language).
    """
    candidates = await _candidates(session, improvement_ids, funding, commons_ids)
    if not candidates:
        return []
    # Two requests publishing at once about one commons: the second waits here, then reads
    # the first's rows (PostgreSQL; SQLite has one writer). In id order, so none deadlocks.
    await lock_all_commons(session, (c.id for _i, c in candidates if c.id is not None))
    ids = [i.id for i, _c in candidates if i.id is not None]
    totals = await LedgerFunding().totals(session, ids)
    matchers = await _matchers(session, ids)
    uris = [i.uri for i, _c in candidates]
    sent = {
        row.improvement_uri: row
        for row in (
            await session.exec(
                select(ImprovementPublication).where(
                    col(ImprovementPublication.improvement_uri).in_(uris)
                )
            )
        ).all()
    }
    queued: list[OutboxActivity] = []
    for improvement, commons in candidates:
        assert improvement.id is not None and commons.id is not None
        if not is_public(commons):
            continue
        publication = sent.get(improvement.uri)
        if improvement.status == ImprovementStatus.DRAFT:
            if publication is not None:  # back to draft: withdrawn until it opens again
                await session.delete(publication)
                queued.append(
                    await _send(session, federation, commons, "Delete", _withdrawal(improvement))
                )
            continue
        now = utcnow()
        article = _article(
            improvement,
            commons,
            totals.get(improvement.id, (0, 0)),
            matchers.get(improvement.id, []),
            describe,
            published=publication.published_at if publication is not None else now,
            updated=now if publication is not None else None,
        )
        digest = fingerprint(article)
        if publication is not None and publication.fingerprint == digest:
            continue
        if publication is None:
            session.add(
                ImprovementPublication(
                    improvement_uri=improvement.uri, fingerprint=digest, published_at=now
                )
            )
            kind = "Create"
        else:
            publication.fingerprint, publication.updated_at = digest, now
            session.add(publication)
            kind = "Update"
        queued.append(await _send(session, federation, commons, kind, article))
    return queued


async def _send(
    session: AsyncSession,
    federation: Federation,
    commons: Commons,
    kind: str,
    object_: dict[str, Any],
) -> OutboxActivity:
    """From the commons, to Public and its followers; delivered to them and to the instance
    actor's followers, and kept in the commons' outbox."""
    config = federation.config
    sent = activity(config, kind, commons.uri, object_, [PUBLIC])
    sent["@context"] = [AS_CONTEXT, context_url(config)]
    sent["cc"] = [f"{commons.uri}/followers"]
    inboxes = await follower_inboxes(session, commons.uri)
    inboxes += await follower_inboxes(session, instance_actor(config).uri)
    return await publish(session, config, sent, inboxes)
