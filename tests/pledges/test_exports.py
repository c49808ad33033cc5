"""The exports' pure serialisation: exact amounts twice, UTC times, included_in_matching."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone

from pledges.exports import PLEDGE_COLUMNS, PledgeLine, export_csv, export_json, iso_utc
from pledges.models import LedgerEntry, Match, Pledge

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def pledge(pledge_id: int, amount: int, status: str = "pledged") -> PledgeLine:
    row = Pledge(
        id=pledge_id,
        uri=f"http://testserver/pledges/{pledge_id}",
        organisation_id=1,
        improvement_id=2,
        amount_cents=amount,
        currency="EUR",
        status=status,
        pledged_at=AT + timedelta(minutes=pledge_id),
    )
    return PledgeLine(row, "lieu", "http://testserver/commons/yeswiki/improvements/1")


LINES = [pledge(1, 30000), pledge(2, 1050, "cancelled"), pledge(3, 12345, "paid")]
MATCHES = [
    Match(uri="m1", program_id=7, pledge_id=1, amount_cents=30000),
    Match(uri="m2", program_id=8, pledge_id=1, amount_cents=5000),
    Match(uri="m3", program_id=7, pledge_id=3, amount_cents=12345),
]
LEDGER = [
    LedgerEntry(
        id=1,
        program_id=7,
        pledge_id=1,
        kind="created",
        delta_cents=30000,
        amount_after_cents=30000,
        cause="pledge 1 made",
        at=AT,
    )
]


def test_times_are_iso_utc_whatever_their_zone() -> None:
    paris = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2026, 11, 15, 0, 0, tzinfo=paris)) == "2026-11-14T23:00:00Z"


def test_csv_has_one_row_per_pledge_with_its_matches() -> None:
    text = export_csv(LINES, MATCHES)
    assert text.splitlines()[0] == ",".join(PLEDGE_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["id"] for row in rows] == ["1", "2", "3"]
    first, cancelled, paid = rows
    assert first["amount_cents"] == "30000" and first["amount"] == "300.00"
    assert first["organisation"] == "lieu"
    assert first["improvement"] == "http://testserver/commons/yeswiki/improvements/1"
    assert first["pledged_at"] == "2026-11-20T09:31:00Z"
    assert first["included_in_matching"] == "true"
    assert first["matched_cents"] == "35000" and first["matches"] == "7:30000 8:5000"
    assert cancelled["amount"] == "10.50" and cancelled["status"] == "cancelled"
    assert cancelled["included_in_matching"] == "false"
    assert cancelled["matched_cents"] == "0" and cancelled["matches"] == ""
    assert paid["included_in_matching"] == "true" and paid["amount"] == "123.45"


def test_json_has_pledges_matches_and_the_ledger() -> None:
    data = json.loads(export_json(LINES, MATCHES, LEDGER))
    assert [p["included_in_matching"] for p in data["pledges"]] == [True, False, True]
    assert data["pledges"][0] == {
        "id": 1,
        "uri": "http://testserver/pledges/1",
        "organisation": "lieu",
        "improvement": "http://testserver/commons/yeswiki/improvements/1",
        "amount_cents": 30000,
        "amount": "300.00",
        "currency": "EUR",
        "status": "pledged",
        "pledged_at": "2026-11-20T09:31:00Z",
        "included_in_matching": True,
    }
    assert data["matches"][2] == {
        "program": 7,
        "pledge": 3,
        "amount_cents": 12345,
        "amount": "123.45",
    }
    assert data["ledger"] == [
        {
            "id": 1,
            "program": 7,
            "pledge": 1,
            "kind": "created",
            "delta_cents": 30000,
            "amount_after_cents": 30000,
            "cause": "pledge 1 made",
            "at": "2026-11-20T09:30:00Z",
        }
    ]


def test_nothing_to_export_is_still_a_valid_file() -> None:
    assert export_csv([], []) == ",".join(PLEDGE_COLUMNS) + "\n"
    assert json.loads(export_json([], [], [])) == {"pledges": [], "matches": [], "ledger": []}
