"""Remote commons in the local catalogue: Create/Update/Delete of commons Groups, and back-fill.

Origin rule: a commons is changed only by its own server. The object's id must be on the host
of the activity's verified signer (or, when back-filling, of the actor whose outbox we read);
anything else is refused with ``Unusable`` and the reason stays on the inbox row.

The handlers leave alone what is not about a commons (a Delete of an actor, a Create of a
note): other handlers registered for the same types deal with those.
``federation.handlers`` imports this module once it has registered its own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons
from catalogue.operations import NotFromOrigin, hide_remote_commons, upsert_remote_commons
from federation.activities import reference
from federation.commons_documents import BadCommons, commons_fields, is_commons_document
from federation.fetch import FetchError
from federation.handlers import Unusable, handles
from federation.instances import host_of
from federation.keys import Signer
from federation.models import InboxItem
from federation.service import Federation

log = logging.getLogger("terreau.federation.commons")

#: How far back a back-fill reads an outbox (pages of 20 activities on Terreau).
MAX_OUTBOX_PAGES = 50
#: Actor types whose outbox announces a whole catalogue (a Terreau instance is an Application).
INSTANCE_TYPES = frozenset({"Application", "Service"})


# --- Applying one document --------------------------------------------------------------------


def _check_origin(object_id: str | None, sender: str) -> str:
    """The object's host, when it is the sender's; Unusable otherwise."""
    host = host_of(object_id or "")
    if not host or host != host_of(sender):
        raise Unusable(f"{object_id!r} is not on the host of {sender}, which sent it")
    return host


async def apply_commons_document(
    session: AsyncSession, document: dict[str, Any], sender: str
) -> Commons:
    """Store the Group ``sender`` speaks for; raises Unusable (origin, or a bad document)."""
    object_id = reference(document)
    host = _check_origin(object_id, sender)
    try:
        fields = commons_fields(document)
    except BadCommons as error:
        raise Unusable(f"commons {object_id}: {error}") from None
    uri, tags = fields.pop("uri"), fields.pop("tags")
    try:
        return await upsert_remote_commons(session, uri, host, fields, tags)
    except NotFromOrigin as error:
        raise Unusable(str(error)) from None


async def remove_commons(session: AsyncSession, object_id: str, sender: str) -> bool:
    """Hide the copy of a commons its origin deleted; False when we hold none by that id.

    A Delete naming another host's object is only refused when it names a commons we hold:
    deletions of anything else are none of this module's business.
    """
    try:
        return await hide_remote_commons(session, object_id, host_of(sender))
    except NotFromOrigin as error:
        raise Unusable(str(error)) from None


# --- Handlers -----------------------------------------------------------------------------------


@handles("Create", "Update")
async def on_commons_document(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    document = activity.get("object")
    if not is_commons_document(document):
        return
    assert isinstance(document, dict)
    await apply_commons_document(session, document, item.actor_uri)


@handles("Delete")
async def on_commons_delete(
    session: AsyncSession, federation: Federation, deletion: dict[str, Any], item: InboxItem
) -> None:
    """A commons' server deleted it (hidden or merged there): hidden here too. An actor that
    deletes itself is forgotten by ``handlers.on_delete``, in the same transaction."""
    object_id = reference(deletion.get("object"))
    if object_id:
        await remove_commons(session, object_id, item.actor_uri)


# --- Back-fill ----------------------------------------------------------------------------------


async def get_on_host(
    federation: Federation, url: str, signer: Signer, host: str
) -> dict[str, Any]:
    """A signed fetch that stays on ``host``: an outbox only speaks for its own server."""
    if host_of(url) != host:
        raise FetchError(url, f"not on {host}")
    fetched = await federation.fetcher.fetch(url, signer=signer)
    if host_of(fetched.url) != host:
        raise FetchError(url, f"redirected off {host} to {fetched.url}")
    return fetched.document


async def _pages(
    federation: Federation, outbox: Any, signer: Signer, host: str
) -> AsyncIterator[dict[str, Any]]:
    """The outbox's pages, ``first`` then each ``next``: at most MAX_OUTBOX_PAGES, none twice."""
    url = reference(outbox)
    if url is None:
        return
    page: Any = (await get_on_host(federation, url, signer, host)).get("first")
    seen: set[str] = set()
    for _ in range(MAX_OUTBOX_PAGES):
        if isinstance(page, dict) and not ("orderedItems" in page or "items" in page):
            page = reference(page)  # a Link to the page rather than the page itself
        if isinstance(page, str):
            if page in seen:
                return
            seen.add(page)
            page = await get_on_host(federation, page, signer, host)
        if not isinstance(page, dict):
            return
        yield page
        page = page.get("next")


