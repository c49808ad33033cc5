"""An improvement as an Article and back: the mapping alone, no database, no network."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from catalogue.improvements import Improvement
from federation.improvements import (
    BadImprovement,
    Matcher,
    SummaryFacts,
    article_document,
    english_summary,
    fingerprint,
    improvement_fields,
    is_improvement_document,
)
from federation.media import PUBLIC
from instance.summary_line import summary_writer

COMMONS = "https://b.example/commons/yeswiki"
URI = f"{COMMONS}/improvements/1"


def improvement(**changes: Any) -> Improvement:
    values: dict[str, Any] = {
        "uri": URI,
        "commons_id": 1,
        "number": 1,
        "title": "Export PDF",
        "description": "Un **export** propre.",
        "description_html": "<p>Un <strong>export</strong> propre.</p>",
        "budget_cents": 400_000,
        "currency": "EUR",
        "status": "open",
        "deadline": date(2027, 3, 31),
        "allow_overfunding": False,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    values.update(changes)
    return Improvement(**values)


def article(**changes: Any) -> dict[str, Any]:
    document = article_document(
        improvement(),
        commons_uri=COMMONS,
        funded_cents=248_000,
        summary="Budget 4 000 € · 62 % funded",
        published="2026-01-02T03:04:05Z",
        updated="2026-02-01T00:00:00Z",
    )
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def test_an_improvement_is_an_article_of_its_commons() -> None:
    document = article()
    assert (document["id"], document["type"], document["name"]) == (URI, "Article", "Export PDF")
    assert document["attributedTo"] == document["context"] == document["audience"] == COMMONS
    assert (document["to"], document["cc"]) == ([PUBLIC], [f"{COMMONS}/followers"])
    assert document["url"] == URI
    assert document["summary"] == "Budget 4 000 € · 62 % funded"
    assert document["content"] == "<p>Un <strong>export</strong> propre.</p>"
    assert (document["budget"], document["currency"], document["fundedAmount"]) == (
        400_000,
        "EUR",
        248_000,
    )
    assert (document["status"], document["allowOverfunding"], document["deadline"]) == (
        "open",
        False,
        "2027-03-31",
    )
    assert (document["published"], document["updated"]) == (
        "2026-01-02T03:04:05Z",
        "2026-02-01T00:00:00Z",
    )


def test_the_summary_line_is_escaped_plain_text() -> None:
    document = article_document(
        improvement(),
        commons_uri=COMMONS,
        funded_cents=0,
        summary="matched ×2 by Bread & <Roses>",
        published="2026-01-02T03:04:05Z",
    )
    assert document["summary"] == "matched ×2 by Bread &amp; &lt;Roses&gt;"
    assert "updated" not in document


def test_the_fingerprint_ignores_times_only() -> None:
    assert fingerprint(article()) == fingerprint(article(updated="2030-01-01T00:00:00Z"))
    assert fingerprint(article()) != fingerprint(article(fundedAmount=250_000))
    assert fingerprint(article()) != fingerprint(article(summary="Budget 4 000 € · 63 % funded"))


def test_the_summary_line_in_the_instance_language() -> None:
    facts = SummaryFacts(
        budget_cents=400_000,
        funded_cents=248_000,
        currency="EUR",
        status="open",
        matchers=(Matcher("1", "France Tiers-Lieux"),),
    )
    assert summary_writer("en")(facts) == (
        "Budget €4,000 · 62% funded · matched ×2 by France Tiers-Lieux"
    )
    french = summary_writer("fr")(facts)
    assert french.startswith("Budget 4\u202f000\xa0€") or french.startswith("Budget 4 000")
    assert "62" in french and "France Tiers-Lieux" in french and "<" not in french
    cancelled = SummaryFacts(400_000, 0, "EUR", "cancelled", (Matcher("0.5", "Région"),))
    assert summary_writer("en")(cancelled) == (
        "Budget €4,000 · 0% funded · matched ×1.5 by Région · Cancelled"
    )
    assert (
        english_summary(cancelled)
        == "Budget 4000 EUR · 0 % funded · matched ×1.5 by Région · cancelled"
    )


def test_an_article_becomes_plain_fields() -> None:
    fields = improvement_fields(article())
    assert (fields["uri"], fields["commons_uri"]) == (URI, COMMONS)
    assert (fields["title"], fields["budget_cents"], fields["currency"]) == (
        "Export PDF",
        400_000,
        "EUR",
    )
    assert (fields["origin_funded_cents"], fields["status"], fields["deadline"]) == (
        248_000,
        "open",
        date(2027, 3, 31),
    )
    assert fields["description"] == "Un **export** propre."  # the Markdown source
    assert fields["description_html"] == "<p>Un <strong>export</strong> propre.</p>"
    assert fields["updated_at"] == datetime(2026, 2, 1, tzinfo=UTC)
    assert fields["created_at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_only_articles_with_our_terms_are_improvements() -> None:
    assert is_improvement_document(article())
    blog_post = {"id": "https://blog.example/1", "type": "Article", "name": "Hello"}
    assert not is_improvement_document(blog_post)
    assert not is_improvement_document({**article(), "type": "Note"})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "id"),
        ({"id": "javascript:alert(1)"}, "id"),
        ({"type": "Note"}, "type"),
        ({"attributedTo": None}, "attributedTo"),
        ({"context": "https://b.example/commons/other"}, "context"),
        ({"name": None}, "name"),
        ({"name": "   "}, "name"),
        ({"budget": None}, "budget"),
        ({"budget": 4000.5}, "budget"),
        ({"budget": 400000.0}, "budget"),
        ({"budget": -100}, "budget"),
        ({"budget": 0}, "budget"),
        ({"budget": "400000"}, "budget"),
        ({"budget": True}, "budget"),
        ({"fundedAmount": -1}, "fundedAmount"),
        ({"fundedAmount": 12.5}, "fundedAmount"),
        ({"currency": None}, "currency"),
        ({"currency": "EUROS"}, "currency"),
        ({"currency": "XXY"}, "currency"),
        ({"status": "draft"}, "status"),
        ({"status": "paused"}, "status"),
        ({"status": None}, "status"),
        ({"allowOverfunding": "yes"}, "allowOverfunding"),
        ({"deadline": "31/03/2027"}, "deadline"),
        ({"deadline": 20270331}, "deadline"),
        ({"updated": "yesterday"}, "updated"),
        ({"content": {"fr": "<p>x</p>"}}, "content"),
        ({"content": "<p>x</p>" * 20_000}, "content"),
    ],
)
def test_a_bad_article_is_refused_with_the_property_named(
    changes: dict[str, Any], reason: str
) -> None:
    document = article()
    document.update(changes)
    document = {key: value for key, value in document.items() if value is not None}
    with pytest.raises(BadImprovement, match=f"^{reason}"):
        improvement_fields(document)


def test_hostile_html_is_cleaned() -> None:
    fields = improvement_fields(
        article(
            content='<p onclick="steal()">Texte <a href="javascript:alert(1)">lien</a></p>'
            '<script>alert("x")</script><iframe src="https://evil.example"></iframe>'
            '<img src="https://evil.example/t.gif">',
            source=None,
            name="  Export\n PDF  " + "x" * 300,
        )
    )
    html = fields["description_html"]
    for hostile in ("script", "onclick", "javascript", "iframe", "<img", "alert"):
        assert hostile not in html
    assert html.startswith("<p>Texte <a")
    assert fields["description"] == "Texte lien"
    assert len(fields["title"]) == 200 and fields["title"].startswith("Export PDF x")
