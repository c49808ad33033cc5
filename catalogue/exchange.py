"""Commons in and out of files: CSV, JSON and publiccode.yml rows in, JSON and CSV records out.

Everything here is pure: it reads the text it is given and returns rows, verdicts and records.
The database side (which organisations exist, which slugs are taken, one transaction for the
whole file) lives in ``instance.transfer``; keeping the rules here lets tests check every bad
file without a database, and keeps the CSV the exporter writes and the one the importer reads in
one place.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import PurePath
from typing import Any

import yaml

from catalogue.commons import Commons, validate_commons
from catalogue.declarations import Declaration
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.improvements import Improvement, Milestone
from catalogue.money import Money
from catalogue.organisations import Organisation, slugify
from catalogue.payment_links import PaymentLink, format_payment_links

# The columns of a commons in a CSV file, in the order the exporter writes them.
COLUMNS: tuple[str, ...] = (
    "slug",
    "name",
    "kind",
    "summary",
    "description",
    "tags",
    "licence",
    "website",
    "repository",
    "maturity",
    "languages",
    "territory",
    "maintainers",
    "payment_links",
)
# What validate_commons cannot do without: a file lacking one of these columns is refused whole.
REQUIRED_COLUMNS: tuple[str, ...] = ("name", "kind", "summary")
# Keys the JSON export adds to each commons; an import of that export ignores them.
EXPORT_ONLY_KEYS = frozenset(
    {
        "uri",
        "origin",
        "maintainer_uris",
        "uses_count",
        "interested_count",
        "open_improvements",
        "need_cents",
        "created_at",
        "updated_at",
    }
)
LIST_KEYS = frozenset({"tags", "languages", "maintainers"})


class ImportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    PUBLICCODE = "publiccode"


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


class ImportFileError(ValueError):
    """The whole file is refused (wrong columns, not JSON...): no row is even looked at."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


@dataclass
class ImportRow:
    """One commons as the file gave it, with where it was (``line 4``, ``item 0``)."""

    place: str  # "line" (CSV), "item" (JSON list index) or "document" (publiccode.yml)
    number: int
    values: dict[str, Any]
    origin: str | None = None  # set for remote commons in an export: never imported as local
    problems: list[InvalidField] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.place} {self.number}"


@dataclass(frozen=True)
class CheckedRow:
    row: ImportRow
    slug: str
    maintainers: list[str]

    @property
    def data(self) -> dict[str, Any]:
        """What catalogue.operations.create_commons / update_commons take."""
        return {key: value for key, value in self.row.values.items() if key != "maintainers"}


@dataclass(frozen=True)
class RejectedRow:
    row: ImportRow
    errors: list[InvalidField]

    def lines(self) -> list[str]:
        """One line per refused field: ``line 4: licence: Unknown licence Foo-1.0…``."""
        return [f"{self.row.label}: {error}" for error in self.errors]


@dataclass
class CheckResult:
    accepted: list[CheckedRow]
    rejected: list[RejectedRow]
    skipped_remote: int = 0


def guess_format(filename: str) -> ImportFormat | None:
    """The format a file's name suggests, or None when it does not say."""
    path = PurePath(filename.lower())
    if path.name in ("publiccode.yml", "publiccode.yaml") or path.suffix in (".yml", ".yaml"):
        return ImportFormat.PUBLICCODE
    if path.suffix == ".csv":
        return ImportFormat.CSV
    if path.suffix == ".json":
        return ImportFormat.JSON
    return None


def parse_rows(text: str, file_format: ImportFormat) -> list[ImportRow]:
    parsers = {
        ImportFormat.CSV: parse_csv,
        ImportFormat.JSON: parse_json,
        ImportFormat.PUBLICCODE: parse_publiccode,
    }
    return parsers[file_format](text.removeprefix("\ufeff"))


# CSV


def _delimiter(header: str) -> str:
    """Commas, or semicolons when the header has no comma (a spreadsheet set to French)."""
    return ";" if ";" in header and "," not in header else ","


def check_columns(header: Sequence[str]) -> list[str]:
    """The header's columns, normalised; raises ImportFileError naming unknown or missing ones."""
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            N_("Unknown column(s): %(columns)s. The columns are: %(expected)s."),
            columns=", ".join(repr(name) for name in unknown),
            expected=", ".join(COLUMNS),
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(N_("Missing column(s): %(columns)s."), columns=", ".join(missing))
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ImportFileError(
            N_("Column(s) given twice: %(columns)s."), columns=", ".join(repeated)
        )
    return columns


