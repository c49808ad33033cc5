"""Pledges from other instances: ``Offer`` and ``Update`` of a Commitment, and their relay.

Three places a pledge arrives at, three rules:

- **the improvement's instance** (the commons' origin) receives the organisation's ``Offer``
  and decides, by the same money rules as a pledge made there (open, in its currency, within
  what is still needed, under the ledger lock): it stores the pledge (``origin`` = the
  organisation's host) and answers ``Accept`` (actor: the commons; object: the Offer as
  received, proof included) to the organisation and to the commons' and the instance's
  followers, or ``Reject`` to the organisation. An ``Update`` (cancelled, paid, refunded) from
  the pledge's origin is applied, then relayed the same way;
- **any other instance** (a funder's, following the commons' instance) stores a pledge copy
  only from such a relay: an ``Accept`` by the improvement's own instance whose embedded Offer
  (or Update) carries a valid FEP-8b32 proof by the organisation's ``assertionMethod`` key.
  Then its matching programs match it, with their eligibility by instance and their manual
  approvals: a pledge relayed by some other instance, or without a valid proof, is refused;
- **the organisation's instance** hears the ``Accept`` of its own pledge (nothing to do) or
  the ``Reject`` (the pledge is refused there: it counts nowhere; paid already, a refund due).

A funder that follows a commons' instance late reads the Accepts back from the commons'
outboxes (``back_fill``), as improvements are read back.

Origin rule, as everywhere: the Commitment's ``id`` and ``provider`` are on the host of the
one who speaks for it (the HTTP signer of an Offer or Update, the proof's key for a relay).
Anything refused raises ``Unusable`` (its reason kept on the inbox row, nothing applied);
what is missing (the improvement's copy, the pledge an Update is about) raises ``Missing``,
so the activity is held until it arrives. ``federation.handlers`` imports this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue import operations as ops
from catalogue.columns import utcnow
from catalogue.commons import Commons
from catalogue.errors import InvalidFields
from catalogue.improvements import Improvement
from catalogue.organisations import Organisation
from federation.activities import new_activity_id, reference
from federation.commons_sync import followed_outboxes
from federation.fetch import FetchError
from federation.handlers import (
    Missing,
    Unusable,
    answers_a_follow,
    handles,
    hold_read_back,
    speaking_organisation,
)
from federation.improvements_feed import publish_improvement_changes
from federation.instances import host_of
from federation.media import AS_CONTEXT
from federation.models import InboxItem, OutboxActivity
from federation.outbox import follower_inboxes, publish
from federation.pledges_documents import (
    BadCommitment,
    Commitment,
    check_currency,
    is_commitment,
    parse_commitment,
)
from federation.proofs import BadProof, proof_of, verify
from federation.remote_actors import get_remote_actor
from federation.service import Federation
from federation.vocabulary import context_url
from pledges import operations as pledge_ops
from pledges.models import Pledge, PledgeStatus

log = logging.getLogger("terreau.federation.pledges")

#: The activities that carry a Commitment, and that a commons' instance relays in its Accept.
CARRIERS = ("Offer", "Update")


# --- Reading ------------------------------------------------------------------------------------


def read_commitment(carrier: Mapping[str, Any], speaker: str) -> Commitment:
    """The Commitment ``carrier`` (an Offer or Update) holds, which ``speaker`` (an actor
    id) speaks for: the carrier's actor is the provider, and the carrier's id, the
    Commitment's id and the provider are all on the speaker's host. Raises Unusable."""
    try:
        commitment = parse_commitment(carrier.get("object"))
    except BadCommitment as error:
        raise Unusable(f"pledge {reference(carrier.get('object'))!r}: {error}") from None
    if reference(carrier.get("actor")) != commitment.provider:
        raise Unusable(f"the pledge's provider is not the {carrier.get('type')}'s actor")
    host = host_of(speaker)
    for name, uri in (
        ("activity id", str(carrier.get("id"))),
        ("id", commitment.uri),
        ("provider", commitment.provider),
    ):
        if not host or host_of(uri) != host:
            raise Unusable(f"the pledge's {name} {uri!r} is not on the host of {speaker}")
    return commitment


def assertion_keys(document: Mapping[str, Any], controller: str) -> dict[str, str]:
    """The Ed25519 Multikeys an actor document lists in ``assertionMethod`` (FEP-521a) as its
    own (``controller`` = the actor): key id → ``publicKeyMultibase``."""
    listed = document.get("assertionMethod")
    found: dict[str, str] = {}
    for key in listed if isinstance(listed, list) else [listed]:
        if (
            isinstance(key, Mapping)
            and key.get("type") == "Multikey"
            and key.get("controller") == controller
            and isinstance(key.get("id"), str)
            and isinstance(key.get("publicKeyMultibase"), str)
        ):
            found[key["id"]] = key["publicKeyMultibase"]
    return found


# --- What we hold -------------------------------------------------------------------------------


async def _improvement(session: AsyncSession, uri: str) -> Improvement | None:
    return (await session.exec(select(Improvement).where(Improvement.uri == uri))).first()


@dataclass(frozen=True)
class Provider:
    """The pledging organisation as its actor document says: read *before* the ledger lock is
    taken, since it may mean a fetch (seconds, on a slow server) and the lock stops every
    money transaction of this instance while it is held."""

    uri: str
    host: str
    inbox: str
    fields: dict[str, Any]


async def _provider(session: AsyncSession, federation: Federation, uri: str) -> Provider:
    """The pledging organisation's actor (cached, or fetched) and its copy's columns."""
    actor, fields = await speaking_organisation(session, federation, uri, "pledging")
    return Provider(uri, actor.host, actor.shared_inbox or actor.inbox, fields)


async def _organisation_copy(session: AsyncSession, provider: Provider) -> Organisation:
    """The local copy of the pledging organisation, made or refreshed."""
    try:
        return await ops.upsert_remote_organisation(
            session, provider.uri, provider.host, dict(provider.fields)
        )
    except ops.NotFromOrigin as error:
        raise Unusable(str(error)) from None


async def _provider_key(
    session: AsyncSession, federation: Federation, provider: str, key_id: str
) -> str:
    """The provider's Multikey ``key_id``, from its actor document; fetched again once when the
    cached document does not list it (the key may have rotated). Raises Unusable, or Missing
    when the provider's server cannot be reached (the relay waits, and is tried again)."""
    signer = await federation.instance_signer(session)
    for refresh in (False, True):
        try:
            actor = await get_remote_actor(
                session, federation.fetcher, federation.config, provider, signer=signer,
                refresh=refresh,
            )  # fmt: skip
        except FetchError as error:
            raise Missing(provider, f"the provider could not be fetched: {error}") from None
        keys = assertion_keys(json.loads(actor.document), provider)
        if key_id in keys:
            return keys[key_id]
    raise Unusable(f"the proof's key {key_id!r} is not an assertionMethod of {provider!r}")


