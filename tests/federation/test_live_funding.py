"""Three real instances fund one improvement together, and every one shows the same figures.

Issue #6, end to end: each instance is ``terreau serve`` on a loopback port with its worker
running (``tests/live.py``), and people act through the pages with their own browser session
(an ``httpx.Client``: sign up, forms with their CSRF token).

- **A**, a tiers-lieux network, loads the demo catalogue (``terreau demo``, which announces its
  commons) and so holds the commons *Tong* with an open improvement;
- **B**, a federation of CAEs, and **C**, a funder, follow A (``terreau follow``) and read its
  commons and improvements back;
- on C, the funder's admin runs a program: one euro for one euro, at most 500 € per
  contributor, for contributors of A and B;
- on B, a cooperative says it uses Tong and pledges 700 € from the copy's page; on A, a
  tiers-lieu pledges 300 €;
- C matches both (500 € and 300 €) and publishes its matches; A counts them: the improvement is
  funded 1,800 € on A, and B's and C's copies say the same, as does the usage count of Tong;
- B's cooperative cancels its pledge from its page: C releases its 500 € and A's total drops
  to 600 € on all three.

Figures are read where a reader would read them: the JSON API of each instance and the
Article A serves to other servers; C's matches from its database.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from live import LiveInstance, live_instance

FEDERATING = {"federation": {"allow_private_addresses": True, "allow_http": True}}
#: How long federation may take to bring a change to every instance (a demo catalogue's
#: back-fill is the longest: 46 commons, read by two instances).
TIMEOUT = 40.0
COMMONS = "tong"  # a demo commons with one improvement open for funding (4 500 €)
PASSWORD = "un mot de passe assez long"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PARIS = ZoneInfo("Europe/Paris")  # the instances' time zone, as `terreau init` writes it


def host_of(instance: LiveInstance) -> str:
    return instance.base_url.removeprefix("http://")


def database(instance: LiveInstance) -> sqlite3.Connection:
    return sqlite3.connect(instance.directory / "data" / "terreau.db", timeout=10)


def wait_for(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class Person:
    """Someone with a browser session on one instance."""

    def __init__(self, instance: LiveInstance) -> None:
        self.client = httpx.Client(
            base_url=instance.base_url,
            timeout=10.0,
            trust_env=False,
            headers={"Accept-Language": "en"},  # the pages' words below are English
        )

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.text

    def submit(self, path: str, data: dict[str, Any], page: str | None = None) -> str:
        """Fill in the form at ``path`` found on ``page`` (``path`` itself by default) and
        send it; where it leads (every form here answers with a redirect)."""
        match = CSRF.search(self.page(page or path))
        assert match, f"no form on {page or path}"
        response = self.client.post(path, data={**data, "csrf_token": match.group(1)})
        assert response.status_code == 303, (path, response.status_code, response.text[:2000])
        return str(response.headers["location"])

    def join(self, email: str, name: str, organisation: str, kind: str) -> None:
        """Sign up, then create an organisation (its admin from then on)."""
        self.submit("/signup", {"email": email, "password": PASSWORD, "display_name": name})
        self.submit("/orgs/new", {"name": organisation, "kind": kind})

    def pledge(self, form_page: str, action: str, organisation: str, amount: str) -> str:
        """Pledge in two steps, as the page asks: the estimate, then Confirm."""
        match = CSRF.search(self.page(form_page))
        assert match and f'action="{action}/estimate"' in self.page(form_page)
        estimate = self.client.post(
            f"{action}/estimate",
            data={"organisation": organisation, "amount": amount, "csrf_token": match.group(1)},
        )
        assert estimate.status_code == 200, estimate.text[:2000]
        assert f'action="{action}"' in estimate.text
        confirmed = self.client.post(
            action,
            data={"organisation": organisation, "amount": amount, "csrf_token": match.group(1)},
        )
        assert confirmed.status_code == 303, confirmed.text[:2000]
        return estimate.text

    def close(self) -> None:
        self.client.close()


def api_items(instance: LiveInstance, path: str) -> list[dict[str, Any]]:
    """Every item of a paginated list of the JSON API."""
    found: list[dict[str, Any]] = []
    url: str | None = f"{path}?per_page=100"
    with httpx.Client(base_url=instance.base_url, timeout=10.0, trust_env=False) as client:
        while url:
            response = client.get(url)
            assert response.status_code == 200, (url, response.text[:500])
            body = response.json()
            found += body["items"]
            url = (body.get("links") or {}).get("next")
    return found


def improvement_of(instance: LiveInstance, uri: str) -> dict[str, Any] | None:
    """The improvement (or its copy) as ``instance``'s API shows it."""
    return next((i for i in api_items(instance, "/api/v1/improvements") if i["uri"] == uri), None)


