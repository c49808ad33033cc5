"""How fast the matching rules recompute: 100,000 pledges against 20 programs.

A funder's instance recomputes every match in one transaction whenever a pledge or a program
changes (issue #4), so the pure function must stay far below a second at national scale.
Target: over 100,000 pledges per second for the pure function. Prints the ratio to it.

    python bench/matching.py [--pledges 100000] [--programs 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

# Running this file puts bench/ first on sys.path; the project root must come first instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pledges.matching import (  # noqa: E402
    Contributor,
    Eligibility,
    Improvement,
    Pledge,
    Program,
    compute_matches,
)

TARGET_PER_SECOND = 100_000
T0 = datetime(2026, 11, 15, tzinfo=UTC)
KINDS = ["tiers-lieu", "cae", "association", "company", "public-body"]
CATEGORIES = ["software", "knowledge", "data", "hardware", "infrastructure", "service"]


def build(pledge_count: int, program_count: int, seed: int) -> tuple[list, list, list, list]:  # type: ignore[type-arg]
    rng = random.Random(seed)  # noqa: S311 (reproducible data, not secrets)
    improvements = [
        Improvement(n, rng.randint(1_000_00, 50_000_00), rng.choice(CATEGORIES))
        for n in range(2_000)
    ]
    contributors = [
        Contributor(n, rng.choice(KINDS), f"instance-{n % 7}.example") for n in range(5_000)
    ]
    programs = [
        Program(
            id=n,
            funder=rng.randrange(5_000),
            ratio=Fraction(rng.choice([1, 1, 2, 1]), rng.choice([1, 2])),
            budget=rng.randint(10_000_00, 2_000_000_00),
            starts=T0 + timedelta(days=rng.randint(0, 20)),
            ends=T0 + timedelta(days=rng.randint(40, 120)),
            per_contributor_cap=rng.choice([None, 500_00, 1_000_00]),
            per_improvement_cap=rng.choice([None, 5_000_00]),
            min_pledge=rng.choice([None, 10_00]),
            priority=rng.randint(0, 3),
            eligible=Eligibility(
                kinds=rng.choice(
                    [None, frozenset({"tiers-lieu"}), frozenset({"cae", "association"})]
                ),
                instances=rng.choice(
                    [None, frozenset({"instance-0.example", "instance-1.example"})]
                ),
                categories=rng.choice([None, frozenset({"software"})]),
            ),
        )
        for n in range(program_count)
    ]
    pledges = [
        Pledge(
            n,
            rng.randrange(5_000),
            rng.randrange(2_000),
            rng.randint(5_00, 2_000_00),
            T0 + timedelta(minutes=rng.randint(0, 60 * 24 * 100)),
            rng.choice(["paid", "paid", "pledged", "cancelled"]),
        )
        for n in range(pledge_count)
    ]
    return improvements, contributors, programs, pledges


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pledges", type=int, default=100_000)
    parser.add_argument("--programs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    improvements, contributors, programs, pledges = build(args.pledges, args.programs, args.seed)
    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = compute_matches(improvements, contributors, programs, pledges)
        timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    rate = args.pledges / median
    print(f"{args.pledges:,} pledges, {args.programs} programs, {len(result.matches):,} matches")
    print(
        f"median {median * 1000:.0f} ms over {args.repeat} runs (best {min(timings) * 1000:.0f} ms)"
    )
    print(
        f"{rate:,.0f} pledges/s; target {TARGET_PER_SECOND:,}/s;"
        f" ratio {rate / TARGET_PER_SECOND:.2f} {'PASS' if rate >= TARGET_PER_SECOND else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
