"""How values are shown to a reader: money, percentages, dates, languages, labels.

Registered as Jinja globals by instance.templating, so every page formats the same way, in
the reader's language (instance.i18n.current_language()).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from functools import cache
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
    language = i18n.current_language()
    if cents % 100 == 0:
        pattern = _whole_currency_pattern(language)
        return format_currency(
            Decimal(cents) / 100,
            currency,
            format=pattern,
            locale=_locale(language),
            currency_digits=False,
        )
    return format_currency(Decimal(cents) / 100, currency, locale=_locale(language))


def percent(value: int) -> str:
    return format_percent(Decimal(value) / 100, locale=_locale(i18n.current_language()))


def day(value: date | None) -> str:
    """A date (a declaration's "since", a deadline) in the reader's language."""
    if value is None:
        return ""
    return format_date(value, format="long", locale=_locale(i18n.current_language()))


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
