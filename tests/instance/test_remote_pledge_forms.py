"""The pledge forms on the page of a remote commons' copy: one per open improvement, each whole.

The page lists every improvement of the copy with its own pledge form. Ids must not repeat (a
label's ``for`` finds only the first element with that id, so the second form's fields had no
label a screen reader or a browser test could use), and each form must have a name of its own
(it pointed at a "pledge-heading" that this page does not have).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from starlette.testclient import TestClient
from support import post_form, sign_up

from catalogue import operations as ops
from instance.database import Database

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
