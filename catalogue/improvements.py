"""Improvements a commons needs, each with a budget in integer cents, and their life cycle."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Date, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.federated import origin_field, uri_field
from catalogue.money import parse_amount
from catalogue.payment_links import PaymentLink, parse_payment_links, payment_links_field
from catalogue.text import render_markdown


class ImprovementStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    FUNDED = "funded"
    IN_PROGRESS = "in-progress"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


STATUS_LABELS: dict[ImprovementStatus, str] = {
    ImprovementStatus.DRAFT: N_("Draft"),
    ImprovementStatus.OPEN: N_("Open for funding"),
    ImprovementStatus.FUNDED: N_("Funded"),
    ImprovementStatus.IN_PROGRESS: N_("In progress"),
    ImprovementStatus.DELIVERED: N_("Delivered"),
    ImprovementStatus.CANCELLED: N_("Cancelled"),
}

# draft → open for funding → funded → in progress → delivered; any unfinished step → cancelled.
TRANSITIONS: dict[ImprovementStatus, frozenset[ImprovementStatus]] = {
    ImprovementStatus.DRAFT: frozenset({ImprovementStatus.OPEN, ImprovementStatus.CANCELLED}),
    ImprovementStatus.OPEN: frozenset(
        {ImprovementStatus.DRAFT, ImprovementStatus.FUNDED, ImprovementStatus.CANCELLED}
    ),
    ImprovementStatus.FUNDED: frozenset(
        {ImprovementStatus.IN_PROGRESS, ImprovementStatus.CANCELLED}
    ),
    ImprovementStatus.IN_PROGRESS: frozenset(
        {ImprovementStatus.DELIVERED, ImprovementStatus.CANCELLED}
    ),
    ImprovementStatus.DELIVERED: frozenset(),
    ImprovementStatus.CANCELLED: frozenset(),
}


class Improvement(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("commons_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    origin: str | None = origin_field()
    commons_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("commons.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    number: int  # 1, 2, 3… within its commons: /commons/<slug>/improvements/<number>
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=20_000)
    description_html: str = Field(default="", max_length=100_000)
    budget_cents: int
    currency: str = Field(default="EUR", max_length=3)
    provider_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="SET NULL"), nullable=True
        ),
    )
    deadline: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    status: str = Field(default=ImprovementStatus.DRAFT, max_length=16, index=True)
    allow_overfunding: bool = Field(default=False)
    # A copy from another instance: the funded amount (cents) its origin last reported, since
    # its pledges and matches are counted there. None for a local improvement, counted here.
    origin_funded_cents: int | None = Field(default=None)
    # Where to pay towards it (catalogue/payment_links.py); sent as FEP-0ea0 attachments.
    payment_links: tuple[PaymentLink, ...] = payment_links_field()
    created_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class Milestone(SQLModel, table=True):
    """A deliverable of an improvement, with its share of the budget."""

    id: int | None = Field(default=None, primary_key=True)
    improvement_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("improvement.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    position: int
    title: str = Field(max_length=200)
    amount_cents: int


MAX_BUDGET_CENTS = 100_000_000_00  # 100 million: beyond it, a typo is likelier than a budget


def parse_milestones(text: str) -> list[tuple[str, int]]:
    """One milestone per line, "title: amount" ("Export PDF: 1200"); raises InvalidField."""
    milestones: list[tuple[str, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        title, separator, amount = line.rpartition(":")
        if not separator or not title.strip():
            raise InvalidField(
                "milestones",
                N_("Line %(line)d: write a title, a colon and an amount (Export PDF: 1200)."),
                line=number,
            )
        try:
            cents = parse_amount(amount)
        except ValueError:
            raise InvalidField(
                "milestones", N_("Line %(line)d: the amount is not a number."), line=number
            ) from None
        milestones.append((title.strip()[:200], cents))
    return milestones


def validate_improvement(data: dict[str, Any]) -> dict[str, Any]:
    """Cleaned values plus ``milestones`` [(title, cents)], or InvalidFields naming each field.

    ``payment_links`` is cleaned (and so changed) only when ``data`` names it.
    """
    errors: list[InvalidField] = []
    cleaned: dict[str, Any] = {}

    title = str(data.get("title", "") or "").strip()
    if not title:
        errors.append(InvalidField("title", N_("Give the improvement a title.")))
    elif len(title) > 200:
        errors.append(InvalidField("title", N_("At most %(max)d characters."), max=200))
    cleaned["title"] = title

    description = str(data.get("description", "") or "").strip()
    if len(description) > 20_000:
        errors.append(InvalidField("description", N_("At most %(max)d characters."), max=20_000))
    cleaned["description"] = description
    cleaned["description_html"] = render_markdown(description)

    budget = str(data.get("budget", "") or "").strip()
    cleaned["budget_cents"] = 0
    try:
        cents = parse_amount(budget)
    except ValueError:
        errors.append(
            InvalidField(
                "budget", N_("Give the budget as a positive amount, such as 4000 or 4000.50.")
            )
        )
    else:
        if cents <= 0:
            errors.append(InvalidField("budget", N_("The budget must be more than zero.")))
        elif cents > MAX_BUDGET_CENTS:
            errors.append(InvalidField("budget", N_("This budget is larger than allowed.")))
        cleaned["budget_cents"] = cents

    deadline = str(data.get("deadline", "") or "").strip()
    cleaned["deadline"] = None
    if deadline:
        try:
            cleaned["deadline"] = date.fromisoformat(deadline)
        except ValueError:
            errors.append(InvalidField("deadline", N_("Give a date such as 2027-03-31.")))

    cleaned["allow_overfunding"] = str(data.get("allow_overfunding", "")).lower() in {
        "1", "true", "on", "yes",
    }  # fmt: skip

    try:
        milestones = parse_milestones(str(data.get("milestones", "") or ""))
    except InvalidField as error:
        errors.append(error)
        milestones = []
    if (
        milestones
        and cleaned["budget_cents"]
        and (sum(cents for _title, cents in milestones) > cleaned["budget_cents"])
    ):
        errors.append(
            InvalidField("milestones", N_("The milestones add up to more than the budget."))
        )
    cleaned["milestones"] = milestones

    if "payment_links" in data:
        try:
            cleaned["payment_links"] = parse_payment_links(str(data["payment_links"] or ""))
        except InvalidField as error:
            errors.append(error)

    if errors:
        raise InvalidFields(errors)
    return cleaned


def check_transition(current: str, target: str) -> None:
    allowed = TRANSITIONS.get(ImprovementStatus(current), frozenset())
    if target not in {status.value for status in allowed}:
        raise InvalidField(
            "status",
            N_("An improvement cannot go from %(current)s to %(target)s."),
            current=current,
            target=target,
        )
