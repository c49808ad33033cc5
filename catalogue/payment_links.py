"""Payment links: where to give to a commons, or pay towards one of its improvements.

Maintainers list a few (a donation page, an Open Collective, a shop): each is a plain-text
label and an http(s) address. Pledges record what organisations promise; these links are how
anyone actually pays. Other instances receive them as FEP-0ea0 ``Link`` attachments (see
federation/payment_links.py): this module knows nothing of that, only what a usable link is.

Maintainers type them one per line, ``label | address``, as milestones are typed
``title: amount``; ``parse_payment_links`` reads that text and names the line at fault.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Column, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from catalogue.errors import N_, InvalidField

FIELD = "payment_links"
MAX_LINKS = 5
MAX_LABEL = 100
MAX_URL = 2048
SEPARATOR = "|"


@dataclass(frozen=True)
class PaymentLink:
    """A label shown as text (never markup) and the http(s) address it leads to."""

    label: str
    url: str


def payment_url(url: str) -> str | None:
    """``url`` with its scheme in lower case (``HTTPS://`` → ``https://``, so every reader
    can tell a web address by its first characters) when it is an absolute http(s) address
    that fits the column, with no space or control character; None otherwise
    (``javascript:``, ``data:`` and ``payto:`` included: only web pages are shown as links)."""
    if not url or len(url) > MAX_URL or any(c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced "[" in the host
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme + url[len(parts.scheme) :]


def clean_label(label: str) -> str:
    """One line of plain text: control characters (PostgreSQL refuses NUL) and runs of blanks
    become one space. Markup stays as typed: a label is shown escaped, as text."""
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in label).split())


def _line(number: int, line: str) -> PaymentLink:
    """One typed line, ``label | address``; the last bar splits them (a label may hold one,
    a web address may not: RFC 3986 wants it percent-encoded)."""
    label, separator, url = line.rpartition(SEPARATOR)
    label, url = clean_label(label), url.strip()
    if not separator or not label or not url:
        raise InvalidField(
            FIELD,
            N_(
                "Line %(line)d: write a label, a vertical bar and the address "
                "(Donate | https://opencollective.com/yeswiki)."
            ),
            line=number,
        )
    if len(label) > MAX_LABEL:
        raise InvalidField(
            FIELD,
            N_("Line %(line)d: a label has at most %(max)d characters."),
            line=number,
            max=MAX_LABEL,
        )
    if len(url) > MAX_URL:
        raise InvalidField(
            FIELD,
            N_("Line %(line)d: an address has at most %(max)d characters."),
            line=number,
            max=MAX_URL,
        )
    usable = payment_url(url)
    if usable is None:
        raise InvalidField(
            FIELD,
            N_("Line %(line)d: give a full web address starting with https://."),
            line=number,
        )
    return PaymentLink(label, usable)


def parse_payment_links(text: str) -> tuple[PaymentLink, ...]:
    """The links typed one per line (blank lines skipped); InvalidField names the first line
    at fault, or says there are too many."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) > MAX_LINKS:
        raise InvalidField(FIELD, N_("At most %(max)d payment links."), max=MAX_LINKS)
    return tuple(_line(number, line) for number, line in lines)


def format_payment_links(links: Iterable[PaymentLink]) -> str:
    """The links as a maintainer types them, to fill the form again."""
    return "\n".join(f"{link.label} {SEPARATOR} {link.url}" for link in links)


# Storage: one JSON text column, read back as a tuple of PaymentLink.


class PaymentLinks(TypeDecorator[tuple[PaymentLink, ...]]):
    """A tuple of links stored as a JSON list of ``{"label", "url"}``: a handful of short
    values always read with their commons or improvement, never queried on their own, so no
    table of their own (and the same text column on SQLite and PostgreSQL)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str:
        links = tuple(value or ())
        if not all(isinstance(link, PaymentLink) for link in links):
            raise ValueError(f"refusing to store payment links that are not PaymentLink: {value!r}")
        return json.dumps(
            [{"label": link.label, "url": link.url} for link in links], ensure_ascii=False
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[PaymentLink, ...]:
        try:
            items = json.loads(value) if value else []
        except (TypeError, ValueError):
            return ()
        if not isinstance(items, list):
            return ()
        return tuple(
            PaymentLink(str(item["label"]), str(item["url"]))
            for item in items
            if isinstance(item, dict) and {"label", "url"} <= item.keys()
        )


def payment_links_field() -> Any:
    """The column of a model's payment links: empty for rows written before it existed."""
    return Field(
        default=(),
        sa_column=Column(PaymentLinks(), nullable=False, server_default="[]"),
    )