async def check_proof(
    session: AsyncSession, federation: Federation, carrier: Mapping[str, Any], provider: str
) -> None:
    """The carrier's FEP-8b32 proof verifies with a key the provider lists as its own: the
    provider said this, whoever relays it. Raises Unusable (logged: a relay without a valid
    proof is either broken or forged)."""
    try:
        key_id = str(proof_of(dict(carrier))["verificationMethod"])
        multikey = await _provider_key(session, federation, provider, key_id)
        verify(dict(carrier), multikey)
    except (BadProof, Unusable) as error:
        log.warning("relayed pledge %s refused: %s", reference(carrier.get("object")), error)
        raise Unusable(f"relayed pledge without a valid proof by {provider}: {error}") from None


# --- Answering and relaying ---------------------------------------------------------------------


async def _answer(
    session: AsyncSession,
    federation: Federation,
    kind: str,
    commons: Commons,
    carrier: dict[str, Any],
    *,
    provider_inbox: str,
    relay: bool,
    reason: str = "",
) -> OutboxActivity:
    """``Accept`` or ``Reject`` by the commons of ``carrier`` exactly as received (its proof
    kept), to the provider; with ``relay``, also to the commons' and the instance actor's
    followers, which is how a funder's instance hears of pledges made elsewhere."""
    config = federation.config
    provider = str(reference(carrier.get("actor")))
    answer: dict[str, Any] = {
        "@context": [AS_CONTEXT, context_url(config)],
        "id": new_activity_id(config),
        "type": kind,
        "actor": commons.uri,
        "object": carrier,
        "to": [provider],
        "cc": [f"{commons.uri}/followers"] if relay else [],
    }
    if reason:
        answer["summary"] = reason
    inboxes = [provider_inbox]
    if relay:
        inboxes += await follower_inboxes(session, commons.uri)
        inboxes += await follower_inboxes(session, config.instance_actor_uri)
    return await publish(session, config, answer, [i for i in inboxes if i], public=relay)


