"""Money is integer cents with a currency; what people type is parsed exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.money import Money, parse_amount


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("300", 30000),
        ("300.5", 30050),
        ("300,50", 30050),
        ("0.01", 1),
        ("1 000", 100000),
        ("4\u202f000,00", 400000),
    ],
)
def test_amounts_people_type(text: str, cents: int) -> None:
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["", "-5", "1.234", "1e3", "abc", "12.", "0x10"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount(text)


@given(st.integers(min_value=0, max_value=10**12))
def test_decimal_strings_round_trip(cents: int) -> None:
    assert parse_amount(Money(cents).decimal_string()) == cents


def test_money_refuses_floats_and_mixed_currencies() -> None:
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot mix"):
        Money(100, "EUR") + Money(100, "CHF")
    assert Money(150) + Money(50) == Money(200)
    assert Money(-1234).decimal_string() == "-12.34"
