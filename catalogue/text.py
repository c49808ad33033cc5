"""Text rules shared by the catalogue: folding for search and sorting, Markdown to safe HTML."""

from __future__ import annotations

import unicodedata

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h2", "h3", "h4", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def fold(text: str) -> str:
    """Text without accents and case: "Équipe" → "equipe", for search and sorting."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def render_markdown(source: str) -> str:
    """Markdown as HTML that is safe to show: raw HTML is escaped, then nh3 keeps a short list.

    Two layers on purpose: markdown-it refuses raw HTML, and nh3 (ammonia) removes whatever a
    future parser option or a crafted link could still let through (``javascript:`` URLs...).
    """
    html = _markdown.render(source)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer ugc",
    )