def parse_csv(text: str) -> list[ImportRow]:
    """Rows of a CSV file with a header; each row's number is the line it starts on."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(N_("The file is empty: it needs a header row.")) from None
    except csv.Error as error:
        raise ImportFileError(N_("Not a CSV file: %(error)s."), error=str(error)) from None
    columns = check_columns(header)
    rows: list[ImportRow] = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append(_csv_row(line, columns, cells))
            line = reader.line_num + 1
    except csv.Error as error:
        raise ImportFileError(
            N_("Line %(line)d is not valid CSV: %(error)s."), line=line, error=str(error)
        ) from None
    return rows


def _csv_row(line: int, columns: list[str], cells: list[str]) -> ImportRow:
    values: dict[str, Any] = dict(zip(columns, cells, strict=False))
    row = ImportRow("line", line, values)
    if len(cells) > len(columns):
        row.problems.append(
            InvalidField(
                "row",
                N_("%(cells)d cells for %(columns)d columns."),
                cells=len(cells),
                columns=len(columns),
            )
        )
    values["maintainers"] = split_maintainers(str(values.get("maintainers", "")))
    return row


def split_maintainers(value: str) -> list[str]:
    slugs: list[str] = []
    for raw in value.replace(",", ";").split(";"):
        slug = raw.strip().lower()
        if slug and slug not in slugs:
            slugs.append(slug)
    return slugs


# JSON


def parse_json(text: str) -> list[ImportRow]:
    """A list of commons objects, or ``{"commons": [...]}`` as ``terreau export`` writes it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFileError(
            N_("Not valid JSON (line %(line)d, column %(column)d): %(error)s."),
            line=error.lineno,
            column=error.colno,
            error=error.msg,
        ) from None
    if isinstance(document, dict) and isinstance(document.get("commons"), list):
        items = document["commons"]
    elif isinstance(document, list):
        items = document
    else:
        raise ImportFileError(
            N_('A JSON file holds a list of commons, or an object with a "commons" list.')
        )
    return [_json_row(index, item) for index, item in enumerate(items)]


def _json_row(index: int, item: Any) -> ImportRow:
    row = ImportRow("item", index, {})
    if not isinstance(item, dict):
        row.problems.append(InvalidField("row", N_("Each commons must be a JSON object.")))
        return row
    origin = item.get("origin")
    row.origin = origin if isinstance(origin, str) and origin else None
    for key, value in item.items():
        if key in EXPORT_ONLY_KEYS:
            continue
        if key not in COLUMNS:
            row.problems.append(InvalidField(key, N_("Unknown field.")))
            continue
        try:
            row.values[key] = _json_value(key, value)
        except InvalidField as error:
            row.problems.append(error)
    row.values["maintainers"] = split_maintainers(",".join(row.values.get("maintainers", [])))
    return row


