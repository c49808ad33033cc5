"""The matching rules as a pure function: worked examples, then properties that must always hold."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pledges.matching import (
    Contributor,
    Eligibility,
    Improvement,
    Pledge,
    Program,
    Result,
    compute_matches,
)
from pledges.scenario import simulate

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 15, tzinfo=UTC)


def program(**changes: object) -> Program:
    values: dict[str, object] = {
        "id": "ftl",
        "funder": "funder",
        "ratio": Fraction(1),
        "budget": 1_000_000,
        "starts": T0,
        "ends": T0 + timedelta(days=30),
    }
    values.update(changes)
    return Program(**values)  # type: ignore[arg-type]


def run(programs: list[Program], pledges: list[Pledge], budget: int = 10_000_000) -> Result:
    return compute_matches(
        [Improvement("i", budget, "software")],
        [
            Contributor("a", "tiers-lieu", "x.example"),
            Contributor("b", "cae", "y.example"),
            Contributor("funder", "funder", "x.example"),
        ],
        programs,
        pledges,
    )


def pledge(
    id: str, amount: int, *, who: str = "a", days: float = 1, status: str = "paid"
) -> Pledge:
    return Pledge(id, who, "i", amount, T0 + timedelta(days=days), status)


def test_the_france_tiers_lieux_scenario() -> None:
    scenario = json.loads((ROOT / "docs/scenarios/france-tiers-lieux.json").read_text())
    result = simulate(scenario)
    assert result["matches"] == [
        {"program": "ftl-2026", "pledge": "p1", "amount": "300.00"},
        {"program": "region-logiciels", "pledge": "p1", "amount": "300.00"},
        {"program": "ftl-2026", "pledge": "p2", "amount": "200.00"},  # the 500 € cap
        {"program": "region-logiciels", "pledge": "p3", "amount": "1000.00"},
    ]
    assert result["programs"]["ftl-2026"] == {"used": "500.00", "remaining": "19500.00"}
    assert result["improvements"]["serre-plans-v2"] == {"funded": "1350.00", "budget": "2000.00"}


def test_the_ratio_rounds_down_to_the_cent() -> None:
    result = run([program(ratio=Fraction(1, 3))], [pledge("p", 100)])
    assert result.matches[0].amount == 33


def test_the_window_includes_its_start_and_excludes_its_end() -> None:
    result = run([program()], [pledge("start", 100, days=0), pledge("end", 100, days=30)])
    assert [m.pledge for m in result.matches] == ["start"]


def test_a_funder_never_matches_itself() -> None:
    assert run([program()], [pledge("own", 100, who="funder")]).matches == []


def test_each_limit_takes_its_turn() -> None:
    assert run([program(budget=70)], [pledge("p", 100)]).matches[0].amount == 70
    assert run([program(per_contributor_cap=40)], [pledge("p", 100)]).matches[0].amount == 40
    assert run([program(per_improvement_cap=30)], [pledge("p", 100)]).matches[0].amount == 30
    assert run([program()], [pledge("p", 100)], budget=150).matches[0].amount == 50
    assert run([program(min_pledge=101)], [pledge("p", 100)]).matches == []


def test_programs_stack_by_priority() -> None:
    first, second = program(id="region", priority=0), program(id="ftl", priority=1)
    result = run([second, first], [pledge("p", 100)], budget=250)
    assert [(m.program, m.amount) for m in result.matches] == [("region", 100), ("ftl", 50)]


def test_eligibility_conditions_all_apply() -> None:
    rules = Eligibility(kinds=frozenset({"tiers-lieu"}), instances=frozenset({"x.example"}))
    result = run([program(eligible=rules)], [pledge("a1", 100), pledge("b1", 100, who="b")])
    assert [m.pledge for m in result.matches] == ["a1"]
    assert (
        run(
            [program(eligible=Eligibility(categories=frozenset({"data"})))], [pledge("p", 100)]
        ).matches
        == []
    )


# Properties: generated scenarios, checked against the invariants the issue names.

contributors = st.sampled_from(["a", "b", "funder"])
amounts = st.integers(min_value=1, max_value=200_000)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Improvement], list[Program], list[Pledge]]:
    improvements = [
        Improvement(
            f"i{n}", draw(st.integers(1, 500_000)), draw(st.sampled_from(["software", "data"]))
        )
        for n in range(draw(st.integers(1, 3)))
    ]
    programs = [
        program(
            id=f"g{n}",
            ratio=Fraction(draw(st.integers(1, 8)), draw(st.integers(1, 4))),
            budget=draw(st.integers(0, 300_000)),
            per_contributor_cap=draw(st.none() | st.integers(0, 100_000)),
            per_improvement_cap=draw(st.none() | st.integers(0, 100_000)),
            min_pledge=draw(st.none() | st.integers(0, 50_000)),
            priority=draw(st.integers(0, 2)),
            starts=T0 + timedelta(days=draw(st.integers(0, 5))),
            ends=T0 + timedelta(days=draw(st.integers(6, 20))),
            eligible=Eligibility(
                kinds=draw(st.none() | st.just(frozenset({"tiers-lieu"}))),
                categories=draw(st.none() | st.just(frozenset({"software"}))),
            ),
        )
        for n in range(draw(st.integers(1, 4)))
    ]
    pledges = [
        Pledge(
            f"p{n:03d}",
            draw(contributors),
            draw(st.sampled_from([i.id for i in improvements])),
            draw(amounts),
            T0 + timedelta(hours=draw(st.integers(0, 24 * 25))),
            draw(st.sampled_from(["paid", "pledged", "cancelled"])),
        )
        for n in range(draw(st.integers(0, 25)))
    ]
    return improvements, programs, pledges


PEOPLE = [
    Contributor("a", "tiers-lieu", "x.example"),
    Contributor("b", "cae", "y.example"),
    Contributor("funder", "funder", "x.example"),
]


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_no_program_exceeds_its_budget_or_caps(scenario) -> None:  # type: ignore[no-untyped-def]
    improvements, programs, pledges = scenario
    result = compute_matches(improvements, PEOPLE, programs, pledges)
    by_pledge = {p.id: p for p in pledges}
    for spec in programs:
        mine = [m for m in result.matches if m.program == spec.id]
        assert sum(m.amount for m in mine) == result.program_used[spec.id] <= spec.budget
        per_contributor: dict[str, int] = defaultdict(int)
        per_improvement: dict[str, int] = defaultdict(int)
        for match in mine:
            assert match.amount > 0
            per_contributor[by_pledge[match.pledge].contributor] += match.amount  # type: ignore[index]
            per_improvement[by_pledge[match.pledge].improvement] += match.amount  # type: ignore[index]
        if spec.per_contributor_cap is not None:
            assert all(v <= spec.per_contributor_cap for v in per_contributor.values())
        if spec.per_improvement_cap is not None:
            assert all(v <= spec.per_improvement_cap for v in per_improvement.values())
    assert all(by_pledge[m.pledge].contributor != "funder" for m in result.matches)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_without_over_funding_no_improvement_exceeds_its_budget(scenario) -> None:  # type: ignore[no-untyped-def]
    """Pledges are accepted as the platform accepts them: only up to the need left at the time
    (pledges and matches so far); then matches never take an improvement past its budget."""
    improvements, programs, pledges = scenario
    budgets = {i.id: i.budget for i in improvements}
    accepted: list[Pledge] = []
    for candidate in sorted(pledges, key=lambda p: (p.at, p.id)):
        funded = compute_matches(improvements, PEOPLE, programs, accepted).funded
        if candidate.amount <= budgets[candidate.improvement] - funded[candidate.improvement]:
            accepted.append(candidate)
    result = compute_matches(improvements, PEOPLE, programs, accepted)
    for improvement in improvements:
        assert result.funded[improvement.id] <= improvement.budget


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_order_pledges_were_entered_in_does_not_matter(scenario, random) -> None:  # type: ignore[no-untyped-def]
    improvements, programs, pledges = scenario
    shuffled = list(pledges)
    random.shuffle(shuffled)
    programs_shuffled = list(programs)
    random.shuffle(programs_shuffled)
    assert compute_matches(improvements, PEOPLE, programs, pledges) == compute_matches(
        improvements, PEOPLE, programs_shuffled, shuffled
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_cancelling_a_pledge_is_the_same_as_never_making_it(scenario, data) -> None:  # type: ignore[no-untyped-def]
    improvements, programs, pledges = scenario
    live = [p for p in pledges if p.status != "cancelled"]
    if not live:
        return
    chosen = data.draw(st.sampled_from(live))
    cancelled = [
        Pledge(p.id, p.contributor, p.improvement, p.amount, p.at, "cancelled")
        if p.id == chosen.id
        else p
        for p in pledges
    ]
    never = [p for p in pledges if p.id != chosen.id]
    assert compute_matches(improvements, PEOPLE, programs, cancelled) == compute_matches(
        improvements, PEOPLE, programs, never
    )


match_states = st.dictionaries(
    st.tuples(st.integers(1, 4), st.integers(1, 12)), st.integers(1, 100_000), max_size=20
)


@settings(max_examples=300, deadline=None)
@given(st.lists(match_states, min_size=1, max_size=8))
def test_the_ledger_replays_to_the_matches_whatever_the_recomputations(states) -> None:  # type: ignore[no-untyped-def]
    """Each recomputation writes pledges.ledger.changes(stored, wanted); summing every line
    from nothing gives the stored matches, and each line says truly what it did."""
    from pledges.ledger import changes
    from pledges.models import LedgerKind

    stored: dict[tuple[int, int], int] = {}
    replayed: dict[tuple[int, int], int] = {}
    for wanted in states:
        for line in changes(stored, wanted):
            key = (line.program, line.pledge)
            assert line.delta != 0
            assert replayed.get(key, 0) == line.before
            replayed[key] = replayed.get(key, 0) + line.delta
            assert replayed[key] == line.after
            expected_kind = (
                LedgerKind.CREATED
                if line.before == 0
                else LedgerKind.RELEASED
                if line.after == 0
                else LedgerKind.ADJUSTED
            )
            assert line.kind == expected_kind
        stored = dict(wanted)
        assert {k: v for k, v in replayed.items() if v} == stored
