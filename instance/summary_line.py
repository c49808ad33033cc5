"""The one plain line that tells other servers how an improvement stands, in the instance's
default language: "Budget 4 000 € · 62 % funded · matched ×2 by France Tiers-Lieux".

It is what a Mastodon account following a commons reads under the improvement's title (an
Article's ``summary``), so it is written for people, once, in the language the instance is
run in, not in each reader's: a server that receives it has no way to ask for another.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from babel.numbers import format_decimal

from catalogue.errors import N_
from catalogue.improvements import STATUS_LABELS, ImprovementStatus
from federation.improvements import SummaryFacts, SummaryWriter
from instance import i18n
from instance.formatting import money_in, percent_in

BUDGET = N_("Budget %(amount)s")
FUNDED = N_("%(percent)s funded")
# A program with ratio 1 adds one euro to each euro given: the pledge counts twice ("×2").
MATCHED = N_("matched ×%(factor)s by %(funder)s")
SEPARATOR = " · "


def factor(ratio: str, language: str) -> str:
    """How many times a matched euro counts: 1 + the program's ratio ("1" → "2", "0.5" →
    "1.5", written the language's way)."""
    try:
        value = 1 + Decimal(ratio)
    except InvalidOperation:
        return ratio
    return format_decimal(value.normalize(), locale=language)


def summary_writer(language: str) -> SummaryWriter:
    """A writer of summary lines in ``language`` (one of the instance's catalogs)."""
    catalog = i18n.catalog(language)

    def write(facts: SummaryFacts) -> str:
        parts = [
            catalog.gettext(BUDGET)
            % {"amount": money_in(facts.budget_cents, facts.currency, language)},
            catalog.gettext(FUNDED) % {"percent": percent_in(facts.percent, language)},
        ]
        parts.extend(
            catalog.gettext(MATCHED)
            % {"factor": factor(matcher.ratio, language), "funder": matcher.funder}
            for matcher in facts.matchers
        )
        if facts.status != ImprovementStatus.OPEN:
            label = STATUS_LABELS.get(ImprovementStatus(facts.status), facts.status)
            parts.append(catalog.gettext(label))
        return SEPARATOR.join(parts)

    return write
