"""Who may record a pledge's payment or refund: one rule for every page that offers it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue import operations as ops
from catalogue.commons import Commons
from catalogue.organisations import Organisation
from instance.accounts import Account, InstanceRole
from instance.memberships import Membership
from instance.permissions import can_record_payments

BASE = "https://terreau.test"


async def member_of(session: AsyncSession, name: str, organisation: Organisation | None) -> Account:
    account = Account(email=f"{name}@example.org", display_name=name, password_hash="x")
    session.add(account)
    await session.commit()
    if organisation is not None:
        assert account.id is not None and organisation.id is not None
        session.add(Membership(account_id=account.id, organisation_id=organisation.id))
        await session.commit()
    return account


async def maintained_commons(session: AsyncSession) -> tuple[Commons, Organisation]:
    maintainer = Organisation(
        uri=f"{BASE}/orgs/atelier", slug="atelier", name="Atelier", sort_key="atelier", kind="cae"
    )
    session.add(maintainer)
    await session.commit()
    assert maintainer.id is not None
    data = {"name": "YesWiki", "slug": "yeswiki", "summary": "Un wiki", "kind": "software"}
    commons = await ops.create_commons(
        session, data, base_url=BASE, creator_id=None, maintainer_ids=[maintainer.id]
    )
    return commons, maintainer


async def test_admins_and_the_commons_editors_record_payments(session: AsyncSession) -> None:
    commons, maintainer = await maintained_commons(session)
    editor = await member_of(session, "editor", maintainer)
    outsider = await member_of(session, "outsider", None)
    admin = await member_of(session, "admin", None)
    admin.instance_role = InstanceRole.ADMIN
    moderator = await member_of(session, "moderator", None)
    moderator.instance_role = InstanceRole.MODERATOR

    assert await can_record_payments(session, editor, commons)
    assert await can_record_payments(session, admin, commons)
    assert await can_record_payments(session, moderator, commons)  # moderators edit any commons
    assert not await can_record_payments(session, outsider, commons)
    assert not await can_record_payments(session, None, commons)
    # A caller that already asked can_edit passes its answer on; admins need no such answer.
    assert not await can_record_payments(session, editor, commons, editor=False)
    assert await can_record_payments(session, outsider, commons, editor=True)
    assert await can_record_payments(session, admin, commons, editor=False)


async def test_on_a_remote_commons_copy_only_admins_record_payments(
    session: AsyncSession,
) -> None:
    commons, maintainer = await maintained_commons(session)
    editor = await member_of(session, "editor", maintainer)
    admin = await member_of(session, "admin", None)
    admin.instance_role = InstanceRole.ADMIN
    commons.origin = "https://ailleurs.example/commons/yeswiki"  # nobody edits a copy here

    assert not await can_record_payments(session, editor, commons)
    assert await can_record_payments(session, admin, commons)
