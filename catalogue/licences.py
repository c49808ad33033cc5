"""Licences as SPDX identifiers or expressions ("AGPL-3.0-or-later", "MIT OR Apache-2.0").

license-expression bundles the SPDX list, so validation needs no network and no copy of ours.
"""

from __future__ import annotations

import re
from functools import cache

from license_expression import Licensing, get_spdx_licensing


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


# All an SPDX expression is made of: identifiers (letters, digits, "." and "-"), "+",
# "DocumentRef-…:LicenseRef-…", parentheses and the spaces around AND, OR and WITH.
_SPDX_CHARACTERS = re.compile(r"[A-Za-z0-9.+:() -]+")


def normalise_licence(value: str) -> str | None:
    """The canonical SPDX form of ``value`` ("GPL-2.0+" → "GPL-2.0-or-later"), or None.

    ``value`` comes from forms, import files and other instances, so anything may be in it.
    license-expression reports most malformed expressions, but raises on some instead
    ("12,5" and "<b>" raise an AttributeError, "()+" an IndexError): what holds other
    characters is refused before it is asked, and what it still fails on is malformed too."""
    text = value.strip()
    if not _SPDX_CHARACTERS.fullmatch(text):
        return None
    try:
        info = _licensing().validate(text)
    except Exception:  # see above: a failure here means a malformed expression
        return None
    if info.errors or not info.normalized_expression:
        return None
    return str(info.normalized_expression)
