"""Deliveries' RSA signatures, made by a child process while the worker keeps sending.

An RSA-2048 signature costs about 0.2 ms of CPU, and ``cryptography`` holds the GIL while it
signs, so no thread can overlap it with the event loop: a worker fanning one activity out to
hundreds of inboxes spent a third of its time signing, not sending. The worker now hands each
claimed batch to one child process, which signs it on another core while the loop sends the
batch before.

The child is this module run as a program (``python -m federation.signing_process``), talking
JSON lines over its stdin and stdout through asyncio's pipes: no thread in the worker, and
nothing of the worker's main module is imported again (as ``multiprocessing`` would). A batch
goes as one line and comes back as one line per request, each written as soon as it is signed:
the worker can use the first signatures while the child makes the rest, instead of waiting a
whole batch's round trip. The child is started on the first batch worth it, and started again
after a failure. Whatever goes wrong with it, ``sign`` answers None and the worker signs in its
own process: a delivery never waits on the child's health.

Private keys cross the pipe (once per key and child): the child is ours, same user, same
machine, and holds them only in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from federation.keys import Signer
from federation.signatures import sign_digest

log = logging.getLogger("terreau.federation.signing")

#: How long a batch may take before the child is given up on (and the batch signed inline).
BATCH_TIMEOUT_SECONDS = 10.0
#: One answer line holds one request's headers (about 700 bytes).
LINE_LIMIT = 1024 * 1024

#: Called with each request's index in its batch and its headers, as they come.
Signed = Callable[[int, dict[str, str]], None]


@dataclass(frozen=True)
class ToSign:
    """One request to sign: its method, URL, its body's digest (``signatures.body_digest``)."""

    method: str
    url: str
    digest: str | None
    signer: Signer


class SigningProcess:
    """The worker's side: one child, one batch at a time over its pipes."""

    def __init__(self) -> None:
        self._child: asyncio.subprocess.Process | None = None
        self._keys: set[str] = set()  # key ids the current child holds
        self._turn = asyncio.Lock()
        self.batches = 0  # signed by the child, over this object's life (for tests and logs)

    async def sign(
        self, requests: Sequence[ToSign], signed: Signed | None = None
    ) -> list[dict[str, str]] | None:
        """The signing headers of each request, in order; None when the child failed (it is
        stopped, and started afresh next time): the caller then signs itself what ``signed``
        was not told of. ``signed`` hears of each request's headers as soon as they come."""
        if not requests:
            return []
        async with self._turn:
            try:
                answer = await asyncio.wait_for(self._ask(requests, signed), BATCH_TIMEOUT_SECONDS)
            except (OSError, ValueError, TimeoutError, EOFError) as error:
                log.warning("signing process failed (%s): signing in the worker", error)
                await self._stop()
                return None
        self.batches += 1
        return answer

    async def _ask(self, requests: Sequence[ToSign], signed: Signed | None) -> list[dict[str, str]]:
        child = await self._started()
        assert child.stdin is not None and child.stdout is not None
        signers = {r.signer.key_id: r.signer for r in requests}
        keys = {key: s.private_pem for key, s in signers.items() if key not in self._keys}
        message = {
            "keys": keys,
            "requests": [[r.method, r.url, r.digest, r.signer.key_id] for r in requests],
        }
        child.stdin.write(json.dumps(message).encode() + b"\n")
        await child.stdin.drain()
        self._keys.update(keys)
        answer = []
        for index in range(len(requests)):
            line = await child.stdout.readline()
            if not line:
                raise EOFError("the signing process ended")
            headers = json.loads(line)
            if not isinstance(headers, dict) or "Signature" not in headers:
                raise ValueError(f"the signing process answered {str(headers)[:200]}")
            answer.append(headers)
            if signed is not None:
                signed(index, headers)
        return answer

    async def _started(self) -> asyncio.subprocess.Process:
        if self._child is None or self._child.returncode is not None:
            self._keys = set()
            self._child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "federation.signing_process",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
            )
        return self._child

    async def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None or child.returncode is not None:
            return
        if child.stdin is not None:
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 2.0)
        except TimeoutError:
            child.kill()
            await child.wait()

    async def close(self) -> None:
        """End the child (its stdin closes: it finishes and exits)."""
        async with self._turn:
            await self._stop()


def serve(lines: Sequence[bytes] | None = None) -> None:
    """The child: for each line read (a batch), one line written per request (its headers),
    in order, each as soon as it is signed."""
    keys: dict[str, str] = {}
    source = sys.stdin.buffer if lines is None else lines
    for line in source:
        message = json.loads(line)
        keys.update(message["keys"])
        now = datetime.now(UTC)
        for method, url, digest, key_id in message["requests"]:
            headers = sign_digest(method, url, digest, Signer(key_id, keys[key_id]), now=now)
            sys.stdout.write(json.dumps(headers) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    serve()
