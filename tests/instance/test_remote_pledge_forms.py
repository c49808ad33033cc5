"""The pledge forms on the page of a remote commons' copy: one per open improvement, each whole.

The page lists every improvement of the copy with its own pledge form. Ids must not repeat (a
label's ``for`` finds only the first element with that id, so the second form's fields had no
label a screen reader or a browser test could use), and each form must have a name of its own
(it pointed at a "pledge-heading" that this page does not have).

Pledging leads back to the pledged improvement's card, which lists the pledges this instance's
organisations made to it (those of other instances are counted by the commons' origin).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from sqlmodel import select
from starlette.testclient import TestClient
from support import post_form, sign_up

from catalogue import operations as ops
from catalogue.improvements import Improvement
from instance.database import Database
from pledges.models import Pledge

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
