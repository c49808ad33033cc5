"""How fast federation takes activities in and sends them out, on SQLite and PostgreSQL.

Two measures, each as a ratio to the same work done by the bare minimum on the same machine:

1. **Inbox throughput.** A real uvicorn server on 127.0.0.1 runs ``create_app(settings)`` on a
   throwaway database (federation with private addresses and plain HTTP allowed, its worker
   off, so only what the inbox does before its 202 is measured: signature check, storage). A
   second server, the *peer*, plays the remote sender: it serves ``/actor`` with a publicKey,
   which our instance fetches once (during the warm-up) and then reads from ``remote_actor``.
   The bench process (the client) pre-signs ``--activities`` distinct ``Create`` activities of
   a Note (about 1.5 kB) with ``federation.signatures.sign_request`` and POSTs them to
   ``/inbox`` over ``--concurrency`` keep-alive connections; every answer must be 202
   ``stored``. The same requests (same headers, same bodies, same client) go to ``POST /bare``
   on the peer: a plain Starlette endpoint that reads the body and parses its JSON, served by
   uvicorn with the same options. **Timed:** each pass, from the first POST to the last answer,
   after ``--warmup`` untimed activities to each side.

   Two clients, since the client must not be what is measured: ``httpx`` (one
   ``httpx.AsyncClient``, as the issue says; it spends 1.5-2 ms of CPU a request, so the bare
   endpoint's pass measures httpx rather than the server) and ``raw`` (the same bytes written
   over asyncio streams, about 0.05 ms a request). Printed for each: activities/s, requests/s
   and the ratio (target: at least 0.5). Then, client-independent: the server process's CPU
   time per request (user + system from ``/proc``, all its threads, and its event loop's
   thread alone); ``verify_request`` timed alone in the bench process over the same requests
   with the key in hand, and its share of the server's CPU time; ``receive`` called directly
   (no HTTP) on as many fresh activities, one after the other, with the SQL statements and
   commits it runs per activity. ``--profile`` runs the instance under cProfile (CPU time of
   its event loop, timed rounds only) and prints the top functions; ``--steps`` afterwards
   times each step of ``receive`` and of a delivery, one item at a time, by wrapping the
   federation functions by name (names a version lacks are skipped, and listed).

2. **Fan-out.** ``--followers`` ``follower`` rows of the instance actor, spread over
   ``--instances`` remote instances, each with a shared inbox on the peer (the sink, which
   answers 202 and counts). Each instance has its own loopback address (127.0.x.y, one port),
   so there are as many hosts, connections and ``known_instance`` rows as in real life;
   ``--one-host`` puts them all on 127.0.0.1 with one path each instead. ``publish`` queues one
   activity to ``follower_inboxes`` (one delivery per shared inbox, after dedup), then the real
   ``Worker`` in the bench process (``deliver_due`` until it finds nothing due, the delivery
   half of ``run_once``) sends them, signed. **Timed:** the drain, from the first claim to the
   last recorded answer (queueing is printed apart). Compared with a bare
   ``httpx.AsyncClient`` (the worker's connection limits) posting the same body unsigned to
   the same inboxes, ``delivery_concurrency`` at a time. Target: the worker takes at most
   twice as long. Checked after each round: every delivery row ``sent``, the sink got exactly
   one signed POST per instance from the worker and one unsigned per instance from the bare
   client. Also printed: the bench process's CPU time for both, the statements and commits
   per delivery, and ``sign_request`` alone.

Both are repeated ``--rounds`` times, alternating which side goes first, and the median is
kept. Client and servers are separate processes: the instance and the peer each run in a
uvicorn process of their own (uvloop and httptools when installed, ``proxy_headers`` on and
access log off, as ``terreau serve``); the bench process is the client and runs the worker.
Run on demand, never by the test suite::

    python bench/federation.py [--sqlite-only] [--postgres-url URL] [--activities 2000]
                               [--concurrency 8] [--followers 10000] [--instances 500]
"""

