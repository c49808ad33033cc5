"""Commons: the software, knowledge, data, plans and infrastructure a network shares."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from babel import Locale, UnknownLocaleError
from sqlalchemy import Column, ForeignKey, Index, Integer, text
from sqlmodel import Field, SQLModel

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.federated import origin_field, uri_field
from catalogue.licences import normalise_licence
from catalogue.organisations import clean_slug, clean_website
from catalogue.payment_links import PaymentLink, parse_payment_links, payment_links_field
from catalogue.territories import parse_territory
from catalogue.text import fold, render_markdown


class CommonsKind(StrEnum):
    SOFTWARE = "software"
    KNOWLEDGE = "knowledge"
    DATA = "data"
    HARDWARE = "hardware"
    INFRASTRUCTURE = "infrastructure"
    SERVICE = "service"
    OTHER = "other"


COMMONS_KIND_LABELS: dict[CommonsKind, str] = {
    CommonsKind.SOFTWARE: N_("Software"),
    CommonsKind.KNOWLEDGE: N_("Knowledge"),
    CommonsKind.DATA: N_("Data"),
    CommonsKind.HARDWARE: N_("Open hardware and building plans"),
    CommonsKind.INFRASTRUCTURE: N_("Shared infrastructure"),
    CommonsKind.SERVICE: N_("Service"),
    CommonsKind.OTHER: N_("Other"),
}


class Maturity(StrEnum):
    IDEA = "idea"
    IN_DEVELOPMENT = "in-development"
    STABLE = "stable"
    ARCHIVED = "archived"


MATURITY_LABELS: dict[Maturity, str] = {
    Maturity.IDEA: N_("Idea"),
    Maturity.IN_DEVELOPMENT: N_("In development"),
    Maturity.STABLE: N_("Stable"),
    Maturity.ARCHIVED: N_("Archived"),
}


class Commons(SQLModel, table=True):
    """A commons made here, or the copy of a remote one (``origin`` set)."""

    __table_args__ = (
        Index(
            "uq_commons_local_slug",
            "slug",
            unique=True,
            sqlite_where=text("origin IS NULL"),
            postgresql_where=text("origin IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    origin: str | None = origin_field()
    slug: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    sort_key: str = Field(default="", max_length=200, index=True)
    kind: str = Field(max_length=32, index=True)
    summary: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=20_000)
    # Rendered and sanitised once when saved, never at display time.
    description_html: str = Field(default="", max_length=100_000)
    licence: str = Field(default="", max_length=200)
    website: str = Field(default="", max_length=2048)
    repository: str = Field(default="", max_length=2048)
    logo: str | None = Field(default=None, max_length=100)
    maturity: str = Field(default=Maturity.IN_DEVELOPMENT, max_length=32, index=True)
    languages: str = Field(default="", max_length=100)  # comma-separated ISO 639 codes
    territory: str = Field(default="", max_length=32, index=True)
    # Where to give to it (catalogue/payment_links.py); sent as FEP-0ea0 attachments.
    payment_links: tuple[PaymentLink, ...] = payment_links_field()
    hidden: bool = Field(default=False)
    merged_into_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("commons.id", ondelete="SET NULL"), nullable=True),
    )
    # Name, summary, description and tags, folded: what full-text search indexes.
    search_document: str = Field(default="", max_length=120_000)
    # Kept by catalogue.operations.refresh_counts in the transaction that changes them, so the
    # catalogue can sort 20,000 commons by use or need without aggregating every declaration.
    uses_count: int = Field(default=0, index=True)
    interested_count: int = Field(default=0)
    open_improvements: int = Field(default=0)
    need_cents: int = Field(default=0, index=True)
    created_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
    )
    updated_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def is_local(self) -> bool:
        return self.origin is None

    @property
    def language_list(self) -> list[str]:
        return [code for code in self.languages.split(",") if code]


class CommonsTag(SQLModel, table=True):
    __tablename__ = "commons_tag"

    commons_id: int = Field(
        sa_column=Column(Integer, ForeignKey("commons.id", ondelete="CASCADE"), primary_key=True)
    )
    tag: str = Field(max_length=50, primary_key=True, index=True)


class CommonsMaintainer(SQLModel, table=True):
    """An organisation that looks after a commons: its members may edit it."""

    __tablename__ = "commons_maintainer"

    commons_id: int = Field(
        sa_column=Column(Integer, ForeignKey("commons.id", ondelete="CASCADE"), primary_key=True)
    )
    organisation_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("organisation.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        )
    )


TAG = re.compile(r"^[\w][\w +.-]{0,48}[\w+]?$")
MAX_TAGS = 20
LOGO_TYPES = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif"}


def parse_tags(value: str) -> list[str]:
    """Tags from a comma-separated string: trimmed, lower case, de-duplicated, in order."""
    tags: list[str] = []
    for raw in value.split(","):
        tag = " ".join(raw.split()).lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def parse_languages(value: str) -> list[str]:
    codes: list[str] = []
    for raw in re.split(r"[,\s]+", value.strip()):
        code = raw.strip().lower()
        if code and code not in codes:
            codes.append(code)
    return codes


def _known_language(code: str) -> bool:
    if not re.fullmatch(r"[a-z]{2,3}", code):
        return False
    try:
        Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return False
    return True


def search_document(name: str, summary: str, description: str, tags: list[str]) -> str:
    return fold(" ".join([name, summary, description, " ".join(tags)]))


def validate_commons(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Cleaned column values plus ``tags`` (a list), or InvalidFields naming each bad field.

    ``payment_links`` is cleaned only when ``data`` names it: an import file without that
    column updates a commons without wiping the links set on its page.
    """
    errors: list[InvalidField] = []
    cleaned: dict[str, Any] = {}

    def text_field(name: str, maximum: int, *, required: str | None = None) -> str:
        value = str(data.get(name, "") or "").strip()
        if required and not value:
            errors.append(InvalidField(name, required))
        elif len(value) > maximum:
            errors.append(InvalidField(name, N_("At most %(max)d characters."), max=maximum))
        cleaned[name] = value
        return value

    name = text_field("name", 200, required=N_("Give the commons' name."))
    cleaned["sort_key"] = fold(name)[:200]
    summary = text_field("summary", 300, required=N_("Say in one sentence what it is."))
    description = text_field("description", 20_000)
    cleaned["description_html"] = render_markdown(description)

    if creating:
        try:
            cleaned["slug"] = clean_slug(str(data.get("slug", "") or ""), name)
        except InvalidField as error:
            errors.append(error)

    kind = str(data.get("kind", "") or "")
    if kind not in {k.value for k in CommonsKind}:
        errors.append(InvalidField("kind", N_("Choose the kind of commons.")))
    cleaned["kind"] = kind

    maturity = str(data.get("maturity", "") or Maturity.IN_DEVELOPMENT)
    if maturity not in {m.value for m in Maturity}:
        errors.append(InvalidField("maturity", N_("Choose a maturity from the list.")))
    cleaned["maturity"] = maturity

    licence = str(data.get("licence", "") or "").strip()
    if licence:
        normalised = normalise_licence(licence)
        if normalised is None:
            errors.append(
                InvalidField(
                    "licence",
                    N_(
                        "Unknown licence %(licence)s: use an SPDX identifier such as "
                        "AGPL-3.0-or-later or CC-BY-SA-4.0."
                    ),
                    licence=licence,
                )
            )
        else:
            licence = normalised
    cleaned["licence"] = licence

    for field in ("website", "repository"):
        try:
            cleaned[field] = clean_website(str(data.get(field, "") or ""))
        except InvalidField:
            errors.append(
                InvalidField(field, N_("Give a full web address starting with https://."))
            )

    territory = str(data.get("territory", "") or "").strip()
    if territory and parse_territory(territory) is None:
        errors.append(InvalidField("territory", N_("Choose a region or department from the list.")))
    cleaned["territory"] = territory

    languages = parse_languages(str(data.get("languages", "") or ""))
    unknown = [code for code in languages if not _known_language(code)]
    if unknown:
        errors.append(
            InvalidField(
                "languages",
                N_("Unknown language code %(codes)s: use two-letter codes such as fr, en."),
                codes=", ".join(unknown),
            )
        )
    cleaned["languages"] = ",".join(languages)

    raw_tags = data.get("tags", "")
    tags = parse_tags(",".join(raw_tags) if isinstance(raw_tags, list) else str(raw_tags or ""))
    if len(tags) > MAX_TAGS:
        errors.append(InvalidField("tags", N_("At most %(max)d tags."), max=MAX_TAGS))
    elif any(not TAG.match(tag) or len(tag) > 50 for tag in tags):
        errors.append(
            InvalidField("tags", N_("Tags are words of at most 50 letters, separated by commas."))
        )
    cleaned["tags"] = tags
    cleaned["search_document"] = search_document(name, summary, description, tags)

    if "payment_links" in data:
        try:
            cleaned["payment_links"] = parse_payment_links(str(data["payment_links"] or ""))
        except InvalidField as error:
            errors.append(error)

    if errors:
        raise InvalidFields(errors)
    return cleaned
