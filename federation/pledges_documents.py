"""A pledge as a ValueFlows ``Commitment`` and back: pure functions, no database, no network.

A pledge travels as the ``object`` of an ``Offer`` by the pledging organisation (and, for a
status change, of an ``Update``), which the commons' instance answers with ``Accept`` or
``Reject``. The Commitment says who gives (``provider``, the organisation), who receives
(``receiver``, the commons), for which improvement, and how much: ``amountCents`` (integer
cents, what Terreau reads) plus a ValueFlows ``resourceQuantity`` (a decimal string, for
ValueFlows readers; FEP-0837 writes quantities so). Both must agree.

A funder's **match** of a pledge is a Commitment too, by the funder organisation
(``provider``) to the same commons, that names the pledge it matches (``matches``) and the
program that made it (``program``, embedded with its ``name``). It is sent as ``Create``,
``Update`` when the amount moves, ``Delete`` when released: the funder's instance computes it,
the improvement's instance counts it.

Reading is strict, as for improvements: a float, a negative or zero amount, an unknown
currency or status refuses the whole Commitment with the property at fault, since a wrong
amount would mislead whoever matches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from catalogue.money import Money
from federation import vocabulary as terms
from federation.activities import checked_uri, reference
from federation.improvements import known_currencies
from pledges.models import PledgeStatus

COMMITMENT = "Commitment"
#: ValueFlows' action for money changing hands.
TRANSFER = "transfer"
#: Larger than any pledge Terreau accepts (pledges.operations.MAX_PLEDGE_CENTS), within a bigint.
MAX_AMOUNT_CENTS = 10_000_000_00
#: What a Commitment may say. Not ``refused``: that is the commons' ``Reject``, recorded only
#: where the pledge was made.
STATUSES = frozenset(s.value for s in PledgeStatus if s is not PledgeStatus.REFUSED)
#: A program's ratio as a match says it: a decimal string such as "1" or "0.5".
_RATIO = re.compile(r"\d{1,6}(\.\d{1,6})?")


class BadCommitment(ValueError):
    """A Commitment that cannot be read as a pledge; the message starts with the property."""


@dataclass(frozen=True)
class Commitment:
    """A pledge as read from (or written to) a Commitment."""

    uri: str
    provider: str  # the organisation actor
    receiver: str  # the commons actor
    improvement: str  # the improvement Article's id
    amount_cents: int
    currency: str
    status: str
    published: datetime | None = None
    updated: datetime | None = None


def _as_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second (as ``federation.actors.as_time``)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def commitment_document(commitment: Commitment) -> dict[str, Any]:
    """The Commitment as sent, without ``@context`` (the activity carrying it names ours)."""
    document: dict[str, Any] = {
        "id": commitment.uri,
        "type": COMMITMENT,
        terms.ACTION: TRANSFER,
        terms.PROVIDER: commitment.provider,
        terms.RECEIVER: commitment.receiver,
        terms.IMPROVEMENT: commitment.improvement,
        terms.AMOUNT_CENTS: commitment.amount_cents,
        terms.CURRENCY: commitment.currency,
        terms.RESOURCE_QUANTITY: {
            terms.HAS_UNIT: commitment.currency,
            terms.HAS_NUMERICAL_VALUE: Money(
                commitment.amount_cents, commitment.currency
            ).decimal_string(),
        },
        terms.STATUS: commitment.status,
    }
    if commitment.published is not None:
        document["published"] = _as_time(commitment.published)
    if commitment.updated is not None:
        document["updated"] = _as_time(commitment.updated)
    return document


def is_commitment(value: Any) -> bool:
    """A pledge of ours (a Commitment that names an improvement and matches nothing): what the
    pledge handlers act on; a ValueFlows Commitment from a marketplace server (FEP-0837)
    passes."""
    return (
        isinstance(value, Mapping)
        and _has_type(value, COMMITMENT)
        and terms.IMPROVEMENT in value
        and terms.MATCHES not in value
    )


def parse_commitment(document: Any) -> Commitment:
    """The pledge in ``document``; raises BadCommitment naming the property."""
    if not isinstance(document, Mapping) or not _has_type(document, COMMITMENT):
        raise BadCommitment("type: a pledge is a Commitment")
    action = document.get(terms.ACTION)
    if action != TRANSFER:
        raise BadCommitment(f"{terms.ACTION}: a pledge is a {TRANSFER!r}")
    amount = _amount(document.get(terms.AMOUNT_CENTS))
    currency = _currency(document.get(terms.CURRENCY))
    _check_quantity(document.get(terms.RESOURCE_QUANTITY), amount, currency)
    return Commitment(
        uri=_uri(document.get("id"), "id"),
        provider=_uri(reference(document.get(terms.PROVIDER)), terms.PROVIDER),
        receiver=_uri(reference(document.get(terms.RECEIVER)), terms.RECEIVER),
        improvement=_uri(reference(document.get(terms.IMPROVEMENT)), terms.IMPROVEMENT),
        amount_cents=amount,
        currency=currency,
        status=_status(document.get(terms.STATUS)),
        published=_time(document, "published"),
        updated=_time(document, "updated"),
    )


def check_currency(commitment: Commitment, improvement_currency: str) -> None:
    """A pledge is in its improvement's currency: Terreau never converts."""
    if commitment.currency != improvement_currency:
        raise BadCommitment(
            f"{terms.CURRENCY}: {commitment.currency} is not the improvement's currency "
            f"({improvement_currency})"
        )


