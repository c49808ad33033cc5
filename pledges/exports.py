"""Pledges, matches and the ledger as CSV and JSON: pure serialisation, no database.

Funders reconcile their books with these files, so every amount is given twice: integer cents
(exact, for programs) and a decimal string (for people and spreadsheets). Times are ISO 8601
UTC. ``included_in_matching`` says whether the rules count the pledge (pledged or paid).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from catalogue.money import Money
from pledges.models import LIVE_STATUSES, LedgerEntry, Match, Pledge

PLEDGE_COLUMNS = (
    "id",
    "uri",
    "organisation",
    "improvement",
    "amount_cents",
    "amount",
    "currency",
    "status",
    "pledged_at",
    "included_in_matching",
    "matched_cents",
    "matches",
)


@dataclass(frozen=True)
class PledgeLine:
    """A pledge with what its export names: the organisation's slug, the improvement's URI."""

    pledge: Pledge
    organisation: str
    improvement: str


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def pledge_record(line: PledgeLine) -> dict[str, Any]:
    pledge = line.pledge
    return {
        "id": pledge.id,
        "uri": pledge.uri,
        "organisation": line.organisation,
        "improvement": line.improvement,
        "amount_cents": pledge.amount_cents,
        "amount": Money(pledge.amount_cents, pledge.currency).decimal_string(),
        "currency": pledge.currency,
        "status": str(pledge.status),
        "pledged_at": iso_utc(pledge.pledged_at),
        "included_in_matching": pledge.status in LIVE_STATUSES,
    }


def match_record(match: Match, currency: str) -> dict[str, Any]:
    return {
        "program": match.program_id,
        "pledge": match.pledge_id,
        "amount_cents": match.amount_cents,
        "amount": Money(match.amount_cents, currency).decimal_string(),
    }


def ledger_record(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "program": entry.program_id,
        "pledge": entry.pledge_id,
        "kind": str(entry.kind),
        "delta_cents": entry.delta_cents,
        "amount_after_cents": entry.amount_after_cents,
        "cause": entry.cause,
        "at": iso_utc(entry.at),
    }


def _currencies(lines: Iterable[PledgeLine]) -> dict[int | None, str]:
    return {line.pledge.id: line.pledge.currency for line in lines}


def export_json(
    lines: Sequence[PledgeLine],
    matches: Sequence[Match],
    ledger: Sequence[LedgerEntry],
    *,
    currency: str = "EUR",
) -> str:
    """Every pledge, every match (in the pledge's currency) and every ledger entry."""
    currencies = _currencies(lines)
    data = {
        "pledges": [pledge_record(line) for line in lines],
        "matches": [match_record(m, currencies.get(m.pledge_id, currency)) for m in matches],
        "ledger": [ledger_record(entry) for entry in ledger],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def export_csv(lines: Sequence[PledgeLine], matches: Sequence[Match]) -> str:
    """One row per pledge; its matches as a total and as ``program:cents`` pairs."""
    by_pledge: dict[int, list[Match]] = {}
    for match in matches:
        by_pledge.setdefault(match.pledge_id, []).append(match)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=PLEDGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in lines:
        record = pledge_record(line)
        own = sorted(by_pledge.get(line.pledge.id or 0, []), key=lambda m: m.program_id)
        record["included_in_matching"] = "true" if record["included_in_matching"] else "false"
        record["matched_cents"] = sum(m.amount_cents for m in own)
        record["matches"] = " ".join(f"{m.program_id}:{m.amount_cents}" for m in own)
        writer.writerow(record)
    return out.getvalue()
