"""FEP-0ea0 payment links on a commons' Group and an improvement's Article, both ways.

The mapping alone (no database, no network): what goes out is the FEP's own shape, and what
comes in from another server is kept only as far as it is safe to show, never refusing the
commons or the improvement it came with.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from catalogue.commons import Commons
from catalogue.improvements import Improvement
from catalogue.payment_links import PaymentLink
from federation.commons_documents import commons_fields, commons_properties
from federation.improvements import article_document, fingerprint, improvement_fields
from federation.payment_links import attach_payment_links, read_payment_links

BASE = "https://b.example"
COMMONS = f"{BASE}/commons/yeswiki"
DONATE = PaymentLink("Donate", "https://opencollective.com/yeswiki")
JOIN = PaymentLink("Adhérer", "https://yeswiki.net/adherer")
LOGGER = "terreau.federation.payment_links"


def link(name: Any = "Donate", href: Any = DONATE.url, **changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "Link", "name": name, "href": href, "rel": "payment"}
    found.update(changes)
    return {key: value for key, value in found.items() if value is not None}


def group(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": COMMONS,
        "type": "Group",
        "preferredUsername": "yeswiki",
        "name": "YesWiki",
        "commonsKind": "software",
    }
    document.update(changes)
    return document


def article(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": f"{COMMONS}/improvements/1",
        "type": "Article",
        "attributedTo": COMMONS,
        "name": "Export PDF",
        "budget": 400_000,
        "currency": "EUR",
        "status": "open",
    }
    document.update(changes)
    return document


def commons(**changes: Any) -> Commons:
    values: dict[str, Any] = {
        "uri": COMMONS,
        "slug": "yeswiki",
        "name": "YesWiki",
        "kind": "software",
        "summary": "Un wiki",
    }
    values.update(changes)
    return Commons(**values)


def improvement(**changes: Any) -> Improvement:
    values: dict[str, Any] = {
        "uri": f"{COMMONS}/improvements/1",
        "commons_id": 1,
        "number": 1,
        "title": "Export PDF",
        "budget_cents": 400_000,
        "currency": "EUR",
        "status": "open",
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    values.update(changes)
    return Improvement(**values)


def sent_article(made: Improvement) -> dict[str, Any]:
    return article_document(
        made,
        commons_uri=COMMONS,
        funded_cents=0,
        summary="Budget 4 000 €",
        published="2026-01-02T00:00:00Z",
    )


# --- Going out ------------------------------------------------------------------------------


def test_a_group_carries_its_links_as_fep_0ea0_attachments() -> None:
    properties = commons_properties(commons(payment_links=(DONATE, JOIN)), [], BASE)
    assert properties["attachment"] == [
        {"type": "Link", "name": "Donate", "href": DONATE.url, "rel": "payment"},
        {"type": "Link", "name": "Adhérer", "href": JOIN.url, "rel": "payment"},
    ]


def test_an_article_carries_its_links_and_changes_its_fingerprint() -> None:
    document = sent_article(improvement(payment_links=(DONATE,)))
    assert document["attachment"] == [
        {"type": "Link", "name": "Donate", "href": DONATE.url, "rel": "payment"}
    ]
    assert fingerprint(document) != fingerprint(sent_article(improvement()))


def test_without_links_nothing_is_attached() -> None:
    """Not even an empty list: an Article reads, and fingerprints, as before links existed."""
    assert "attachment" not in commons_properties(commons(), [], BASE)
    assert "attachment" not in sent_article(improvement())


def test_attachments_already_there_are_kept() -> None:
    image = {"type": "Image", "url": "https://b.example/plan.png"}
    document: dict[str, Any] = {"attachment": image}
    attach_payment_links(document, [DONATE])
    assert document["attachment"] == [image, link()]
    attach_payment_links(document, [JOIN])
    assert document["attachment"] == [image, link(), link("Adhérer", JOIN.url)]


# --- Coming in ------------------------------------------------------------------------------


def test_links_come_back_from_a_group_and_an_article() -> None:
    attachments = [link(), link("Adhérer", JOIN.url, rel=["payment", "https://b.example/ns#join"])]
    assert commons_fields(group(attachment=attachments))["payment_links"] == (DONATE, JOIN)
    assert improvement_fields(article(attachment=attachments))["payment_links"] == (DONATE, JOIN)


def test_our_own_documents_read_back_as_they_were() -> None:
    made = improvement(payment_links=(DONATE, JOIN))
    assert improvement_fields(sent_article(made))["payment_links"] == (DONATE, JOIN)
    properties = commons_properties(commons(payment_links=(JOIN,)), [], BASE)
    assert commons_fields(group(**properties))["payment_links"] == (JOIN,)


def test_an_address_scheme_in_capitals_is_kept_in_lower_case() -> None:
    """The API promises addresses that start ``http://`` or ``https://``."""
    [kept] = read_payment_links(group(attachment=[link(href="HTTPS://OpenCollective.com/Y")]))
    assert kept.url == "https://OpenCollective.com/Y"


