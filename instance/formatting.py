"""How values are shown to a reader: money, percentages, dates, languages, labels.

Registered as Jinja globals by instance.templating, so every page formats the same way, in
the reader's language (instance.i18n.current_language()).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_percent

from catalogue.commons import COMMONS_KIND_LABELS, MATURITY_LABELS, CommonsKind, Maturity
from catalogue.improvements import STATUS_LABELS
from instance import i18n
from instance.i18n import gettext as _


@cache
def _locale(code: str) -> Locale:
    """Parsed once per code: a page formats hundreds of amounts and dates (bench/)."""
    return Locale.parse(code)


@cache
def _whole_currency_pattern(language: str) -> str:
    return str(_locale(language).currency_formats["standard"].pattern).replace(".00", "")


def money(cents: int, currency: str = "EUR") -> str:
    """An amount in the reader's language; whole amounts without decimals ("4 000 €")."""
    return _money(cents, currency, i18n.current_language())


def percent(value: int) -> str:
    return _percent(value, i18n.current_language())


def money_in(cents: int, currency: str, language: str) -> str:
    """``money`` in a given language rather than the reader's (what other servers are told)."""
    return _money(cents, currency, language)


def percent_in(value: int, language: str) -> str:
    return _percent(value, language)


def day(value: date | None) -> str:
    """A date (a declaration's "since", a deadline) in the reader's language."""
    if value is None:
        return ""
    return _day(value, i18n.current_language())


# Babel takes about 0.1 ms per amount (currency names go through plural rules), and a commons
# with thirty improvements shows a hundred amounts, mostly the same few: 12 ms of a 30 ms page
# (bench/catalogue.py). The results depend on nothing but the arguments, so they are kept.
@lru_cache(maxsize=8192)
def _money(cents: int, currency: str, language: str) -> str:
    if cents % 100 == 0:
        return format_currency(
            Decimal(cents) / 100,
            currency,
            format=_whole_currency_pattern(language),
            locale=_locale(language),
            currency_digits=False,
        )
    return format_currency(Decimal(cents) / 100, currency, locale=_locale(language))


@lru_cache(maxsize=1024)
def _percent(value: int, language: str) -> str:
    return format_percent(Decimal(value) / 100, locale=_locale(language))


@lru_cache(maxsize=4096)
def _day(value: date, language: str) -> str:
    return format_date(value, format="long", locale=_locale(language))


def language_label(code: str) -> str:
    """A language's name in the reader's language ("anglais" for a French reader)."""
    try:
        return _locale(code).get_display_name(_locale(i18n.current_language())) or code
    except (ValueError, UnknownLocaleError):
        return code


def _label(labels: Mapping[Any, str]) -> Callable[[str], str]:
    def label(value: str) -> str:
        for key, text in labels.items():
            if key == value:
                return _(text)
        return value

    return label


def display_helpers() -> dict[str, Any]:
    """The template globals that show labels and money in the reader's language."""
    return {
        "money": money,
        "percent": percent,
        "commons_kind_label": _label(COMMONS_KIND_LABELS),
        "maturity_label": _label(MATURITY_LABELS),
        "status_label": _label(STATUS_LABELS),
        "commons_kinds": [k.value for k in CommonsKind],
        "maturities": [m.value for m in Maturity],
        "day": day,
        "language_label": language_label,
    }
