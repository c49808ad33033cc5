"""Our actors: the instance (Application), organisations (Organization), commons (Group).

An actor's id is the permanent ``uri`` of the row it stands for, so the address a person shares
(``/orgs/<slug>``, ``/commons/<slug>``) is also what other servers fetch and follow. Hidden and
merged commons stop being actors: they are gone from the catalogue, and must not be followable.
"""

from __future__ import annotations

import html
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons, CommonsTag
from catalogue.organisations import Organisation
from catalogue.queries import figures_changed_at
from federation.commons_documents import commons_properties
from federation.context import FederationConfig
from federation.keys import ed25519_key_id, main_key_id
from federation.media import AS_CONTEXT, MULTIKEY_CONTEXT, SECURITY_CONTEXT
from federation.models import ActorKey
from federation.vocabulary import ORGANISATION_KIND, context_url

INSTANCE_USERNAME = "instance"
# Where the instance serves a stored logo (the ``logo`` route of instance/views/commons.py).
LOGO_PATH = "/media/logos/"
# Terms Mastodon reads that the ActivityStreams context does not define.
EXTENSION_CONTEXT = {
    "toot": "http://joinmastodon.org/ns#",
    "discoverable": "toot:discoverable",
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
}


class ActorKind(StrEnum):
    INSTANCE = "instance"
    ORGANISATION = "organisation"
    COMMONS = "commons"


# FEP-1b12: a commons is a Group that people follow and that relays what happens to it.
ACTOR_TYPES = {
    ActorKind.INSTANCE: "Application",
    ActorKind.ORGANISATION: "Organization",
    ActorKind.COMMONS: "Group",
}


@dataclass(frozen=True)
class LocalActor:
    uri: str
    kind: ActorKind
    username: str  # preferredUsername: the slug ("instance" for the instance actor)
    name: str
    summary: str  # plain text; the document carries it as escaped HTML paragraphs
    url: str  # the HTML page
    icon_url: str | None = None
    # When the organisation or commons was created; None for the instance actor, whose
    # document then gives the creation of its keys (the moment it began to federate).
    published: datetime | None = None
    updated: datetime | None = None
    # What only this kind of actor says (a commons' kind, licence, tags…: commons_documents).
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def inbox(self) -> str:
        return f"{self.uri}/inbox"

    @property
    def outbox(self) -> str:
        return f"{self.uri}/outbox"

    @property
    def followers(self) -> str:
        return f"{self.uri}/followers"


def instance_actor(config: FederationConfig) -> LocalActor:
    return LocalActor(
        uri=config.instance_actor_uri,
        kind=ActorKind.INSTANCE,
        username=INSTANCE_USERNAME,
        name=config.name,
        summary=config.description,
        url=f"{config.base_url}/",
    )


def organisation_actor(organisation: Organisation) -> LocalActor:
    return LocalActor(
        uri=organisation.uri,
        kind=ActorKind.ORGANISATION,
        username=organisation.slug,
        name=organisation.name,
        summary=organisation.description,
        url=organisation.uri,
        published=organisation.created_at,
        # So that an instance it declares to can store its copy with the right kind.
        properties={ORGANISATION_KIND: organisation.kind},
    )


def commons_actor(
    commons: Commons,
    config: FederationConfig,
    tags: Sequence[str] = (),
    figures_changed_at: datetime | None = None,
) -> LocalActor:
    """``updated``: the later of the commons' last edit and ``figures_changed_at`` (its usage
    counts are in the document, and copies keep the newest version by this time)."""
    icon = f"{config.base_url}{LOGO_PATH}{commons.logo}" if commons.logo else None
    return LocalActor(
        uri=commons.uri,
        kind=ActorKind.COMMONS,
        username=commons.slug,
        name=commons.name,
        summary=commons.summary,
        url=commons.uri,
        icon_url=icon,
        published=commons.created_at,
        updated=max(commons.updated_at, figures_changed_at or commons.updated_at),
        properties=commons_properties(commons, tags, config.base_url),
    )


async def tagged_commons_actor(
    session: AsyncSession, commons: Commons, config: FederationConfig
) -> LocalActor:
    """The commons' actor with its tags and the time of its figures, which live in rows of
    their own."""
    assert commons.id is not None
    query = select(CommonsTag.tag).where(CommonsTag.commons_id == commons.id)
    tags = (await session.exec(query.order_by(col(CommonsTag.tag)))).all()
    figures = await figures_changed_at(session, commons.id)
    return commons_actor(commons, config, list(tags), figures)


