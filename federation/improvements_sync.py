"""Remote improvements: Create/Update/Delete of improvement Articles, and their back-fill.

An improvement is stored under the copy of the commons it is attributed to. Origin rule, as
for commons: the Article's ``id`` and its commons must both be on the host of the activity's
verified signer (or, when back-filling, of the outbox's owner); anything else is refused with
``Unusable`` and the reason stays on the inbox row. A commons we do not hold yet is fetched
(a signed GET, on that same host) and stored first; if it cannot be, the Article is refused,
and a later delivery or back-fill brings it.

The handlers leave alone what is not an improvement (a commons Group, a note, a blog post's
Article from another kind of server): the other handlers of the same types deal with those.
``federation.handlers`` imports this module after the others.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.improvements import Improvement
from catalogue.operations import NotFromOrigin, remove_remote_improvement, upsert_remote_improvement
from federation.activities import reference
from federation.commons_documents import is_commons_document
from federation.commons_sync import apply_commons_document, followed_outboxes, get_on_host
from federation.fetch import FetchError
from federation.handlers import Unusable, answers_a_follow, handles
from federation.improvements import BadImprovement, improvement_fields, is_improvement_document
from federation.instances import host_of
from federation.models import InboxItem
from federation.service import Federation

log = logging.getLogger("terreau.federation.improvements")

# --- Applying one document --------------------------------------------------------------------


async def _commons(session: AsyncSession, federation: Federation, uri: str, host: str) -> Commons:
    """The copy of the commons ``uri`` (on ``host``), fetched and stored when we have none."""
    query = select(Commons).where(Commons.uri == uri)
    commons = (await session.exec(query)).first()
    if commons is None:
        signer = await federation.instance_signer(session)
        try:
            document = await get_on_host(federation, uri, signer, host)
        except FetchError as error:
            raise Unusable(
                f"commons {uri} is unknown here and could not be fetched: {error}"
            ) from None
        if not is_commons_document(document) or document.get("id") != uri:
            raise Unusable(f"{uri} is not a commons")
        commons = await apply_commons_document(session, document, uri)
    if commons.origin != host:
        where = commons.origin or "this instance"
        raise Unusable(f"commons {uri} was made on {where}, not on {host}")
    if commons.hidden or commons.merged_into_id is not None:
        raise Unusable(f"commons {uri} was deleted by its instance")
    return commons


async def apply_improvement_document(
    session: AsyncSession, federation: Federation, document: dict[str, Any], sender: str
) -> Improvement:
    """Store the improvement Article ``sender`` speaks for; raises Unusable (origin, a bad
    document, a commons that cannot be found). Changes nothing when it raises: every check
    runs before the first write, and the caller's transaction rolls back on Unusable."""
    try:
        fields = improvement_fields(document)
    except BadImprovement as error:
        raise Unusable(f"improvement {reference(document)!r}: {error}") from None
    uri, commons_uri = fields.pop("uri"), fields.pop("commons_uri")
    host = host_of(sender)
    for name, value in (("id", uri), ("attributedTo", commons_uri)):
        if not host or host_of(value) != host:
            raise Unusable(f"improvement {name} {value!r} is not on the host of {sender}")
    commons = await _commons(session, federation, commons_uri, host)
    try:
        return await upsert_remote_improvement(session, commons, uri, host, fields)
    except NotFromOrigin as error:
        raise Unusable(str(error)) from None


async def remove_improvement(session: AsyncSession, object_id: str, sender: str) -> bool:
    """Drop the copy of an improvement its origin withdrew; False when we hold none by that
    id (deletions of anything else are other handlers' business)."""
    try:
        return await remove_remote_improvement(session, object_id, host_of(sender))
    except NotFromOrigin as error:
        raise Unusable(str(error)) from None


# --- Handlers -----------------------------------------------------------------------------------


@handles("Create", "Update")
async def on_improvement_document(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    document = activity.get("object")
    if not is_improvement_document(document):
        return
    assert isinstance(document, dict)
    await apply_improvement_document(session, federation, document, item.actor_uri)


@handles("Delete")
async def on_improvement_delete(
    session: AsyncSession, federation: Federation, deletion: dict[str, Any], item: InboxItem
) -> None:
    object_id = reference(deletion.get("object"))
    if object_id:
        await remove_improvement(session, object_id, item.actor_uri)


@handles("Accept")
async def on_follow_accepted(
    session: AsyncSession, federation: Federation, accept: dict[str, Any], item: InboxItem
) -> None:
    """After ``handlers.on_accept`` (which refuses an Accept of a follow we did not send, and
    reads back the commons): the improvements those commons already had."""
    if not answers_a_follow(accept):  # a pledge's Accept (federation.pledges_sync)
        return
    await back_fill(session, federation, item.actor_uri)


# --- Back-fill ----------------------------------------------------------------------------------


async def _apply_outbox(
    session: AsyncSession, federation: Federation, activities: list[dict[str, Any]], owner: str
) -> int:
    """The newest word on each improvement in one commons' outbox (newest first)."""
    decided: set[str] = set()
    applied = 0
    for entry in activities:
        kind, document = entry.get("type"), entry.get("object")
        object_id = reference(document)
        if reference(entry.get("actor")) != owner or object_id is None or object_id in decided:
            continue
        try:
            if kind == "Delete":
                decided.add(object_id)  # withdrawn: an older Create below must not bring it back
                applied += await remove_improvement(session, object_id, owner)
            elif kind in ("Create", "Update") and is_improvement_document(document):
                assert isinstance(document, dict)
                decided.add(object_id)
                # Checks everything before its first write: a refused one leaves nothing.
                await apply_improvement_document(session, federation, document, owner)
                applied += 1
        except Unusable as error:
            log.warning("back-fill from %s: %s skipped: %s", owner, object_id, error)
    return applied


async def back_fill(session: AsyncSession, federation: Federation, actor_uri: str) -> int:
    """After a remote actor accepted our follow: the improvements of its commons, read from
    each commons' outbox (a followed commons, or every commons of a followed instance that we
    now hold). How many were stored or dropped. Never raises for the remote side."""
    applied = 0
    async for owner, activities in followed_outboxes(session, federation, actor_uri, "improvement"):
        applied += await _apply_outbox(session, federation, activities, owner)
    return applied
