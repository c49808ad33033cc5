"""Payment links on the wire: FEP-0ea0 ``Link`` attachments of a Group or an Article.

Going out, each link is ``{"type": "Link", "name": label, "href": url, "rel": "payment"}`` in
the document's ``attachment``, after whatever else is attached there. Coming in, only
attachments whose ``rel`` is (or includes) ``payment`` are read; other attachments (images,
Mastodon's profile fields) are none of ours. A payment link is never a reason to refuse a
commons or an improvement: one we cannot show safely (not a ``Link``, an address that is not
http(s), such as ``payto:``) is dropped with a log line, and the document is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from catalogue.payment_links import MAX_LABEL, MAX_LINKS, PaymentLink, clean_label, payment_url

PAYMENT = "payment"
LINK = "Link"

log = logging.getLogger("terreau.federation.payment_links")


# --- Going out ------------------------------------------------------------------------------


def payment_attachment(link: PaymentLink) -> dict[str, str]:
    return {"type": LINK, "name": link.label, "href": link.url, "rel": PAYMENT}


def attach_payment_links(document: dict[str, Any], links: Iterable[PaymentLink]) -> None:
    """Add the links to ``document["attachment"]``, keeping what is attached already (a single
    attachment becomes a list of one); nothing is added, not even an empty list, without
    links."""
    attachments = [payment_attachment(link) for link in links]
    if not attachments:
        return
    existing = document.get("attachment")
    if existing is None:
        existing = []
    elif not isinstance(existing, list):
        existing = [existing]
    document["attachment"] = [*existing, *attachments]


# --- Coming in ------------------------------------------------------------------------------


def _has(value: Any, wanted: str) -> bool:
    """``value`` is ``wanted`` or a list holding it: JSON-LD lets either stand for one value."""
    return value == wanted or (isinstance(value, list) and wanted in value)


def is_payment_attachment(item: Any) -> bool:
    """An attachment that says it is a payment link (FEP-0ea0: ``rel`` includes payment)."""
    return isinstance(item, Mapping) and _has(item.get("rel"), PAYMENT)


def _cut(text: str) -> str:
    """At most MAX_LABEL characters, an ellipsis marking a cut (as commons_documents.clip,
    which cannot be imported here: that module imports this one)."""
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1].rstrip() + "…"


def _label(name: Any, url: str) -> str:
    """The ``name`` on one line, cut to fit; the address' host when there is none (the FEP
    only recommends a name). ActivityStreams' ``name`` is plain text, never HTML: it is kept
    as written (``<`` included) and escaped wherever it is shown, as a commons' name is."""
    label = _cut(clean_label(name)) if isinstance(name, str) else ""
    return label or (urlsplit(url).hostname or url)[:MAX_LABEL]


def _payment_link(item: Mapping[str, Any]) -> PaymentLink:
    """One payment attachment as a link we can show; ValueError says why not."""
    if not _has(item.get("type"), LINK):
        raise ValueError(f"type {str(item.get('type'))[:50]!r} is not Link")
    href = item.get("href")
    url = payment_url(href.strip()) if isinstance(href, str) else None
    if url is None:
        raise ValueError(f"href {str(href)[:100]!r} is not an http(s) address")
    return PaymentLink(_label(item.get("name"), url), url)


def read_payment_links(document: Mapping[str, Any]) -> tuple[PaymentLink, ...]:
    """The payment links of a remote Group or Article, sanitised: http(s) addresses only,
    plain-text labels of at most 100 characters, each address once, at most five; anything
    else dropped and logged. Never raises."""
    attachments = document.get("attachment")
    if attachments is None:
        return ()
    if isinstance(attachments, Mapping):
        attachments = [attachments]
    where = str(document.get("id"))[:200]
    if not isinstance(attachments, list):
        log.warning("payment links of %s dropped: attachment is not a list", where)
        return ()
    links: list[PaymentLink] = []
    for item in filter(is_payment_attachment, attachments):
        try:
            link = _payment_link(item)
        except ValueError as error:
            log.warning("a payment link of %s dropped: %s", where, error)
            continue
        if any(kept.url == link.url for kept in links):
            continue
        if len(links) == MAX_LINKS:
            log.warning("payment links of %s beyond the first %d dropped", where, MAX_LINKS)
            break
        links.append(link)
    return tuple(links)
