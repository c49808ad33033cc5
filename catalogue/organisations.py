"""Organisations: the tiers-lieux, CAEs, networks and funders that declare, pledge and fund."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.federated import origin_field, uri_field
from catalogue.territories import parse_territory
from catalogue.text import fold


class OrganisationKind(StrEnum):
    TIERS_LIEU = "tiers-lieu"
    CAE = "cae"
    ASSOCIATION = "association"
    COMPANY = "company"
    PUBLIC_BODY = "public-body"
    FUNDER = "funder"
    NETWORK = "network"


KIND_LABELS: dict[OrganisationKind, str] = {
    OrganisationKind.TIERS_LIEU: N_("Tiers-lieu"),
    OrganisationKind.CAE: N_("Worker cooperative (CAE)"),
    OrganisationKind.ASSOCIATION: N_("Association"),
    OrganisationKind.COMPANY: N_("Company"),
    OrganisationKind.PUBLIC_BODY: N_("Public body"),
    OrganisationKind.FUNDER: N_("Funder"),
    OrganisationKind.NETWORK: N_("Network"),
}


class Organisation(SQLModel, table=True):
    """A local organisation, or the copy of a remote one (``origin`` set)."""

    __table_args__ = (
        # Slugs name local actors (acct:slug@domain), so they are unique among local rows only.
        Index(
            "uq_organisation_local_slug",
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
    # The name without accents or case, so that "Élan" sorts among the E's on every database.
    sort_key: str = Field(default="", max_length=200, index=True)
    kind: str = Field(max_length=32)
    description: str = Field(default="", max_length=10_000)
    website: str = Field(default="", max_length=2048)
    territory: str = Field(default="", max_length=32)
    siret: str | None = Field(default=None, max_length=14)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def is_local(self) -> bool:
        return self.origin is None


SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Slugs that would collide with routes or well-known account names.
RESERVED_SLUGS = frozenset(
    {"new", "admin", "api", "static", "inbox", "outbox", "actor", "instance", "terreau", "www"}
)


def slugify(name: str) -> str:
    """A slug suggestion from a name: lower case ASCII, words joined by hyphens."""
    ascii_name = fold(name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:64].strip("-")


def clean_slug(value: str, name: str) -> str:
    """The slug asked for, or one made from the name; raises InvalidField when unusable."""
    slug = value.strip().lower() or slugify(name)
    if not SLUG.match(slug):
        raise InvalidField(
            "slug", N_("Use 1 to 64 lower-case letters, digits and hyphens, not at either end.")
        )
    if slug in RESERVED_SLUGS:
        raise InvalidField("slug", N_("This address is reserved; choose another."))
    return slug


def luhn_ok(digits: str) -> bool:
    """The Luhn check INSEE applies to SIREN and SIRET numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def clean_siret(value: str) -> str | None:
    """A SIRET without its spaces, or None when left empty; raises InvalidField when wrong."""
    digits = re.sub(r"\s", "", value)
    if not digits:
        return None
    if not re.fullmatch(r"\d{14}", digits):
        raise InvalidField("siret", N_("A SIRET number has exactly 14 digits."))
    # La Poste's establishments are the one documented exception to the Luhn rule.
    if not (luhn_ok(digits) or (digits.startswith("356000000") and sum(map(int, digits)) % 5 == 0)):
        raise InvalidField("siret", N_("This SIRET number is not valid (check digit)."))
    return digits


def clean_website(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidField("website", N_("Give a full web address starting with https://."))
    return value


def validate_organisation(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Cleaned values for an organisation's fields, or InvalidFields naming each bad one."""
    errors: list[InvalidField] = []
    cleaned: dict[str, Any] = {}

    name = str(data.get("name", "")).strip()
    if not name:
        errors.append(InvalidField("name", N_("Give the organisation's name.")))
    elif len(name) > 200:
        errors.append(InvalidField("name", N_("At most %(max)d characters."), max=200))
    cleaned["name"] = name
    cleaned["sort_key"] = fold(name)[:200]

    if creating:
        try:
            cleaned["slug"] = clean_slug(str(data.get("slug", "") or ""), name)
        except InvalidField as error:
            errors.append(error)

    kind = str(data.get("kind", ""))
    if kind not in {k.value for k in OrganisationKind}:
        errors.append(InvalidField("kind", N_("Choose the kind of organisation.")))
    cleaned["kind"] = kind

    description = str(data.get("description", "")).strip()
    if len(description) > 10_000:
        errors.append(InvalidField("description", N_("At most %(max)d characters."), max=10_000))
    cleaned["description"] = description

    territory = str(data.get("territory", "")).strip()
    if territory and parse_territory(territory) is None:
        errors.append(InvalidField("territory", N_("Choose a region or department from the list.")))
    cleaned["territory"] = territory

    for field, clean in (("website", clean_website), ("siret", clean_siret)):
        try:
            cleaned[field] = clean(str(data.get(field, "") or ""))
        except InvalidField as error:
            errors.append(error)

    if errors:
        raise InvalidFields(errors)
    return cleaned
