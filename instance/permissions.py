"""Who may do what in the catalogue: plain functions over the session, one rule each.

The domain (catalogue.operations) checks what is valid; these check who may act, so that the
web views, the API and later the command line ask the same questions the same way.

- Any member of a local organisation may propose a commons, maintained by their organisations.
- Members of a maintaining organisation edit the commons and manage its improvements.
- Instance moderators (and admins) may edit any local commons, hide it and merge duplicates.
- A member declares "we use it" or "we are interested" for their own organisations only.
- Admins, and those who edit a commons, record that a pledge to it was paid or refunded.
- Copies of remote commons (``origin`` set) are read-only here: only their origin changes them.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.commons import Commons, CommonsMaintainer
from catalogue.organisations import Organisation
from instance.accounts import Account
from instance.memberships import Membership


async def organisations_of(session: AsyncSession, account: Account | None) -> list[Organisation]:
    """The local organisations ``account`` belongs to, by name: those it may act for."""
    if account is None:
        return []
    query = (
        select(Organisation)
        .join(Membership, col(Membership.organisation_id) == col(Organisation.id))
        .where(Membership.account_id == account.id, col(Organisation.origin).is_(None))
        .order_by(col(Organisation.sort_key), col(Organisation.id))
    )
    return list((await session.exec(query)).all())


async def maintainer_ids(session: AsyncSession, commons: Commons) -> set[int]:
    query = select(CommonsMaintainer.organisation_id).where(
        CommonsMaintainer.commons_id == commons.id
    )
    return set((await session.exec(query)).all())


def can_moderate(account: Account | None, commons: Commons | None = None) -> bool:
    """Moderators and admins may edit, hide and merge any local commons."""
    if account is None or not account.is_moderator:
        return False
    return commons is None or commons.is_local


async def can_propose(session: AsyncSession, account: Account | None) -> bool:
    return bool(await organisations_of(session, account))


async def can_edit(session: AsyncSession, account: Account | None, commons: Commons) -> bool:
    """Edit the commons and manage its improvements: its maintainers' members, or moderators."""
    if account is None or not commons.is_local:
        return False
    if can_moderate(account, commons):
        return True
    mine = {organisation.id for organisation in await organisations_of(session, account)}
    return bool(mine & await maintainer_ids(session, commons))


async def can_record_payments(
    session: AsyncSession, account: Account | None, commons: Commons, *, editor: bool | None = None
) -> bool:
    """Record that a pledge to the commons was paid or refunded: admins, and those who edit
    the commons (nobody edits a remote commons' copy: there, admins only). ``editor``: what
    ``can_edit`` answered, for a caller that asked already."""
    if account is None:
        return False
    if account.is_admin:
        return True
    return await can_edit(session, account, commons) if editor is None else editor


async def can_declare_for(
    session: AsyncSession, account: Account | None, organisation: Organisation
) -> bool:
    """A member speaks for their own organisation, never for another one."""
    if account is None or not organisation.is_local:
        return False
    return any(org.id == organisation.id for org in await organisations_of(session, account))
