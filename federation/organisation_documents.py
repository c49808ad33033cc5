"""A remote organisation's actor document as the columns of its local copy: pure, no database.

An organisation on another instance that declares it uses one of our commons is shown among
its users, so we keep a copy of it (``origin`` set), as we keep copies of remote commons. Only
what the commons page shows is read; the rest of the actor (keys, inbox) is the remote actor
cache's business (federation/remote_actors.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from catalogue.organisations import SLUG, OrganisationKind
from federation.commons_documents import MAX_URI, clip, plain_text
from federation.vocabulary import ORGANISATION_KIND

MAX_NAME = 200
MAX_DESCRIPTION = 10_000
#: What a Terreau organisation is: an ActivityStreams ``Organization``.
ORGANISATION_TYPE = "Organization"
#: The kind a remote organisation gets when its server does not say (not a Terreau server, or
#: a kind added by a newer one): the broadest one.
DEFAULT_KIND = OrganisationKind.ASSOCIATION


class BadOrganisation(ValueError):
    """An actor that cannot stand for an organisation here; says which property."""


def organisation_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """``uri``, ``slug``, ``name``, ``kind`` and ``description`` of the copy; raises
    BadOrganisation. (The actor's ``url`` is its page there, not the organisation's website.)"""
    kind = document.get("type")
    if kind != ORGANISATION_TYPE and not (isinstance(kind, list) and ORGANISATION_TYPE in kind):
        raise BadOrganisation(f"type: an organisation is an {ORGANISATION_TYPE}")
    uri = document.get("id")
    if not (isinstance(uri, str) and uri.startswith(("https://", "http://"))) or len(uri) > MAX_URI:
        raise BadOrganisation("id: expected an http(s) address")
    username = document.get("preferredUsername")
    slug = username.strip().lower() if isinstance(username, str) else ""
    if not SLUG.match(slug):
        raise BadOrganisation("preferredUsername: 1 to 64 letters, digits and hyphens")
    raw_name = document.get("name")
    name = " ".join(raw_name.split()) if isinstance(raw_name, str) else ""
    summary = document.get("summary")
    declared_kind = document.get(ORGANISATION_KIND)
    kinds = {kind.value for kind in OrganisationKind}
    return {
        "uri": uri,
        "slug": slug,
        "name": clip(name or slug, MAX_NAME),
        "kind": declared_kind if declared_kind in kinds else DEFAULT_KIND.value,
        "description": clip(plain_text(summary), MAX_DESCRIPTION)
        if isinstance(summary, str)
        else "",
    }