def _refusal(error: InvalidFields) -> str:
    return "; ".join(str(e) for e in error.errors)


# --- At the improvement's instance ----------------------------------------------------------


async def _admit_offer(
    session: AsyncSession,
    federation: Federation,
    offer: dict[str, Any],
    commitment: Commitment,
    improvement: Improvement,
    item: InboxItem,
) -> None:
    """Store a pledge to our improvement and Accept it, or Reject it when it does not fit.

    A refusal is an answer, not an error: the row is done, the Reject queued in its
    transaction and the reason kept on the row (raising would roll the Reject back too)."""
    commons = await session.get(Commons, improvement.commons_id)
    assert commons is not None
    if commitment.receiver != commons.uri:
        raise Unusable(f"the pledge's receiver is not the commons of {improvement.uri}")
    if commitment.status != PledgeStatus.PLEDGED:
        raise Unusable(f"an Offer is of a pledge not yet paid, not {commitment.status!r}")
    if await pledge_ops.pledge_by_uri(session, commitment.uri) is not None:
        return  # a replay, under another activity id: answered the first time
    provider = await _provider(session, federation, commitment.provider)
    try:
        check_currency(commitment, improvement.currency)
        await pledge_ops.check_remote_pledge(
            session, improvement, commitment.amount_cents, commitment.currency
        )
    except (BadCommitment, InvalidFields) as error:
        reason = _refusal(error) if isinstance(error, InvalidFields) else str(error)
        log.info("pledge %s refused: %s", commitment.uri, reason)
        item.error = f"refused (Reject sent): {reason}"[:2000]
        await _answer(
            session,
            federation,
            "Reject",
            commons,
            offer,
            provider_inbox=provider.inbox,
            relay=False,
            reason=reason,
        )
        return
    organisation = await _organisation_copy(session, provider)
    await _record(session, federation, organisation, improvement, commitment, item.received_at)
    await _answer(
        session, federation, "Accept", commons, offer, provider_inbox=provider.inbox, relay=True
    )
    await funding_moved(session, federation, improvement)


async def _record(
    session: AsyncSession,
    federation: Federation,
    organisation: Organisation,
    improvement: Improvement,
    commitment: Commitment,
    received_at: datetime,
    *,
    admit: bool = True,
) -> None:
    """Record the pledge a Commitment says, with its origin and status: admitted here by the
    money rules (``admit``), or, for a copy, as the improvement's instance admitted it."""
    try:
        await pledge_ops.record_remote_pledge(
            session,
            organisation,
            improvement,
            uri=commitment.uri,
            origin=host_of(commitment.provider),
            amount_cents=commitment.amount_cents,
            currency=commitment.currency,
            status=PledgeStatus(commitment.status),
            pledged_at=commitment.published or received_at,
            base_url=federation.config.base_url,
            admit=admit,
        )
    except pledge_ops.NotTheSamePledge as error:
        raise Unusable(str(error)) from None


async def _store_copy(
    session: AsyncSession,
    federation: Federation,
    commitment: Commitment,
    improvement: Improvement,
    received_at: Any,
) -> None:
    """A pledge the improvement's instance has admitted: recorded as told, then matched."""
    commons = await session.get(Commons, improvement.commons_id)
    if commons is None or commitment.receiver != commons.uri:
        raise Unusable(f"the pledge's receiver is not the commons of {improvement.uri}")
    try:
        check_currency(commitment, improvement.currency)
    except BadCommitment as error:
        raise Unusable(str(error)) from None
    organisation = await _organisation_copy(
        session, await _provider(session, federation, commitment.provider)
    )
    try:
        await _record(
            session, federation, organisation, improvement, commitment, received_at, admit=False
        )
    except InvalidFields as error:
        raise Unusable(str(error)) from None


async def _apply_status(
    session: AsyncSession, federation: Federation, commitment: Commitment
) -> tuple[Pledge, bool]:
    """The status its origin gives a pledge we hold; (the pledge, whether it changed).
    Missing when the pledge has not arrived yet: the Update waits for its Offer."""
    pledge = await pledge_ops.pledge_by_uri(session, commitment.uri)
    if pledge is None:
        raise Missing(commitment.uri, "an Update of a pledge not received yet")
    try:
        changed = await pledge_ops.apply_remote_status(
            session,
            pledge,
            PledgeStatus(commitment.status),
            origin=host_of(commitment.provider),
            base_url=federation.config.base_url,
        )
    except (pledge_ops.NotTheSamePledge, InvalidFields) as error:
        raise Unusable(f"pledge {commitment.uri}: {error}") from None
    return pledge, changed