def _visible_local_commons() -> Any:
    return select(Commons).where(
        col(Commons.origin).is_(None),
        col(Commons.hidden).is_(False),
        col(Commons.merged_into_id).is_(None),
    )


def _local_organisations() -> Any:
    return select(Organisation).where(col(Organisation.origin).is_(None))


async def local_actor(
    session: AsyncSession, config: FederationConfig, uri: str
) -> LocalActor | None:
    """The local, visible actor with this id, or None (remote, unknown, hidden or merged)."""
    if uri == config.instance_actor_uri:
        return instance_actor(config)
    organisation = (
        await session.exec(_local_organisations().where(Organisation.uri == uri))
    ).first()
    if organisation is not None:
        return organisation_actor(organisation)
    commons = (await session.exec(_visible_local_commons().where(Commons.uri == uri))).first()
    return await tagged_commons_actor(session, commons, config) if commons is not None else None


async def local_actor_by_username(
    session: AsyncSession, config: FederationConfig, username: str
) -> LocalActor | None:
    """For WebFinger: a commons first, then an organisation, then the instance actor.

    Slugs are one namespace for new rows (catalogue.operations refuses a slug the other kind
    holds); the order only settles rows that predate that rule.
    """
    slug = username.lower()
    commons = (await session.exec(_visible_local_commons().where(Commons.slug == slug))).first()
    if commons is not None:
        return await tagged_commons_actor(session, commons, config)
    organisation = (
        await session.exec(_local_organisations().where(Organisation.slug == slug))
    ).first()
    if organisation is not None:
        return organisation_actor(organisation)
    if slug == INSTANCE_USERNAME:
        return instance_actor(config)
    return None


def as_html(text: str) -> str:
    """Plain text as HTML paragraphs: remote servers read ``summary`` as HTML, so a ``<`` typed
    in a description must arrive as a character, not as markup."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )


def as_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second: the form every fediverse server parses."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def as_precise_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the microsecond (always six digits, so that two such
    times also sort as text): for the versions of an object that may follow each other within
    a second, whose receivers keep the newest by this time."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _icon(url: str) -> dict[str, Any]:
    icon: dict[str, Any] = {"type": "Image", "url": url}
    media_type, _ = mimetypes.guess_type(url)
    if media_type:
        icon["mediaType"] = media_type
    return icon


def actor_document(actor: LocalActor, key: ActorKey, config: FederationConfig) -> dict[str, Any]:
    """The actor as ActivityStreams JSON (publicKey RSA, assertionMethod Multikey, endpoints)."""
    document: dict[str, Any] = {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT, MULTIKEY_CONTEXT, EXTENSION_CONTEXT],
        "id": actor.uri,
        "type": ACTOR_TYPES[actor.kind],
        "preferredUsername": actor.username,
        "name": actor.name,
        "summary": as_html(actor.summary),
        "url": actor.url,
        "inbox": actor.inbox,
        "outbox": actor.outbox,
        "followers": actor.followers,
        "endpoints": {"sharedInbox": config.shared_inbox},
        "discoverable": True,
        "manuallyApprovesFollowers": False,
        "published": as_time(actor.published or key.created_at),
        "publicKey": {
            "id": main_key_id(actor.uri),
            "owner": actor.uri,
            "publicKeyPem": key.rsa_public_pem,
        },
        "assertionMethod": [
            {
                "id": ed25519_key_id(actor.uri),
                "type": "Multikey",
                "controller": actor.uri,
                "publicKeyMultibase": key.ed25519_multikey,
            }
        ],
    }
    if actor.icon_url:
        document["icon"] = _icon(actor.icon_url)
    if actor.updated is not None:
        # A commons' figures may move twice in a second, and its copies keep the newest.
        precise = actor.kind == ActorKind.COMMONS
        document["updated"] = (as_precise_time if precise else as_time)(actor.updated)
    if actor.properties:
        # Our terms (commonsKind, licence…) are defined by the context this instance serves.
        document["@context"].append(context_url(config))
        document.update(actor.properties)
    return document
