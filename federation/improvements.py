"""An improvement as an ActivityStreams ``Article`` and back: pure functions, no database.

Going out, ``article_document`` is what a commons' followers receive: Mastodon shows an Article
as its ``name``, its ``summary`` and a link (it drops ``content``), so the one plain summary
line ("Budget 4 000 € · 62 % funded · matched ×2 by France Tiers-Lieux") is what a person
following the commons reads; other Terreau instances read the machine terms (terreau.jsonld:
integer cents, a currency code, a status). Coming in, ``improvement_fields`` is strict: an
amount that is not a whole number of cents from 0, an unknown currency or status refuses the
whole Article, naming the property, since a wrong amount would mislead whoever funds it.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.numbers import list_currencies

from catalogue.improvements import MAX_BUDGET_CENTS, Improvement, ImprovementStatus
from federation import vocabulary as terms
from federation.activities import checked_uri
from federation.commons_documents import (
    MARKDOWN,
    MAX_DESCRIPTION,
    MAX_DESCRIPTION_HTML,
    MAX_NAME,
    clip,
    plain_text,
    sanitise_html,
)
from federation.media import PUBLIC
from federation.payment_links import attach_payment_links, read_payment_links

ARTICLE = "Article"
#: Larger than any budget we accept (overfunding allowed), within a PostgreSQL bigint.
MAX_FUNDED_CENTS = 100 * MAX_BUDGET_CENTS
#: What a peer may send: never a draft (drafts stay on their instance).
SENT_STATUSES = frozenset(s.value for s in ImprovementStatus if s is not ImprovementStatus.DRAFT)
#: Properties that say when, left out of the fingerprint: sending again only to say "now" is
#: exactly the flood the fingerprint is there to avoid.
TIMES = ("published", "updated")


class BadImprovement(ValueError):
    """An Article that claims to be an improvement but cannot be stored as one; names the
    property at fault."""


# --- Going out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """A program that matches pledges to the improvement: its ratio ("2", "0.5") and funder."""

    ratio: str
    funder: str

    @property
    def factor(self) -> str:
        """How many times a matched euro counts: 1 + the ratio (ratio 1 doubles: "2")."""
        try:
            return str((1 + Decimal(self.ratio)).normalize())
        except InvalidOperation:
            return self.ratio


@dataclass(frozen=True)
class SummaryFacts:
    """What the summary line says, in numbers; the instance words it in its language."""

    budget_cents: int
    funded_cents: int
    currency: str
    status: str
    matchers: tuple[Matcher, ...] = ()

    @property
    def percent(self) -> int:
        """Whole percent funded, rounded down, as the catalogue shows it (catalogue.funding)."""
        return self.funded_cents * 100 // self.budget_cents if self.budget_cents > 0 else 0


#: Words the summary line: ``instance`` gives one in the instance's default language.
SummaryWriter = Callable[[SummaryFacts], str]


def english_summary(facts: SummaryFacts) -> str:
    """The summary line in plain English, for callers without the instance's catalogs."""
    parts = [
        f"Budget {facts.budget_cents // 100} {facts.currency}",
        f"{facts.percent} % funded",
    ]
    parts.extend(f"matched ×{m.factor} by {m.funder}" for m in facts.matchers)
    if facts.status != ImprovementStatus.OPEN:
        parts.append(facts.status)
    return " · ".join(parts)


def article_document(
    improvement: Improvement,
    *,
    commons_uri: str,
    funded_cents: int,
    summary: str,
    published: str,
    updated: str | None = None,
) -> dict[str, Any]:
    """The Article for a local improvement, without ``@context`` (the activity carries it).

    ``summary`` is plain text: entities escaped, no markup, so Mastodon shows it as written.
    ``published`` and ``updated`` are ISO 8601 times (federation.actors.as_time).
    """
    document: dict[str, Any] = {
        "id": improvement.uri,
        "type": ARTICLE,
        "attributedTo": commons_uri,
        "name": improvement.title,
        "summary": html.escape(summary, quote=False),
        "url": improvement.uri,  # ids are also the addresses of the HTML pages
        "context": commons_uri,
        "audience": commons_uri,
        "to": [PUBLIC],
        "cc": [f"{commons_uri}/followers"],
        "published": published,
        terms.BUDGET: improvement.budget_cents,
        terms.CURRENCY: improvement.currency,
        terms.FUNDED_AMOUNT: funded_cents,
        terms.STATUS: improvement.status,
        terms.ALLOW_OVERFUNDING: improvement.allow_overfunding,
    }
    if updated is not None:
        document["updated"] = updated
    if improvement.description:
        document["content"] = improvement.description_html
        document["mediaType"] = "text/html"
        document["source"] = {"content": improvement.description, "mediaType": MARKDOWN}
    if improvement.deadline is not None:
        document[terms.DEADLINE] = improvement.deadline.isoformat()
    # FEP-0ea0; only when there are some, so an Article without links reads (and fingerprints)
    # as it did before payment links existed, and is not sent again for nothing.
    attach_payment_links(document, improvement.payment_links)
    return document


