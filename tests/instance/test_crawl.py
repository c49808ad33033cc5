"""Every page the demo catalogue links to answers, for a visitor and for the admin, and
every form found on them takes hostile input without a 5xx.

A crawl from the home page, following each link within the instance: no page may fail (5xx)
and no link may lead nowhere (404). It catches what page-by-page tests miss: a template
branch that only some demo record reaches, a link built with the wrong slug. Then each form
the admin can see is posted with its fields mixed with hostile values (a licence of "12,5"
once made a library raise deep inside validation).
"""

from __future__ import annotations

import html
import random
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from starlette.testclient import TestClient
from support import log_in, make_settings

from instance.app import create_app
from instance.database import Database
from instance.demo import DEMO_ADMIN_EMAIL, load_demo

BASE = "http://testserver"
PASSWORD = "demo admin password"
HREF = re.compile(r'href="([^"#]*)')
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
FIELD = re.compile(r"<(?:input|textarea|select)\b([^>]*)>", re.I)
HOSTILE = ["", " ", "x" * 5000, "-1", "0", "1e309", "NaN", "\x00", "é\u202e<script>",
           "2026-02-30", "12,5", "../../etc", "%00", "💥", "99999999999999999999"]  # fmt: skip
TRIALS = 2  # per form
# Links that act rather than show (logging out), and files served as they are.
NOT_FOLLOWED = ("/logout", "/static/")
MOST_PAGES = 600


@pytest.fixture
async def demo_url(database_url: str) -> str:
    database = Database(database_url)
    try:
        async with database.session() as session:
            await load_demo(session, BASE, PASSWORD)
    finally:
        await database.dispose()
    return database_url


@dataclass
class Crawl:
    seen: set[str] = field(default_factory=set)
    failed: list[tuple[str, int, str]] = field(default_factory=list)  # page, status, linked from
    forms: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # action: page, names


def _attribute(name: str, tag: str) -> str | None:
    found = re.search(name + r'="([^"]*)"', tag)
    return html.unescape(found.group(1)) if found else None


def _post_forms(path: str, page: str, forms: dict[str, tuple[str, list[str]]]) -> None:
    for attributes, body in FORM.findall(page):
        action = _attribute("action", attributes) or path
        if (_attribute("method", attributes) or "get").lower() != "post":
            continue
        names = [n for tag in FIELD.findall(body) if (n := _attribute("name", tag))]
        forms.setdefault(urljoin(path, action), (path, names))


def crawl(client: TestClient) -> Crawl:
    """Pages visited, those that failed, and the forms that post."""
    found = Crawl()
    queue: deque[tuple[str, str]] = deque([("/", "(start)")])
    while queue and len(found.seen) < MOST_PAGES:
        path, linked_from = queue.popleft()
        if path in found.seen:
            continue
        found.seen.add(path)
        response = client.get(path)
        if response.status_code >= 500 or response.status_code == 404:
            found.failed.append((path, response.status_code, linked_from))
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        _post_forms(path, response.text, found.forms)
        for href in HREF.findall(response.text):
            parts = urlsplit(urljoin(BASE + path, href.replace("&amp;", "&")))
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.netloc == "testserver" and not target.startswith(NOT_FOLLOWED):
                queue.append((target, path))
    return found


def test_every_page_a_visitor_can_reach_answers(demo_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        found = crawl(client)

    assert found.failed == []
    assert len(found.seen) > 150  # the catalogue, its commons, improvements, organisations…
    assert any(page.startswith("/commons/yeswiki/improvements/") for page in found.seen)


def test_every_page_the_admin_can_reach_answers(demo_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        assert log_in(client, DEMO_ADMIN_EMAIL, PASSWORD).status_code == 303
        found = crawl(client)

    assert found.failed == []
    assert {"/admin/people", "/admin/federation", "/commons/yeswiki/edit"} <= found.seen


def test_every_form_the_admin_can_post_takes_hostile_input_without_a_5xx(
    demo_url: str, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    failed = []
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        assert log_in(client, DEMO_ADMIN_EMAIL, PASSWORD).status_code == 303
        forms = crawl(client).forms
        for action, (page, names) in sorted(forms.items()):
            if action.endswith("/logout"):
                continue
            for _ in range(TRIALS):
                token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
                data = {name: rng.choice(HOSTILE) for name in names if name != "csrf_token"}
                if token:
                    data["csrf_token"] = token.group(1)
                response = client.post(action, data=data, follow_redirects=False)
                if response.status_code >= 500:
                    failed.append((action, response.status_code, data))

    assert len(forms) > 100  # edit pages, improvements, pledges, programs, administration…
    assert failed == []


NUL_ADDRESSES = [
    "/commons?q=%00",
    "/commons?tag=%00&kind=%00&maturity=%00&territory=%00&sort=%00&page=%00",
    "/commons/%00",
    "/commons/yeswiki%00",
    "/commons/yeswiki/improvements/%00",
    "/commons/%00/feed.atom",
    "/orgs/%00",
    "/orgs/%00/programs",
    "/programs/%00",
    "/pledges/%00/receipt",
    "/activities/%00",
    "/media/logos/%00.png",
    "/.well-known/webfinger?resource=acct:%00@testserver",
    "/api/commons?q=%00",
    "/api/commons/%00",
]


def test_a_nul_character_in_an_address_gets_an_answer_not_a_5xx(
    demo_url: str, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL in text; an address may carry one (%00) all the same."""
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        assert log_in(client, DEMO_ADMIN_EMAIL, PASSWORD).status_code == 303
        answers = {address: client.get(address).status_code for address in NUL_ADDRESSES}

    assert {address: s for address, s in answers.items() if s >= 500} == {}
    assert answers["/commons/%00"] == answers["/commons?q=%00"] == 400


def test_the_nul_refusal_names_its_reason(demo_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        page = client.get("/commons/%00")
        data = client.get("/commons?q=%00", headers={"Accept": "application/json"})

    assert page.status_code == 400 and "NUL character" in page.text
    assert data.status_code == 400 and "NUL character" in data.json()["detail"]
