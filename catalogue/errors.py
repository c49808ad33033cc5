"""How the domain reports bad input: by field, with a message the instance can translate."""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a message for translation without translating it here (Babel extracts it)."""
    return message


class InvalidField(ValueError):
    """One field's value is refused; ``message`` is an English msgid, ``params`` fill it."""

    def __init__(self, field: str, message: str, **params: Any) -> None:
        super().__init__(f"{field}: {message % params if params else message}")
        self.field = field
        self.message = message
        self.params = params


class InvalidFields(ValueError):
    """Several fields are refused at once, so a form can show every error in one pass."""

    def __init__(self, errors: list[InvalidField]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def by_field(self) -> dict[str, InvalidField]:
        return {e.field: e for e in self.errors}
