"""A commons as an ActivityStreams ``Group`` and back: pure functions, no database, no network.

Going out, ``commons_properties`` adds our terms (federation/terreau.jsonld) to the actor
document. Coming in, ``commons_fields`` turns a remote Group into the plain column values the
catalogue stores, and is strict where a wrong value would mislead (no id, an unknown kind, a
count that is not a whole number) and forgiving where dropping a value is enough (a website
that is not a web address, an unknown territory). Remote ``summary`` and ``content`` are HTML
written by another server: they are sanitised here, once, before anything stores them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import nh3

from catalogue.commons import MAX_TAGS, TAG, Commons, CommonsKind, Maturity
from catalogue.licences import normalise_licence
from catalogue.organisations import SLUG
from catalogue.territories import parse_territory
from catalogue.text import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, render_markdown
from federation import vocabulary as terms
from federation.payment_links import attach_payment_links, read_payment_links

MARKDOWN = "text/markdown"
MAX_URI = 2048
# The catalogue's column sizes (catalogue/commons.py): longer text is cut, longer HTML refused.
MAX_NAME = 200
MAX_SUMMARY = 300
MAX_DESCRIPTION = 20_000
MAX_DESCRIPTION_HTML = 100_000
MAX_LICENCE = 200
MAX_LANGUAGES = 100  # the column keeps "fr,en,…" in 100 characters
MAX_COUNT = 2_147_483_647  # a PostgreSQL integer
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
# Where a paragraph or a line ends in HTML: kept as a space when the markup is stripped.
_BREAKS = re.compile(r"<br\s*/?>|</p\s*>|</li\s*>|</h[1-6]\s*>", re.IGNORECASE)


class BadCommons(ValueError):
    """A Group that claims to be a commons but cannot be stored as one; says which property."""


# --- Going out ------------------------------------------------------------------------------


def hashtag(base_url: str, tag: str) -> dict[str, str]:
    """A tag as Mastodon reads one; ``href`` is this instance's catalogue filtered by it."""
    return {"type": "Hashtag", "name": f"#{tag}", "href": f"{base_url}/commons?tag={quote(tag)}"}


def commons_properties(commons: Commons, tags: Sequence[str], base_url: str) -> dict[str, Any]:
    """Our terms for a local commons; empty values are left out rather than sent blank."""
    properties: dict[str, Any] = {
        terms.COMMONS_KIND: commons.kind,
        terms.MATURITY: commons.maturity,
        terms.USES_COUNT: commons.uses_count,
        terms.INTERESTED_COUNT: commons.interested_count,
    }
    optional = {
        terms.LICENCE: commons.licence,
        terms.TERRITORY: commons.territory,
        terms.WEBSITE: commons.website,
        terms.REPOSITORY: commons.repository,
    }
    properties.update({name: value for name, value in optional.items() if value})
    if commons.language_list:
        properties[terms.LANGUAGES] = commons.language_list
    if tags:
        properties["tag"] = [hashtag(base_url, tag) for tag in tags]
    if commons.description:
        properties["content"] = commons.description_html
        properties["source"] = {"content": commons.description, "mediaType": MARKDOWN}
    attach_payment_links(properties, commons.payment_links)  # FEP-0ea0
    return properties


# --- Coming in ------------------------------------------------------------------------------


def is_commons_document(value: Any) -> bool:
    """A Group carrying our ``commonsKind``: what the commons handlers act on (others pass)."""
    return isinstance(value, Mapping) and _has_type(value, "Group") and terms.COMMONS_KIND in value