async def funding_moved(
    session: AsyncSession, federation: Federation, improvement: Improvement
) -> None:
    """A pledge from elsewhere moved the funding of our improvement: its Article goes out
    again, so that every instance shows the figures we count (matches may move others too,
    hence ``funding``). In the handler's transaction, like the Accept."""
    if federation.describe is not None and improvement.id is not None:
        await publish_improvement_changes(
            session, federation, federation.describe, [improvement.id], funding=True
        )


def _ours(federation: Federation, uri: str) -> bool:
    return host_of(uri) == federation.config.domain


async def _improvement_for(
    session: AsyncSession, federation: Federation, commitment: Commitment, speaker_host: str
) -> Improvement | None:
    """The improvement a pledge names, when this instance is the one to act on it: ours, or a
    copy from the speaker's own host. None when the improvement is a third instance's (that
    instance decides; we wait for its Accept). Missing when its copy has not arrived yet."""
    uri = commitment.improvement
    improvement = await _improvement(session, uri)
    if _ours(federation, uri):
        if improvement is None or improvement.origin is not None:
            raise Unusable(f"unknown improvement {uri!r}")
        return improvement
    if host_of(uri) != speaker_host:
        return None
    if improvement is None:
        raise Missing(uri, "a pledge to an improvement not received yet")
    if improvement.origin != speaker_host:
        raise Unusable(f"improvement {uri} was not made on {speaker_host}")
    return improvement


# --- Handlers -----------------------------------------------------------------------------------


@handles("Offer")
async def on_pledge_offer(
    session: AsyncSession, federation: Federation, offer: dict[str, Any], item: InboxItem
) -> None:
    """An organisation pledges: to one of our improvements (we decide), or, heard as a
    follower, to its own instance's improvement (that instance has decided)."""
    if not is_commitment(offer.get("object")):
        return
    commitment = read_commitment(offer, item.actor_uri)
    host = host_of(item.actor_uri)
    improvement = await _improvement_for(session, federation, commitment, host)
    if improvement is None:
        item.error = "a pledge to another instance's improvement: counted once it accepts it"
        return
    if improvement.origin is None:
        await _admit_offer(session, federation, offer, commitment, improvement, item)
    else:
        await _store_copy(session, federation, commitment, improvement, item.received_at)


@handles("Update")
async def on_pledge_update(
    session: AsyncSession, federation: Federation, update: dict[str, Any], item: InboxItem
) -> None:
    """A pledge cancelled, paid or refunded on its instance; relayed when the improvement is
    ours, so that the funders following us agree."""
    if not is_commitment(update.get("object")):
        return
    commitment = read_commitment(update, item.actor_uri)
    improvement = await _improvement_for(session, federation, commitment, host_of(item.actor_uri))
    if improvement is None:
        item.error = "a pledge to another instance's improvement: followed from its relay"
        return
    if improvement.origin is not None:
        await _apply_status(session, federation, commitment)
        return
    provider = await _provider(session, federation, commitment.provider)  # before the lock
    _pledge, changed = await _apply_status(session, federation, commitment)
    if changed:
        await funding_moved(session, federation, improvement)
        commons = await session.get(Commons, improvement.commons_id)
        assert commons is not None
        inbox = provider.inbox
        await _answer(
            session, federation, "Accept", commons, update, provider_inbox=inbox, relay=True
        )


def is_pledge_answer(accept: Mapping[str, Any]) -> bool:
    """An Accept (or Reject) whose object is an Offer or Update of one of our Commitments."""
    carrier = accept.get("object")
    return (
        isinstance(carrier, dict)
        and carrier.get("type") in CARRIERS
        and is_commitment(carrier.get("object"))
    )


