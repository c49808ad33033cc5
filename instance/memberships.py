"""Who acts for which organisation, and who may manage it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint, func
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.operations import check_slug_free
from catalogue.organisations import Organisation, validate_organisation
from instance.accounts import Account, find_by_email


class MemberRole(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("account_id", "organisation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    organisation_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("organisation.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    role: str = Field(default=MemberRole.MEMBER, max_length=16)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )


def organisation_uri(base_url: str, slug: str) -> str:
    """The organisation's permanent identifier: slugs never change once created."""
    return f"{base_url}/orgs/{slug}"


async def get_local_organisation(session: AsyncSession, slug: str) -> Organisation | None:
    query = select(Organisation).where(Organisation.slug == slug, Organisation.origin.is_(None))  # type: ignore[union-attr]
    return (await session.exec(query)).first()


async def membership_of(
    session: AsyncSession, account: Account | None, organisation: Organisation
) -> Membership | None:
    if account is None:
        return None
    query = select(Membership).where(
        Membership.account_id == account.id, Membership.organisation_id == organisation.id
    )
    return (await session.exec(query)).first()


async def can_manage(
    session: AsyncSession, account: Account | None, organisation: Organisation
) -> bool:
    """Organisation admins manage it; instance admins may step in; remote copies are read-only."""
    if account is None or not organisation.is_local:
        return False
    if account.is_admin:
        return True
    membership = await membership_of(session, account, organisation)
    return membership is not None and membership.role == MemberRole.ADMIN


async def create_organisation(
    session: AsyncSession, creator: Account, data: dict[str, Any], base_url: str
) -> Organisation:
    """A new local organisation whose creator is its first admin."""
    cleaned = validate_organisation(data, creating=True)
    await check_slug_free(session, cleaned["slug"], Organisation)
    organisation = Organisation(uri=organisation_uri(base_url, cleaned["slug"]), **cleaned)
    session.add(organisation)
    await session.flush()
    assert organisation.id is not None and creator.id is not None
    session.add(
        Membership(account_id=creator.id, organisation_id=organisation.id, role=MemberRole.ADMIN)
    )
    await session.commit()
    return organisation


async def update_organisation(
    session: AsyncSession, organisation: Organisation, data: dict[str, Any]
) -> Organisation:
    cleaned = validate_organisation(data, creating=False)
    for key, value in cleaned.items():
        setattr(organisation, key, value)
    organisation.updated_at = utcnow()
    session.add(organisation)
    await session.commit()
    return organisation


async def members(
    session: AsyncSession, organisation: Organisation
) -> list[tuple[Membership, Account]]:
    query = (
        select(Membership, Account)
        .join(Account, Account.id == Membership.account_id)  # type: ignore[arg-type]
        .where(Membership.organisation_id == organisation.id)
        .order_by(col(Account.display_name), col(Account.id))
    )
    return list((await session.exec(query)).all())


async def organisations_of(
    session: AsyncSession, account: Account
) -> list[tuple[Membership, Organisation]]:
    query = (
        select(Membership, Organisation)
        .join(Organisation, Organisation.id == Membership.organisation_id)  # type: ignore[arg-type]
        .where(Membership.account_id == account.id)
        .order_by(Organisation.name)
    )
    return list((await session.exec(query)).all())


async def add_member(
    session: AsyncSession, organisation: Organisation, email: str, role: str
) -> Membership:
    if role not in {r.value for r in MemberRole}:
        raise InvalidFields([InvalidField("role", N_("Choose admin or member."))])
    account = await find_by_email(session, email)
    if account is None:
        raise InvalidFields(
            [
                InvalidField(
                    "email", N_("No account uses this email address; ask them to sign up first.")
                )
            ]
        )
    if await membership_of(session, account, organisation) is not None:
        raise InvalidFields([InvalidField("email", N_("This person is already a member."))])
    assert account.id is not None and organisation.id is not None
    membership = Membership(account_id=account.id, organisation_id=organisation.id, role=role)
    session.add(membership)
    await session.commit()
    return membership


async def _admin_count(session: AsyncSession, organisation: Organisation) -> int:
    query = select(func.count()).where(
        Membership.organisation_id == organisation.id, Membership.role == MemberRole.ADMIN
    )
    return (await session.exec(query)).one()


class LastAdmin(Exception):
    """An organisation must keep at least one admin, or nobody could manage it."""


async def remove_member(
    session: AsyncSession, organisation: Organisation, membership: Membership
) -> None:
    if membership.role == MemberRole.ADMIN and await _admin_count(session, organisation) <= 1:
        raise LastAdmin
    await session.delete(membership)
    await session.commit()


async def set_member_role(
    session: AsyncSession, organisation: Organisation, membership: Membership, role: str
) -> None:
    if role not in {r.value for r in MemberRole}:
        raise InvalidFields([InvalidField("role", N_("Choose admin or member."))])
    if (
        membership.role == MemberRole.ADMIN
        and role != MemberRole.ADMIN
        and await _admin_count(session, organisation) <= 1
    ):
        raise LastAdmin
    membership.role = role
    session.add(membership)
    await session.commit()
