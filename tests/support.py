"""What tests do the way a person or an operator would: settings, forms with their CSRF token;
and what they watch: the SQL an engine runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.testclient import TestClient

from instance.config import Settings

TEST_SECRET = "test-secret-" + "x" * 40


def make_settings(database_url: str, tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    data: dict[str, Any] = {
        "instance": {
            "base_url": "http://testserver",
            "secret_key": TEST_SECRET,
            "default_language": "en",
            "data_dir": str(tmp_path / "data"),
        },
        "database": {"url": database_url},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: TestClient, path: str = "/login") -> str:
    """The CSRF token a person would find in the page's form."""
    response = client.get(path)
    match = CSRF.search(response.text)
    assert match, f"no CSRF token in {path} ({response.status_code})"
    return match.group(1)


def post_form(client: TestClient, path: str, data: dict[str, str], page: str | None = None) -> Any:
    """Submit a form the way a browser does: token from the page, no redirect following."""
    token = csrf_token(client, page or path)
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)


def sign_up(
    client: TestClient, email: str, password: str = "correct horse battery", name: str = ""
) -> Any:
    response = post_form(
        client,
        "/signup",
        {"email": email, "password": password, "display_name": name or email.split("@")[0]},
    )
    assert response.status_code == 303, response.text
    return response


def log_in(client: TestClient, email: str, password: str = "correct horse battery") -> Any:
    return post_form(client, "/login", {"email": email, "password": password})


def log_out(client: TestClient) -> Any:
    return post_form(client, "/logout", {}, page="/")


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL the engine runs meanwhile, one entry a statement (its words on one line), and
    "COMMIT" for each commit: what tests that count round trips assert on."""
    run: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        run.append(" ".join(statement.split()))

    def committed(_conn: Any) -> None:
        run.append("COMMIT")

    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", executed)
    event.listen(sync_engine, "commit", committed)
    try:
        yield run
    finally:
        event.remove(sync_engine, "before_cursor_execute", executed)
        event.remove(sync_engine, "commit", committed)
