"""What every response gets: security headers, error pages, limits, probes, logs, languages."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from support import make_settings, post_form, sign_up

from instance.app import SESSION_COOKIE, create_app
from instance.observability import JSONFormatter
from instance.templating import make_environment

HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}


def test_pages_carry_security_headers(client: TestClient) -> None:
    headers = client.get("/").headers
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in headers  # plain http: no HSTS


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    for path in ("/", "/login", "/signup", "/orgs"):
        html = client.get(path).text
        assert "<script" not in html and "style=" not in html and "<style" not in html


def test_behind_https_cookies_are_secure_and_hsts_is_sent(database_url: str, tmp_path) -> None:
    settings = make_settings(
        database_url, tmp_path, instance={"base_url": "https://commons.example.org"}
    )
    with TestClient(create_app(settings), base_url="https://commons.example.org") as client:
        response = client.get("/login")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "secure" in cookie.lower() and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert response.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("path", ["/no-such-page", "/orgs/nobody"])
def test_not_found_is_html_for_people_and_json_for_programs(client: TestClient, path: str) -> None:
    page = client.get(path, headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text
    data = client.get(path, headers=JSON)
    assert data.status_code == 404
    assert data.json()["error"] == "Not Found"


def test_forbidden_is_html_or_json(client: TestClient, other_client) -> None:
    sign_up(client, "a@example.org")
    post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu"})
    other = other_client()
    sign_up(other, "b@example.org")
    page = other.get("/orgs/lieu/settings", headers=HTML)
    assert page.status_code == 403 and "<h1>Not allowed</h1>" in page.text
    data = other.get("/orgs/lieu/settings", headers=JSON)
    assert data.status_code == 403 and "admins" in data.json()["detail"]


def test_a_crash_gets_a_500_page_without_a_traceback(settings) -> None:
    app = create_app(settings)

    async def boom(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/boom", headers=HTML)
        assert page.status_code == 500
        assert "Something went wrong" in page.text and "secret internals" not in page.text
        data = client.get("/boom", headers=JSON)
        assert data.status_code == 500 and "secret internals" not in data.text
        assert data.json()["error"] == "Internal Server Error"


def test_an_oversized_body_gets_413(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, limits={"max_body_bytes": 2048})
    with TestClient(create_app(settings)) as client:
        response = client.post("/login", data={"email": "x" * 5000, "password": "y"}, headers=HTML)
        assert response.status_code == 413
        assert "larger than the 2048 bytes allowed" in response.text
        chunked = client.post(
            "/login",
            content=iter([b"e=" + b"x" * 1500, b"x" * 1500]),
            headers={"content-type": "application/x-www-form-urlencoded", **JSON},
        )
        assert chunked.status_code == 413


def test_malformed_json_gets_400(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post(
        "/login",
        content=b'{"email": ',
        headers={"content-type": "application/json", "x-csrf-token": token.group(1), **JSON},
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON")
    not_object = client.post(
        "/login",
        content=b"[1, 2]",
        headers={"content-type": "application/json", "x-csrf-token": token.group(1), **JSON},
    )
    assert not_object.status_code == 400


def test_json_forms_work_for_scripts(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signup").text)
    assert token
    response = client.post(
        "/signup",
        json={
            "email": "bot@example.org",
            "password": "correct horse battery",
            "display_name": "Bot",
        },
        headers={"x-csrf-token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303


def test_every_form_route_checks_the_csrf_token(client: TestClient) -> None:
    sign_up(client, "a@example.org")
    post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu"})
    membership = re.search(r"members/(\d+)/remove", client.get("/orgs/lieu/members").text)
    assert membership
    params = {
        "slug": "lieu",
        "membership": membership.group(1),
        "account": "1",
        "declaration": "1",
        "number": "1",
        "pledge": "1",
        "program": "1",
        "organisation": "lieu",
        "delivery": "1",
    }
    posts = [r for r in client.app.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    # Inboxes take activities from other servers, which carry an HTTP signature instead of a
    # form token; tests/federation/test_inbox.py shows they refuse anything unsigned.
    inboxes = [r for r in posts if r.path.endswith("inbox")]
    assert len(inboxes) == 4
    forms = [r for r in posts if r not in inboxes]
    assert len(forms) >= 10
    for route in forms:
        path = route.path.format(**params)
        response = client.post(path, data={"name": "x", "email": "x@example.org"}, headers=HTML)
        assert response.status_code == 403, route.path
        assert "security token" in response.text, route.path


def test_healthz_reports_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_metrics_count_requests_per_route(client: TestClient) -> None:
    client.get("/orgs/one")
    client.get("/orgs/two")
    text = client.get("/metrics").text
    assert 'terreau_http_requests_total{method="GET",route="/orgs/{slug}",status="404"} 2.0' in text
    assert "terreau_http_request_duration_seconds_bucket" in text


def test_each_request_is_logged(client: TestClient) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("terreau.access")
    logger.addHandler(handler)
    try:
        client.get("/orgs?kind=cae")
    finally:
        logger.removeHandler(handler)
    assert [r.fields["path"] for r in records] == ["/orgs"]  # type: ignore[attr-defined]
    line = json.loads(JSONFormatter().format(records[0]))
    assert line["method"] == "GET" and line["status"] == 200 and line["duration_ms"] >= 0


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord(
        "terreau.x", logging.ERROR, __file__, 1, "failed %s", ("twice",), None
    )
    line = json.loads(JSONFormatter().format(record))
    assert line["message"] == "failed twice" and line["level"] == "ERROR"
    assert line["time"].endswith("+00:00")


def test_the_browser_language_picks_french(client: TestClient) -> None:
    page = client.get("/login", headers={"accept-language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.text
    assert "Se connecter" in page.text
    english = client.get("/login", headers={"accept-language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text


def test_the_chosen_language_wins_and_follows_the_account(client: TestClient, other_client) -> None:
    sign_up(client, "a@example.org")
    response = post_form(client, "/lang", {"lang": "fr", "next": "/orgs"}, page="/")
    assert response.headers["location"] == "/orgs"
    page = client.get("/orgs", headers={"accept-language": "en"})
    assert '<html lang="fr">' in page.text
    laptop = other_client()  # a new session, on another device
    post_form(laptop, "/login", {"email": "a@example.org", "password": "correct horse battery"})
    assert '<html lang="fr">' in laptop.get("/", headers={"accept-language": "en"}).text


def test_the_language_switch_refuses_to_send_people_elsewhere(client: TestClient) -> None:
    response = post_form(client, "/lang", {"lang": "en", "next": "https://evil.example/"}, page="/")
    assert response.headers["location"] == "/"


def test_form_errors_are_in_the_readers_language(client: TestClient) -> None:
    client.headers["accept-language"] = "fr"
    response = post_form(
        client, "/signup", {"email": "nope", "password": "short", "display_name": ""}
    )
    assert response.status_code == 422
    assert "Give a valid email address." not in response.text
    assert "Use at least 10 characters." not in response.text


def test_times_are_shown_in_the_instance_time_zone(settings) -> None:
    from instance import i18n

    environment = make_environment(settings)
    i18n.activate("en")
    shown = environment.filters["local_time"](datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "short")
    assert shown.startswith("1/1/27")  # already New Year in Paris
    assert "12:30" in shown.replace("\u202f", " ")


GLUED_ATTRIBUTES = re.compile(r'<[^>]*="[^"<>]*"[a-zA-Z][^>]*>')


def test_form_fields_keep_their_attributes_apart(client: TestClient) -> None:
    """Jinja's trim_blocks once glued attributes (``value=""required``): browsers then read one
    unknown attribute and lost ``required`` and ``maxlength`` on every form."""
    pages = [client.get("/signup").text, client.get("/login").text]
    sign_up(client, "a@example.org")
    pages.append(client.get("/orgs/new").text)
    pages.append(post_form(client, "/orgs/new", {"name": "", "kind": "nonsense"}).text)
    pages.append(client.get("/commons/new").text)
    pages.append(post_form(client, "/commons/new", {"name": ""}).text)
    for html in pages:
        assert not GLUED_ATTRIBUTES.search(html), GLUED_ATTRIBUTES.search(html)
    assert re.search(r'<input id="f-name" name="name" type="text"\s+value="" required ', pages[3])
