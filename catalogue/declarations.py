""" "We use it" and "we are interested": who uses what is the point of the catalogue.

Withdrawing keeps the row (``withdrawn_at`` set), so the history of a commons' users stays.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, text
from sqlmodel import Field, SQLModel

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.federated import origin_field, uri_field


class DeclarationKind(StrEnum):
    USES = "uses"
    INTERESTED = "interested"


class Declaration(SQLModel, table=True):
    __table_args__ = (
        # One active declaration of each kind per organisation and commons.
        Index(
            "uq_declaration_active",
            "organisation_id",
            "commons_id",
            "kind",
            unique=True,
            sqlite_where=text("withdrawn_at IS NULL"),
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
        Index("ix_declaration_commons_active", "commons_id", "kind", "withdrawn_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    origin: str | None = origin_field()
    organisation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    commons_id: int = Field(
        sa_column=Column(Integer, ForeignKey("commons.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(max_length=16)
    since: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    comment: str = Field(default="", max_length=2000)
    satisfaction: int | None = Field(default=None)
    created_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


def declaration_uri(base_url: str, organisation_slug: str) -> str:
    return f"{base_url}/orgs/{organisation_slug}/declarations/{uuid.uuid4().hex}"


def validate_declaration(
    kind: str, since: str, comment: str, satisfaction: str, *, today: date
) -> dict[str, object]:
    errors: list[InvalidField] = []
    if kind not in {k.value for k in DeclarationKind}:
        errors.append(InvalidField("kind", N_("Say whether you use it or are interested.")))
    cleaned: dict[str, object] = {"kind": kind, "comment": comment.strip()}
    if len(comment) > 2000:
        errors.append(InvalidField("comment", N_("At most %(max)d characters."), max=2000))
    cleaned["since"] = None
    cleaned["satisfaction"] = None
    if kind == DeclarationKind.USES:
        if since.strip():
            try:
                when = date.fromisoformat(since.strip())
            except ValueError:
                errors.append(InvalidField("since", N_("Give a date such as 2024-09-01.")))
            else:
                if when > today:
                    errors.append(InvalidField("since", N_("This date is in the future.")))
                cleaned["since"] = when
        if satisfaction.strip():
            if satisfaction.strip() not in {"1", "2", "3", "4", "5"}:
                errors.append(InvalidField("satisfaction", N_("Choose from 1 to 5.")))
            else:
                cleaned["satisfaction"] = int(satisfaction)
    if errors:
        raise InvalidFields(errors)
    return cleaned