# ruff: noqa: E402, S603
# E402: the path fix below must run before the imports. S603: the servers are this very file
# run by this interpreter.

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/federation.py`, this file's folder comes first on sys.path and this
# file's name would hide the `federation` package: look in the project's root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import cProfile
import dataclasses
import functools
import io
import json
import os
import pstats
import select
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from bovine.crypto import generate_rsa_public_private_key
from sqlalchemy import event, func, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col
from sqlmodel import select as sql_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.databases import postgres_database, sqlite_database
from federation import delivery as delivery_module
from federation import inbox as inbox_module
from federation import worker as worker_module
from federation.activities import activity as make_activity
from federation.activities import instance_signer
from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.inbox import receive
from federation.inbox_store import InboxWriter
from federation.keys import Signer
from federation.media import ACTIVITY_JSON
from federation.models import Delivery, DeliveryState, Follower, InboxItem, OutboxActivity
from federation.outbox import compact_json, follower_inboxes, publish
from federation.service import Federation
from federation.signatures import sign_request, verify_request
from federation.worker import Worker
from instance.config import Settings
from instance.database import Database, create_engine, run_migrations
from instance.federating import federation_config, federation_for

ROOT = _BENCH.parent
LOOPBACK = "127.0.0.1"
POSTGRES_ENV = "TERREAU_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
INBOX_TARGET = 0.5  # Terreau's activities/s over the bare endpoint's requests/s, at least
FAN_OUT_TARGET = 2.0  # the worker's drain time over the bare client's, at most
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
CLIENT_TIMEOUT = 60.0
CHUNK = 5_000

# --------------------------------------------------------------------------- the servers
# They run in processes of their own: `python -c "… serve(kind, spec)"` (see `start_server`).


def bench_settings(database_url: str, data_dir: str, port: int) -> Settings:
    """The instance's settings: the bench process uses the same ones to run the worker."""
    return Settings.model_validate(
        {
            "instance": {
                "base_url": f"http://{LOOPBACK}:{port}",
                "secret_key": "bench-secret-" + "x" * 40,
                "default_language": "fr",
                "data_dir": data_dir,
            },
            "database": {"url": database_url},
            "federation": {
                "allow_private_addresses": True,
                "allow_http": True,
                "run_worker": False,
            },
            "logging": {"level": "WARNING"},
        }
    )


def actor_document(base: str, public_pem: str) -> dict[str, Any]:
    actor = f"{base}/actor"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor,
        "type": "Person",
        "preferredUsername": "sender",
        "name": "Bench sender",
        "inbox": f"{base}/sender/inbox",
        "outbox": f"{base}/sender/outbox",
        "followers": f"{base}/sender/followers",
        "endpoints": {"sharedInbox": f"{base}/shared/inbox"},
        "publicKey": {"id": f"{actor}#main-key", "owner": actor, "publicKeyPem": public_pem},
    }


def peer_app(actor: dict[str, Any]) -> Any:
    """The remote side: the sender's actor, the bare endpoint, and the inboxes' sink."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    received: dict[str, Any] = {"posts": 0, "signed": 0, "paths": set()}

    async def actor_view(_request: Request) -> Response:
        return JSONResponse(actor, media_type=ACTIVITY_JSON)

    async def bare(request: Request) -> Response:
        json.loads(await request.body())
        return JSONResponse({"status": "stored"}, 202)

    async def sink(request: Request) -> Response:
        await request.body()
        received["posts"] += 1
        received["signed"] += "signature" in request.headers
        received["paths"].add(f"{request.url.hostname}{request.url.path}")
        return Response(status_code=202)

    async def count(_request: Request) -> Response:
        paths = len(received["paths"])
        return JSONResponse(
            {"posts": received["posts"], "signed": received["signed"], "paths": paths}
        )

    async def reset(_request: Request) -> Response:
        received.update(posts=0, signed=0, paths=set())
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/actor", actor_view),
            Route("/bare", bare, methods=["POST"]),
            Route("/{instance}/inbox", sink, methods=["POST"]),
            Route("/count", count),
            Route("/reset", reset, methods=["POST"]),
        ]
    )


def _listen(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(kind: str, spec_json: str) -> None:
    """A child process's whole life: bind, say READY <port>, serve until SIGINT."""
    import uvicorn

    spec = json.loads(spec_json)
    first = _listen(LOOPBACK, 0)
    port = int(first.getsockname()[1])
    sockets = [first] + [_listen(address, port) for address in spec.get("addresses", [])]
    if kind == "terreau":
        from instance.app import create_app

        app = create_app(bench_settings(spec["database_url"], spec["data_dir"], port))
    else:
        app = peer_app(actor_document(f"http://{LOOPBACK}:{port}", spec["public_pem"]))
    config = uvicorn.Config(
        app, proxy_headers=True, access_log=False, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    # CPU time of the main thread (the event loop), not wall time: waits do not count.
    # SIGUSR1 turns it on and off, so that only the timed rounds are profiled.
    profiler = cProfile.Profile(time.thread_time) if spec.get("profile") else None
    if profiler is not None:
        profiling = [False]

        def toggle(_signal: int, _frame: Any) -> None:
            assert profiler is not None
            if profiling[0]:
                profiler.disable()
            else:
                profiler.enable()
            profiling[0] = not profiling[0]

        signal.signal(signal.SIGUSR1, toggle)
    print(f"READY {port}", flush=True)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:  # uvicorn raises the SIGINT again once it has shut down
        pass
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(spec["profile"])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def cpu_seconds(self, *, main_thread: bool = False) -> float:
        """User + system CPU time so far of the process (all its threads), or of its main
        thread only (the event loop; SQLite's work runs in aiosqlite's threads)."""
        pid = self.process.pid
        path = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
        try:
            fields = Path(path).read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT: after its graceful shutdown uvicorn raises the signal again, which SIGINT
            # turns into KeyboardInterrupt, so the profile (if any) is still written.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_server(kind: str, spec: dict[str, Any], log: Path) -> Server:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from bench.federation import serve; serve(sys.argv[2], sys.argv[3])"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("TERREAU_")}
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(ROOT), kind, json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith("READY "):
        process.kill()
        process.wait()
        raise RuntimeError(f"the {kind} server did not start:\n{_tail(log)}")
    server = Server(kind, process, int(line.split()[1]), log)
    _wait_until_up(server)
    return server


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    path = "/healthz" if server.name == "terreau" else "/count"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the {server.name} server does not answer:\n{_tail(server.log)}")


# --------------------------------------------------------------------------- databases


async def migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await run_migrations(engine)
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- 1. the inbox


@dataclass(frozen=True)
class Sender:
    actor: str
    signer: Signer
    public_pem: str


@dataclass(frozen=True)
class Signed:
    body: bytes
    headers: dict[str, str]


def create_note(sender: Sender, run: str, number: int) -> bytes:
    """A ``Create`` of a Note, about the size Mastodon sends (1-2 kB)."""
    base = sender.actor.removesuffix("/actor")
    note = f"{base}/notes/{run}-{number}"
    content = (
        f"<p>Note {number}: le tiers-lieu ouvre son atelier de réparation de vélos samedi, "
        "avec des outils partagés et un wiki pour garder les notices. Venez avec vos pièces, "
        'on apprend ensemble. <a href="https://example.org/tags/velo" class="mention '
        'hashtag" rel="tag">#<span>velo</span></a></p>'
    )
    activity = {
        "@context": ["https://www.w3.org/ns/activitystreams", {"Hashtag": "as:Hashtag"}],
        "id": f"{note}/activity",
        "type": "Create",
        "actor": sender.actor,
        "published": "2026-11-28T12:00:00Z",
        "to": [PUBLIC],
        "cc": [f"{base}/sender/followers"],
        "object": {
            "id": note,
            "type": "Note",
            "summary": None,
            "inReplyTo": None,
            "published": "2026-11-28T12:00:00Z",
            "url": f"{base}/@sender/{run}-{number}",
            "attributedTo": sender.actor,
            "to": [PUBLIC],
            "cc": [f"{base}/sender/followers"],
            "sensitive": False,
            "content": content,
            "contentMap": {"fr": content},
            "attachment": [],
            "tag": [{"type": "Hashtag", "href": "https://example.org/tags/velo", "name": "#velo"}],
        },
    }
    return json.dumps(activity, separators=(",", ":"), ensure_ascii=False).encode()


def sign_all(sender: Sender, inbox_url: str, run: str, count: int) -> list[Signed]:
    signed = []
    for number in range(count):
        body = create_note(sender, run, number)
        headers = {
            "Content-Type": ACTIVITY_JSON,
            "Accept": ACTIVITY_JSON,
            **sign_request("POST", inbox_url, body, sender.signer),
        }
        signed.append(Signed(body, headers))
    return signed


@dataclass
class Pass:
    """One timed pass of N requests: wall time, CPU time of the server and of this process."""

    seconds: float
    server_cpu: float
    client_cpu: float
    answers: Counter[str]
    server_loop_cpu: float = 0.0  # the server's main thread (its event loop) alone

    def rate(self, count: int) -> float:
        return count / self.seconds


async def _timed(server: Server, send: Any, answers: Counter[str]) -> Pass:
    cpu, loop_cpu = server.cpu_seconds(), server.cpu_seconds(main_thread=True)
    client_cpu = time.process_time()
    start = time.perf_counter()
    await send()
    seconds = time.perf_counter() - start
    return Pass(
        seconds,
        server.cpu_seconds() - cpu,
        time.process_time() - client_cpu,
        answers,
        server.cpu_seconds(main_thread=True) - loop_cpu,
    )


def _answer(status: int, body: bytes) -> str:
    stored = status == 202 and b'"stored"' in body
    return "stored" if stored else f"{status} {body[:120].decode(errors='replace')}"


async def httpx_pass(
    url: str, requests: Sequence[Signed], concurrency: int, server: Server
) -> Pass:
    """POST every request from one ``httpx.AsyncClient``, ``concurrency`` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    answers: Counter[str] = Counter()
    async with httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT) as client:
        pending = iter(requests)

        async def one_connection() -> None:
            for request in pending:  # shared: each request is taken by one connection
                response = await client.post(url, content=request.body, headers=request.headers)
                answers[_answer(response.status_code, response.content)] += 1

        async def send() -> None:
            await asyncio.gather(*(one_connection() for _ in range(concurrency)))

        return await _timed(server, send, answers)


def _raw_request(url: str, request: Signed) -> bytes:
    parts = httpx.URL(url)
    headers = {"Host": f"{parts.host}:{parts.port}", **request.headers}
    lines = [f"POST {parts.raw_path.decode()} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(request.body)}", "", ""]
    return "\r\n".join(lines).encode() + request.body


async def raw_pass(url: str, requests: Sequence[Signed], concurrency: int, server: Server) -> Pass:
    """The same requests, byte for byte, over ``concurrency`` keep-alive connections opened
    with asyncio streams: next to no client-side work, so that the server is what is timed."""
    encoded = [_raw_request(url, request) for request in requests]
    parts = httpx.URL(url)
    connections = [
        await asyncio.open_connection(parts.host, parts.port) for _ in range(concurrency)
    ]
    answers: Counter[str] = Counter()
    pending = iter(encoded)

    async def one_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for request in pending:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            answers[_answer(int(head[9:12]), body)] += 1

    async def send() -> None:
        await asyncio.gather(*(one_connection(*connection) for connection in connections))

    try:
        return await _timed(server, send, answers)
    finally:
        for _, writer in connections:
            writer.close()


CLIENTS = {"httpx": httpx_pass, "raw": raw_pass}


@dataclass
class Statements:
    """SQL statements and commits an engine ran, counted by its events."""

    executed: int = 0
    commits: int = 0


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[Statements]:
    counts = Statements()

    def executed(*_args: Any) -> None:
        counts.executed += 1

    def committed(*_args: Any) -> None:
        counts.commits += 1

    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    event.listen(engine.sync_engine, "commit", committed)
    try:
        yield counts
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", executed)
        event.remove(engine.sync_engine, "commit", committed)


@dataclass
class Steps:
    """Main-thread CPU time per item spent in each step (what it awaits included)."""

    items: int = 0
    total_ms: float = 0.0
    spent: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    absent: list[str] = field(default_factory=list)  # names this version does not have

    def lines(self, what: str) -> list[str]:
        lines = [f"  {what}: {self.total_ms:.2f} ms of main-thread CPU each, of which"]
        for label, seconds in self.spent.most_common():
            calls = self.calls[label] / self.items
            lines.append(f"    {seconds * 1000 / self.items:6.2f} ms  {label} ({calls:.2f} calls)")
        if self.absent:
            lines.append(f"    (not in this version: {', '.join(self.absent)})")
        return lines


# What to time, by name: the federation code changes, so a name it no longer has is skipped
# (and said so); old names are kept to compare versions.
INBOX_STEPS = [
    (inbox_module, "_sender", "_sender: SELECT known_instance and remote_actor"),
    (inbox_module, "verify_request", "verify_request, its key lookup included"),
    (inbox_module, "lookup_key", "lookup_key: SELECT remote_actor (or fetch)"),
    (inbox_module, "_store", "_store: INSERT … ON CONFLICT DO NOTHING"),
    (InboxWriter, "store", "InboxWriter.store: its share of a group INSERT + COMMIT"),
    (InboxWriter, "_insert", "InboxWriter._insert: a group INSERT + COMMIT"),
    (inbox_module, "seen", "seen(host): writes known_instance"),
    (inbox_module, "may_talk_to", "may_talk_to: SELECT known_instance"),
    (inbox_module, "instance_signer", "instance_signer: SELECT actor_key + COMMIT"),
    (inbox_module, "_already_stored", "_already_stored: SELECT inbox_item"),
    (AsyncSession, "commit", "every commit, also inside the rows above"),
]
WORKER_STEPS = [
    (worker_module, "claim_batch", "claim_batch, a call"),
    (worker_module, "claim_due", "claim_due, a call"),
    (worker_module, "post", "post: sign + httpx POST"),
    (Fetcher, "post_activity", "Fetcher.post_activity: sign + httpx POST"),
    (worker_module, "record_batch", "record_batch, a call"),
    (delivery_module, "_refusal", "_refusal: may_talk_to + instances.get"),
    (delivery_module, "key_for", "key_for: SELECT actor_key"),
    (delivery_module, "_record", "_record: UPDATE delivery"),
    (delivery_module, "_host_answered", "_host_answered: seen(host) + COMMIT"),
    (AsyncSession, "commit", "every commit, also inside the rows above"),
]


@contextmanager
def timed_steps(targets: Sequence[tuple[Any, str, str]], steps: Steps) -> Iterator[None]:
    """Wraps each coroutine function ``owner.name`` so that the main thread's CPU time spent
    in it adds up under its label; put back afterwards. Meaningful one item at a time only:
    with other tasks running, their CPU time would count too. Diagnosis only, never timed
    with the rest."""
    present = [target for target in targets if hasattr(target[0], target[1])]
    steps.absent = [
        f"{owner.__name__}.{name}" for owner, name, _ in targets if (owner, name, _) not in present
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in present]

    def wrapped(original: Any, label: str) -> Any:
        @functools.wraps(original)
        async def step(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return await original(*args, **kwargs)
            finally:
                steps.spent[label] += time.thread_time() - start
                steps.calls[label] += 1

        return step

    for (owner, name, original), (_, _, label) in zip(originals, present, strict=True):
        setattr(owner, name, wrapped(original, label))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@dataclass
class InProcess:
    """``receive`` called directly, one activity after the other, without HTTP."""

    count: int = 0
    cpu_ms: float = 0.0  # this process, threads included (aiosqlite runs SQLite in one)
    wall_ms: float = 0.0
    statements: float = 0.0
    commits: float = 0.0
    steps: Steps | None = None


async def receive_alone(
    url: str, port: int, sender: Sender, work: Path, count: int, *, steps: bool
) -> InProcess:
    """What the inbox costs without HTTP, middleware or concurrency: the same settings, the
    server stopped, fresh activities (the sender's actor is already cached)."""
    settings = bench_settings(url, str(work / "data"), port)
    inbox_url = f"http://{LOOPBACK}:{port}/inbox"
    requests = sign_all(sender, inbox_url, f"{port}-in-process", count)
    database = Database(url, settings.database.pool_size)
    result = InProcess(count)
    try:
        async with federation_for(settings, database) as federation:

            async def receive_all(requests: Sequence[Signed]) -> None:
                for request in requests:
                    received = await receive(
                        federation,
                        method="POST",
                        url=inbox_url,
                        headers=request.headers,
                        body=request.body,
                        recipient_uri=None,
                        now=datetime.now(UTC),
                    )
                    if received.reason != "stored":
                        raise RuntimeError(f"receive answered {received}")

            with counting(database.engine) as counts:
                cpu, start = time.process_time(), time.perf_counter()
                await receive_all(requests)
                result.wall_ms = (time.perf_counter() - start) * 1000 / count
                result.cpu_ms = (time.process_time() - cpu) * 1000 / count
            result.statements = counts.executed / count
            result.commits = counts.commits / count
            if steps:
                result.steps = Steps(min(count, 500))
                more = sign_all(sender, inbox_url, f"{port}-steps", result.steps.items)
                with timed_steps(INBOX_STEPS, result.steps):
                    cpu = time.thread_time()
                    await receive_all(more)
                    result.steps.total_ms = (time.thread_time() - cpu) * 1000 / len(more)
    finally:
        await database.dispose()
    return result


async def verify_alone(requests: Sequence[Signed], url: str, sender: Sender) -> float:
    """Milliseconds of CPU per request that ``verify_request`` takes with the key in hand."""

    async def lookup(_key_id: str, _refresh: bool) -> tuple[str, str]:
        return sender.public_pem, sender.actor

    start = time.process_time()
    for request in requests:
        await verify_request(
            "POST",
            url,
            request.headers,
            request.body,
            lookup,
            now=datetime.now(UTC),
            window_seconds=300,
        )
    return (time.process_time() - start) * 1000 / len(requests)


@dataclass
class InboxResult:
    port: int = 0  # the instance's: the fan-out keeps its base URL (and its actor's key)
    activities: int = 0
    # (client, "instance" or "bare") → one Pass per round
    passes: dict[tuple[str, str], list[Pass]] = field(default_factory=dict)
    verify_ms: float = 0.0
    in_process: InProcess | None = None
    stored_rows: int = 0
    expected_rows: int = 0
    problems: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)

    def rate(self, client: str, side: str) -> float:
        return statistics.median(p.rate(self.activities) for p in self.passes[client, side])

    def server_ms(self, client: str, side: str) -> float:
        passes = self.passes[client, side]
        return statistics.median(p.server_cpu * 1000 / self.activities for p in passes)

    def client_ms(self, client: str, side: str) -> float:
        passes = self.passes[client, side]
        return statistics.median(p.client_cpu * 1000 / self.activities for p in passes)

    def ratio(self, client: str) -> float:
        return self.rate(client, "instance") / self.rate(client, "bare")

    @property
    def clients(self) -> list[str]:
        return list(dict.fromkeys(client for client, _ in self.passes))


async def measure_inbox(
    url: str, peer: Server, sender: Sender, work: Path, args: argparse.Namespace
) -> InboxResult:
    result = InboxResult(0, args.activities)
    profile = work / "terreau.prof" if args.profile else None
    spec = {"database_url": url, "data_dir": str(work / "data"), "profile": str(profile or "")}
    terreau = start_server("terreau", spec, work / "terreau.log")
    result.port = terreau.port
    clients = ["httpx", "raw"] if args.client == "both" else [args.client]
    try:
        inbox_url = f"{terreau.base_url}/inbox"
        bare_url = f"{peer.base_url}/bare"
        sides = {"instance": (inbox_url, terreau), "bare": (bare_url, peer)}
        warmup = sign_all(sender, inbox_url, f"{terreau.port}-warmup", args.warmup)
        for target, server in sides.values():
            warm = await httpx_pass(target, warmup, args.concurrency, server)
            if set(warm.answers) != {"stored"}:
                raise RuntimeError(f"warm-up refused by {target}: {dict(warm.answers)}")
        runs = 0
        if args.profile:
            terreau.process.send_signal(signal.SIGUSR1)  # profile from here
        for round_ in range(args.rounds):
            for client in clients:
                # Signed just before they are sent: the Date must stay in the window.
                requests = sign_all(
                    sender, inbox_url, f"{terreau.port}-{round_}-{client}", args.activities
                )
                order = list(sides) if runs % 2 == 0 else list(sides)[::-1]
                runs += 1
                for side in order:
                    target, server = sides[side]
                    measured = await CLIENTS[client](target, requests, args.concurrency, server)
                    result.passes.setdefault((client, side), []).append(measured)
                    wrong = {k: v for k, v in measured.answers.items() if k != "stored"}
                    if wrong:
                        result.problems.append(f"round {round_ + 1}, {client}, {side}: {wrong}")
                    per = 1000 / args.activities
                    print(
                        f"   round {round_ + 1}, {client:<5} {side:<8} "
                        f"{measured.rate(args.activities):6.0f}/s; CPU ms a request: server "
                        f"{measured.server_cpu * per:.2f} (event loop "
                        f"{measured.server_loop_cpu * per:.2f}), client "
                        f"{measured.client_cpu * per:.2f}",
                        flush=True,
                    )
        if args.profile:
            terreau.process.send_signal(signal.SIGUSR1)  # to here
        result.verify_ms = await verify_alone(requests, inbox_url, sender)
    finally:
        terreau.stop()
    result.in_process = await receive_alone(
        url, terreau.port, sender, work, args.activities, steps=args.steps
    )
    in_process = args.activities + (min(args.activities, 500) if args.steps else 0)
    result.expected_rows = args.warmup + args.rounds * len(clients) * args.activities + in_process
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = sql_select(func.count()).select_from(InboxItem)
            result.stored_rows = int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()
    if result.stored_rows != result.expected_rows:
        result.problems.append(
            f"{result.stored_rows} inbox_item rows, {result.expected_rows} expected"
        )
    if profile is not None and profile.exists():
        result.profile = profile_summary(profile)
    return result


def profile_summary(source: Path | cProfile.Profile, lines: int = 25) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(str(source) if isinstance(source, Path) else source, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats("federation|instance|sqlalchemy|starlette", lines)
    return out.getvalue().splitlines()


# --------------------------------------------------------------------------- 2. the fan-out


def instance_addresses(instances: int, one_host: bool) -> list[str]:
    """One loopback address per remote instance (127.0.1.1, 127.0.1.2, …)."""
    if one_host:
        return [LOOPBACK] * instances
    return [f"127.0.{1 + n // 250}.{1 + n % 250}" for n in range(instances)]


def follower_rows(
    actor: str, followers: int, addresses: list[str], port: int
) -> list[dict[str, Any]]:
    rows = []
    now = datetime.now(UTC)
    for number in range(followers):
        n = number % len(addresses)
        site = f"http://{addresses[n]}:{port}/host-{n}"
        rows.append(
            {
                "actor_uri": actor,
                "follower_uri": f"{site}/users/{number}",
                "inbox": f"{site}/users/{number}/inbox",
                "shared_inbox": f"{site}/inbox",
                "follow_id": f"{site}/follows/{number}",
                "created_at": now,
            }
        )
    return rows


@dataclass
class FanOutRound:
    queue_seconds: float
    worker_seconds: float
    bare_seconds: float
    worker_cpu: float
    bare_cpu: float
    passes: int


@dataclass
class FanOutResult:
    followers: int = 0
    instances: int = 0
    deliveries: int = 0
    concurrency: int = 0
    rounds: list[FanOutRound] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    profiler: cProfile.Profile | None = None  # the worker's drains, with --profile
    statements: list[Statements] = field(default_factory=list)  # the worker's, a round
    sign_ms: float = 0.0  # sign_request alone, per delivery
    steps: Steps | None = None  # with --steps: one more drain, one row at a time
    one_at_a_time_seconds: float = 0.0

    def median(self, name: str) -> float:
        return statistics.median(getattr(r, name) for r in self.rounds)

    @property
    def ratio(self) -> float:
        return self.median("worker_seconds") / self.median("bare_seconds")


async def _sink(client: httpx.AsyncClient, peer: Server, action: str) -> dict[str, int]:
    if action == "reset":
        await client.post(f"{peer.base_url}/reset")
        return {}
    counts: dict[str, int] = (await client.get(f"{peer.base_url}/count")).json()
    return counts


async def bare_fan_out(
    client: httpx.AsyncClient, inboxes: Sequence[str], body: bytes, concurrency: int
) -> list[int]:
    pending = iter(inboxes)
    statuses: list[int] = []
    headers = {"Content-Type": ACTIVITY_JSON, "Accept": ACTIVITY_JSON}

    async def one_slot() -> None:
        for inbox in pending:
            statuses.append((await client.post(inbox, content=body, headers=headers)).status_code)

    await asyncio.gather(*(one_slot() for _ in range(concurrency)))
    return statuses


async def _states(database: Database, activity_id: int) -> dict[str, int]:
    async with database.session() as session:
        rows = await session.exec(
            sql_select(Delivery.state, func.count())
            .where(col(Delivery.activity_id) == activity_id)
            .group_by(col(Delivery.state))
        )
        return {str(state): int(count) for state, count in rows.all()}


async def queue_one(
    database: Database, config: FederationConfig, name: str
) -> tuple[OutboxActivity, list[str]]:
    """One activity of the instance actor queued to its followers' inboxes, committed."""
    actor = config.instance_actor_uri
    async with database.session() as session:
        inboxes = await follower_inboxes(session, actor)
        note = {
            "id": f"{config.base_url}/notes/fan-out-{name}",
            "type": "Note",
            "attributedTo": actor,
            "content": "<p>Une nouvelle version du commun est publiée.</p>",
            "to": [PUBLIC],
        }
        row = await publish(
            session, config, make_activity(config, "Create", actor, note, [PUBLIC]), inboxes
        )
        await session.commit()
    assert row.id is not None
    return row, inboxes


async def steps_one_at_a_time(
    database: Database, federation: Federation, result: FanOutResult
) -> None:
    """One more activity drained by a worker sending one row at a time, its steps timed."""
    config = dataclasses.replace(federation.config, delivery_concurrency=1)
    worker = Worker(dataclasses.replace(federation, config=config))
    row, inboxes = await queue_one(database, config, "steps")
    steps = Steps(len(inboxes))
    with timed_steps(WORKER_STEPS, steps):
        cpu, start = time.thread_time(), time.perf_counter()
        while await worker.deliver_due() > 0:
            pass
        result.one_at_a_time_seconds = time.perf_counter() - start
        steps.total_ms = (time.thread_time() - cpu) * 1000 / len(inboxes)
    result.steps = steps
    states = await _states(database, row.id or 0)
    if states != {DeliveryState.SENT.value: len(inboxes)}:
        result.problems.append(f"one at a time: delivery rows {states}")


async def fan_out_round(
    database: Database,
    worker: Worker,
    config: FederationConfig,
    peer: Server,
    client: httpx.AsyncClient,
    number: int,
    result: FanOutResult,
) -> None:
    start = time.perf_counter()
    row, inboxes = await queue_one(database, config, str(number))
    queue_seconds = time.perf_counter() - start
    result.deliveries = len(inboxes)

    async def worker_side() -> tuple[float, float, int]:
        await _sink(client, peer, "reset")
        cpu, start, passes = time.process_time(), time.perf_counter(), 0
        if result.profiler is not None:
            result.profiler.enable()
        with counting(database.engine) as counts:
            while await worker.deliver_due() > 0:
                passes += 1
        seconds = time.perf_counter() - start
        if result.profiler is not None:
            result.profiler.disable()
        result.statements.append(counts)
        cpu = time.process_time() - cpu
        states = await _states(database, row.id or 0)
        counts = await _sink(client, peer, "count")
        if states != {DeliveryState.SENT.value: len(inboxes)}:
            result.problems.append(f"round {number + 1}: delivery rows {states}")
        expected = {"posts": len(inboxes), "signed": len(inboxes), "paths": len(inboxes)}
        if counts != expected:
            result.problems.append(f"round {number + 1}: the sink got {counts} from the worker")
        return seconds, cpu, passes

    async def bare_side() -> tuple[float, float]:
        await _sink(client, peer, "reset")
        cpu, start = time.process_time(), time.perf_counter()
        statuses = await bare_fan_out(bare_client, inboxes, row.body.encode(), result.concurrency)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        counts = await _sink(client, peer, "count")
        expected = {"posts": len(inboxes), "signed": 0, "paths": len(inboxes)}
        if counts != expected or set(statuses) != {202}:
            result.problems.append(
                f"round {number + 1}: the sink got {counts} from the bare client"
            )
        return seconds, cpu

    limits = httpx.Limits(max_connections=max(result.concurrency, 10))  # as federation_for's
    async with httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT) as bare_client:
        if number % 2 == 0:
            worker_seconds, worker_cpu, passes = await worker_side()
            bare_seconds, bare_cpu = await bare_side()
        else:
            bare_seconds, bare_cpu = await bare_side()
            worker_seconds, worker_cpu, passes = await worker_side()
    result.rounds.append(
        FanOutRound(queue_seconds, worker_seconds, bare_seconds, worker_cpu, bare_cpu, passes)
    )
    print(
        f"   round {number + 1}: queued {len(inboxes)} in {queue_seconds * 1000:.0f} ms, "
        f"worker {worker_seconds:.2f} s ({passes} pass{'es' if passes > 1 else ''}), "
        f"bare {bare_seconds:.2f} s",
        flush=True,
    )


async def measure_fan_out(
    url: str, port: int, peer: Server, addresses: list[str], work: Path, args: argparse.Namespace
) -> FanOutResult:
    """The worker runs here, in the bench process, with the instance's settings (its server
    is stopped by now: nothing is sent to it)."""
    federation_section = {
        "delivery_concurrency": args.delivery_concurrency,
        "signing_process": not args.sign_in_worker,
    }
    settings = bench_settings(url, str(work / "data"), port)
    settings = settings.model_copy(
        update={"federation": settings.federation.model_copy(update=federation_section)}
    )
    config = federation_config(settings)
    result = FanOutResult(args.followers, args.instances, 0, config.delivery_concurrency)
    result.profiler = cProfile.Profile(time.thread_time) if args.profile else None
    database = Database(url, settings.database.pool_size)
    try:
        rows = follower_rows(config.instance_actor_uri, args.followers, addresses, peer.port)
        async with database.engine.begin() as connection:
            for start in range(0, len(rows), CHUNK):
                await connection.execute(insert(Follower), rows[start : start + CHUNK])
            if database.dialect == "postgresql":
                await connection.execute(text("ANALYZE follower"))
        async with (
            federation_for(settings, database) as federation,
            httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as control,
        ):
            async with database.session() as session:
                # Made by the inbox already; read here so that nothing of it is timed.
                signer = await instance_signer(session, config)
            worker = Worker(federation)
            for number in range(args.rounds):
                await fan_out_round(database, worker, config, peer, control, number, result)
            if args.steps:
                await steps_one_at_a_time(database, federation, result)
            async with database.session() as session:
                inboxes = await follower_inboxes(session, config.instance_actor_uri)
            body = compact_json({"type": "Create", "content": "x" * 300}).encode()
            start = time.process_time()
            for inbox in inboxes:
                sign_request("POST", inbox, body, signer)
            result.sign_ms = (time.process_time() - start) * 1000 / len(inboxes)
    finally:
        await database.dispose()
    return result


# --------------------------------------------------------------------------- report


@dataclass
class Run:
    database: str
    inbox: InboxResult | None = None
    fan_out: FanOutResult | None = None


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def problems_of(run: Run) -> list[str]:
    return (run.inbox.problems if run.inbox else []) + (run.fan_out.problems if run.fan_out else [])


def summary_rows(run: Run) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    inbox, fan = run.inbox, run.fan_out
    if inbox is not None:
        for client in inbox.clients:
            ratio = inbox.ratio(client)
            rows += [
                (
                    f"inbox, {client}: instance, activities/s",
                    f"{inbox.rate(client, 'instance'):.0f}",
                ),
                (
                    f"inbox, {client}: bare endpoint, requests/s",
                    f"{inbox.rate(client, 'bare'):.0f}",
                ),
                (
                    f"inbox, {client}: ratio (target ≥ {INBOX_TARGET})",
                    f"{ratio:.2f} {verdict(ratio >= INBOX_TARGET)}",
                ),
                (
                    f"inbox, {client}: client CPU ms/request",
                    f"{inbox.client_ms(client, 'bare'):.2f}",
                ),
            ]
        client = inbox.clients[-1]
        terreau_ms, bare_ms = inbox.server_ms(client, "instance"), inbox.server_ms(client, "bare")
        rows += [
            ("inbox: server CPU ms/request, instance", f"{terreau_ms:.2f}"),
            ("inbox: server CPU ms/request, bare", f"{bare_ms:.2f}"),
            ("inbox: bare/instance server CPU", f"{bare_ms / terreau_ms:.2f}"),
            ("inbox: verify_request alone, ms", f"{inbox.verify_ms:.2f}"),
            ("inbox: verify share of server CPU", f"{inbox.verify_ms / terreau_ms:.0%}"),
        ]
        alone = inbox.in_process
        if alone is not None:
            rows += [
                ("inbox: receive() alone, CPU ms", f"{alone.cpu_ms:.2f}"),
                ("inbox: receive() alone, wall ms", f"{alone.wall_ms:.2f}"),
                (
                    "inbox: statements / commits a request",
                    f"{alone.statements:.0f} / {alone.commits:.0f}",
                ),
            ]
        rows += [("inbox: rows stored / expected", f"{inbox.stored_rows} / {inbox.expected_rows}")]
    if fan is not None:
        rows += [
            ("fan-out: queueing (publish), ms", f"{fan.median('queue_seconds') * 1000:.0f}"),
            ("fan-out: worker drain, s", f"{fan.median('worker_seconds'):.2f}"),
            ("fan-out: bare client, s", f"{fan.median('bare_seconds'):.2f}"),
            (
                f"fan-out: ratio (target ≤ {FAN_OUT_TARGET:.0f})",
                f"{fan.ratio:.2f} {verdict(fan.ratio <= FAN_OUT_TARGET)}",
            ),
            ("fan-out: bench CPU s, worker", f"{fan.median('worker_cpu'):.2f}"),
            ("fan-out: bench CPU s, bare", f"{fan.median('bare_cpu'):.2f}"),
            ("fan-out: sign_request alone, ms", f"{fan.sign_ms:.2f}"),
        ]
        if fan.statements and fan.deliveries:
            statements = statistics.median(c.executed for c in fan.statements) / fan.deliveries
            commits = statistics.median(c.commits for c in fan.statements) / fan.deliveries
            rows += [
                ("fan-out: statements / commits a delivery", f"{statements:.1f} / {commits:.1f}")
            ]
    problems = problems_of(run)
    rows += [
        ("checks (answers, rows, sink counts)", f"{len(problems)} FAILED" if problems else "OK")
    ]
    return rows


def report(runs: Sequence[Run], args: argparse.Namespace, one_host: bool) -> None:
    hosts = "one host, one path each" if one_host else "one loopback address each"
    print(
        f"\nInbox: {args.activities} signed Create activities per round to /inbox, "
        f"{args.concurrency} connections, after {args.warmup} warm-up ones; median of "
        f"{args.rounds} rounds.\nFan-out: one activity to {args.followers:,} followers on "
        f"{args.instances} instances ({hosts}), delivery_concurrency "
        f"{args.delivery_concurrency}; median of {args.rounds} rounds."
    )
    table = [summary_rows(run) for run in runs]
    labels = [label for label, _ in table[0]] if table else []
    width = max(map(len, labels), default=0)
    print(f"\n{'':<{width}}  " + "  ".join(f"{run.database:>12}" for run in runs))
    for index, label in enumerate(labels):
        print(f"{label:<{width}}  " + "  ".join(f"{rows[index][1]:>12}" for rows in table))
    for run in runs:
        for problem in problems_of(run):
            print(f"{run.database}: PROBLEM {problem}")
    for run in runs:
        inbox_steps = run.inbox.in_process.steps if run.inbox and run.inbox.in_process else None
        fan_steps = run.fan_out.steps if run.fan_out else None
        if inbox_steps is None and fan_steps is None:
            continue
        print(f"\n=== {run.database}: steps, one item at a time (--steps)")
        if inbox_steps is not None:
            print("\n".join(inbox_steps.lines(f"receive() of {inbox_steps.items} activities")))
        if fan_steps is not None and run.fan_out is not None:
            what = (
                f"delivery of {fan_steps.items} rows by a worker with delivery_concurrency 1 "
                f"(drained in {run.fan_out.one_at_a_time_seconds:.2f} s)"
            )
            print("\n".join(fan_steps.lines(what)))
    for run in runs:
        if run.inbox is not None and run.inbox.profile:
            print(f"\n=== {run.database}: cProfile of the instance during the inbox rounds")
            print("\n".join(run.inbox.profile))
        if run.fan_out is not None and run.fan_out.profiler is not None:
            print(f"\n=== {run.database}: cProfile of the worker's drains (bench process)")
            print("\n".join(profile_summary(run.fan_out.profiler)))


# --------------------------------------------------------------------------- main


async def run_on(
    label: str,
    url: str,
    peer: Server,
    sender: Sender,
    addresses: list[str],
    args: argparse.Namespace,
) -> Run:
    run = Run(label)
    work = Path(tempfile.mkdtemp(prefix="terreau-bench-federation-"))
    try:
        print(f"\n== {label}", flush=True)
        await migrate(url)
        print("   inbox…", flush=True)
        run.inbox = await measure_inbox(url, peer, sender, work, args)
        print("   fan-out…", flush=True)
        run.fan_out = await measure_fan_out(url, run.inbox.port, peer, addresses, work, args)
    finally:
        if args.keep:
            print(f"kept {work} (server logs)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return run


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Times the inbox and a fan-out of deliveries.")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES),
        help=f"server to make a throwaway database on (default: ${POSTGRES_ENV} or "
        f"{DEFAULT_POSTGRES}); the database it names is never touched",
    )
    parser.add_argument("--activities", type=int, default=2_000, help="per round")
    parser.add_argument("--concurrency", type=int, default=8, help="inbox connections")
    parser.add_argument("--warmup", type=int, default=100, help="untimed activities first")
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--delivery-concurrency", type=int, default=16)
    parser.add_argument(
        "--one-host", action="store_true", help="all instances on 127.0.0.1, one path each"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--client",
        choices=["httpx", "raw", "both"],
        default="both",
        help="inbox client: httpx, a minimal HTTP/1.1 client over asyncio streams, or both",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the instance")
    parser.add_argument(
        "--steps",
        action="store_true",
        help="time the steps of receive() and of a delivery, one item at a time (extra work "
        "after the timed rounds)",
    )
    parser.add_argument(
        "--sign-in-worker",
        action="store_true",
        help="fan-out: sign in the worker's process ([federation] signing_process = false)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.activities < 1 or args.concurrency < 1:
        parser.error("--rounds, --activities and --concurrency must be at least 1")
    if not 1 <= args.instances <= 250 * 254:
        parser.error("--instances must be between 1 and 63,500")
    if args.followers < args.instances:
        parser.error("at least one follower per instance")
    return args


async def main_async(args: argparse.Namespace) -> None:
    public_pem, private_pem = generate_rsa_public_private_key()
    addresses = instance_addresses(args.instances, args.one_host)
    logs = Path(tempfile.mkdtemp(prefix="terreau-bench-peer-"))
    peer_spec = {"public_pem": public_pem, "addresses": sorted(set(addresses) - {LOOPBACK})}
    peer = start_server("peer", peer_spec, logs / "peer.log")
    runs = []
    try:
        actor = f"{peer.base_url}/actor"
        sender = Sender(actor, Signer(f"{actor}#main-key", private_pem), public_pem)
        with sqlite_database(keep=args.keep) as url:
            runs.append(await run_on("SQLite", url, peer, sender, addresses, args))
        if not args.sqlite_only:
            async with postgres_database(args.postgres_url, keep=args.keep) as url:
                runs.append(await run_on("PostgreSQL", url, peer, sender, addresses, args))
    finally:
        peer.stop()
        shutil.rmtree(logs, ignore_errors=True)
    report(runs, args, args.one_host)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(main_async(parse_arguments(argv)))


if __name__ == "__main__":
    main()
