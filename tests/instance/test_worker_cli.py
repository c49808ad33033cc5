"""``terreau worker``, run as an operator would: drains the queue of a real database into a real
inbox on 127.0.0.1, stops on SIGTERM, and says plainly what is wrong when it cannot start."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from live import LOOPBACK, TERREAU, free_port
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from catalogue.columns import utcnow
from federation.context import FederationConfig
from federation.keys import key_for, main_key_id
from federation.models import Delivery, DeliveryState
from federation.outbox import publish
from federation.signatures import verify_request
from instance.cli import app
from instance.database import Database

BASE_URL = "http://127.0.0.1:8000"  # what `terreau init` writes by default
ACTOR = f"{BASE_URL}/actor"


@dataclass
class Sink:
    """A real inbox on a loopback port, in a thread of its own: stores each POST, answers 202."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def inbox(request: Request) -> Response:
            body = await request.body()
            self.received.append((str(request.url), dict(request.headers), body))
            return Response(status_code=202)

        return Starlette(routes=[Route("/inbox", inbox, methods=["POST"])])


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    port = free_port()
    config = uvicorn.Config(
        found.app(), host=LOOPBACK, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the sink did not start"
        time.sleep(0.02)
    found.url = f"http://{LOOPBACK}:{port}/inbox"
    yield found
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    monkeypatch.delenv("TERREAU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    terreau = logging.getLogger("terreau")
    kept = (terreau.handlers[:], terreau.level, terreau.propagate)
    yield CliRunner()
    # The command set up logging to the runner's stderr, which is closed now.
    terreau.handlers[:], terreau.level, terreau.propagate = kept


def make_config(runner: CliRunner, tmp_path: Path, database_url: str, **federation: Any) -> Path:
    """``terreau init`` for this database, then ``[federation]`` keys changed as an operator
    would edit them (loopback peers over http need the two permissions)."""
    config = tmp_path / "instance.toml"
    result = runner.invoke(app, ["--config", str(config), "init", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    values = {"allow_private_addresses": True, "allow_http": True, **federation}
    text = config.read_text(encoding="utf-8")
    head = text.index("[federation]\n")
    end = text.find("\n[", head)
    section = text[head:end]
    for key, value in values.items():
        section, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", section)
        assert count == 1, key
    config.write_text(text[:head] + section + text[end:], encoding="utf-8")
    return config


async def _queue(database_url: str, inboxes: list[str], activities: int) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            for number in range(activities):
                activity = {"id": f"{BASE_URL}/activities/{number}", "type": "Announce"}
                activity["actor"] = ACTOR
                await publish(session, FederationConfig(base_url=BASE_URL), activity, inboxes)
            await session.commit()
    finally:
        await database.dispose()


async def _states(database_url: str) -> list[str]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return [d.state for d in (await session.exec(select(Delivery))).all()]
    finally:
        await database.dispose()


async def _verify(database_url: str, url: str, headers: dict[str, str], body: bytes) -> str:
    """Who signed the request, checked against the actor's public key in the database."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            key = await key_for(session, ACTOR)
    finally:
        await database.dispose()

    async def lookup(key_id: str, refresh: bool) -> tuple[str, str] | None:
        return (key.rsa_public_pem, ACTOR) if key_id == main_key_id(ACTOR) else None

    signed = await verify_request(
        "POST", url, headers, body, lookup, now=utcnow(), window_seconds=300
    )
    return signed.controller


def test_worker_once_drains_the_queue_with_signed_posts(
    runner: CliRunner, tmp_path: Path, database_url: str, sink: Sink
) -> None:
    config = make_config(runner, tmp_path, database_url)
    asyncio.run(_queue(database_url, [sink.url], activities=3))

    result = runner.invoke(app, ["--config", str(config), "worker", "--once"])

    assert result.exit_code == 0, result.output
    assert "Handled 3 row(s)." in result.output
    assert len(sink.received) == 3
    assert asyncio.run(_states(database_url)) == [DeliveryState.SENT] * 3
    url, headers, body = sink.received[0]
    assert asyncio.run(_verify(database_url, url, headers, body)) == ACTOR
    again = runner.invoke(app, ["--config", str(config), "worker", "--once"])
    assert "Handled 0 row(s)." in again.output and len(sink.received) == 3


def test_worker_runs_until_sigterm(
    runner: CliRunner, tmp_path: Path, database_url: str, sink: Sink
) -> None:
    """The long-running command, as a process: it sends, idles, and stops cleanly on SIGTERM."""
    config = make_config(runner, tmp_path, database_url)
    asyncio.run(_queue(database_url, [sink.url], activities=1))
    log = tmp_path / "worker.log"
    # No TERREAU_* from the test's environment: they would override the settings file.
    env = {key: value for key, value in os.environ.items() if not key.startswith("TERREAU_")}
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [str(TERREAU), "--config", str(config), "worker"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not sink.received:
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"nothing delivered:\n{log.read_text()}"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert asyncio.run(_states(database_url)) == [DeliveryState.SENT]


def test_worker_refuses_an_unmigrated_database(
    runner: CliRunner, tmp_path: Path, empty_database_url: str
) -> None:
    config = make_config(runner, tmp_path, empty_database_url)
    result = runner.invoke(app, ["--config", str(config), "worker", "--once"])
    assert result.exit_code == 1
    assert "Run `terreau migrate` first." in result.output
    assert "Traceback" not in result.output


def test_worker_names_the_bad_setting(runner: CliRunner, tmp_path: Path) -> None:
    config = make_config(runner, tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    text = config.read_text().replace("delivery_concurrency = 16", "delivery_concurrency = 0")
    config.write_text(text)
    result = runner.invoke(app, ["--config", str(config), "worker"])
    assert result.exit_code == 2
    assert "[federation] delivery_concurrency" in result.output
    assert "Traceback" not in result.output


def test_worker_says_when_federation_is_off(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    config = make_config(runner, tmp_path, url, enabled=False)
    result = runner.invoke(app, ["--config", str(config), "worker", "--once"])
    assert result.exit_code == 2
    assert "Federation is turned off" in result.output


def test_worker_has_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    assert "--once" in result.output and "SIGTERM" in result.output