def commons_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a remote commons, plus ``uri`` and ``tags``; raises BadCommons.

    Payment links (FEP-0ea0 attachments) are kept sanitised; unusable ones are dropped, never
    a reason to refuse the Group.

    ``created_at`` and ``updated_at`` are there only when the document gives a usable
    ``published`` and ``updated``.
    """
    if not _has_type(document, "Group"):
        raise BadCommons("type: a commons is a Group")
    description, description_html = _description(document)
    fields: dict[str, Any] = {
        "uri": _uri(document.get("id"), "id", required=True),
        "slug": _slug(document.get("preferredUsername")),
        "name": _name(document.get("name")),
        "kind": _kind(document.get(terms.COMMONS_KIND)),
        "maturity": _maturity(document.get(terms.MATURITY)),
        "summary": clip(plain_text(_text(document, "summary")), MAX_SUMMARY),
        "description": description,
        "description_html": description_html,
        "licence": _licence(_text(document, terms.LICENCE)),
        "website": _uri(document.get(terms.WEBSITE), terms.WEBSITE),
        "repository": _uri(document.get(terms.REPOSITORY), terms.REPOSITORY),
        "languages": _languages(document.get(terms.LANGUAGES)),
        "territory": _territory(_text(document, terms.TERRITORY)),
        "uses_count": _count(document.get(terms.USES_COUNT), terms.USES_COUNT),
        "interested_count": _count(document.get(terms.INTERESTED_COUNT), terms.INTERESTED_COUNT),
        "tags": _tags(document.get("tag")),
        "payment_links": read_payment_links(document),  # never refuses the Group
    }
    for column, name in (("created_at", "published"), ("updated_at", "updated")):
        moment = _time(document.get(name))
        if moment is not None:
            fields[column] = moment
    return fields


def sanitise_html(source: str) -> str:
    """Remote HTML kept to the catalogue's own short list of tags (catalogue/text.py), with
    the same link rules as our rendered Markdown: no script, no style, no ``javascript:``."""
    return nh3.clean(
        source,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer ugc",
    )


def plain_text(source: str) -> str:
    """HTML as the text a person reads: markup and scripts gone, entities decoded, one space
    between words. The result is stored as text and escaped wherever it is shown."""
    stripped = nh3.clean(_BREAKS.sub(" ", source), tags=set())
    return " ".join(html.unescape(stripped).split())


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _has_type(document: Mapping[str, Any], wanted: str) -> bool:
    kind = document.get("type")
    return kind == wanted or (isinstance(kind, list) and wanted in kind)


def _text(document: Mapping[str, Any], name: str) -> str:
    """An optional string property: absent is empty, any other type is refused."""
    value = document.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadCommons(f"{name}: expected a string")
    return value.strip()


def _uri(value: Any, name: str, *, required: bool = False) -> str:
    """An http(s) address; an optional one that is not usable is dropped, not refused."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadCommons(f"{name}: expected an address")
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and len(value) <= MAX_URI:
        return value
    if required:
        raise BadCommons(f"{name}: expected an http(s) address of at most {MAX_URI} characters")
    return ""


def _slug(value: Any) -> str:
    if not isinstance(value, str):
        raise BadCommons("preferredUsername: required")
    slug = value.strip().lower()
    if not SLUG.match(slug):
        raise BadCommons("preferredUsername: 1 to 64 letters, digits and hyphens")
    return slug


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadCommons("name: required")
    return clip(" ".join(value.split()), MAX_NAME)


def _kind(value: Any) -> str:
    if value not in {kind.value for kind in CommonsKind}:
        raise BadCommons(f"{terms.COMMONS_KIND}: unknown kind {str(value)[:50]!r}")
    return str(value)


def _maturity(value: Any) -> str:
    """A maturity a newer peer added is read as the default rather than refusing the commons."""
    if value is not None and not isinstance(value, str):
        raise BadCommons(f"{terms.MATURITY}: expected a string")
    return value if value in {m.value for m in Maturity} else Maturity.IN_DEVELOPMENT.value


def _description(document: Mapping[str, Any]) -> tuple[str, str]:
    """(Markdown or plain text, sanitised HTML): the HTML from ``content`` when there is one,
    else rendered here from the Markdown ``source``."""
    content = _text(document, "content")
    source = document.get("source")
    markdown = ""
    if isinstance(source, Mapping) and source.get("mediaType") == MARKDOWN:
        markdown = _text(source, "content")
    rendered = sanitise_html(content) if content else render_markdown(markdown)
    if len(rendered) > MAX_DESCRIPTION_HTML:
        raise BadCommons(f"content: longer than {MAX_DESCRIPTION_HTML} characters")
    return clip(markdown or plain_text(content), MAX_DESCRIPTION), rendered


def _licence(value: str) -> str:
    """The SPDX identifier when we know it; otherwise the text as given, to show as text."""
    if not value or len(value) > MAX_LICENCE:
        return clip(value, MAX_LICENCE)
    return normalise_licence(value) or value


def _languages(value: Any) -> str:
    items = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(items, list):
        raise BadCommons(f"{terms.LANGUAGES}: expected a list of language codes")
    codes: list[str] = []
    for item in items:
        code = item.strip().lower() if isinstance(item, str) else ""
        fits = len(",".join([*codes, code])) <= MAX_LANGUAGES
        if LANGUAGE.match(code) and code not in codes and fits:
            codes.append(code)
    return ",".join(codes)


def _territory(value: str) -> str:
    return value if value and parse_territory(value) is not None else ""


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise BadCommons(f"{name}: expected a whole number from 0")
    return value


def _tags(value: Any) -> list[str]:
    """Hashtags' names without ``#``; other tags (mentions…) and unusable names are skipped."""
    items = [value] if isinstance(value, Mapping) else value if value is not None else []
    if not isinstance(items, list):
        raise BadCommons("tag: expected a list of Hashtag objects")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("type") != "Hashtag":
            continue
        name = item.get("name")
        tag = " ".join(name.lstrip("#").split()).lower() if isinstance(name, str) else ""
        if tag and len(tag) <= 50 and TAG.match(tag) and tag not in tags:
            tags.append(tag)
        if len(tags) == MAX_TAGS:
            break
    return tags


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time with its offset; None when absent, unreadable or without a zone."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