def funded_on(instance: LiveInstance, uri: str) -> int | None:
    found = improvement_of(instance, uri)
    return None if found is None else int(found["funding"]["funded"]["cents"])


def uses_on(instance: LiveInstance, uri: str) -> int | None:
    commons = [c for c in api_items(instance, "/api/v1/commons") if c["uri"] == uri]
    return int(commons[0]["uses_count"]) if commons else None


def article_funded(network: LiveInstance, uri: str) -> int:
    """What A tells other servers, in the improvement's Article."""
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        response = client.get(uri, headers={"Accept": "application/activity+json"})
    assert response.status_code == 200
    return int(response.json()["fundedAmount"])


def figures(instances: list[LiveInstance], improvement: str, commons: str) -> list[tuple[Any, ...]]:
    """(funded, uses) on each instance, through its API."""
    return [(funded_on(i, improvement), uses_on(i, commons)) for i in instances]


def agree_on(
    instances: list[LiveInstance], improvement: str, commons: str, funded: int, uses: int
) -> bool:
    return figures(instances, improvement, commons) == [(funded, uses)] * len(instances)


def drained(instances: list[LiveInstance]) -> bool:
    """Nothing left to send or to apply on any instance (a held activity would wait for
    something that never came: none should)."""
    for instance in instances:
        with database(instance) as db:
            sending = db.execute("SELECT count(*) FROM delivery WHERE state = 'new'").fetchone()
            applying = db.execute(
                "SELECT count(*) FROM inbox_item WHERE state IN ('new', 'held')"
            ).fetchone()
        if sending[0] or applying[0]:
            return False
    return True


def c_matches(funder: LiveInstance) -> dict[str, int]:
    """Pledge id → what C's program matches of it now."""
    with database(funder) as db:
        rows = db.execute(
            "SELECT pledge.uri, match.amount_cents FROM match"
            " JOIN pledge ON pledge.id = match.pledge_id"
        ).fetchall()
    return dict(rows)


def local(moment: datetime) -> str:
    """A time as the program form's ``datetime-local`` fields take it."""
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[LiveInstance, LiveInstance, LiveInstance]]:
    """A with the demo catalogue; B and C following it, with its commons read back."""
    with (
        live_instance(tmp_path / "a", name="Réseau des tiers-lieux", settings=FEDERATING) as a,
        live_instance(tmp_path / "b", name="Fédération des CAE", settings=FEDERATING) as b,
        live_instance(tmp_path / "c", name="Fonds des communs", settings=FEDERATING) as c,
    ):
        a.terreau("demo", "--admin-password", PASSWORD)
        for follower in (b, c):
            follower.terreau("follow", a.base_url)
        yield a, b, c


