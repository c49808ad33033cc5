"""Reading import files and writing export records, without a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalogue.exchange import (
    COLUMNS,
    ImportFileError,
    ImportFormat,
    check_rows,
    commons_csv,
    guess_format,
    money_fields,
    parse_csv,
    parse_json,
    parse_publiccode,
    parse_rows,
)

DATA = Path(__file__).parent.parent / "data"
ORGANISATIONS = {"cae-nord", "lieu-sud"}
HEADER = ",".join(COLUMNS)


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("commons.csv", ImportFormat.CSV),
        ("EXPORT.JSON", ImportFormat.JSON),
        ("publiccode.yml", ImportFormat.PUBLICCODE),
        ("logiciel.yaml", ImportFormat.PUBLICCODE),
        ("commons.xlsx", None),
        ("commons", None),
    ],
)
def test_the_format_is_guessed_from_the_file_name(name: str, expected: ImportFormat | None) -> None:
    assert guess_format(name) == expected


def test_a_csv_file_gives_one_row_per_commons_numbered_by_its_line() -> None:
    rows = parse_csv(read("commons.csv"))
    assert [row.label for row in rows] == ["line 2", "line 5", "line 6"]  # a 3-line cell
    yeswiki = rows[0].values
    assert yeswiki["tags"] == "wiki, Coopération"
    assert yeswiki["description"] == "Un **wiki** facile.\n\nSur deux paragraphes."
    assert yeswiki["maintainers"] == ["cae-nord", "lieu-sud"]
    assert rows[2].values["maintainers"] == []


def test_a_csv_file_with_wrong_columns_is_refused_naming_them() -> None:
    with pytest.raises(ImportFileError) as error:
        parse_csv(read("commons-wrong-columns.csv"))
    assert "'nom'" in str(error.value) and "'colour'" in str(error.value)
    assert "slug, name, kind" in str(error.value)  # the expected columns are listed


def test_a_csv_file_missing_a_required_column_is_refused_naming_it() -> None:
    with pytest.raises(ImportFileError, match="Missing column\\(s\\): kind, summary"):
        parse_csv("slug,name\nyeswiki,YesWiki\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,kind,summary,name\n", "given twice: name"),
    ],
)
def test_csv_files_refused_whole(text: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_csv(text)


def test_a_spreadsheet_saved_with_semicolons_and_a_bom_is_read() -> None:
    text = '\ufeffName;Kind;Summary;Tags\nYesWiki;software;Un wiki;"wiki, coop"\n'
    rows = parse_rows(text, ImportFormat.CSV)
    assert rows[0].values == {
        "name": "YesWiki",
        "kind": "software",
        "summary": "Un wiki",
        "tags": "wiki, coop",
        "maintainers": [],
    }


def test_every_bad_row_is_rejected_with_its_line_and_fields_and_good_ones_pass() -> None:
    result = check_rows(parse_csv(read("commons-bad-rows.csv")), organisations=ORGANISATIONS)
    assert [row.slug for row in result.accepted] == ["yeswiki", "guide"]
    rejected = {row.row.label: row for row in result.rejected}
    assert set(rejected) == {"line 3", "line 5"}
    assert [e.field for e in rejected["line 3"].errors] == ["licence"]
    assert [e.field for e in rejected["line 5"].errors] == ["website"]
    assert rejected["line 3"].lines() == [
        "line 3: licence: Unknown licence Foo-1.0: use an SPDX identifier such as "
        "AGPL-3.0-or-later or CC-BY-SA-4.0."
    ]


def test_maintainers_must_be_local_organisations_or_the_default() -> None:
    text = f"{HEADER}\n,A,software,a,,,,,,,,,inconnue\n,B,data,b,,,,,,,,,\n"
    result = check_rows(parse_csv(text), organisations=ORGANISATIONS)
    assert [str(e) for r in result.rejected for e in r.errors] == [
        "maintainers: No local organisation has the slug inconnue.",
        "maintainers: Name at least one maintaining organisation (or use --maintainer).",
    ]
    result = check_rows(parse_csv(text), organisations=ORGANISATIONS, default_maintainer="cae-nord")
    assert [r.row.label for r in result.rejected] == ["line 2"]
    assert result.accepted[0].maintainers == ["cae-nord"]
    assert result.accepted[0].slug == "b"


def test_the_same_slug_twice_in_a_file_is_refused_naming_the_first() -> None:
    text = f"{HEADER}\nwiki,A,software,a,,,,,,,,,cae-nord\n,Wiki,software,b,,,,,,,,,cae-nord\n"
    result = check_rows(parse_csv(text), organisations=ORGANISATIONS)
    assert [str(e) for e in result.rejected[0].errors] == [
        "slug: The same slug is already on line 2."
    ]


def test_a_row_with_more_cells_than_columns_is_rejected() -> None:
    rows = parse_csv("name,kind,summary\nA,software,a,surplus\n")
    result = check_rows(rows, organisations=ORGANISATIONS, default_maintainer="cae-nord")
    assert [e.field for e in result.rejected[0].errors] == ["row"]


def test_json_as_exported_takes_lists_and_skips_remote_commons() -> None:
    rows = parse_json(read("commons.json"))
    assert [row.label for row in rows] == ["item 0", "item 1", "item 2"]
    assert rows[0].values["tags"] == "wiki, coopération"
    assert rows[0].values["languages"] == "fr, en"
    assert rows[1].origin == "autre.example"
    result = check_rows(rows, organisations=ORGANISATIONS, default_maintainer="lieu-sud")
    assert [row.slug for row in result.accepted] == ["yeswiki", "plans-de-four-a-pain"]
    assert result.accepted[1].maintainers == ["lieu-sud"]
    assert result.skipped_remote == 1 and result.rejected == []


def test_a_plain_json_list_is_read_and_bad_items_are_rejected_by_index() -> None:
    text = json.dumps(
        [
            {"name": "A", "kind": "software", "summary": "a", "maintainers": ["cae-nord"]},
            "not an object",
            {"name": "B", "kind": "data", "summary": 3, "colour": "red", "tags": {"x": 1}},
        ]
    )
    result = check_rows(
        parse_json(text), organisations=ORGANISATIONS, default_maintainer="lieu-sud"
    )
    assert [row.slug for row in result.accepted] == ["a"]
    reasons = {r.row.label: [e.field for e in r.errors] for r in result.rejected}
    assert reasons == {"item 1": ["row"], "item 2": ["colour", "tags"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"commons": 3}', "a list of commons"),
        ('"YesWiki"', "a list of commons"),
        ('[{"name": "A",}]', "Not valid JSON \\(line 1, column 15\\)"),
    ],
)
def test_json_files_refused_whole(text: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_json(text)


def test_a_publiccode_file_maps_to_a_software_commons() -> None:
    [row] = parse_publiccode(read("publiccode.yml"))
    assert row.label == "document 1"
    values = row.values
    assert values["name"] == "Gestionnaire de prêts"
    assert values["kind"] == "software"
    assert values["summary"] == "Prêter des outils et des salles entre lieux."  # French first
    assert values["description"].startswith("Un logiciel pour gérer les prêts")
    assert values["description"].endswith("- Réservations en ligne\n- Rappels de retour")
    assert values["tags"] == "resource-management, booking"
    assert values["licence"] == "AGPL-3.0-or-later"
    assert values["repository"] == "https://framagit.org/exemple/gestionnaire-de-prets"
    assert values["website"] == "https://prets.example.org"
    assert values["maturity"] == "in-development"  # beta
    assert values["languages"] == "fr, en"
    result = check_rows([row], organisations=ORGANISATIONS, default_maintainer="cae-nord")
    assert [r.slug for r in result.accepted] == ["gestionnaire-de-prets"]


@pytest.mark.parametrize(
    ("status", "maturity"),
    [
        ("concept", "idea"),
        ("development", "in-development"),
        ("stable", "stable"),
        ("obsolete", "archived"),
    ],
)
def test_publiccode_development_status_becomes_a_maturity(status: str, maturity: str) -> None:
    text = read("publiccode.yml").replace("developmentStatus: beta", f"developmentStatus: {status}")
    assert parse_publiccode(text)[0].values["maturity"] == maturity


def test_an_unknown_development_status_is_rejected_as_a_maturity() -> None:
    text = read("publiccode.yml").replace("developmentStatus: beta", "developmentStatus: alpha")
    result = check_rows(
        parse_publiccode(text), organisations=ORGANISATIONS, default_maintainer="cae-nord"
    )
    assert [e.field for e in result.rejected[0].errors] == ["maturity"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "Not valid YAML"),
        ("name: Pas un publiccode\n", "no publiccodeYmlVersion"),
        ("", "empty"),
    ],
)
def test_yaml_files_that_are_not_publiccode_are_refused(text: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse_publiccode(text)


def test_the_exported_csv_reads_back_as_the_same_rows() -> None:
    record = {
        "slug": "yeswiki",
        "name": "YesWiki, le wiki",
        "kind": "software",
        "summary": 'Un wiki "facile"',
        "description": "Ligne 1\nLigne 2",
        "tags": ["coopération", "wiki"],
        "licence": "AGPL-3.0-or-later",
        "website": "https://yeswiki.net",
        "repository": "",
        "maturity": "stable",
        "languages": ["fr", "en"],
        "territory": "national",
        "maintainers": ["cae-nord", "lieu-sud"],
        "payment_links": [
            {"label": "Don | soutien", "url": "https://opencollective.com/yeswiki"},
            {"label": "Adhérer", "url": "https://yeswiki.net/adherer"},
        ],
        "uri": "ignored",
    }
    [row] = parse_csv(commons_csv([record]))
    assert row.values["name"] == "YesWiki, le wiki"
    assert row.values["summary"] == 'Un wiki "facile"'
    assert row.values["description"] == "Ligne 1\nLigne 2"
    assert row.values["tags"] == "coopération, wiki"
    assert row.values["languages"] == "fr,en"
    assert row.values["maintainers"] == ["cae-nord", "lieu-sud"]
    assert row.values["payment_links"] == (
        "Don | soutien | https://opencollective.com/yeswiki\n"  # the last bar splits
        "Adhérer | https://yeswiki.net/adherer"
    )
    assert set(row.values) == set(COLUMNS)
    assert check_rows([row], organisations=ORGANISATIONS, default_maintainer=None).accepted


def test_payment_links_are_read_from_the_export_list_or_from_typed_text() -> None:
    text = json.dumps(
        [
            {
                "name": "A",
                "kind": "software",
                "summary": "a",
                "payment_links": [{"label": "Don", "url": "https://a.example/don"}],
            },
            {
                "name": "B",
                "kind": "data",
                "summary": "b",
                "payment_links": "Don | https://b.example",
            },
            {"name": "C", "kind": "data", "summary": "c", "payment_links": ["https://c.example"]},
            {"name": "D", "kind": "data", "summary": "d", "payment_links": "Don | javascript:x"},
        ]
    )
    result = check_rows(
        parse_json(text), organisations=ORGANISATIONS, default_maintainer="lieu-sud"
    )

    links = {row.slug: row.data["payment_links"] for row in result.accepted}
    assert links == {"a": "Don | https://a.example/don", "b": "Don | https://b.example"}
    reasons = {r.row.label: [e.field for e in r.errors] for r in result.rejected}
    assert reasons == {"item 2": ["payment_links"], "item 3": ["payment_links"]}


def test_amounts_are_exported_as_cents_and_as_a_decimal_string() -> None:
    assert money_fields("budget", 400050, "EUR") == {
        "budget_cents": 400050,
        "budget": "4000.50",
        "currency": "EUR",
    }
