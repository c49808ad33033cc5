"""Licences as SPDX identifiers or expressions ("AGPL-3.0-or-later", "MIT OR Apache-2.0").

license-expression bundles the SPDX list, so validation needs no network and no copy of ours.
"""

from __future__ import annotations

from functools import cache

from license_expression import Licensing, get_spdx_licensing


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


def normalise_licence(value: str) -> str | None:
    """The canonical SPDX form of ``value`` ("GPL-2.0+" → "GPL-2.0-or-later"), or None."""
    info = _licensing().validate(value.strip())
    if info.errors or not info.normalized_expression:
        return None
    return str(info.normalized_expression)