def _json_value(key: str, value: Any) -> Any:
    """Text for text fields; for tags, languages and maintainers a list or a separated string;
    for payment links the export's list of objects, or the text typed on a page."""
    if value is None:
        value = ""
    if key == "payment_links":
        return _links_text(value)
    if key in LIST_KEYS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidField(key, N_("Give a list of texts."))
        if key == "maintainers":
            return value
        return ", ".join(value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidField(key, N_("Give a text."))
    return str(value)


# publiccode.yml

DEVELOPMENT_STATUS = {
    "concept": "idea",
    "development": "in-development",
    "beta": "in-development",
    "stable": "stable",
    "obsolete": "archived",
}
PREFERRED_LANGUAGES = ("fr", "en")


def parse_publiccode(text: str) -> list[ImportRow]:
    """One commons per YAML document (a publiccode.yml file usually holds one)."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        raise ImportFileError(N_("Not valid YAML: %(error)s."), error=str(error)) from None
    if not documents:
        raise ImportFileError(N_("The file is empty."))
    rows = []
    for number, document in enumerate(documents, start=1):
        if not isinstance(document, dict) or "publiccodeYmlVersion" not in document:
            raise ImportFileError(
                N_("Document %(number)d is not a publiccode.yml (no publiccodeYmlVersion)."),
                number=number,
            )
        rows.append(ImportRow("document", number, publiccode_values(document)))
    return rows


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _description(document: dict[str, Any]) -> dict[str, Any]:
    """The description in French if there is one, else English, else the first given."""
    descriptions = _mapping(document.get("description"))
    by_language = {str(key).split("-")[0].lower(): _mapping(v) for key, v in descriptions.items()}
    for language in PREFERRED_LANGUAGES:
        if language in by_language:
            return by_language[language]
    return next(iter(by_language.values()), {})


def publiccode_values(document: dict[str, Any]) -> dict[str, Any]:
    """A publiccode.yml document as the importer's columns: always software."""
    description = _description(document)
    long_description = str(description.get("longDescription", "") or "").strip()
    features = _strings(description.get("features"))
    if features:
        bullets = "\n".join(f"- {feature}" for feature in features)
        long_description = f"{long_description}\n\n{bullets}".strip()
    status = str(document.get("developmentStatus", "") or "")
    languages = [
        code.split("-")[0].lower()
        for code in _strings(_mapping(document.get("localisation")).get("availableLanguages"))
    ]
    return {
        "name": str(document.get("name", "") or ""),
        "kind": "software",
        "summary": str(description.get("shortDescription", "") or ""),
        "description": long_description,
        "tags": ", ".join(_strings(document.get("categories"))),
        "licence": str(_mapping(document.get("legal")).get("license", "") or ""),
        "website": str(document.get("landingURL", "") or ""),
        "repository": str(document.get("url", "") or ""),
        "maturity": DEVELOPMENT_STATUS.get(status, status),
        "languages": ", ".join(dict.fromkeys(languages)),
        "maintainers": [],
    }


# Checking rows


def check_rows(
    rows: Iterable[ImportRow],
    *,
    organisations: Collection[str],
    default_maintainer: str | None = None,
) -> CheckResult:
    """Every row's verdict: accepted with its slug and maintainers, or rejected with each reason.

    ``organisations`` are the local organisations' slugs; a row without maintainers gets
    ``default_maintainer``. Remote commons (from another instance's export) are skipped: only
    their origin may change them.
    """
    result = CheckResult([], [])
    first_seen: dict[str, ImportRow] = {}
    for row in rows:
        if row.origin is not None:
            result.skipped_remote += 1
            continue
        errors = list(row.problems)
        if errors and not row.values:  # not even an object: nothing more to say about it
            result.rejected.append(RejectedRow(row, errors))
            continue
        try:
            slug = str(validate_commons(row.values, creating=True)["slug"])
        except InvalidFields as invalid:
            errors.extend(invalid.errors)
            slug = _intended_slug(row.values)
        maintainers = list(row.values.get("maintainers") or [])
        if not maintainers and default_maintainer:
            maintainers = [default_maintainer]
        errors.extend(_maintainer_errors(maintainers, organisations))
        if slug and slug in first_seen:
            errors.append(
                InvalidField(
                    "slug",
                    N_("The same slug is already on %(place)s."),
                    place=first_seen[slug].label,
                )
            )
        elif slug:
            first_seen[slug] = row
        if errors:
            result.rejected.append(RejectedRow(row, errors))
        else:
            result.accepted.append(CheckedRow(row, slug, maintainers))
    return result


def _intended_slug(values: dict[str, Any]) -> str:
    """The slug a row means, even when it is invalid: enough to spot the same slug twice."""
    return str(values.get("slug", "") or "").strip().lower() or slugify(
        str(values.get("name", "") or "")
    )


def _maintainer_errors(
    maintainers: list[str], organisations: Collection[str]
) -> list[InvalidField]:
    if not maintainers:
        return [
            InvalidField(
                "maintainers",
                N_("Name at least one maintaining organisation (or use --maintainer)."),
            )
        ]
    unknown = [slug for slug in maintainers if slug not in organisations]
    if unknown:
        return [
            InvalidField(
                "maintainers",
                N_("No local organisation has the slug %(slugs)s."),
                slugs=", ".join(unknown),
            )
        ]
    return []


# Export records


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def money_fields(prefix: str, cents: int, currency: str) -> dict[str, Any]:
    """``budget_cents`` for programs, ``budget`` ("4000.00") for people, and the currency."""
    return {
        f"{prefix}_cents": cents,
        prefix: Money(cents, currency).decimal_string(),
        "currency": currency,
    }


def links_record(links: Iterable[PaymentLink]) -> list[dict[str, str]]:
    return [{"label": link.label, "url": link.url} for link in links]


def _links_text(value: Any) -> str:
    """Payment links as typed on a page (``label | address`` a line), from the export's list
    of ``{"label", "url"}`` or from that text itself; InvalidField when it is neither."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(item, dict)
        and isinstance(item.get("label"), str)
        and isinstance(item.get("url"), str)
        for item in value
    ):
        return format_payment_links(PaymentLink(item["label"], item["url"]) for item in value)
    raise InvalidField(
        "payment_links", N_('Give a list of {"label": …, "url": …} objects, or a text.')
    )


def commons_record(
    commons: Commons, tags: list[str], maintainers: Sequence[Organisation]
) -> dict[str, Any]:
    """A commons in the JSON export: the importer's keys first, then what only export knows."""
    return {
        "slug": commons.slug,
        "name": commons.name,
        "kind": commons.kind,
        "summary": commons.summary,
        "description": commons.description,
        "tags": list(tags),
        "licence": commons.licence,
        "website": commons.website,
        "repository": commons.repository,
        "maturity": commons.maturity,
        "languages": commons.language_list,
        "territory": commons.territory,
        "maintainers": [organisation.slug for organisation in maintainers],
        "payment_links": links_record(commons.payment_links),
        "uri": commons.uri,
        "origin": commons.origin,
        "maintainer_uris": [organisation.uri for organisation in maintainers],
        "uses_count": commons.uses_count,
        "interested_count": commons.interested_count,
        "created_at": _time(commons.created_at),
        "updated_at": _time(commons.updated_at),
    }


def organisation_record(organisation: Organisation) -> dict[str, Any]:
    """An organisation's public face: never its members, so never anyone's email."""
    return {
        "uri": organisation.uri,
        "origin": organisation.origin,
        "slug": organisation.slug,
        "name": organisation.name,
        "kind": organisation.kind,
        "description": organisation.description,
        "website": organisation.website,
        "territory": organisation.territory,
        "siret": organisation.siret,
        "created_at": _time(organisation.created_at),
    }


def declaration_record(
    declaration: Declaration, organisation: Organisation, commons: Commons
) -> dict[str, Any]:
    return {
        "uri": declaration.uri,
        "origin": declaration.origin,
        "kind": declaration.kind,
        "organisation": organisation.uri,
        "organisation_slug": organisation.slug,
        "commons": commons.uri,
        "commons_slug": commons.slug,
        "since": _day(declaration.since),
        "satisfaction": declaration.satisfaction,
        "comment": declaration.comment,
        "created_at": _time(declaration.created_at),
    }


def improvement_record(
    improvement: Improvement,
    commons: Commons,
    milestones: Sequence[Milestone],
    provider: Organisation | None,
) -> dict[str, Any]:
    currency = improvement.currency
    return {
        "uri": improvement.uri,
        "origin": improvement.origin,
        "commons": commons.uri,
        "commons_slug": commons.slug,
        "number": improvement.number,
        "title": improvement.title,
        "description": improvement.description,
        **money_fields("budget", improvement.budget_cents, currency),
        "milestones": [
            {"title": m.title, **money_fields("amount", m.amount_cents, currency)}
            for m in milestones
        ],
        "provider": provider.uri if provider else None,
        "provider_slug": provider.slug if provider else None,
        "payment_links": links_record(improvement.payment_links),
        "deadline": _day(improvement.deadline),
        "status": improvement.status,
        "allow_overfunding": improvement.allow_overfunding,
        "created_at": _time(improvement.created_at),
        "updated_at": _time(improvement.updated_at),
    }


def csv_cells(record: dict[str, Any]) -> list[str]:
    """A commons record as the CSV row the importer reads back."""
    cells = []
    for column in COLUMNS:
        value = record.get(column, "")
        if column == "maintainers":
            cells.append(";".join(value))
        elif column == "payment_links":
            cells.append(_links_text(value))
        elif column == "languages":
            cells.append(",".join(value))
        elif column == "tags":
            cells.append(", ".join(value))
        else:
            cells.append("" if value is None else str(value))
    return cells


def commons_csv(records: Iterable[dict[str, Any]]) -> str:
    """The commons table as CSV with a header: what ``terreau import`` reads."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(csv_cells(record))
    return out.getvalue()
