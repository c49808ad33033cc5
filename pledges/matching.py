"""The matching rules: a pure function of the programs and the pledges.

The rules, as every program page states them:
1. Pledges that are not cancelled are taken in order of (time, id).
2. An improvement's funded amount starts at 0; each pledge adds its amount first.
3. Then each program, in order of (priority, id), matches the pledge if the pledge's time is in
   its window (start inclusive, end exclusive), the contributor is not the program's funder,
   and every eligibility condition that is set holds.
4. The match is the smallest of: the amount × ratio rounded down to the cent; the program's
   budget left; the contributor's cap left in this program; the improvement's cap left in this
   program; the improvement's budget minus its funded amount (never below 0). A zero match is
   not recorded. The match adds to the funded amount.

Everything is integer cents; ratios are exact fractions. The same inputs always give the same
matches, whatever order the pledges arrive in, so a funder's instance can recompute them all
in one transaction whenever a pledge or a program changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from operator import attrgetter

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Improvement:
    id: Hashable
    budget: int
    category: str = ""  # the commons' kind


@dataclass(frozen=True)
class Contributor:
    id: Hashable
    kind: str = ""
    instance: str = ""


@dataclass(frozen=True)
class Eligibility:
    """Conditions a pledge must meet; None means no condition."""

    kinds: frozenset[str] | None = None
    instances: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    improvements: frozenset[Hashable] | None = None
    # With manual approval, only the contributors the funder approved.
    contributors: frozenset[Hashable] | None = None


@dataclass(frozen=True)
class Program:
    id: Hashable
    funder: Hashable
    ratio: Fraction
    budget: int
    starts: datetime
    ends: datetime
    per_contributor_cap: int | None = None
    per_improvement_cap: int | None = None
    min_pledge: int | None = None
    priority: int = 0
    eligible: Eligibility = field(default_factory=Eligibility)

    def admits(self, contributor: Contributor, improvement: Improvement) -> bool:
        """The conditions that do not depend on the pledge itself (cached per pair)."""
        rules = self.eligible
        return (
            contributor.id != self.funder
            and (rules.kinds is None or contributor.kind in rules.kinds)
            and (rules.instances is None or contributor.instance in rules.instances)
            and (rules.categories is None or improvement.category in rules.categories)
            and (rules.improvements is None or improvement.id in rules.improvements)
            and (rules.contributors is None or contributor.id in rules.contributors)
        )


@dataclass(frozen=True)
class Pledge:
    id: Hashable
    contributor: Hashable
    improvement: Hashable
    amount: int
    at: datetime
    status: str = "paid"


@dataclass(frozen=True)
class Match:
    program: Hashable
    pledge: Hashable
    amount: int


@dataclass
class Result:
    matches: list[Match]
    program_used: dict[Hashable, int]
    funded: dict[Hashable, int]


def compute_matches(
    improvements: Iterable[Improvement],
    contributors: Iterable[Contributor],
    programs: Iterable[Program],
    pledges: Iterable[Pledge],
) -> Result:
    """Apply the rules; a pledge naming an unknown contributor or improvement is a KeyError."""
    by_improvement = {i.id: i for i in improvements}
    by_contributor = {c.id: c for c in contributors}
    # Ids are all integers (database rows) or all strings (scenarios): they compare.
    ordered_programs: Sequence[Program] = sorted(programs, key=attrgetter("priority", "id"))
    used = {p.id: 0 for p in ordered_programs}
    funded = dict.fromkeys(by_improvement, 0)
    per_contributor: dict[tuple[Hashable, Hashable], int] = {}
    per_improvement: dict[tuple[Hashable, Hashable], int] = {}
    candidates: dict[tuple[Hashable, Hashable], list[Program]] = {}
    matches: list[Match] = []

    live = [p for p in pledges if p.status != CANCELLED]
    live.sort(key=attrgetter("at", "id"))
    for pledge in live:
        improvement = by_improvement[pledge.improvement]
        pair = (pledge.contributor, pledge.improvement)
        eligible = candidates.get(pair)
        if eligible is None:
            contributor = by_contributor[pledge.contributor]
            eligible = [p for p in ordered_programs if p.admits(contributor, improvement)]
            candidates[pair] = eligible
        total = funded[improvement.id] + pledge.amount
        if not eligible:
            funded[improvement.id] = total
            continue
        for program in eligible:
            if not program.starts <= pledge.at < program.ends:
                continue
            if program.min_pledge is not None and pledge.amount < program.min_pledge:
                continue
            amount = min(
                pledge.amount * program.ratio.numerator // program.ratio.denominator,
                program.budget - used[program.id],
                max(0, improvement.budget - total),
            )
            contributor_key = (program.id, pledge.contributor)
            if program.per_contributor_cap is not None:
                amount = min(
                    amount, program.per_contributor_cap - per_contributor.get(contributor_key, 0)
                )
            improvement_key = (program.id, pledge.improvement)
            if program.per_improvement_cap is not None:
                amount = min(
                    amount, program.per_improvement_cap - per_improvement.get(improvement_key, 0)
                )
            if amount <= 0:
                continue
            matches.append(Match(program.id, pledge.id, amount))
            used[program.id] += amount
            per_contributor[contributor_key] = per_contributor.get(contributor_key, 0) + amount
            per_improvement[improvement_key] = per_improvement.get(improvement_key, 0) + amount
            total += amount
        funded[improvement.id] = total
    return Result(matches, used, funded)
