"""Our actors checked by fediverse-pasture, an interoperability checker we did not write.

A real Terreau server (``terreau serve`` on a loopback port, with the demo catalogue) and the
pasture's own servers run side by side on 127.0.0.1:

- ``verify_actor`` fetches our commons actor as six test actors do, posts to its inbox as
  each of them, and checks WebFinger. alice and dean post unsigned: a correct inbox refuses
  them. claire and frank serve their keys only to signed fetches: our key fetches must sign.
- ``one_actor`` plus ``send`` deliver a Note to our commons' inbox.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from live import LOOPBACK, LiveInstance, free_port, live_instance

FEDERATING = {"federation": {"allow_private_addresses": True, "allow_http": True}}

VERIFY_ACTOR = """
import sys, uvicorn
from fediverse_pasture.verify_actor import build_app
port = int(sys.argv[1])
app = build_app(False, f"127.0.0.1:{port}", False, 10)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""

ONE_ACTOR = """
import sys, uvicorn
from fediverse_pasture.data_provider import DataProvider
from fediverse_pasture.server.one_actor_app import app_for_data_provider
port = int(sys.argv[1])
app = app_for_data_provider(DataProvider.generate_and_load(False))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


@contextmanager
def pasture_server(script: str, directory: Path) -> Iterator[str]:
    """Run one of the pasture's servers on a loopback port (its keys land in ``directory``)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / "pasture.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-c", script, str(port)],
            cwd=directory,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                pytest.fail(f"the pasture server died:\n{log.read_text()[-3000:]}")
            try:
                with socket.create_connection((LOOPBACK, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the pasture server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def terreau(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveInstance]:
    directory = tmp_path_factory.mktemp("terreau")
    with live_instance(directory, settings=FEDERATING) as instance:
        instance.terreau("demo")
        yield instance


def test_verify_actor_finds_our_commons_actor_correct(
    terreau: LiveInstance, tmp_path: Path
) -> None:
    actor_uri = f"{terreau.base_url}/commons/yeswiki"
    with pasture_server(VERIFY_ACTOR, tmp_path / "verify") as pasture:
        response = httpx.get(
            pasture + "/",
            params={"actor_uri": actor_uri},
            headers={"accept": "application/json"},
            timeout=60,
            trust_env=False,
        )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    messages = response.json()["messages"]
    for name in ("alice", "bob", "claire", "dean", "emily", "frank"):
        assert result[name]["get_actor"], (name, messages)
    for name in ("bob", "claire", "emily", "frank"):
        assert result[name]["post_inbox"], (name, messages)
    for unsigned in ("alice", "dean"):
        assert not result[unsigned]["post_inbox"], (unsigned, messages)
    assert result["webfinger"], messages


def test_a_note_sent_by_the_pasture_reaches_our_inbox(
    terreau: LiveInstance, tmp_path: Path
) -> None:
    port = terreau.base_url.rsplit(":", 1)[1]
    with pasture_server(ONE_ACTOR, tmp_path / "one") as pasture:
        sent = subprocess.run(
            [
                sys.executable,
                "-m",
                "fediverse_pasture.send",
                "--domain",
                pasture,
                "--text",
                "Bonjour les communs",
                f"acct:yeswiki@{LOOPBACK}:{port}",
            ],
            cwd=tmp_path / "one",
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    with sqlite3.connect(terreau.directory / "data" / "terreau.db") as database:
        stored = database.execute("SELECT type, body FROM inbox_item").fetchall()
    creates = [json.loads(body) for type_, body in stored if type_ == "Create"]
    assert creates, stored
    assert creates[0]["object"]["type"] == "Note"
    assert "Bonjour les communs" in creates[0]["object"]["content"]
