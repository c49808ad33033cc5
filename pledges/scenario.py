"""The scenario format of ``terreau matching simulate``: JSON in, JSON out, errors by field.

A funder sizes an envelope before launching a program by running the real rules on a
scenario; tests use the same format. Amounts are decimal strings with two decimals ("300.00"),
times ISO 8601 in UTC, ratios decimal strings ("1", "0.5").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, TypeVar

from catalogue.money import Money
from pledges.matching import (
    CANCELLED,
    Contributor,
    Eligibility,
    Improvement,
    Pledge,
    Program,
    Result,
    compute_matches,
)

STATUSES = ("pledged", "paid", CANCELLED)
_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")
T = TypeVar("T")


class ScenarioError(ValueError):
    """The scenario does not fit the format; the message starts with the field's path."""


def _field(data: dict[str, Any], key: str, where: str, required: bool = True) -> Any:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: must be an object")
    if key not in data or data[key] is None:
        if required:
            raise ScenarioError(f"{where}.{key}: missing" if where else f"{key}: missing")
        return None
    return data[key]


def _id(value: Any, where: str) -> Hashable:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ScenarioError(f"{where}: must be a string or an integer")
    return value


def parse_cents(value: Any, where: str, *, positive: bool = False) -> int:
    """ "300.00" → 30000; refuses floats, negatives and more than two decimals."""
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise ScenarioError(f'{where}: must be an amount as a string such as "300.00"')
    whole, _dot, fraction = value.partition(".")
    cents = int(whole) * 100 + int(fraction.ljust(2, "0") or "0")
    if positive and cents <= 0:
        raise ScenarioError(f"{where}: must be more than zero")
    return cents


def parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: must be an ISO 8601 time such as 2026-11-15T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ScenarioError(f"{where}: not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise ScenarioError(f"{where}: give the time zone (Z for UTC)")
    return moment.astimezone(UTC)


def parse_ratio(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ScenarioError(f'{where}: must be a decimal string such as "1" or "0.5"')
    try:
        ratio = Fraction(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        raise ScenarioError(f"{where}: not a decimal number: {value!r}") from None
    if ratio <= 0:
        raise ScenarioError(f"{where}: must be more than zero")
    return ratio


def _list(data: dict[str, Any], key: str, where: str = "") -> list[Any]:
    value = _field(data, key, where, required=False)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScenarioError(f"{key}: must be a list")
    return value


def _each(data: dict[str, Any], key: str, parse: Callable[[Any, str], T]) -> list[T]:
    return [parse(item, f"{key}[{index}]") for index, item in enumerate(_list(data, key))]


def _strings(value: Any, where: str) -> frozenset[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise ScenarioError(f"{where}: must be a list of strings")
    return frozenset(value)


def _improvement(item: Any, where: str) -> Improvement:
    return Improvement(
        id=_id(_field(item, "id", where), f"{where}.id"),
        budget=parse_cents(_field(item, "budget", where), f"{where}.budget", positive=True),
        category=str(_field(item, "category", where, required=False) or ""),
    )


def _contributor(item: Any, where: str) -> Contributor:
    return Contributor(
        id=_id(_field(item, "id", where), f"{where}.id"),
        kind=str(_field(item, "kind", where, required=False) or ""),
        instance=str(_field(item, "instance", where, required=False) or ""),
    )


def _optional_cents(item: dict[str, Any], key: str, where: str) -> int | None:
    value = _field(item, key, where, required=False)
    return None if value is None else parse_cents(value, f"{where}.{key}")


def _program(item: Any, where: str) -> Program:
    starts = parse_time(_field(item, "starts", where), f"{where}.starts")
    ends = parse_time(_field(item, "ends", where), f"{where}.ends")
    if ends <= starts:
        raise ScenarioError(f"{where}.ends: the window ends before it starts")
    priority = _field(item, "priority", where, required=False) or 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ScenarioError(f"{where}.priority: must be an integer")
    eligible = _field(item, "eligible", where, required=False) or {}
    if not isinstance(eligible, dict):
        raise ScenarioError(f"{where}.eligible: must be an object")
    unknown = set(eligible) - {"kinds", "instances", "categories", "improvements"}
    if unknown:
        raise ScenarioError(f"{where}.eligible.{sorted(unknown)[0]}: unknown condition")
    return Program(
        id=_id(_field(item, "id", where), f"{where}.id"),
        funder=_id(_field(item, "funder", where), f"{where}.funder"),
        ratio=parse_ratio(_field(item, "ratio", where), f"{where}.ratio"),
        budget=parse_cents(_field(item, "budget", where), f"{where}.budget"),
        starts=starts,
        ends=ends,
        per_contributor_cap=_optional_cents(item, "per_contributor_cap", where),
        per_improvement_cap=_optional_cents(item, "per_improvement_cap", where),
        min_pledge=_optional_cents(item, "min_pledge", where),
        priority=priority,
        eligible=Eligibility(
            kinds=_strings(eligible.get("kinds"), f"{where}.eligible.kinds"),
            instances=_strings(eligible.get("instances"), f"{where}.eligible.instances"),
            categories=_strings(eligible.get("categories"), f"{where}.eligible.categories"),
            improvements=_strings(eligible.get("improvements"), f"{where}.eligible.improvements"),
        ),
    )


def _pledge(item: Any, where: str) -> Pledge:
    status = _field(item, "status", where, required=False) or "paid"
    if status not in STATUSES:
        raise ScenarioError(f"{where}.status: must be one of {', '.join(STATUSES)}")
    return Pledge(
        id=_id(_field(item, "id", where), f"{where}.id"),
        contributor=_id(_field(item, "contributor", where), f"{where}.contributor"),
        improvement=_id(_field(item, "improvement", where), f"{where}.improvement"),
        amount=parse_cents(_field(item, "amount", where), f"{where}.amount", positive=True),
        at=parse_time(_field(item, "at", where), f"{where}.at"),
        status=status,
    )


def _unique(items: list[Any], key: str) -> None:
    seen: set[Hashable] = set()
    for index, item in enumerate(items):
        if item.id in seen:
            raise ScenarioError(f"{key}[{index}].id: {item.id!r} appears twice")
        seen.add(item.id)


def simulate(scenario: Any) -> dict[str, Any]:
    """The scenario's result in the output format; raises ScenarioError naming the field."""
    if not isinstance(scenario, dict):
        raise ScenarioError("scenario: must be a JSON object")
    currency = _field(scenario, "currency", "")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise ScenarioError("currency: must be an ISO 4217 code such as EUR")
    improvements = _each(scenario, "improvements", _improvement)
    contributors = _each(scenario, "contributors", _contributor)
    programs = _each(scenario, "programs", _program)
    pledges = _each(scenario, "pledges", _pledge)
    for items, key in ((improvements, "improvements"), (contributors, "contributors"),
                       (programs, "programs"), (pledges, "pledges")):  # fmt: skip
        _unique(items, key)
    known_improvements = {i.id for i in improvements}
    known_contributors = {c.id for c in contributors}
    for index, pledge in enumerate(pledges):
        if pledge.improvement not in known_improvements:
            raise ScenarioError(f"pledges[{index}].improvement: unknown {pledge.improvement!r}")
        if pledge.contributor not in known_contributors:
            raise ScenarioError(f"pledges[{index}].contributor: unknown {pledge.contributor!r}")
    result = compute_matches(improvements, contributors, programs, pledges)
    return render(result, improvements, programs, currency)


def _amount(cents: int, currency: str) -> str:
    return Money(cents, currency).decimal_string()


def render(
    result: Result, improvements: list[Improvement], programs: list[Program], currency: str
) -> dict[str, Any]:
    return {
        "matches": [
            {"program": m.program, "pledge": m.pledge, "amount": _amount(m.amount, currency)}
            for m in result.matches
        ],
        "programs": {
            str(p.id): {
                "used": _amount(result.program_used[p.id], currency),
                "remaining": _amount(p.budget - result.program_used[p.id], currency),
            }
            for p in programs
        },
        "improvements": {
            str(i.id): {
                "funded": _amount(result.funded[i.id], currency),
                "budget": _amount(i.budget, currency),
            }
            for i in improvements
        },
    }
