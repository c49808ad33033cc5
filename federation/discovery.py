"""How other servers find our actors and learn what this server is: WebFinger, host-meta, NodeInfo.

Pure functions: the instance looks the actor up and counts the figures, these only shape the
documents, so each format is checked without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from federation.actors import LocalActor
from federation.context import SOFTWARE, FederationConfig
from federation.media import ACTIVITY_JSON

JRD_JSON = "application/jrd+json"
XRD_XML = "application/xrd+xml"
PROFILE_PAGE = "http://webfinger.net/rel/profile-page"
NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_JSON = f'application/json; profile="{NODEINFO_SCHEMA}#"'


class BadResource(ValueError):
    """A ``resource`` WebFinger cannot read at all (400)."""


class ForeignResource(LookupError):
    """A well-formed resource that names another server (404: we know nothing of it)."""


@dataclass(frozen=True)
class Resource:
    """What a WebFinger query asks for: an account name, or an actor's id."""

    username: str | None = None
    uri: str | None = None


def parse_resource(resource: str | None, config: FederationConfig) -> Resource:
    """``acct:user@domain``, ``user@domain`` (some servers drop the scheme, some add an ``@``)
    or the actor's own URI; raises BadResource or ForeignResource."""
    value = (resource or "").strip()
    if not value:
        raise BadResource("the resource parameter is missing")
    scheme = urlsplit(value).scheme.lower() if ":" in value else ""
    if scheme in ("http", "https"):
        parts = urlsplit(value)
        if parts.netloc.lower() != config.domain.lower():
            raise ForeignResource(value)
        return Resource(uri=value)
    if scheme == "acct":
        value = value[len("acct:") :]
    elif scheme:
        raise BadResource(f"unsupported resource: {value}")
    user, at, domain = value.removeprefix("@").rpartition("@")
    if not at or not user or not domain or "@" in user or "/" in user:
        raise BadResource(f"expected acct:user@domain, got {resource}")
    if domain.lower() != config.domain.lower():
        raise ForeignResource(value)
    return Resource(username=user)


def acct(actor: LocalActor, config: FederationConfig) -> str:
    """The address Mastodon re-checks against ``preferredUsername@host``."""
    return f"acct:{actor.username}@{config.domain}"


def webfinger(actor: LocalActor, config: FederationConfig) -> dict[str, Any]:
    """The JRD (RFC 7033) for one of our actors, whichever form the query took."""
    return {
        "subject": acct(actor, config),
        "aliases": list(dict.fromkeys([actor.uri, actor.url])),
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor.uri},
            {"rel": PROFILE_PAGE, "type": "text/html", "href": actor.url},
        ],
    }


def host_meta(config: FederationConfig) -> str:
    """The XRD (RFC 6415) that points older software to our WebFinger endpoint."""
    template = quoteattr(f"{config.base_url}/.well-known/webfinger?resource={{uri}}")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="{XRD_XML}" template={template}/>\n'
        "</XRD>\n"
    )


def nodeinfo_links(config: FederationConfig) -> dict[str, Any]:
    """``/.well-known/nodeinfo``: where the NodeInfo document of each schema we serve lives."""
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{config.base_url}/nodeinfo/2.1"}]}


@dataclass(frozen=True)
class Usage:
    """The figures NodeInfo publishes; the instance counts them (accounts live there)."""

    users: int
    active_month: int
    active_halfyear: int
    local_posts: int


def nodeinfo(
    config: FederationConfig, usage: Usage, *, outbound: tuple[str, ...] = ()
) -> dict[str, Any]:
    """NodeInfo 2.1: what crawlers and fediverse directories show about this server.

    ``outbound`` names the other protocols the instance publishes in (``atom1.0`` for feeds).
    """
    return {
        "version": "2.1",
        "software": {"name": SOFTWARE, "version": config.version},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": list(outbound)},
        "openRegistrations": config.open_registrations,
        "usage": {
            "users": {
                "total": usage.users,
                "activeMonth": usage.active_month,
                "activeHalfyear": usage.active_halfyear,
            },
            "localPosts": usage.local_posts,
        },
        "metadata": {"nodeName": config.name, "nodeDescription": config.description},
    }
