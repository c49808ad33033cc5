"""A local organisation's pledges go out: ``Offer`` of a Commitment, then ``Update`` on each
change of status, each signed with an FEP-8b32 proof by the organisation's Ed25519 key.

Sent to the commons' origin (when the commons is a copy of a remote one: that instance decides
whether the pledge fits the budget, and answers ``Accept`` or ``Reject``), to the organisation's
followers and to the instance actor's followers. The proof is what lets a third instance (a
funder's) trust the pledge when the commons' instance relays it inside its ``Accept``: the
relay's HTTP signature proves who relayed it, the proof who pledged.

The commons' inbox is looked up *before* the change takes the ledger lock (a fetch may take
seconds): callers call ``pledge_inboxes`` first, then change the pledge with ``commit=False``,
``publish_*`` and commit once.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.improvements import Improvement
from catalogue.organisations import Organisation
from federation.activities import new_activity_id
from federation.declarations_feed import commons_inbox
from federation.keys import ed25519_key_id, key_for
from federation.media import AS_CONTEXT, PUBLIC
from federation.models import OutboxActivity
from federation.outbox import follower_inboxes, publish
from federation.pledges_documents import Commitment, commitment_document
from federation.proofs import private_key_from_pem, sign
from federation.service import Federation
from federation.vocabulary import context_url
from pledges.models import Pledge, PledgeStatus


async def _parts(
    session: AsyncSession, pledge: Pledge
) -> tuple[Organisation, Improvement, Commons]:
    organisation = await session.get(Organisation, pledge.organisation_id)
    improvement = await session.get(Improvement, pledge.improvement_id)
    assert organisation is not None and improvement is not None
    commons = await session.get(Commons, improvement.commons_id)
    assert commons is not None
    return organisation, improvement, commons


async def commitment_of(session: AsyncSession, pledge: Pledge) -> Commitment:
    """The pledge as its Commitment says it now."""
    organisation, improvement, commons = await _parts(session, pledge)
    return Commitment(
        uri=pledge.uri,
        provider=organisation.uri,
        receiver=commons.uri,
        improvement=improvement.uri,
        amount_cents=pledge.amount_cents,
        currency=pledge.currency,
        status=pledge.status,
        published=pledge.pledged_at,
        updated=pledge.changed_at if pledge.status != PledgeStatus.PLEDGED else None,
    )


async def pledge_inboxes(
    session: AsyncSession, federation: Federation, organisation: Organisation, commons: Commons
) -> list[str]:
    """Where ``organisation``'s pledges to ``commons`` go: the commons' origin (none for a
    local commons: nothing to send to itself), the organisation's followers and the instance
    actor's followers."""
    inboxes = [await commons_inbox(session, federation, commons)]
    inboxes += await follower_inboxes(session, organisation.uri)
    inboxes += await follower_inboxes(session, federation.config.instance_actor_uri)
    return [inbox for inbox in inboxes if inbox]


async def inboxes_of(session: AsyncSession, federation: Federation, pledge: Pledge) -> list[str]:
    """Where the news of an existing pledge goes (``pledge_inboxes`` of its parts)."""
    organisation, _improvement, commons = await _parts(session, pledge)
    return await pledge_inboxes(session, federation, organisation, commons)


async def signed_by(
    session: AsyncSession, actor_uri: str, document: dict[str, Any]
) -> dict[str, Any]:
    """``document`` with a fresh FEP-8b32 proof by the local actor's Ed25519 key (made on first
    use, in the caller's transaction)."""
    key = await key_for(session, actor_uri)
    return sign(
        document,
        private_key_from_pem(key.ed25519_private_pem),
        ed25519_key_id(actor_uri),
        created=utcnow(),
    )


async def _publish(
    session: AsyncSession,
    federation: Federation,
    pledge: Pledge,
    kind: str,
    inboxes: list[str],
) -> OutboxActivity | None:
    if pledge.origin is not None:
        return None  # a copy: only its own instance speaks for it
    config = federation.config
    commitment = await commitment_of(session, pledge)
    activity = {
        "@context": [AS_CONTEXT, context_url(config)],
        "id": new_activity_id(config),
        "type": kind,
        "actor": commitment.provider,
        "object": commitment_document(commitment),
        "to": [commitment.receiver],
        "cc": [PUBLIC, f"{commitment.provider}/followers"],
    }
    signed = await signed_by(session, commitment.provider, activity)
    sent = await publish(session, config, signed, inboxes)
    _organisation, _improvement, commons = await _parts(session, pledge)
    if commons.origin is None:
        await publish(session, config, kept_acceptance(federation, commons, signed), [])
    return sent


def kept_acceptance(
    federation: Federation, commons: Commons, carrier: dict[str, Any]
) -> dict[str, Any]:
    """The commons' ``Accept`` of a pledge made on its own instance: the ``Offer`` or
    ``Update`` as sent (proof included), as ``pledges_sync`` answers the pledges of other
    instances. Kept in the commons' outbox and sent nowhere (the followers heard the Offer or
    Update itself), so that a funder that follows later reads these pledges back with the
    others (``pledges_sync.back_fill`` reads Accepts only)."""
    config = federation.config
    return {
        "@context": [AS_CONTEXT, context_url(config)],
        "id": new_activity_id(config),
        "type": "Accept",
        "actor": commons.uri,
        "object": carrier,
        "to": [carrier["actor"]],
        "cc": [f"{commons.uri}/followers"],
    }


async def publish_pledge(
    session: AsyncSession, federation: Federation, pledge: Pledge, inboxes: list[str]
) -> OutboxActivity | None:
    """Queue the ``Offer`` of a pledge just made here (None for a copy). Flushes only."""
    return await _publish(session, federation, pledge, "Offer", inboxes)


async def publish_pledge_status(
    session: AsyncSession, federation: Federation, pledge: Pledge, inboxes: list[str]
) -> OutboxActivity | None:
    """Queue the ``Update`` of a pledge whose status changed here (None for a copy: a
    payment recorded on the commons' instance stays there for now). Flushes only."""
    return await _publish(session, federation, pledge, "Update", inboxes)