async def apply_relay(
    session: AsyncSession,
    federation: Federation,
    accept: dict[str, Any],
    speaker: str,
    received_at: datetime,
) -> None:
    """Apply the Offer or Update a commons' instance (``speaker``) accepted and relays: a
    pledge made elsewhere, to store and match, once its proof checks out. Raises Unusable,
    or Missing while the improvement's copy has not arrived."""
    carrier = accept["object"]
    provider = str(reference(carrier.get("actor")))
    commitment = read_commitment(carrier, provider)
    if _ours(federation, commitment.uri):
        log.info("our pledge %s: %s accepted by %s", commitment.uri, carrier["type"], speaker)
        return
    speaker_host = host_of(speaker)
    if host_of(commitment.improvement) != speaker_host:
        raise Unusable(
            f"{speaker} relays a pledge to {commitment.improvement}: only the "
            "improvement's own instance may"
        )
    await check_proof(session, federation, carrier, commitment.provider)
    improvement = await _improvement(session, commitment.improvement)
    if improvement is None:
        raise Missing(commitment.improvement, "a pledge to an improvement not received yet")
    if improvement.origin != speaker_host:
        raise Unusable(f"improvement {improvement.uri} was not made on {speaker_host}")
    if carrier["type"] == "Offer":
        await _store_copy(session, federation, commitment, improvement, received_at)
    else:
        await _apply_status(session, federation, commitment)


@handles("Accept")
async def on_relayed_pledge(
    session: AsyncSession, federation: Federation, accept: dict[str, Any], item: InboxItem
) -> None:
    """The improvement's instance accepted a pledge (an Offer) or a change to one (an
    Update): our own pledge's answer, or, at a funder's, a pledge made elsewhere to match."""
    if is_pledge_answer(accept):
        await apply_relay(session, federation, accept, item.actor_uri, item.received_at)


@handles("Accept")
async def on_follow_accepted(
    session: AsyncSession, federation: Federation, accept: dict[str, Any], item: InboxItem
) -> None:
    """After the follow handlers (``handlers.on_accept`` refuses an Accept of a follow we did
    not send; ``improvements_sync`` reads back the improvements): the pledges the followed
    commons already accepted, so a funder that follows late matches them too."""
    if answers_a_follow(accept):
        await back_fill(session, federation, item.actor_uri)


# --- Back-fill ----------------------------------------------------------------------------------


async def back_fill(session: AsyncSession, federation: Federation, actor_uri: str) -> int:
    """The pledges relayed in the outboxes of a followed commons, or of every commons we hold
    from a followed instance: each ``Accept`` of an Offer or Update, oldest first (an Update
    after its Offer), with the same checks as when delivered. How many were applied; what is
    refused is logged and skipped, and what cannot be applied yet (the provider's server out
    of reach, an Update before its Offer) is held in the inbox, to be tried again as a
    delivered relay would be. Never raises for the remote side."""
    applied = 0
    now = utcnow()
    async for owner, listed in followed_outboxes(session, federation, actor_uri, "pledge"):
        for entry in reversed(listed):
            if entry.get("type") != "Accept" or reference(entry.get("actor")) != owner:
                continue
            if not is_pledge_answer(entry):
                continue
            try:
                await apply_relay(session, federation, entry, owner, now)
                applied += 1
            except Missing as missing:
                if await hold_read_back(session, entry, owner, missing):
                    log.info("pledge back-fill from %s: %s held", owner, entry.get("id"))
            except Unusable as error:
                log.warning(
                    "pledge back-fill from %s: %s skipped: %s", owner, entry.get("id"), error
                )
    return applied


@handles("Reject")
async def on_rejected_pledge(
    session: AsyncSession, federation: Federation, reject: dict[str, Any], item: InboxItem
) -> None:
    """The improvement's instance refused our pledge (over budget, closed…): refused here
    too, so our figures and programs agree with the commons'. One paid before the Reject
    came back (the commons' instance was out of reach for a while) is then a refund due."""
    carrier = reject.get("object")
    if not (
        isinstance(carrier, dict)
        and carrier.get("type") == "Offer"
        and is_commitment(carrier.get("object"))
    ):
        return
    commitment = read_commitment(carrier, str(reference(carrier.get("actor"))))
    if not _ours(federation, commitment.uri):
        return
    if host_of(commitment.improvement) != host_of(item.actor_uri):
        raise Unusable("only the improvement's own instance may refuse a pledge to it")
    pledge = await pledge_ops.pledge_by_uri(session, commitment.uri)
    if pledge is None or pledge.origin is not None:
        return
    reason = reject.get("summary")
    if await pledge_ops.refuse_pledge(
        session, pledge, base_url=federation.config.base_url, commit=False
    ):
        due = ", refund due" if pledge.refund_due else ""
        log.info("our pledge %s refused by %s%s: %s", pledge.uri, item.actor_uri, due, reason)