def test_a_single_attachment_object_is_read_as_a_list_of_one() -> None:
    assert read_payment_links(group(attachment=link())) == (DONATE,)


def test_documents_without_attachments_have_no_links() -> None:
    assert commons_fields(group())["payment_links"] == ()
    assert improvement_fields(article())["payment_links"] == ()


def test_other_attachments_are_not_payment_links_and_pass_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    others = [
        {"type": "PropertyValue", "name": "Site", "value": "<a href='https://x.example'>x</a>"},
        {"type": "Image", "url": "https://b.example/plan.png"},
        {"type": "Link", "href": "https://b.example/docs", "rel": "help"},
        "https://b.example/loose-string",
        link(),
    ]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_payment_links(group(attachment=others)) == (DONATE,)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (link(href="javascript:alert(1)"), "not an http(s) address"),
        (link(href="payto://iban/DE75512108001245126199"), "not an http(s) address"),
        (link(href="data:text/html,<script>alert(1)</script>"), "not an http(s) address"),
        (link(href="https://b.example/" + "a" * 2048), "not an http(s) address"),
        (link(href=None), "not an http(s) address"),
        (link(href=["https://b.example/don"]), "not an http(s) address"),
        (link(type="Note"), "is not Link"),
        (link(type=None), "is not Link"),
    ],
)
def test_a_bad_payment_link_is_dropped_with_a_log_line_and_the_rest_kept(
    bad: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        fields = commons_fields(group(attachment=[bad, link("Adhérer", JOIN.url)]))
    assert fields["payment_links"] == (JOIN,)
    assert fields["name"] == "YesWiki"  # the Group itself is kept
    [record] = caplog.records
    assert COMMONS in record.getMessage() and reason in record.getMessage()


def test_labels_are_one_line_of_plain_text_cut_to_a_hundred_characters() -> None:
    """ActivityStreams' ``name`` is plain text: markup in it is text, shown escaped."""
    links = read_payment_links(
        group(
            attachment=[
                link('<b>Don</b>\n\t &amp;\x00 <script>alert("x")</script>'),
                link("D" * 300, "https://b.example/long"),
                link(None, "https://pay.b.example/x"),
                link({"fr": "Don"}, "https://pay.b.example/y"),
                link(" \n\t ", "https://pay.b.example/z"),
            ]
        )
    )
    assert links[0].label == '<b>Don</b> &amp; <script>alert("x")</script>'
    assert len(links[1].label) == 100 and links[1].label.endswith("…")
    # The FEP only recommends a name: without one (or one we cannot read) the host stands in.
    assert [link.label for link in links[2:]] == ["pay.b.example"] * 3


def test_at_most_five_each_address_once(caplog: pytest.LogCaptureFixture) -> None:
    many = [link(f"Don {n}", f"https://b.example/don/{n}") for n in range(8)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        links = read_payment_links(group(attachment=[many[0], *many]))
    assert [link.label for link in links] == [f"Don {n}" for n in range(5)]
    assert "beyond the first 5" in caplog.text


def test_an_attachment_that_is_not_a_list_is_dropped_not_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        fields = improvement_fields(article(attachment="https://b.example/don"))
    assert fields["payment_links"] == () and fields["title"] == "Export PDF"
    assert "attachment is not a list" in caplog.text
