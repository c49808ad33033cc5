"""Pledges, matching programs, their matches and the append-only ledger, as stored."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Date, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_
from catalogue.federated import origin_field, uri_field


class PledgeStatus(StrEnum):
    PLEDGED = "pledged"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    # The commons' instance answered Reject (over budget, closed…): set only where the pledge
    # was made, never said in a Commitment. A refused pledge that was paid is a refund due.
    REFUSED = "refused"


PLEDGE_STATUS_LABELS = {
    PledgeStatus.PLEDGED: N_("Pledged"),
    PledgeStatus.PAID: N_("Paid"),
    PledgeStatus.CANCELLED: N_("Cancelled"),
    PledgeStatus.REFUNDED: N_("Refunded"),
    PledgeStatus.REFUSED: N_("Refused by the commons"),
}
# Pledges that count: for the funded amount and for matching.
LIVE_STATUSES = (PledgeStatus.PLEDGED, PledgeStatus.PAID)


def _fk(table: str, *, nullable: bool = False, index: bool = True) -> Column[int]:
    return Column(
        Integer,
        ForeignKey(f"{table}.id", ondelete="SET NULL" if nullable else "RESTRICT"),
        nullable=nullable,
        index=index,
    )


class Pledge(SQLModel, table=True):
    """Money an organisation promises to an improvement; never deleted, only cancelled."""

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    origin: str | None = origin_field()
    organisation_id: int = Field(sa_column=_fk("organisation"))
    improvement_id: int = Field(sa_column=_fk("improvement"))
    amount_cents: int
    currency: str = Field(default="EUR", max_length=3)
    status: str = Field(default=PledgeStatus.PLEDGED, max_length=16, index=True)
    pledged_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )
    created_by_id: int | None = Field(default=None, sa_column=_fk("account", nullable=True))
    paid_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    payment_method: str = Field(default="", max_length=50)
    payment_reference: str = Field(default="", max_length=200)
    payment_recorded_by_id: int | None = Field(
        default=None, sa_column=_fk("account", nullable=True, index=False)
    )
    changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )

    @property
    def refund_due(self) -> bool:
        """Paid, then refused by the commons: the money is to be given back."""
        return self.status == PledgeStatus.REFUSED and self.paid_on is not None

    @property
    def refundable(self) -> bool:
        """Its money may be recorded as given back: paid, or refused after it was paid."""
        return self.status == PledgeStatus.PAID or self.refund_due


class ProgramStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    CLOSED = "closed"


class MatchingProgram(SQLModel, table=True):
    """A funder's scheme ("dispositif"): its envelope, ratio, window, caps and eligibility."""

    __tablename__ = "matching_program"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    origin: str | None = origin_field()
    funder_id: int = Field(sa_column=_fk("organisation"))
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=10_000)
    ratio: str = Field(max_length=20)  # a decimal string ("1", "0.5"): read as an exact Fraction
    budget_cents: int
    currency: str = Field(default="EUR", max_length=3)
    per_contributor_cap_cents: int | None = None
    per_improvement_cap_cents: int | None = None
    min_pledge_cents: int | None = None
    starts_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    eligible_kinds: str = Field(default="", max_length=500)  # comma-separated; empty: any
    eligible_instances: str = Field(default="", max_length=2000)
    eligible_categories: str = Field(default="", max_length=500)
    eligible_improvements: str = Field(default="", max_length=5000)  # improvement ids
    priority: int = 0
    manual_approval: bool = False
    status: str = Field(default=ProgramStatus.DRAFT, max_length=16, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class ProgramApproval(SQLModel, table=True):
    """A funder's decision on a contributor, for programs that approve each one by hand."""

    __tablename__ = "program_approval"
    __table_args__ = (UniqueConstraint("program_id", "organisation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(sa_column=_fk("matching_program"))
    organisation_id: int = Field(sa_column=_fk("organisation"))
    status: str = Field(default=ApprovalStatus.PENDING, max_length=16)
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class Match(SQLModel, table=True):
    """The current match of one pledge by one program: the ledger's running total."""

    __table_args__ = (UniqueConstraint("program_id", "pledge_id"),)

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    program_id: int = Field(sa_column=_fk("matching_program"))
    pledge_id: int = Field(sa_column=_fk("pledge"))
    amount_cents: int


class RemoteMatch(SQLModel, table=True):
    """A match that a funder on another instance made of a pledge to one of our improvements.

    Its funder's instance computes it and says so; we only count it in the improvement's funded
    amount, so that every instance shows the same total. ``amount_cents`` 0 is a released match,
    kept so that a late, older version of it changes nothing (``changed_at`` orders versions).
    """

    __tablename__ = "remote_match"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = uri_field()
    origin: str = Field(max_length=255, index=True)
    pledge_id: int = Field(sa_column=_fk("pledge"))
    funder_uri: str = Field(max_length=2048)
    funder_name: str = Field(default="", max_length=200)
    program_uri: str = Field(max_length=2048)
    program_name: str = Field(default="", max_length=200)
    program_ratio: str = Field(default="", max_length=20)  # as MatchingProgram.ratio; "" unsaid
    amount_cents: int
    currency: str = Field(default="EUR", max_length=3)
    changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


class LedgerKind(StrEnum):
    CREATED = "created"
    ADJUSTED = "adjusted"
    RELEASED = "released"


class LedgerEntry(SQLModel, table=True):
    """One change to one match; never updated nor deleted, so every total can be replayed."""

    __tablename__ = "ledger_entry"

    id: int | None = Field(default=None, primary_key=True)
    program_id: int = Field(sa_column=_fk("matching_program"))
    pledge_id: int = Field(sa_column=_fk("pledge"))
    kind: str = Field(max_length=16)
    delta_cents: int  # signed
    amount_after_cents: int
    # The pledge or program change that caused the recomputation.
    cause: str = Field(default="", max_length=200)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LedgerHead(SQLModel, table=True):
    """One row that every money transaction updates first.

    Updating it takes the write lock on SQLite and a row lock on PostgreSQL before anything is
    read, so concurrent pledges are applied one after the other: caps and budgets hold exactly.
    """

    __tablename__ = "ledger_head"

    id: int = Field(default=1, primary_key=True)
    revision: int = 0