def test_three_instances_agree_on_what_an_improvement_is_funded(
    network: tuple[LiveInstance, LiveInstance, LiveInstance],
) -> None:
    a, b, c = network
    everyone = [a, b, c]
    commons = f"{a.base_url}/commons/{COMMONS}"
    [ours] = [i for i in api_items(a, "/api/v1/improvements") if i["commons"]["uri"] == commons]
    improvement, number = ours["uri"], ours["number"]
    assert ours["status"] == "open" and ours["funding"]["funded"]["cents"] == 0
    uses = uses_on(a, commons)
    assert uses is not None
    # The demo's commons were announced: both followers read Tong and its improvement back.
    wait_for(
        "B and C to hold A's improvement", lambda: agree_on(everyone, improvement, commons, 0, uses)
    )

    people = []
    try:
        # C: the funder's admin opens a program for contributors of A and B.
        fanny = Person(c)
        people.append(fanny)
        fanny.join("fanny@fonds.example", "Fanny", "Fonds des communs", "funder")
        now = datetime.now(UTC)
        program = fanny.submit(
            "/programs/new?funder=fonds-des-communs",
            {
                "name": "Un euro pour un euro",
                "ratio": "1",
                "budget": "20000",
                "per_contributor_cap": "500",
                "starts": local(now - timedelta(days=1)),
                "ends": local(now + timedelta(days=30)),
                "eligible_instances": f"{host_of(a)}, {host_of(b)}",
            },
        )
        fanny.submit(f"{program}/status", {"status": "active"}, page=program)

        # B: a cooperative says it uses Tong, and pledges 700 € from the copy's page.
        camille = Person(b)
        people.append(camille)
        camille.join("camille@oxalis.example", "Camille", "Oxalis", "cae")
        copy_page = f"/commons/{COMMONS}@{host_of(a)}"
        camille.submit(
            f"{copy_page}/declarations",
            {"organisation": "oxalis", "kind": "uses", "since": "2024-09-01", "satisfaction": "4"},
            page=copy_page,
        )
        [action] = re.findall(
            rf'action="({re.escape(copy_page)}/improvements/\d+/pledges)/estimate"',
            camille.page(copy_page),
        )
        camille.pledge(copy_page, action, "oxalis", "700")

        # A: a tiers-lieu of the network pledges 300 € from the improvement's page.
        lucie = Person(a)
        people.append(lucie)
        lucie.join("lucie@port.example", "Lucie", "Le Tiers-Lieu du Port", "tiers-lieu")
        page = f"/commons/{COMMONS}/improvements/{number}"
        lucie.pledge(page, f"{page}/pledges", "le-tiers-lieu-du-port", "300")

        # 700 + 300 pledged, 500 (B's, capped) + 300 matched by C: 1 800 € everywhere.
        wait_for(
            "every instance to count 1 800 € and one more user",
            lambda: agree_on(everyone, improvement, commons, 180_000, uses + 1),
        )
        wait_for("the queues to empty", lambda: drained(everyone))
        assert agree_on(everyone, improvement, commons, 180_000, uses + 1)
        assert article_funded(a, improvement) == 180_000
        on_a = improvement_of(a, improvement)
        assert on_a is not None
        assert on_a["funding"]["pledged"]["cents"] == 100_000
        assert on_a["funding"]["matched"]["cents"] == 80_000
        pledged = {uri.rsplit("/", 2)[0]: cents for uri, cents in c_matches(c).items()}
        assert pledged == {b.base_url: 50_000, a.base_url: 30_000}
        assert "Oxalis" in lucie.page(page) and f"from {host_of(b)}" in lucie.page(page)

        # B: the cooperative cancels its pledge from its own page; C releases its match.
        oxalis = camille.page("/orgs/oxalis")
        assert f'href="{copy_page}"' in oxalis  # its pledge, on the copy of A's commons
        [cancel] = re.findall(r'action="(/pledges/\d+/cancel)"', oxalis)
        camille.submit(cancel, {}, page="/orgs/oxalis")
        wait_for(
            "every instance to count 600 €",
            lambda: agree_on(everyone, improvement, commons, 60_000, uses + 1),
        )
        wait_for("the queues to empty", lambda: drained(everyone))
        assert agree_on(everyone, improvement, commons, 60_000, uses + 1)
        assert article_funded(a, improvement) == 60_000
        pledged = {uri.rsplit("/", 2)[0]: cents for uri, cents in c_matches(c).items()}
        assert pledged == {a.base_url: 30_000}
        assert 'action="/pledges/' not in camille.page("/orgs/oxalis")  # nothing to cancel
    finally:
        for person in people:
            person.close()
