"""Payment links as maintainers type them: one per line, ``label | address``, checked by line."""

from __future__ import annotations

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue import operations as ops
from catalogue.commons import Commons, validate_commons
from catalogue.errors import InvalidField, InvalidFields
from catalogue.improvements import Improvement, validate_improvement
from catalogue.payment_links import (
    MAX_LINKS,
    PaymentLink,
    format_payment_links,
    parse_payment_links,
    payment_url,
)

COMMONS = {"name": "YesWiki", "summary": "Un wiki", "kind": "software", "slug": "yeswiki"}
DONATE = PaymentLink("Donate", "https://opencollective.com/yeswiki")


def refusal(text: str) -> str:
    """The message a maintainer reads for ``text``, its parameters filled in."""
    with pytest.raises(InvalidField) as caught:
        parse_payment_links(text)
    assert caught.value.field == "payment_links"
    return caught.value.message % caught.value.params


def test_links_are_read_one_per_line_with_blank_lines_skipped() -> None:
    text = (
        "\n  Donate |  https://opencollective.com/yeswiki \n\nAdhérer | http://yeswiki.net/a?b=1\n"
    )
    assert parse_payment_links(text) == (
        DONATE,
        PaymentLink("Adhérer", "http://yeswiki.net/a?b=1"),
    )
    assert parse_payment_links("") == parse_payment_links(" \n ") == ()
    # One line of text: tabs, runs of spaces and control characters (NUL…) become one space.
    [link] = parse_payment_links("Don\x00ner \t  vite | https://example.org")
    assert link.label == "Don ner vite"


def test_the_last_bar_splits_so_a_label_may_hold_one() -> None:
    [link] = parse_payment_links("Don | adhésion   |https://example.org/don")
    assert link == PaymentLink("Don | adhésion", "https://example.org/don")


def test_what_is_typed_comes_back_the_same_in_the_form() -> None:
    links = (DONATE, PaymentLink("Don | adhésion", "https://example.org/don"))
    assert parse_payment_links(format_payment_links(links)) == links


def test_more_than_five_are_refused() -> None:
    text = "\n".join(f"Don {n} | https://example.org/{n}" for n in range(MAX_LINKS + 1))
    assert refusal(text) == "At most 5 payment links."
    assert len(parse_payment_links(text.rsplit("\n", 1)[0])) == MAX_LINKS


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("https://opencollective.com/yeswiki", "Line 2: write a label, a vertical bar"),
        (" | https://opencollective.com/yeswiki", "Line 2: write a label, a vertical bar"),
        ("Donate |", "Line 2: write a label, a vertical bar"),
        ("Donate | javascript:alert(1)", "Line 2: give a full web address starting with https://"),
        ("Donate | JavaScript://%0aalert(1)", "Line 2: give a full web address"),
        ("Donate | data:text/html,<script>x</script>", "Line 2: give a full web address"),
        ("Donate | payto://iban/DE75512108001245126199", "Line 2: give a full web address"),
        ("Donate | opencollective.com/yeswiki", "Line 2: give a full web address"),
        ("Donate | https://", "Line 2: give a full web address"),
        ("Donate | https://example.org/a b", "Line 2: give a full web address"),
        ("D" * 101 + " | https://example.org", "Line 2: a label has at most 100 characters."),
        ("Donate | https://example.org/" + "a" * 2030, "Line 2: an address has at most 2048"),
    ],
)
def test_a_bad_line_is_named(line: str, message: str) -> None:
    assert refusal(f"Donate | https://opencollective.com/yeswiki\n{line}").startswith(message)


def test_a_label_of_exactly_a_hundred_characters_is_fine() -> None:
    [link] = parse_payment_links("D" * 100 + " | https://example.org")
    assert len(link.label) == 100


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("https://example.org/don", "https://example.org/don"),
        ("http://example.org", "http://example.org"),
        ("HTTPS://Example.org/Don", "https://Example.org/Don"),  # the scheme only
        ("ftp://example.org", None),
        ("https://[::1", None),
        ("https://example.org/\x00", None),
        ("https://example.org/\u2028", None),
        ("", None),
    ],
)
def test_only_web_addresses_are_payment_addresses(url: str, usable: str | None) -> None:
    assert payment_url(url) == usable


def test_commons_and_improvements_name_the_field_among_their_other_errors() -> None:
    with pytest.raises(InvalidFields) as commons:
        validate_commons({**COMMONS, "name": "", "payment_links": "Don | ftp://x"}, creating=True)
    assert set(commons.value.by_field()) == {"name", "payment_links"}
    with pytest.raises(InvalidFields) as improvement:
        validate_improvement({"title": "Export", "budget": "10", "payment_links": "Don"})
    assert set(improvement.value.by_field()) == {"payment_links"}


def test_data_without_the_field_leaves_the_links_alone() -> None:
    """An import file has no payment links column: updating from it must not wipe them."""
    assert "payment_links" not in validate_commons(COMMONS, creating=True)
    assert "payment_links" not in validate_improvement({"title": "Export", "budget": "10"})
    cleaned = validate_commons({**COMMONS, "payment_links": ""}, creating=True)
    assert cleaned["payment_links"] == ()


async def test_links_are_stored_and_read_back(session: AsyncSession) -> None:
    commons = await ops.create_commons(
        session,
        {**COMMONS, "payment_links": "Donate | https://opencollective.com/yeswiki"},
        base_url="https://tiers-lieux.example",
        creator_id=None,
        maintainer_ids=[],
    )
    improvement = await ops.create_improvement(
        session,
        commons,
        validate_improvement(
            {"title": "Export", "budget": "10", "payment_links": "Facture « PDF » | http://a.b/"}
        ),
        base_url="https://tiers-lieux.example",
        currency="EUR",
        provider_id=None,
        creator_id=None,
    )
    session.expunge_all()
    stored = (await session.exec(select(Commons).where(Commons.id == commons.id))).one()
    assert stored.payment_links == (DONATE,)
    # Without the field (an import), the links stay; with it empty, they go.
    await ops.update_commons(session, stored, {**COMMONS, "name": "YesWiki 5"}, editor_id=None)
    session.expunge_all()
    stored = (await session.exec(select(Commons).where(Commons.id == commons.id))).one()
    assert (stored.name, stored.payment_links) == ("YesWiki 5", (DONATE,))
    await ops.update_commons(session, stored, {**COMMONS, "payment_links": ""}, editor_id=None)
    session.expunge_all()
    stored = (await session.exec(select(Commons).where(Commons.id == commons.id))).one()
    assert stored.payment_links == ()
    copy = (await session.exec(select(Improvement).where(Improvement.id == improvement.id))).one()
    assert copy.payment_links == (PaymentLink("Facture « PDF »", "http://a.b/"),)
