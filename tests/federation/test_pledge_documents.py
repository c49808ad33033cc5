"""A pledge as a ValueFlows Commitment: written, read back, and bad input refused by property."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from federation.pledges_documents import (
    BadCommitment,
    Commitment,
    check_currency,
    commitment_document,
    is_commitment,
    parse_commitment,
)
from federation.vocabulary import CONTEXT_FILE, PLEDGE_TERMS, VALUEFLOWS

PLEDGED = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
COMMITMENT = Commitment(
    uri="https://cae.example/pledges/5f0c9e2a",
    provider="https://cae.example/orgs/oxalis",
    receiver="https://tiers-lieux.example/commons/yeswiki",
    improvement="https://tiers-lieux.example/commons/yeswiki/improvements/3",
    amount_cents=30050,
    currency="EUR",
    status="pledged",
    published=PLEDGED,
)


def document(**changes: Any) -> dict[str, Any]:
    written = commitment_document(COMMITMENT)
    for key, value in changes.items():
        if value is ...:
            written.pop(key)
        else:
            written[key] = value
    return written


def test_a_commitment_as_sent() -> None:
    assert commitment_document(COMMITMENT) == {
        "id": "https://cae.example/pledges/5f0c9e2a",
        "type": "Commitment",
        "action": "transfer",
        "provider": "https://cae.example/orgs/oxalis",
        "receiver": "https://tiers-lieux.example/commons/yeswiki",
        "improvement": "https://tiers-lieux.example/commons/yeswiki/improvements/3",
        "amountCents": 30050,
        "currency": "EUR",
        "resourceQuantity": {"hasUnit": "EUR", "hasNumericalValue": "300.50"},
        "status": "pledged",
        "published": "2026-11-28T10:00:00Z",
    }


def test_round_trip() -> None:
    assert parse_commitment(commitment_document(COMMITMENT)) == COMMITMENT
    paid = Commitment(**{**COMMITMENT.__dict__, "status": "paid", "updated": PLEDGED})
    assert parse_commitment(json.loads(json.dumps(commitment_document(paid)))) == paid


def test_the_quantity_is_optional_for_other_servers() -> None:
    assert parse_commitment(document(resourceQuantity=...)) == COMMITMENT


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "Note"}, "type"),
        ({"action": "produce"}, "action"),
        ({"action": ...}, "action"),
        ({"amountCents": 300.5}, "amountCents"),
        ({"amountCents": 30050.0}, "amountCents"),
        ({"amountCents": "30050"}, "amountCents"),
        ({"amountCents": True}, "amountCents"),
        ({"amountCents": -100}, "amountCents"),
        ({"amountCents": 0}, "amountCents"),
        ({"amountCents": 10**15}, "amountCents"),
        ({"amountCents": ...}, "amountCents"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": None}, "currency"),
        ({"status": "promised"}, "status"),
        ({"status": "refused"}, "status"),  # the commons' Reject says that, never a Commitment
        ({"status": ...}, "status"),
        ({"id": "ftp://cae.example/p"}, "id"),
        ({"provider": ...}, "provider"),
        ({"receiver": 3}, "receiver"),
        ({"improvement": None}, "improvement"),
        ({"published": "yesterday"}, "published"),
        ({"published": "2026-11-28T10:00:00"}, "published"),
        ({"resourceQuantity": {"hasUnit": "EUR", "hasNumericalValue": "3000.50"}}, "resource"),
        ({"resourceQuantity": {"hasUnit": "EUR", "hasNumericalValue": 300.5}}, "resource"),
        ({"resourceQuantity": {"hasUnit": "USD", "hasNumericalValue": "300.50"}}, "resource"),
        ({"resourceQuantity": "300.50 EUR"}, "resource"),
    ],
)
def test_bad_input_is_refused_naming_the_property(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(BadCommitment) as refused:
        parse_commitment(document(**changes))
    assert str(refused.value).startswith(field), str(refused.value)


def test_the_currency_must_be_the_improvements() -> None:
    check_currency(COMMITMENT, "EUR")
    with pytest.raises(BadCommitment, match=r"^currency: EUR is not the improvement's"):
        check_currency(COMMITMENT, "CHF")


def test_only_our_commitments_are_ours() -> None:
    assert is_commitment(document())
    marketplace = document(improvement=...)  # a FEP-0837 Commitment from a marketplace server
    assert not is_commitment(marketplace)
    assert not is_commitment({"type": "Note", "improvement": "x"})
    assert not is_commitment("https://cae.example/pledges/5f0c9e2a")


def test_the_context_defines_the_pledge_terms() -> None:
    definitions: dict[str, Any] = json.loads(CONTEXT_FILE.read_text())["@context"]
    assert definitions["vf"] == VALUEFLOWS
    for term, iri in PLEDGE_TERMS.items():
        definition = definitions[term]
        assert (definition["@id"] if isinstance(definition, dict) else definition) == iri, term
