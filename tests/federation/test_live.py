"""Real instances, as operators run them (``terreau serve`` on loopback ports), federating.

Three servers: the tiers-lieux network (with the demo catalogue), a federation of CAEs and a
funder. The CAE follows one commons by its address, the funder follows the whole instance, and
each Follow goes through WebFinger, signatures, the queue and the in-process workers for real.

Then a worker is killed mid-run (SIGKILL, no chance to tidy up): nothing it had queued is lost,
and no inbox that had answered 2xx hears the same activity again.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from live import LOOPBACK, TERREAU, LiveInstance, free_port, live_instance

FEDERATING = {"federation": {"allow_private_addresses": True, "allow_http": True}}


def database(instance: LiveInstance) -> sqlite3.Connection:
    return sqlite3.connect(instance.directory / "data" / "terreau.db", timeout=10)


def wait_for(what: str, check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def follow_states(instance: LiveInstance) -> dict[str, str]:
    with database(instance) as db:
        return dict(db.execute("SELECT followed_uri, state FROM following").fetchall())


@pytest.fixture(scope="module")
def three_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LiveInstance]]:
    root = tmp_path_factory.mktemp("network")
    with (
        live_instance(root / "tiers-lieux", name="Tiers-Lieux", settings=FEDERATING) as network,
        live_instance(root / "cae", name="Fédération des CAE", settings=FEDERATING) as cae,
        live_instance(root / "funder", name="Financeur", settings=FEDERATING) as funder,
    ):
        network.terreau("demo")
        yield [network, cae, funder]


def test_instances_follow_a_commons_and_an_instance(three_instances: list[LiveInstance]) -> None:
    network, cae, funder = three_instances
    host = network.base_url.removeprefix("http://")
    asked = cae.terreau("follow", f"@yeswiki@{host}").stdout
    assert f"{network.base_url}/commons/yeswiki" in asked
    funder.terreau("follow", network.base_url)

    wait_for(
        "the CAE's follow to be accepted",
        lambda: follow_states(cae) == {f"{network.base_url}/commons/yeswiki": "accepted"},
    )
    wait_for(
        "the funder's follow to be accepted",
        lambda: follow_states(funder) == {f"{network.base_url}/actor": "accepted"},
    )
    with database(network) as db:
        followers = db.execute("SELECT actor_uri, follower_uri FROM follower").fetchall()
    assert sorted(followers) == sorted(
        [
            (f"{network.base_url}/commons/yeswiki", f"{cae.base_url}/actor"),
            (f"{network.base_url}/actor", f"{funder.base_url}/actor"),
        ]
    )


def test_a_wrong_address_is_a_clear_error(three_instances: list[LiveInstance]) -> None:
    _network, cae, _funder = three_instances
    with pytest.raises(subprocess.CalledProcessError) as failed:
        cae.terreau("follow", f"@nobody@{LOOPBACK}:{free_port()}")
    assert "Could not reach" in failed.value.stderr + failed.value.stdout
    assert "Traceback" not in failed.value.stderr


SINK = """
import asyncio, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
log = open(sys.argv[2], "a", buffering=1)
async def inbox(request):
    await request.body()
    await asyncio.sleep(0.3)
    log.write(request.url.path + "\\n")
    return Response(status_code=202)
app = Starlette(routes=[Route("/{name}/inbox", inbox, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def stored_time(moment: datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite: naive UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def queue_deliveries(instance: LiveInstance, sink: str, count: int) -> None:
    """One activity of the instance actor, queued for ``count`` inboxes (as publish would)."""
    actor = f"{instance.base_url}/actor"
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{instance.base_url}/activities/killed-worker",
        "type": "Update",
        "actor": actor,
        "object": actor,
    }
    now = stored_time(datetime.now(UTC))
    host = sink.removeprefix("http://")
    with database(instance) as db:
        cursor = db.execute(
            "INSERT INTO outbox_activity (uri, actor_uri, type, body, public, published_at) "
            "VALUES (?, ?, 'Update', ?, 1, ?)",
            (activity["id"], actor, json.dumps(activity), now),
        )
        rows = [
            (cursor.lastrowid, f"{sink}/peer-{n}/inbox", host, "new", 0, now, "", now)
            for n in range(count)
        ]
        db.executemany(
            "INSERT INTO delivery (activity_id, inbox, host, state, attempts, next_attempt_at, "
            "last_error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def delivery_states(instance: LiveInstance) -> dict[str, str]:
    with database(instance) as db:
        return dict(db.execute("SELECT inbox, state FROM delivery").fetchall())


def test_a_killed_worker_loses_nothing_and_repeats_no_sent_delivery(tmp_path: Path) -> None:
    # No worker in the server; four sends at a time to a slow sink, so the kill lands mid-run.
    quiet = {
        "federation": {**FEDERATING["federation"], "run_worker": False, "delivery_concurrency": 4}
    }
    received = tmp_path / "received.txt"
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port), str(received)])
    try:
        with live_instance(tmp_path / "sender", settings=quiet) as sender:
            queue_deliveries(sender, f"http://{LOOPBACK}:{port}", 40)
            worker = subprocess.Popen(
                [str(TERREAU), "--config", str(sender.config), "worker"],
                cwd=sender.directory,
                env=sender.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for(
                "some deliveries to be sent",
                lambda: list(delivery_states(sender).values()).count("sent") >= 5,
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            before = delivery_states(sender)
            sent_before = {inbox for inbox, state in before.items() if state == "sent"}
            assert 0 < len(sent_before) < 40  # killed mid-run
            # Time passes: the dead worker's leases run out (they last a minute at least).
            with database(sender) as db:
                past = stored_time(datetime.now(UTC) - timedelta(minutes=5))
                db.execute("UPDATE delivery SET locked_until = ? WHERE state = 'new'", (past,))
            sender.terreau("worker", "--once")
            after = delivery_states(sender)
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    assert set(after.values()) == {"sent"}  # nothing lost
    heard = received.read_text().split()
    counts = {path: heard.count(path) for path in set(heard)}
    assert len(counts) == 40
    for inbox in sent_before:  # a recorded 2xx is never sent again
        assert counts[inbox.removeprefix(f"http://{LOOPBACK}:{port}")] == 1
