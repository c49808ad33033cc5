"""Licences: SPDX expressions come out canonical; anything else is refused, never raised."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.licences import normalise_licence


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("AGPL-3.0-or-later", "AGPL-3.0-or-later"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("  mit  ", "MIT"),
        ("MIT OR Apache-2.0", "MIT OR Apache-2.0"),
        ("(MIT OR Apache-2.0) AND CC-BY-4.0", "(MIT OR Apache-2.0) AND CC-BY-4.0"),
        (
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
        ),
    ],
)
def test_spdx_expressions_are_made_canonical(typed: str, canonical: str) -> None:
    assert normalise_licence(typed) == canonical


@pytest.mark.parametrize(
    "typed",
    [
        "12,5",  # license-expression raised AttributeError on these
        "<b>libre</b>",
        "../../etc",
        "\x00",
        "💥",
        "%00",
        "()+",  # and IndexError on these
        "(().::ML.B-",
        "MIT AND (",
        "une licence libre",
        "",
    ],
)
def test_what_is_not_an_spdx_expression_is_refused(typed: str) -> None:
    assert normalise_licence(typed) is None


@given(st.text(max_size=40))
def test_any_text_gets_an_answer(typed: str) -> None:
    result = normalise_licence(typed)
    assert result is None or normalise_licence(result) == result


@given(st.text(alphabet="ABMITGPLor-.+:() ANDWITH0123", max_size=16))
def test_any_text_of_spdx_characters_gets_an_answer(typed: str) -> None:
    result = normalise_licence(typed)
    assert result is None or normalise_licence(result) == result
