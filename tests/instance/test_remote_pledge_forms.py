"""The pledge forms on the page of a remote commons' copy: one per open improvement, each whole.

The page lists every improvement of the copy with its own pledge form. Ids must not repeat (a
label's ``for`` finds only the first element with that id, so the second form's fields had no
label a screen reader or a browser test could use), and each form must have a name of its own
(it pointed at a "pledge-heading" that this page does not have).

Pledging leads back to the pledged improvement's card, which lists the pledges this instance's
organisations made to it (those of other instances are counted by the commons' origin), with
what the reader may do with each: members cancel, admins record a payment or a refund. A pledge
the commons refused after it was paid here is a refund due, which an admin records.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from sqlmodel import select
from starlette.testclient import TestClient
from support import log_in, post_form, sign_up

from catalogue import operations as ops
from catalogue.columns import utcnow
from catalogue.improvements import Improvement
from federation.models import OutboxActivity
from instance.accounts import create_admin
from instance.database import Database
from pledges import operations as pledge_ops
from pledges.models import Pledge, PledgeStatus

REMOTE = "https://b.example/commons/yeswiki"
COMMONS = {"slug": "yeswiki", "name": "YesWiki de B", "kind": "software", "maturity": "stable"}
PAGE = "/commons/yeswiki@b.example"
TITLES = ("Export PDF", "Accessibilité")


async def add_remote_with_two_open_improvements(database_url: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        commons = await ops.upsert_remote_commons(session, REMOTE, "b.example", COMMONS, [])
        for number, title in enumerate(TITLES, start=1):
            fields = {
                "title": title,
                "budget_cents": 400_000,
                "currency": "EUR",
                "status": "open",
                "origin_funded_cents": 0,
                "updated_at": datetime(2026, 11, 1, tzinfo=UTC),
            }
            await ops.upsert_remote_improvement(
                session, commons, f"{REMOTE}/improvements/{number}", "b.example", fields
            )
        await session.commit()
    await database.dispose()


async def test_each_pledge_form_has_its_own_ids_labels_and_name(
    client: TestClient, database_url: str
) -> None:
    await add_remote_with_two_open_improvements(database_url)
    sign_up(client, "camille@example.org")
    post_form(client, "/orgs/new", {"name": "Oxalis", "kind": "cae", "slug": "oxalis"})
    response = client.get(PAGE)
    assert response.status_code == 200
    page = response.text

    forms = re.findall(r'<form method="post" action="[^"]*/pledges/estimate"[^>]*>', page)
    assert len(forms) == 2
    ids = Counter(re.findall(r'\sid="([^"]+)"', page))
    assert [name for name, count in ids.items() if count > 1] == []
    for title in TITLES:
        assert f'aria-label="Pledge to {title}"' in page
    assert 'aria-labelledby="pledge-heading"' not in page  # no such heading on this page
    for target in re.findall(r'<label for="([^"]+)"', page):
        assert ids[target] == 1, f"label for {target!r} names no field"
    for described in re.findall(r'aria-describedby="([^"]+)"', page):
        for target in described.split():
            assert ids[target] == 1, f"{target!r} describes nothing"


async def add_remote_organisation_pledge(database_url: str, number: int, cents: int) -> None:
    """An organisation of c.example pledged ``cents`` to the copy's improvement ``number``."""
    database = Database(database_url)
    async with database.session() as session:
        organisation = await ops.upsert_remote_organisation(
            session,
            "https://c.example/orgs/tiers-lieu",
            "c.example",
            {"slug": "tiers-lieu", "name": "Tiers-Lieu de C", "kind": "association"},
        )
        query = select(Improvement).where(Improvement.uri == f"{REMOTE}/improvements/{number}")
        improvement = (await session.exec(query)).one()
        assert organisation.id is not None and improvement.id is not None
        session.add(
            Pledge(
                uri="https://c.example/pledges/7",
                origin="c.example",
                organisation_id=organisation.id,
                improvement_id=improvement.id,
                amount_cents=cents,
                currency="EUR",
            )
        )
        await session.commit()
    await database.dispose()


def card(page: str, number: int) -> str:
    """The improvement's card on the remote commons' page."""
    found = re.search(rf'<li class="card" id="improvement-{number}">(.*?)\n      </li>', page, re.S)
    assert found, f"no card for improvement {number}"
    return found.group(1)


