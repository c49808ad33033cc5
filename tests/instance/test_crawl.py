"""Every page the demo catalogue links to answers, for a visitor and for the admin.

A crawl from the home page, following each link within the instance: no page may fail (5xx)
and no link may lead nowhere (404). It catches what page-by-page tests miss: a template
branch that only some demo record reaches, a link built with the wrong slug.
"""

from __future__ import annotations

import re
from collections import deque
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


def crawl(client: TestClient) -> tuple[set[str], list[tuple[str, int, str]]]:
    """Pages visited, and (page, status, where its link was) for each that failed."""
    seen: set[str] = set()
    queue: deque[tuple[str, str]] = deque([("/", "(start)")])
    failed = []
    while queue and len(seen) < MOST_PAGES:
        path, found_on = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        if response.status_code >= 500 or response.status_code == 404:
            failed.append((path, response.status_code, found_on))
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        for href in HREF.findall(response.text):
            parts = urlsplit(urljoin(BASE + path, href.replace("&amp;", "&")))
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.netloc == "testserver" and not target.startswith(NOT_FOLLOWED):
                queue.append((target, path))
    return seen, failed


def test_every_page_a_visitor_can_reach_answers(demo_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        seen, failed = crawl(client)

    assert failed == []
    assert len(seen) > 150  # the catalogue, its commons, improvements, organisations, feeds
    assert any(page.startswith("/commons/yeswiki/improvements/") for page in seen)


def test_every_page_the_admin_can_reach_answers(demo_url: str, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(demo_url, tmp_path))) as client:
        assert log_in(client, DEMO_ADMIN_EMAIL, PASSWORD).status_code == 303
        seen, failed = crawl(client)

    assert failed == []
    assert {"/admin/people", "/admin/federation", "/commons/yeswiki/edit"} <= seen
