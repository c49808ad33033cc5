"""Money as integer cents with a currency: never a float, so every total adds up exactly."""

from __future__ import annotations

import re
from dataclasses import dataclass

_AMOUNT = re.compile(r"^\s*(\d{1,12})(?:[.,](\d{1,2}))?\s*$")


@dataclass(frozen=True, order=True)
class Money:
    cents: int
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not isinstance(self.cents, int) or isinstance(self.cents, bool):
            raise TypeError(f"cents must be an int, not {type(self.cents).__name__}")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.cents + other.cents, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.cents - other.cents, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def decimal_string(self) -> str:
        """``1234`` cents as ``"12.34"``: the exchange format of files and the API."""
        sign = "-" if self.cents < 0 else ""
        whole, cents = divmod(abs(self.cents), 100)
        return f"{sign}{whole}.{cents:02d}"


def parse_amount(text: str) -> int:
    """Cents from what a person types: ``"300"``, ``"300.5"``, ``"300,50"``.

    Raises ValueError for anything else, including negative amounts and more than two decimals.
    """
    match = _AMOUNT.match(text.replace("\u202f", "").replace("\xa0", "").replace(" ", ""))
    if not match:
        raise ValueError(f"not an amount: {text!r}")
    whole, fraction = match.groups()
    return int(whole) * 100 + int((fraction or "0").ljust(2, "0"))
