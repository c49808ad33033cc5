"""A real Terreau instance, run as an operator would run it, for tests that need a live server.

Browser tests (and, later, tests of two instances federating) cannot use Starlette's in-process
TestClient: a browser needs a socket, and federation needs two separate processes each with its
own settings, database and event loop. So ``live_instance`` does what the installation guide
says, through the installed ``terreau`` command: ``init``, ``migrate``, ``serve``. That also
tests the command line and the start-up path themselves.

Everything listens on 127.0.0.1 only, on a port chosen by the kernel, so several instances (and
several test runs) can live side by side and nothing is reachable from outside the machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

LOOPBACK = "127.0.0.1"
#: Installed next to the interpreter running the tests, so the instance runs the same code.
TERREAU = Path(sys.executable).parent / "terreau"
#: How long a fresh instance may take to answer /healthz: migrations are already done by then.
START_TIMEOUT = 20.0
#: How long ``serve`` gets to finish its requests and close the database after SIGTERM.
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40


class LiveInstanceError(RuntimeError):
    """The instance could not be set up or started; the message ends with its log's tail."""


@dataclass
class LiveInstance:
    """A running instance: where to reach it, its settings file and log, and its CLI."""

    base_url: str
    config: Path
    log: Path
    directory: Path
    env: dict[str, str] = field(repr=False)

    def terreau(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``terreau --config CONFIG ARGS…`` against this instance (raises if it fails).

        Same settings file, working directory and environment as the server, so the command
        sees the same database an operator's shell on that machine would.
        """
        return subprocess.run(
            [str(TERREAU), "--config", str(self.config), *args],
            cwd=self.directory,
            env=self.env,
            input=input,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).

    Another process could take it before ``serve`` binds it; that shows up as the server
    dying at start, with "address already in use" in the log tail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _environment() -> dict[str, str]:
    """The test's environment without any TERREAU_* variable.

    Those override the settings file; a developer's TERREAU_DATABASE_URL must never point a
    throw-away test instance at a real database.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("TERREAU_")}
    env["PYTHONUNBUFFERED"] = "1"  # so the log tail shown on failure is complete
    return env


def _tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _set_name(config: Path, name: str) -> None:
    """Give the instance its display name (``init`` has no option for it), checked by reading."""
    text = config.read_text(encoding="utf-8")
    # A JSON string is a valid TOML basic string for any ordinary name.
    text, count = re.subn(
        r'(?m)^name = ".*"$', lambda _m: f"name = {json.dumps(name)}", text, count=1
    )
    config.write_text(text, encoding="utf-8")
    if count != 1 or tomllib.loads(text)["instance"]["name"] != name:
        raise LiveInstanceError(f"could not set the instance name in {config}")


def _set_options(config: Path, options: dict[str, dict[str, Any]]) -> None:
    """Set ``[section] key = value`` lines that ``init`` wrote, checked by reading the file back.

    Values are written as JSON, which is valid TOML for strings, numbers and booleans.
    """
    text = config.read_text(encoding="utf-8")
    for section, values in options.items():
        head = text.index(f"[{section}]\n")
        end = text.find("\n[", head + 1)
        end = len(text) if end == -1 else end
        body = text[head:end]
        for key, value in values.items():
            line = f"{key} = {json.dumps(value)}"
            body, count = re.subn(rf"(?m)^{re.escape(key)} = .*$", lambda _m, s=line: s, body)
            if count != 1:
                raise LiveInstanceError(f"no `{key}` in [{section}] of {config}")
        text = text[:head] + body + text[end:]
    config.write_text(text, encoding="utf-8")
    written = tomllib.loads(text)
    for section, values in options.items():
        for key, value in values.items():
            if written[section][key] != value:
                raise LiveInstanceError(f"could not set [{section}] {key} in {config}")


def _run_step(
    args: list[str], directory: Path, env: dict[str, str], log: IO[bytes], path: Path
) -> None:
    """Run one set-up command with its output going to the log; raise with the tail if it fails."""
    log.write(f"$ terreau {' '.join(args)}\n".encode())
    log.flush()
    result = subprocess.run(
        [str(TERREAU), *args],
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise LiveInstanceError(
            f"`terreau {' '.join(args)}` exited with {result.returncode}:\n{_tail(path)}"
        )


def _wait_until_healthy(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    """Poll /healthz until it answers 200; raise if the server dies or takes too long.

    ``trust_env=False``: no proxy from the environment, the request goes straight to loopback.
    """
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=base_url, timeout=1.0, trust_env=False) as client:
        while True:
            if server.poll() is not None:
                raise LiveInstanceError(
                    f"terreau serve exited with {server.returncode} at start:\n{_tail(log)}"
                )
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise LiveInstanceError(
                    f"{base_url}/healthz did not answer 200 within {START_TIMEOUT:.0f} s:\n"
                    f"{_tail(log)}"
                )
            time.sleep(0.1)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it does not end in time."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
    server.wait()


@contextmanager
def live_instance(
    directory: Path,
    *,
    database_url: str | None = None,
    name: str = "Terreau",
    settings: dict[str, dict[str, Any]] | None = None,
) -> Iterator[LiveInstance]:
    """Set up, migrate and serve an instance in ``directory``; stop it on leaving the block.

    ``settings`` changes what ``init`` wrote (``{"federation": {"allow_http": True}}``).
    ``directory`` gets ``instance.toml`` (a fresh secret key), the ``data`` folder (and the
    SQLite database unless ``database_url`` says otherwise) and ``terreau.log`` with the output
    of every step, which error messages quote.
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    config = directory / "instance.toml"
    log_path = directory / "terreau.log"
    env = _environment()
    options = ["--config", str(config)]
    with log_path.open("ab") as log:
        init = [*options, "init", "--base-url", base_url]
        if database_url is not None:
            init += ["--database-url", database_url]
        _run_step(init, directory, env, log, log_path)
        if name != "Terreau":
            _set_name(config, name)
        if settings:
            _set_options(config, settings)
        _run_step([*options, "migrate"], directory, env, log, log_path)
        log.write(f"$ terreau {' '.join(options)} serve --host {LOOPBACK} --port {port}\n".encode())
        log.flush()
        server = subprocess.Popen(
            [str(TERREAU), *options, "serve", "--host", LOOPBACK, "--port", str(port)],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(server, base_url, log_path)
            yield LiveInstance(
                base_url=base_url, config=config, log=log_path, directory=directory, env=env
            )
        finally:
            _stop(server)
