"""The rules an organisation's fields follow, as plain functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.errors import InvalidField, InvalidFields
from catalogue.organisations import clean_siret, luhn_ok, slugify, validate_organisation
from catalogue.territories import DEPARTMENTS, REGIONS, parse_territory, territory_choices


def with_check_digit(thirteen: str) -> str:
    return next(thirteen + d for d in "0123456789" if luhn_ok(thirteen + d))


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_exactly_one_check_digit_completes_a_siret(thirteen: str) -> None:
    valid = [d for d in "0123456789" if luhn_ok(thirteen + d)]
    assert len(valid) == 1


@given(
    st.text(alphabet="0123456789", min_size=13, max_size=13), st.integers(0, 13), st.integers(1, 9)
)
def test_changing_one_digit_breaks_the_check(thirteen: str, position: int, shift: int) -> None:
    siret = with_check_digit(thirteen)
    altered = siret[:position] + str((int(siret[position]) + shift) % 10) + siret[position + 1 :]
    assert not luhn_ok(altered)


@pytest.mark.parametrize("siret", ["73282932000074", "732 829 320 00074", "35600000000048"])
def test_known_sirets_are_accepted(siret: str) -> None:
    assert clean_siret(siret) == siret.replace(" ", "")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7328293200007", "exactly 14 digits"),
        ("7328293200007A", "exactly 14 digits"),
        ("73282932000075", "check digit"),
    ],
)
def test_wrong_sirets_are_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidField, match=message) as error:
        clean_siret(value)
    assert error.value.field == "siret"


def test_an_empty_siret_is_none() -> None:
    assert clean_siret("  ") is None


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("La Fabrique du Coin", "la-fabrique-du-coin"),
        ("Élan Coopératif !", "elan-cooperatif"),
        ("  Terre d'Entreprendre  ", "terre-d-entreprendre"),
    ],
)
def test_slugs_are_made_from_names(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_validation_names_every_wrong_field() -> None:
    with pytest.raises(InvalidFields) as error:
        validate_organisation(
            {
                "name": "",
                "slug": "-x",
                "kind": "castle",
                "website": "ftp://x",
                "territory": "region:99",
            },
            creating=True,
        )
    assert set(error.value.by_field()) == {"name", "slug", "kind", "website", "territory"}


def test_reserved_slugs_are_refused() -> None:
    with pytest.raises(InvalidFields) as error:
        validate_organisation({"name": "Admin", "kind": "cae"}, creating=True)
    assert "reserved" in error.value.by_field()["slug"].message


def test_territories_cover_france() -> None:
    assert len(DEPARTMENTS) == 101 and len(REGIONS) == 18
    assert all(region in REGIONS for _name, region in DEPARTMENTS.values())
    assert parse_territory("department:2A").label == "Corse-du-Sud (2A)"  # type: ignore[union-attr]
    assert parse_territory("region:11").label == "Île-de-France"  # type: ignore[union-attr]
    assert parse_territory("department:11").label == "Aude (11)"  # type: ignore[union-attr]
    assert parse_territory("department:20") is None
    assert sum(len(items) for _group, items in territory_choices()) == 1 + 18 + 101
