"""What each incoming activity does, applied from its stored ``inbox_item`` row.

Handlers register by type (``@handles("Follow")``), as Funkwhale's inbox routes do, so each
kind of object adds its Create, Update, Offer… without touching the loop. Several handlers may
register for one type: each is called in turn, in the order they registered, and each leaves
alone what is not its own (a Create of a commons, of an improvement, of a note). Each stored
row is applied in a transaction of its own: one bad activity fails alone, with its reason kept
on the row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation import remote_json
from federation.activities import activity, reference
from federation.actors import local_actor
from federation.instances import host_of
from federation.models import (
    Follower,
    Following,
    FollowState,
    InboxItem,
    InboxState,
    RemoteActor,
)
from federation.organisation_documents import BadOrganisation
from federation.outbox import publish
from federation.remote_actors import (
    OrganisationUnreachable,
    forget_actor,
    get_remote_actor,
    remote_organisation,
)
from federation.service import Federation

log = logging.getLogger("terreau.federation.handlers")

Handler = Callable[[AsyncSession, Federation, dict[str, Any], InboxItem], Awaitable[None]]
HANDLERS: dict[str, list[Handler]] = {}


class Unusable(Exception):
    """An activity we stored but cannot act on (it names something we do not have...)."""


class Missing(Exception):
    """An activity that needs an object we do not hold yet: an Update before its Create, a
    pledge before its improvement. Its row is held, and applied once an activity about
    ``uri`` has been applied, or tried again later (when a handler may fetch what is missing).
    """

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(reason)
        self.uri = uri


async def speaking_organisation(
    session: AsyncSession, federation: Federation, uri: str, role: str
) -> tuple[RemoteActor, dict[str, Any]]:
    """The actor of an organisation that declares, pledges or matches (cached, or fetched)
    and its copy's columns; Unusable, naming its ``role``, when it is no organisation, and
    Missing (the activity waits, and is tried again) when its server cannot be reached."""
    signer = await federation.instance_signer(session)
    try:
        return await remote_organisation(
            session, federation.fetcher, federation.config, uri, signer=signer, role=role
        )
    except OrganisationUnreachable as error:
        raise Missing(uri, str(error)) from None
    except BadOrganisation as error:
        raise Unusable(str(error)) from None


#: How long a held activity waits before it is tried again without what it waits for: the
#: first wait, doubled each time, up to the last; then it fails for good (about two days).
HOLD_FIRST = timedelta(minutes=1)
HOLD_LONGEST = timedelta(hours=12)
HOLD_TRIES = 12


def handles(*types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for type_ in types:
            HANDLERS.setdefault(type_, []).append(handler)
        return handler

    return register


@handles("Follow")
async def on_follow(
    session: AsyncSession, federation: Federation, follow: dict[str, Any], item: InboxItem
) -> None:
    """Local actors accept every follower at once (``manuallyApprovesFollowers: false``)."""
    config = federation.config
    followed = await local_actor(session, config, reference(follow.get("object")) or "")
    if followed is None:
        raise Unusable("Follow of an actor we do not have")
    signer = await federation.instance_signer(session)
    follower = await get_remote_actor(
        session, federation.fetcher, config, item.actor_uri, signer=signer
    )
    row = (
        await session.exec(
            select(Follower).where(
                Follower.actor_uri == followed.uri, Follower.follower_uri == follower.uri
            )
        )
    ).first()
    if row is None:
        row = Follower(actor_uri=followed.uri, follower_uri=follower.uri, inbox="", follow_id="")
        session.add(row)
    row.inbox, row.shared_inbox, row.follow_id = follower.inbox, follower.shared_inbox, follow["id"]
    accepted = {"id": follow["id"], "type": "Follow", "actor": follower.uri, "object": followed.uri}
    accept = activity(config, "Accept", followed.uri, accepted, [follower.uri])
    await publish(session, config, accept, [follower.inbox], public=False)


@handles("Undo")
async def on_undo(
    session: AsyncSession, federation: Federation, undo: dict[str, Any], item: InboxItem
) -> None:
    undone = undo.get("object")
    undone_id = reference(undone)
    if isinstance(undone, dict) and undone.get("type") not in (None, "Follow"):
        return  # Undo of something the next issue handles (a declaration, a like...)
    query = delete(Follower).where(col(Follower.follower_uri) == item.actor_uri)
    followed = reference(undone.get("object")) if isinstance(undone, dict) else None
    if followed:
        query = query.where(col(Follower.actor_uri) == followed)
    else:
        query = query.where(col(Follower.follow_id) == undone_id)
    await session.exec(query)


def answers_a_follow(answer: dict[str, Any]) -> bool:
    """Whether an Accept or Reject may answer a Follow: its object is a Follow, or an id.
    An embedded Offer or Update (a pledge's answer) is another handler's business."""
    answered = answer.get("object")
    return not (isinstance(answered, dict) and answered.get("type") not in (None, "Follow"))


async def _answer_to_our_follow(
    session: AsyncSession, answer: dict[str, Any], item: InboxItem, state: FollowState
) -> None:
    follow_id = reference(answer.get("object"))
    row = (
        await session.exec(
            select(Following).where(
                Following.follow_id == follow_id, Following.followed_uri == item.actor_uri
            )
        )
    ).first()
    if row is None:
        raise Unusable(f"{answer['type']} of a follow we did not send (or not to this actor)")
    row.state, row.changed_at = state, utcnow()


@handles("Accept")
async def on_accept(
    session: AsyncSession, federation: Federation, accept: dict[str, Any], item: InboxItem
) -> None:
    if not answers_a_follow(accept):
        return
    await _answer_to_our_follow(session, accept, item, FollowState.ACCEPTED)
    await commons_sync.back_fill(session, federation, item.actor_uri)


@handles("Reject")
async def on_reject(
    session: AsyncSession, federation: Federation, reject: dict[str, Any], item: InboxItem
) -> None:
    if not answers_a_follow(reject):
        return
    await _answer_to_our_follow(session, reject, item, FollowState.REJECTED)


@handles("Delete")
async def on_delete(
    session: AsyncSession, federation: Federation, deletion: dict[str, Any], item: InboxItem
) -> None:
    """An actor that deletes itself takes with it everything we hold from it."""
    if reference(deletion.get("object")) == item.actor_uri:
        await forget_actor(session, item.actor_uri)


async def _next_item(session: AsyncSession) -> InboxItem | None:
    query = (
        select(InboxItem)
        .where(InboxItem.state == InboxState.NEW)
        .order_by(col(InboxItem.received_at), col(InboxItem.id))
        .limit(1)
        # Several workers on PostgreSQL each take a different row; ignored on SQLite.
        .with_for_update(skip_locked=True)
    )
    return (await session.exec(query)).first()


async def _apply(session: AsyncSession, federation: Federation, item: InboxItem) -> None:
    activity = remote_json.loads(item.body)
    for handler in HANDLERS.get(item.type, ()):
        await handler(session, federation, activity, item)
    item.state, item.processed_at = InboxState.DONE, utcnow()
    item.waiting_for = item.next_attempt_at = None
    item.attempts += 1
    await _release(session, _named_by(activity))


def _named_by(activity: dict[str, Any]) -> set[str]:
    """The ids an applied activity may have brought: its own, and its object's."""
    ids = {activity.get("id")}
    object_ = activity.get("object")
    ids.add(reference(object_))
    if isinstance(object_, dict):
        ids.add(reference(object_.get("object")))  # an Accept of an Offer brings the Offer
    return {i for i in ids if isinstance(i, str) and i}


async def _release(session: AsyncSession, ids: set[str]) -> None:
    """Held activities waiting for one of ``ids`` go back in line, in the order received."""
    if ids:
        await session.exec(
            update(InboxItem)
            .where(col(InboxItem.state) == InboxState.HELD, col(InboxItem.waiting_for).in_(ids))
            .values(state=InboxState.NEW)
        )


async def _wake_held(session: AsyncSession, now: datetime) -> None:
    """Held activities whose wait is over are tried again (a handler may fetch what is
    missing by then, or its Create may have been lost). Read first: this runs on every pass,
    and an UPDATE, even of no row, takes SQLite's one write lock."""
    due = (col(InboxItem.state) == InboxState.HELD, col(InboxItem.next_attempt_at) <= now)
    if (await session.exec(select(InboxItem.id).where(*due).limit(1))).first() is None:
        return
    await session.exec(update(InboxItem).where(*due).values(state=InboxState.NEW))
    await session.commit()


async def _hold(federation: Federation, item_id: int | None, missing: Missing) -> None:
    """Keep the row until ``missing.uri`` arrives; after ``HOLD_TRIES`` waits it fails."""
    async with federation.sessions() as session:
        item = await session.get(InboxItem, item_id)
        if item is None:
            return
        now = utcnow()
        item.attempts += 1
        item.error = f"waiting for {missing.uri}: {missing}"[:2000]
        if item.attempts >= HOLD_TRIES:
            item.state, item.processed_at = InboxState.FAILED, now
            item.waiting_for = item.next_attempt_at = None
            item.error = f"still missing after {item.attempts} tries: {missing.uri}"[:2000]
        else:
            wait = min(HOLD_FIRST * 2 ** (item.attempts - 1), HOLD_LONGEST)
            item.state, item.waiting_for = InboxState.HELD, missing.uri[:2048]
            item.next_attempt_at = now + wait
        await session.commit()


async def hold_read_back(
    session: AsyncSession, activity: dict[str, Any], actor_uri: str, missing: Missing
) -> bool:
    """An activity a back-fill read in ``actor_uri``'s outbox but could not apply yet (what it
    needs is missing, or its server could not be reached): stored as if delivered, held, so
    that it is tried again as a delivered one would be, rather than lost. Whether it was
    stored (not when the same activity was received already). Flushes only."""
    activity_id = activity.get("id")
    if not isinstance(activity_id, str) or host_of(activity_id) != host_of(actor_uri):
        return False
    now = utcnow()
    values = {
        "activity_id": activity_id[:2048],
        "type": str(activity.get("type", ""))[:50],
        "actor_uri": actor_uri,
        "body": json.dumps(activity, ensure_ascii=False),
        "state": InboxState.HELD,
        "attempts": 1,
        "error": f"waiting for {missing.uri}: {missing}"[:2000],
        "received_at": now,
        "waiting_for": missing.uri[:2048],
        "next_attempt_at": now + HOLD_FIRST,
    }
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = module.insert(InboxItem).values(**values)
    result = await session.exec(statement.on_conflict_do_nothing(index_elements=["activity_id"]))
    return bool(result.rowcount)


async def _record_failure(federation: Federation, item_id: int | None, error: Exception) -> None:
    async with federation.sessions() as session:
        item = await session.get(InboxItem, item_id)
        if item is None:
            return
        item.state, item.processed_at = InboxState.FAILED, utcnow()
        item.attempts += 1
        item.error = f"{type(error).__name__}: {error}"[:2000]
        await session.commit()


async def process_pending(federation: Federation, limit: int = 100) -> int:
    """Apply up to ``limit`` stored activities, oldest first; how many it finished (a
    held one counts: it was dealt with for now)."""
    async with federation.sessions() as session:
        await _wake_held(session, utcnow())
    finished = 0
    while finished < limit:
        async with federation.sessions() as session:
            item = await _next_item(session)
            if item is None:
                break
            item_id, activity_id = item.id, item.activity_id
            try:
                await _apply(session, federation, item)
                await session.commit()
            except Missing as missing:
                await session.rollback()
                log.info("inbox item %s (%s) held: %s", item_id, activity_id, missing)
                await _hold(federation, item_id, missing)
            except Exception as error:  # one bad activity must not stop the others
                await session.rollback()
                log.warning("inbox item %s (%s) failed: %s", item_id, activity_id, error)
                await _record_failure(federation, item_id, error)
        finished += 1
    return finished


# Registers the commons handlers (Create, Update, Delete) and the declaration handlers (Use,
# Interest, their Update and Undo), then the improvement handlers (Create, Update, Delete of
# Articles, and their back-fill on Accept), then the pledge handlers (Offer and Update of a
# Commitment, and the Accept or Reject that answers or relays it), then the match handlers
# (Create, Update, Delete of a funder's match Commitment).
from federation import (  # noqa: E402, F401
    commons_sync,
    declarations_sync,
    improvements_sync,
    matches_sync,
    pledges_sync,
)
