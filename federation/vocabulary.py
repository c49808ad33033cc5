"""Terreau's own ActivityStreams terms: a JSON-LD context bundled with the code.

The context is read from ``terreau.jsonld`` beside this module and served by every instance at
``/ns/terreau``; documents name that address. It is never fetched at run time: we read commons
documents as plain JSON with the compact names below, as every fediverse server does, so a
peer's context being down or different never changes what a document means to us.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from federation.context import FederationConfig

CONTEXT_FILE = Path(__file__).with_name("terreau.jsonld")
CONTEXT_PATH = "/ns/terreau"
NAMESPACE = "https://w3id.org/terreau/ns#"
VALUEFLOWS = "https://w3id.org/valueflows/ont/vf#"
CONTEXT_MEDIA_TYPE = "application/ld+json"

# The compact names of our terms, as they appear in documents.
COMMONS_KIND = "commonsKind"
MATURITY = "maturity"
LICENCE = "licence"
LANGUAGES = "languages"
TERRITORY = "territory"
WEBSITE = "website"
REPOSITORY = "repository"
USES_COUNT = "usesCount"
INTERESTED_COUNT = "interestedCount"
TERMS = (
    COMMONS_KIND, MATURITY, LICENCE, LANGUAGES, TERRITORY, WEBSITE, REPOSITORY, USES_COUNT,
    INTERESTED_COUNT,
)  # fmt: skip


def context_url(config: FederationConfig) -> str:
    """Where this instance serves the context: each instance names its own copy, so a reader
    that does dereference it never depends on another server being up."""
    return f"{config.base_url}{CONTEXT_PATH}"


@cache
def bundled_context() -> bytes:
    """The context file exactly as shipped (read once per process)."""
    return CONTEXT_FILE.read_bytes()