def fingerprint(document: Mapping[str, Any]) -> str:
    """A digest of what the Article says, its times left out: equal when nothing a reader sees
    or a machine reads has changed."""
    said = {key: value for key, value in document.items() if key not in TIMES}
    canonical = json.dumps(said, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- Coming in ------------------------------------------------------------------------------


def is_improvement_document(value: Any) -> bool:
    """An Article carrying one of our money terms: what the improvement handlers act on (a
    blog post's Article, from any other server, passes)."""
    return (
        isinstance(value, Mapping)
        and _has_type(value, ARTICLE)
        and any(name in value for name in (terms.BUDGET, terms.FUNDED_AMOUNT, terms.CURRENCY))
    )


def improvement_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a remote improvement, plus ``uri`` and ``commons_uri``; raises
    BadImprovement naming the property.

    The commons is ``attributedTo``; a ``context`` or ``audience`` naming another commons is
    refused rather than guessed at. ``updated_at`` falls back to ``published``, so a Create
    read after a later Update never passes for the newer of the two.
    """
    if not _has_type(document, ARTICLE):
        raise BadImprovement("type: an improvement is an Article")
    uri = _uri(document.get("id"), "id")
    commons_uri = _uri(_reference(document.get("attributedTo")), "attributedTo")
    for name in ("context", "audience"):
        value = document.get(name)
        if value is not None and _reference(value) != commons_uri:
            raise BadImprovement(f"{name}: must be the commons it is attributed to")
    description, description_html = _description(document)
    budget = _cents(document.get(terms.BUDGET), terms.BUDGET, required=True)
    if not 0 < budget <= MAX_BUDGET_CENTS:
        raise BadImprovement(f"{terms.BUDGET}: expected a whole number of cents from 1")
    fields: dict[str, Any] = {
        "uri": uri,
        "commons_uri": commons_uri,
        "title": _name(document.get("name")),
        "description": description,
        "description_html": description_html,
        "budget_cents": budget,
        "currency": _currency(document.get(terms.CURRENCY)),
        "origin_funded_cents": _cents(document.get(terms.FUNDED_AMOUNT), terms.FUNDED_AMOUNT),
        "status": _status(document.get(terms.STATUS)),
        "allow_overfunding": _flag(document.get(terms.ALLOW_OVERFUNDING)),
        "deadline": _date(document.get(terms.DEADLINE)),
        "payment_links": read_payment_links(document),  # dropped, never refused, when bad
    }
    published, updated = _time(document, "published"), _time(document, "updated")
    if published is not None:
        fields["created_at"] = published
    if updated or published:
        fields["updated_at"] = updated or published
    return fields


@cache
def known_currencies() -> frozenset[str]:
    """ISO 4217 codes, as Babel's CLDR data knows them (offline, no lookup)."""
    return frozenset(list_currencies())


def _has_type(document: Mapping[str, Any], wanted: str) -> bool:
    kind = document.get("type")
    return kind == wanted or (isinstance(kind, list) and wanted in kind)


def _reference(value: Any) -> Any:
    """An id, from a string or an embedded object; a one-item list is read as its item."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, Mapping):
        return value.get("id")
    return value


def _uri(value: Any, name: str) -> str:
    return checked_uri(value, name, BadImprovement)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadImprovement("name: required")
    return clip(" ".join(value.split()), MAX_NAME)


def _description(document: Mapping[str, Any]) -> tuple[str, str]:
    """(plain text or Markdown, sanitised HTML) from ``content``; HTML is never stored as
    sent: nh3 keeps the catalogue's own short list of tags."""
    content = document.get("content")
    if content is None:
        return "", ""
    if not isinstance(content, str):
        raise BadImprovement("content: expected a string")
    cleaned = sanitise_html(content.strip())
    if len(cleaned) > MAX_DESCRIPTION_HTML:
        raise BadImprovement(f"content: longer than {MAX_DESCRIPTION_HTML} characters")
    source = document.get("source")
    markdown = ""
    if isinstance(source, Mapping) and source.get("mediaType") == MARKDOWN:
        text = source.get("content")
        markdown = text.strip() if isinstance(text, str) else ""
    return clip(markdown or plain_text(cleaned), MAX_DESCRIPTION), cleaned


def _cents(value: Any, name: str, *, required: bool = False) -> int:
    """A whole number of cents from 0: floats ("4000.5", even "4000.0"), strings, booleans
    and negative numbers are refused, never rounded."""
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadImprovement(f"{name}: expected a whole number of cents")
    if not 0 <= value <= MAX_FUNDED_CENTS:
        raise BadImprovement(f"{name}: expected a whole number of cents from 0")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or value not in known_currencies():
        raise BadImprovement(f"{terms.CURRENCY}: expected an ISO 4217 code such as EUR")
    return value


def _status(value: Any) -> str:
    if not isinstance(value, str) or value not in SENT_STATUSES:
        shown = str(value)[:50]
        raise BadImprovement(f"{terms.STATUS}: unknown status {shown!r}")
    return value


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadImprovement(f"{terms.ALLOW_OVERFUNDING}: expected true or false")
    return value


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise BadImprovement(f"{terms.DEADLINE}: expected a date such as 2027-03-31")


def _time(document: Mapping[str, Any], name: str) -> datetime | None:
    """An ISO 8601 time with its offset; None when absent or without a zone, refused when
    unreadable (it decides which of two versions is newer)."""
    value = document.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise BadImprovement(f"{name}: expected a time such as 2025-03-01T10:00:00Z")
    return moment if moment.tzinfo is not None else None


def matchers_text(matchers: Sequence[Matcher]) -> tuple[Matcher, ...]:
    """Each (ratio, funder) once, in a stable order: the summary must not change, and so be
    sent again, because a query returned rows in another order."""
    return tuple(sorted(set(matchers), key=lambda m: (m.funder, m.ratio)))
