"""A usage or interest declaration as an activity and back: pure functions, no database.

An organisation's "we use it" is a ``Use`` activity and its "we are interested" an ``Interest``
(our own types, defined in ``terreau.jsonld``): ``actor`` the organisation, ``object`` the
commons, ``id`` the declaration's permanent uri. Not a ``Like``: Mastodon would show a Like as a
favourite of a post, and a use carries a date and a satisfaction that a Like cannot. Withdrawing
is an ``Undo`` of the declaration, sent embedded so a server that never had it can still tell
what was withdrawn; a changed declaration is an ``Update`` of it, since a declaration's id names
one activity and the inbox takes each activity id once.

Coming in, ``parse_declaration`` is strict: a declaration moves a commons' public figures, so a
wrong type, an out-of-range satisfaction or an unreadable date refuses the whole object, with
the property named, rather than storing half of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from catalogue.columns import utcnow
from catalogue.declarations import Declaration, DeclarationKind
from federation.activities import activity, reference
from federation.actors import as_html, as_time
from federation.commons_documents import clip, plain_text
from federation.context import FederationConfig
from federation.media import AS_CONTEXT, PUBLIC
from federation.vocabulary import INTEREST, SATISFACTION, SINCE, USE, context_url

#: The activity type of each kind of declaration, and back.
TYPES = {DeclarationKind.USES: USE, DeclarationKind.INTERESTED: INTEREST}
KINDS = {type_: kind for kind, type_ in TYPES.items()}
PLAIN_TEXT = "text/plain"
MAX_URI = 2048
MAX_COMMENT = 2000  # the column's size (catalogue/declarations.py)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadDeclaration(ValueError):
    """A Use or Interest that cannot be stored; the message starts with the property at fault."""


@dataclass(frozen=True)
class DeclarationDocument:
    """A declaration as read from another server, checked, ready for the catalogue's columns."""

    uri: str
    kind: DeclarationKind
    actor: str  # the organisation actor's id
    commons: str  # the commons' id (a local commons' uri, or a remote copy's)
    comment: str = ""
    since: date | None = None
    satisfaction: int | None = None
    published: datetime | None = None


def is_declaration(value: Any) -> bool:
    """An object typed ``Use`` or ``Interest``: what the declaration handlers act on."""
    return isinstance(value, Mapping) and value.get("type") in KINDS


# --- Going out ----------------------------------------------------------------------------------


def declaration_object(
    declaration: Declaration, organisation_uri: str, commons_uri: str, *, updated: bool = False
) -> dict[str, Any]:
    """The declaration without ``@context`` (to embed in an Undo or Update, or to send with
    ``declaration_activity``). ``updated`` adds the time of this change."""
    document: dict[str, Any] = {
        "id": declaration.uri,
        "type": TYPES[DeclarationKind(declaration.kind)],
        "actor": organisation_uri,
        "object": commons_uri,
        "published": as_time(declaration.created_at),
        "to": [PUBLIC],
        "cc": [f"{organisation_uri}/followers", commons_uri],
    }
    if updated:
        document["updated"] = as_time(utcnow())
    if declaration.comment:
        # HTML for readers; the exact text in ``source``, so newlines survive the round trip.
        document["content"] = as_html(declaration.comment)
        document["source"] = {"content": declaration.comment, "mediaType": PLAIN_TEXT}
    if declaration.since is not None:
        document[SINCE] = declaration.since.isoformat()
    if declaration.satisfaction is not None:
        document[SATISFACTION] = declaration.satisfaction
    return document


def contexts(config: FederationConfig) -> list[str]:
    """ActivityStreams, then our terms (Use, Interest, since, satisfaction)."""
    return [AS_CONTEXT, context_url(config)]


def declaration_activity(
    config: FederationConfig, declaration: Declaration, organisation_uri: str, commons_uri: str
) -> dict[str, Any]:
    """The ``Use`` or ``Interest`` itself, sent when the declaration is made."""
    return {
        "@context": contexts(config),
        **declaration_object(declaration, organisation_uri, commons_uri),
    }