@dataclass(frozen=True)
class MatchCommitment:
    """A funder's match of one pledge, as read from (or written to) a Commitment."""

    uri: str
    provider: str  # the funder organisation actor
    receiver: str  # the commons actor
    improvement: str
    pledge: str  # the pledge Commitment it matches
    program: str
    program_name: str
    amount_cents: int
    currency: str
    updated: datetime | None = None
    program_ratio: str = ""  # "1": one more euro per euro; "" when not said


def match_document(match: MatchCommitment) -> dict[str, Any]:
    """The match as sent, without ``@context`` (the activity carrying it names ours)."""
    document = commitment_document(
        Commitment(
            uri=match.uri,
            provider=match.provider,
            receiver=match.receiver,
            improvement=match.improvement,
            amount_cents=match.amount_cents,
            currency=match.currency,
            status=PledgeStatus.PLEDGED,
            updated=match.updated,
        )
    )
    del document[terms.STATUS]  # a match has no life of its own: its pledge's status rules it
    document[terms.MATCHES] = match.pledge
    document[terms.PROGRAM] = {
        "id": match.program,
        "type": terms.MATCHING_PROGRAM,
        "name": match.program_name,
        terms.RATIO: match.program_ratio,
    }
    return document


def is_match(value: Any) -> bool:
    """A Commitment that matches a pledge: what the match handlers act on."""
    return isinstance(value, Mapping) and _has_type(value, COMMITMENT) and terms.MATCHES in value


def parse_match(document: Any) -> MatchCommitment:
    """The match in ``document``; raises BadCommitment naming the property."""
    if not is_match(document):
        raise BadCommitment(f"type: a match is a Commitment that names what it {terms.MATCHES}")
    if document.get(terms.ACTION) != TRANSFER:
        raise BadCommitment(f"{terms.ACTION}: a match is a {TRANSFER!r}")
    amount = _amount(document.get(terms.AMOUNT_CENTS))
    currency = _currency(document.get(terms.CURRENCY))
    _check_quantity(document.get(terms.RESOURCE_QUANTITY), amount, currency)
    program = document.get(terms.PROGRAM)
    name = program.get("name", "") if isinstance(program, Mapping) else ""
    if not isinstance(name, str):
        raise BadCommitment(f"{terms.PROGRAM}: its name must be text")
    ratio = program.get(terms.RATIO, "") if isinstance(program, Mapping) else ""
    if not isinstance(ratio, str) or (ratio and not _RATIO.fullmatch(ratio)):
        raise BadCommitment(f"{terms.PROGRAM}: its {terms.RATIO} must be a decimal string")
    return MatchCommitment(
        uri=_uri(document.get("id"), "id"),
        provider=_uri(reference(document.get(terms.PROVIDER)), terms.PROVIDER),
        receiver=_uri(reference(document.get(terms.RECEIVER)), terms.RECEIVER),
        improvement=_uri(reference(document.get(terms.IMPROVEMENT)), terms.IMPROVEMENT),
        pledge=_uri(reference(document.get(terms.MATCHES)), terms.MATCHES),
        program=_uri(reference(program), terms.PROGRAM),
        program_name=" ".join(name.split())[:200],
        amount_cents=amount,
        currency=currency,
        updated=_time(document, "updated") or _time(document, "published"),
        program_ratio=ratio,
    )


# --- Reading, property by property ------------------------------------------------------------


def _has_type(document: Mapping[str, Any], wanted: str) -> bool:
    kind = document.get("type")
    return kind == wanted or (isinstance(kind, list) and wanted in kind)


def _uri(value: Any, name: str) -> str:
    return checked_uri(value, name, BadCommitment)


def _amount(value: Any) -> int:
    """Whole cents from 1: floats (even ``30000.0``), strings and booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadCommitment(f"{terms.AMOUNT_CENTS}: expected a whole number of cents")
    if not 0 < value <= MAX_AMOUNT_CENTS:
        raise BadCommitment(f"{terms.AMOUNT_CENTS}: expected a whole number of cents from 1")
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or value not in known_currencies():
        raise BadCommitment(f"{terms.CURRENCY}: expected an ISO 4217 code such as EUR")
    return value


def _check_quantity(value: Any, amount: int, currency: str) -> None:
    """The ValueFlows quantity, when present, says the same as ``amountCents``: a document
    whose two amounts differ is refused rather than read one way or the other."""
    if value is None:
        return
    name = terms.RESOURCE_QUANTITY
    if not isinstance(value, Mapping):
        raise BadCommitment(f"{name}: expected an object")
    if value.get(terms.HAS_UNIT) != currency:
        raise BadCommitment(f"{name}: {terms.HAS_UNIT} must be the currency, {currency}")
    number = value.get(terms.HAS_NUMERICAL_VALUE)
    if not isinstance(number, str):
        raise BadCommitment(f"{name}: {terms.HAS_NUMERICAL_VALUE} must be a decimal string")
    try:
        same = Decimal(number) * 100 == amount
    except InvalidOperation:
        same = False
    if not same:
        raise BadCommitment(f"{name}: {number!r} is not {terms.AMOUNT_CENTS} ({amount} cents)")


def _status(value: Any) -> str:
    if not isinstance(value, str) or value not in STATUSES:
        raise BadCommitment(f"{terms.STATUS}: unknown status {str(value)[:50]!r}")
    return value


def _time(document: Mapping[str, Any], name: str) -> datetime | None:
    value = document.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadCommitment(f"{name}: expected a time with its offset, e.g. 2025-03-01T10:00:00Z")
    return moment