async def outbox_activities(
    federation: Federation, actor: dict[str, Any], signer: Signer, host: str
) -> list[dict[str, Any]]:
    """The activities in the actor's outbox, as listed (newest first); what was read before a
    failed fetch is kept, and the failure logged."""
    found: list[dict[str, Any]] = []
    try:
        async for page in _pages(federation, actor.get("outbox"), signer, host):
            items = page.get("orderedItems", page.get("items"))
            if isinstance(items, list):
                found.extend(item for item in items if isinstance(item, dict))
    except FetchError as error:
        log.warning("back-fill: reading the outbox of %s stopped: %s", actor.get("id"), error)
    return found


async def _apply_outbox(session: AsyncSession, activities: list[dict[str, Any]], owner: str) -> int:
    """Apply the newest word on each commons: outboxes list the newest first, so the first
    Create, Update or Delete met for an object decides, and older ones are skipped."""
    decided: set[str] = set()
    applied = 0
    for entry in activities:
        kind, document = entry.get("type"), entry.get("object")
        object_id = reference(document)
        if reference(entry.get("actor")) != owner or object_id is None or object_id in decided:
            continue
        try:
            if kind == "Delete":
                decided.add(object_id)
                applied += await remove_commons(session, object_id, owner)
            elif kind in ("Create", "Update") and isinstance(document, dict):
                if not is_commons_document(document):
                    continue
                decided.add(object_id)
                await apply_commons_document(session, document, owner)
                applied += 1
        except Unusable as error:
            log.warning("back-fill from %s: %s skipped: %s", owner, object_id, error)
    return applied


async def back_fill(session: AsyncSession, federation: Federation, actor_uri: str) -> int:
    """After a remote actor accepted our follow: the commons it already had, which no Create
    will bring any more. A commons Group is stored itself; an instance actor's outbox is read
    back. How many commons were stored or hidden.

    Never raises for the remote side (a fetch that fails, a bad document): the follow is
    accepted all the same, and later activities bring what was missed.
    """
    signer = await federation.instance_signer(session)
    host = host_of(actor_uri)
    try:
        actor = await get_on_host(federation, actor_uri, signer, host)
        if is_commons_document(actor):
            await apply_commons_document(session, actor, actor_uri)
            return 1
    except (FetchError, Unusable) as error:
        log.warning("back-fill from %s failed: %s", actor_uri, error)
        return 0
    kind = actor.get("type")
    if not (isinstance(kind, str) and kind in INSTANCE_TYPES):
        return 0
    activities = await outbox_activities(federation, actor, signer, host)
    return await _apply_outbox(session, activities, actor_uri)


#: How many commons of a followed instance a back-fill reads the outboxes of.
MAX_COMMONS_READ = 200


async def followed_outboxes(
    session: AsyncSession, federation: Federation, actor_uri: str, what: str
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """(commons uri, the activities in its outbox, newest first) for each commons a new
    follow of ``actor_uri`` brings: that commons itself, or every commons we hold from a
    followed instance (at most ``MAX_COMMONS_READ``). For the back-fills of what commons
    publish (improvements, relayed pledges); ``what`` names the back-fill in the logs.
    Fetches that fail are logged and skipped: never raises for the remote side."""
    signer = await federation.instance_signer(session)
    host = host_of(actor_uri)
    try:
        actor = await get_on_host(federation, actor_uri, signer, host)
    except FetchError as error:
        log.warning("%s back-fill from %s failed: %s", what, actor_uri, error)
        return
    if is_commons_document(actor):
        groups = [actor]
    elif isinstance(actor.get("type"), str) and actor["type"] in INSTANCE_TYPES:
        query = (
            select(Commons.uri)
            .where(
                Commons.origin == host,
                col(Commons.hidden).is_(False),
                col(Commons.merged_into_id).is_(None),
            )
            .order_by(col(Commons.id))
            .limit(MAX_COMMONS_READ)
        )
        groups = []
        for uri in (await session.exec(query)).all():
            try:
                groups.append(await get_on_host(federation, uri, signer, host))
            except FetchError as error:
                log.warning("%s back-fill: reading %s failed: %s", what, uri, error)
    else:
        return
    for group in groups:
        owner = reference(group)
        if owner is None or host_of(owner) != host:
            continue
        yield owner, await outbox_activities(federation, group, signer, host)