async def test_a_pledge_leads_back_to_its_improvement_which_lists_it(
    client: TestClient, database_url: str
) -> None:
    await add_remote_with_two_open_improvements(database_url)
    await add_remote_organisation_pledge(database_url, 2, 12_300)
    sign_up(client, "camille@example.org")
    post_form(client, "/orgs/new", {"name": "Oxalis", "kind": "cae", "slug": "oxalis"})
    assert "Pledges made here" not in client.get(PAGE).text  # the remote pledge is not ours

    response = post_form(
        client,
        f"{PAGE}/improvements/2/pledges",
        {"organisation": "oxalis", "amount": "300"},
        page=PAGE,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{PAGE}#improvement-2"

    page = client.get(PAGE).text
    assert 'id="improvement-1"' in page and 'id="improvement-2"' in page
    pledged = card(page, 2)
    assert "Pledges made here" in pledged
    assert '<a href="/orgs/oxalis">Oxalis</a>: €300 · Pledged' in pledged
    assert "Tiers-Lieu de C" not in pledged and "€123" not in pledged
    assert "Pledges made here" not in card(page, 1)


async def make_admin(database_url: str, email: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        await create_admin(session, email, "correct horse battery")
    await database.dispose()


async def refuse(database_url: str, pledge_id: int) -> None:
    """What the commons' Reject does here (``federation.pledges_sync.on_rejected_pledge``)."""
    database = Database(database_url)
    async with database.session() as session:
        pledge = await session.get(Pledge, pledge_id)
        assert pledge is not None
        assert await pledge_ops.refuse_pledge(session, pledge, base_url="http://testserver")
    await database.dispose()


async def stored_pledge(database_url: str) -> tuple[Pledge, int]:
    """The one pledge made here, and how many activities are queued."""
    database = Database(database_url)
    async with database.session() as session:
        [pledge] = (await session.exec(select(Pledge))).all()
        queued = len((await session.exec(select(OutboxActivity))).all())
    await database.dispose()
    return pledge, queued


async def test_a_pledge_paid_then_refused_is_a_refund_due_that_an_admin_records(
    client: TestClient, other_client: Callable[[], TestClient], database_url: str
) -> None:
    await add_remote_with_two_open_improvements(database_url)
    sign_up(client, "camille@example.org")
    post_form(client, "/orgs/new", {"name": "Oxalis", "kind": "cae", "slug": "oxalis"})
    data = {"organisation": "oxalis", "amount": "300"}
    post_form(client, f"{PAGE}/improvements/2/pledges", data, page=PAGE)
    pledge, _queued = await stored_pledge(database_url)
    mine = card(client.get(PAGE).text, 2)
    assert f"/pledges/{pledge.id}/cancel" in mine  # a member cancels
    assert f"/pledges/{pledge.id}/payment" not in mine  # but records no payment

    await make_admin(database_url, "admin@example.org")
    admin = other_client()
    log_in(admin, "admin@example.org")
    listed = card(admin.get(PAGE).text, 2)
    assert (
        f"/pledges/{pledge.id}/payment" in listed and f"/pledges/{pledge.id}/cancel" not in listed
    )
    paid = post_form(
        admin,
        f"/pledges/{pledge.id}/payment",
        {"paid_on": utcnow().date().isoformat(), "method": "Virement", "reference": "VIR-7"},
    )
    assert paid.status_code == 303, paid.text
    assert f"/pledges/{pledge.id}/refund" in card(admin.get(PAGE).text, 2)

    await refuse(database_url, pledge.id or 0)
    due = "Oxalis</a>: €300 · Refused by the commons after it was paid: refund due"
    assert due in card(client.get(PAGE).text, 2)
    assert f"/pledges/{pledge.id}/refund" not in card(client.get(PAGE).text, 2)
    assert "Refused by the commons after it was paid: refund due" in client.get("/orgs/oxalis").text
    listed = card(admin.get(PAGE).text, 2)
    assert due in listed and f"/pledges/{pledge.id}/refund" in listed
    _before, queued = await stored_pledge(database_url)

    refunded = post_form(admin, f"/pledges/{pledge.id}/refund", {}, page=PAGE)
    assert refunded.status_code == 303 and refunded.headers["location"] == f"{PAGE}#improvement-2"
    after, queued_after = await stored_pledge(database_url)
    assert after.status == PledgeStatus.REFUNDED and after.paid_on is not None
    assert queued_after == queued  # the commons never held it: no Update to send
    listed = card(admin.get(PAGE).text, 2)
    assert "Oxalis</a>: €300 · Refunded" in listed and f"/pledges/{pledge.id}/refund" not in listed
    again = post_form(admin, f"/pledges/{pledge.id}/refund", {}, page=PAGE)
    assert again.status_code == 409 and "Only a paid pledge can be refunded." in again.text
