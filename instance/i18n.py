"""French and English: catalogs, the language of each request, and translated messages.

Catalogs are Babel ``.po`` files under ``instance/locales``; they are compiled in memory at
start-up, so there is no build step to forget. The request's language is the user's choice
(their account, else their session), else the browser's Accept-Language, else the instance's.
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from catalogue.errors import InvalidField

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "messages"

_SOURCE_LANGUAGE = _gettext.NullTranslations()
_translations: ContextVar[_gettext.NullTranslations | None] = ContextVar(
    "translations", default=None
)
_language: ContextVar[str] = ContextVar("language", default="en")


@cache
def catalog(language: str) -> _gettext.NullTranslations:
    """The compiled catalog for ``language``; English is the source language."""
    po = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as source:
        messages = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def activate(language: str) -> None:
    """Use ``language`` for the rest of the current request (or task)."""
    _language.set(language)
    _translations.set(catalog(language))


def translations() -> _gettext.NullTranslations:
    return _translations.get() or _SOURCE_LANGUAGE


def current_language() -> str:
    return _language.get()


def gettext(message: str, **params: Any) -> str:
    translated = translations().gettext(message)
    return translated % params if params else translated


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    translated = translations().ngettext(singular, plural, n)
    return translated % {"num": n, **params}


_ = gettext


def error_message(error: InvalidField) -> str:
    return gettext(error.message, **error.params)


def parse_accept_language(header: str) -> list[str]:
    """Language tags in the client's order of preference (q-values honoured)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _q, _p, tag in sorted(weighted)]


def choose_language(
    chosen: str | None, accept_language: str, available: list[str], default: str
) -> str:
    if chosen in available:
        assert chosen is not None
        return chosen
    preferred = parse_accept_language(accept_language)
    return (
        negotiate_locale(preferred, available, sep="-")
        or negotiate_locale([tag.split("-")[0] for tag in preferred], available)
        or default
    )


def language_name(language: str) -> str:
    """A language named in itself ("Français", "English"), for the switcher."""
    return (Locale.parse(language).get_display_name(language) or language).capitalize()
