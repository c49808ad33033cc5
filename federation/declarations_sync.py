"""Declarations from other instances: Use and Interest, their Update and their Undo.

A remote organisation says it uses (or is interested in) a commons we hold: one of ours, or the
copy of a remote one. The declaration is stored with ``origin`` = the sender's host, on a copy
of the organisation (fetched as an actor), and the commons' figures are recounted; when the
commons is ours, the new figures are announced (``declarations_feed.announce_counts``) so every
copy converges on them.

Origin rule: the declaration's ``id`` and its ``actor`` must be on the host of the activity's
verified signer. Anything refused raises ``Unusable`` with the reason, which stays on the inbox
row; the worker rolls the row's transaction back, so nothing is half-applied.

The handlers leave alone what is not a declaration (an Undo of a Follow, an Update of a
commons): other handlers registered for the same types deal with those.
``federation.handlers`` imports this module once it has registered its own.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.declarations import Declaration
from catalogue.organisations import Organisation
from federation.activities import reference
from federation.declarations import (
    BadDeclaration,
    DeclarationDocument,
    is_declaration,
    parse_declaration,
)
from federation.declarations_feed import Counts, announce_counts
from federation.handlers import Unusable, handles, speaking_organisation
from federation.instances import host_of
from federation.models import InboxItem
from federation.service import Federation
from federation.vocabulary import INTEREST, USE

log = logging.getLogger("terreau.federation.declarations")


def read_declaration(document: Any, sender: str) -> DeclarationDocument:
    """The checked declaration ``sender`` speaks for; Unusable when it is malformed, or when
    its id or its organisation is on another host than the sender's."""
    try:
        declaration = parse_declaration(document)
    except BadDeclaration as error:
        raise Unusable(f"declaration {reference(document)!r}: {error}") from None
    host = host_of(sender)
    for name, uri in (("id", declaration.uri), ("actor", declaration.actor)):
        if host_of(uri) != host:
            raise Unusable(f"the declaration's {name} {uri!r} is not on the host of {sender}")
    return declaration


async def _commons(session: AsyncSession, uri: str) -> Commons:
    """The commons a declaration names: ours, or a copy we hold (a merged one's target)."""
    commons = (await session.exec(select(Commons).where(Commons.uri == uri))).first()
    if commons is not None and commons.merged_into_id is not None:
        commons = await session.get(Commons, commons.merged_into_id)
    if commons is None:
        raise Unusable(f"the declaration names a commons we do not have: {uri!r}")
    return commons


async def _organisation(session: AsyncSession, federation: Federation, uri: str) -> Organisation:
    """The copy of the declaring organisation, from its actor document (cached, or fetched)."""
    actor, fields = await speaking_organisation(session, federation, uri, "declaring")
    try:
        return await ops.upsert_remote_organisation(session, uri, actor.host, fields)
    except ops.NotFromOrigin as error:
        raise Unusable(str(error)) from None


async def apply_declaration(
    session: AsyncSession,
    federation: Federation,
    document: Any,
    sender: str,
    *,
    withdrawn: bool = False,
) -> None:
    """Store (or, ``withdrawn``, record as withdrawn) the declaration in ``document``, sent by
    ``sender``; announce the commons' new figures when it is ours. Raises Unusable."""
    declaration = read_declaration(document, sender)
    commons = await _commons(session, declaration.commons)
    before = Counts.of(commons)
    organisation = await _organisation(session, federation, declaration.actor)
    cleaned = {
        "kind": declaration.kind.value,
        "since": declaration.since,
        "comment": declaration.comment,
        "satisfaction": declaration.satisfaction,
        "created_at": declaration.published,
    }
    try:
        await ops.apply_remote_declaration(
            session,
            uri=declaration.uri,
            origin=host_of(sender),
            organisation=organisation,
            commons=commons,
            cleaned=cleaned,
            withdrawn=withdrawn,
        )
    except (ops.NotFromOrigin, ops.NotTheSame) as error:
        raise Unusable(str(error)) from None
    await announce_counts(session, federation, commons, before)


async def withdraw_declaration(
    session: AsyncSession, federation: Federation, uri: str, sender: str
) -> bool:
    """Withdraw the declaration ``uri`` if we hold it (its row is kept); whether we hold it."""
    held = await ops.declaration_by_uri(session, uri)
    if held is None:
        return False
    commons = await session.get(Commons, held.commons_id)
    assert commons is not None
    before = Counts.of(commons)
    try:
        await ops.withdraw_remote_declaration(session, uri, host_of(sender))
    except ops.NotFromOrigin as error:
        raise Unusable(str(error)) from None
    await announce_counts(session, federation, commons, before)
    return True


# --- Handlers -----------------------------------------------------------------------------------


@handles(USE, INTEREST)
async def on_declaration(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    """A new declaration. One we already hold is left as it is: a replay, or a copy arriving
    after its own Update, must not undo the Update."""
    if await ops.declaration_by_uri(session, str(activity.get("id"))) is not None:
        read_declaration(activity, item.actor_uri)  # still refused when malformed or forged
        return
    await apply_declaration(session, federation, activity, item.actor_uri)


@handles("Update")
async def on_declaration_update(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    """A changed date, satisfaction or comment (stored as new when it arrives first)."""
    document = activity.get("object")
    if is_declaration(document):
        await apply_declaration(session, federation, document, item.actor_uri)


@handles("Undo")
async def on_declaration_undo(
    session: AsyncSession, federation: Federation, activity: dict[str, Any], item: InboxItem
) -> None:
    """A withdrawal. Embedded (as we send it), a declaration we never had is recorded as
    withdrawn, so that a late copy of it does not count; by id alone, only one we hold is
    withdrawn (an Undo naming something else by id is another handler's)."""
    document = activity.get("object")
    if isinstance(document, str):
        await withdraw_declaration(session, federation, document, item.actor_uri)
        return
    if not is_declaration(document):
        return
    declaration = read_declaration(document, item.actor_uri)
    if await withdraw_declaration(session, federation, declaration.uri, item.actor_uri):
        return
    await apply_declaration(session, federation, document, item.actor_uri, withdrawn=True)


@handles("Delete")
async def on_organisation_delete(
    session: AsyncSession, federation: Federation, deletion: dict[str, Any], item: InboxItem
) -> None:
    """An organisation that deletes itself no longer uses anything: its declarations are
    withdrawn (kept, as every withdrawn one is) and the figures they moved are recounted.
    ``handlers.on_delete`` forgets the actor itself, in the same transaction."""
    if reference(deletion.get("object")) != item.actor_uri:
        return
    query = select(Organisation).where(
        Organisation.uri == item.actor_uri, Organisation.origin == host_of(item.actor_uri)
    )
    organisation = (await session.exec(query)).first()
    if organisation is None:
        return
    active = select(Declaration.uri).where(
        Declaration.organisation_id == organisation.id, col(Declaration.withdrawn_at).is_(None)
    )
    for uri in (await session.exec(active.order_by(col(Declaration.id)))).all():
        await withdraw_declaration(session, federation, uri, item.actor_uri)