def update_activity(
    config: FederationConfig, declaration: Declaration, organisation_uri: str, commons_uri: str
) -> dict[str, Any]:
    """``Update`` carrying the declaration with its new date, satisfaction or comment."""
    embedded = declaration_object(declaration, organisation_uri, commons_uri, updated=True)
    update = activity(config, "Update", organisation_uri, embedded, [PUBLIC])
    update["@context"] = contexts(config)
    update["cc"] = embedded["cc"]
    return update


def undo_activity(
    config: FederationConfig, declaration: Declaration, organisation_uri: str, commons_uri: str
) -> dict[str, Any]:
    """``Undo`` of the declaration, embedded: the receiver needs nothing else to withdraw it."""
    embedded = declaration_object(declaration, organisation_uri, commons_uri)
    undo = activity(config, "Undo", organisation_uri, embedded, [PUBLIC])
    undo["@context"] = contexts(config)
    undo["cc"] = embedded["cc"]
    return undo


# --- Coming in ----------------------------------------------------------------------------------


def parse_declaration(document: Any, *, today: date | None = None) -> DeclarationDocument:
    """The checked declaration in ``document``; raises BadDeclaration naming the property.

    ``since`` may be at most one day after ``today`` (UTC): the organisation's own day may
    already be tomorrow.
    """
    if not isinstance(document, Mapping):
        raise BadDeclaration("object: expected a Use or Interest object")
    type_ = document.get("type")
    if not isinstance(type_, str) or type_ not in KINDS:
        raise BadDeclaration(f"type: expected {USE} or {INTEREST}")
    kind = KINDS[type_]
    since = _since(document.get(SINCE), (today or utcnow().date()) + timedelta(days=1))
    satisfaction = _satisfaction(document.get(SATISFACTION))
    if kind == DeclarationKind.INTERESTED:
        for name, value in ((SINCE, since), (SATISFACTION, satisfaction)):
            if value is not None:
                raise BadDeclaration(f"{name}: only a {USE} has one")
    return DeclarationDocument(
        uri=_uri(document.get("id"), "id"),
        kind=kind,
        actor=_uri(reference(document.get("actor")), "actor"),
        commons=_uri(reference(document.get("object")), "object"),
        comment=_comment(document),
        since=since,
        satisfaction=satisfaction,
        published=_published(document.get("published")),
    )


def _uri(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadDeclaration(f"{name}: required, an http(s) address")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > MAX_URI:
        raise BadDeclaration(f"{name}: expected an http(s) address of at most {MAX_URI} characters")
    return value


def _since(value: Any, latest: date) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise BadDeclaration(f"{SINCE}: expected a date such as 2024-09-01")
    try:
        when = date.fromisoformat(value)
    except ValueError:
        raise BadDeclaration(f"{SINCE}: {value!r} is not a date") from None
    if when > latest:
        raise BadDeclaration(f"{SINCE}: {value} is in the future")
    return when


def _satisfaction(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise BadDeclaration(f"{SATISFACTION}: expected a whole number from 1 to 5")
    return value


def _comment(document: Mapping[str, Any]) -> str:
    """The plain text of the comment: ``source`` when it is plain text, else ``content``'s
    HTML reduced to its text (stored as text, escaped wherever it is shown)."""
    source = document.get("source")
    if source is not None and not isinstance(source, Mapping):
        raise BadDeclaration("source: expected an object")
    if isinstance(source, Mapping) and source.get("mediaType") == PLAIN_TEXT:
        text = source.get("content")
        if not isinstance(text, str):
            raise BadDeclaration("source: expected a string content")
        return clip(text.strip(), MAX_COMMENT)
    content = document.get("content")
    if content is None:
        return ""
    if not isinstance(content, str):
        raise BadDeclaration("content: expected a string")
    return clip(plain_text(content), MAX_COMMENT)


def _published(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadDeclaration("published: expected a date and time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadDeclaration(f"published: {value[:40]!r} is not a date and time") from None
    if moment.tzinfo is None:
        raise BadDeclaration("published: the time needs its offset (such as Z)")
    return moment
