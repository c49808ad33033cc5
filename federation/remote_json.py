"""JSON from other servers, read the one way: without NUL characters.

JSON may carry ``\\u0000`` in any string, and PostgreSQL cannot store it in a text column: a
remote name or id holding one made the row that kept it fail (on SQLite it went through). No
ActivityStreams property has a use for it, so it is dropped as the document is read, the same
on every database, before anything is checked or stored.
"""

from __future__ import annotations

import json
from typing import Any

#: How a NUL character is written in JSON text (a raw one is not valid JSON).
_ESCAPED_NUL = "\\u0000"


def loads(text: str) -> Any:
    """``json.loads``, every string (keys too) without NUL characters. A document without the
    escape is parsed as is, at no extra cost."""
    document = json.loads(text)
    return _without_nul(document) if _ESCAPED_NUL in text else document


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value
