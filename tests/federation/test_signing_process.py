"""The signing process: a real child makes the deliveries' signatures, which verify; a child
that fails costs a batch nothing (the worker signs it itself), and the next batch starts a new
one."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpsig
import httpx
import pytest
from bovine.crypto import generate_rsa_public_private_key
from sqlmodel import select

from catalogue.columns import utcnow
from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.keys import Signer
from federation.models import Delivery, DeliveryState
from federation.outbox import publish
from federation.service import Federation
from federation.signatures import body_digest, verify_request
from federation.signing_process import SigningProcess, ToSign, serve
from federation.worker import PRESIGN_AT_LEAST, Worker
from instance.database import Database

BODY = b'{"type":"Create","id":"https://terreau.test/activities/1"}'
CONFIG = FederationConfig(
    base_url="https://terreau.test", allow_private_addresses=True, allow_http=True
)


def signer_and_public(actor: str) -> tuple[Signer, str]:
    public, private = generate_rsa_public_private_key()
    return Signer(f"{actor}#main-key", private), public


@pytest.fixture
async def signing() -> AsyncIterator[SigningProcess]:
    process = SigningProcess()
    yield process
    await process.close()


async def verifies(url: str, headers: dict[str, str], public: str, key_id: str) -> bool:
    async def lookup(asked: str, refresh: bool) -> tuple[str, str] | None:
        return (public, "actor") if asked == key_id else None

    signed = await verify_request(
        "POST", url, headers, BODY, lookup, now=datetime.now(UTC), window_seconds=300
    )
    return signed.key_id == key_id


async def test_a_batch_signed_by_the_child_verifies_for_each_inbox_and_key(
    signing: SigningProcess,
) -> None:
    first, first_public = signer_and_public("https://terreau.test/orgs/a")
    second, second_public = signer_and_public("https://terreau.test/orgs/b")
    urls = [f"https://h{n}.example/inbox" for n in range(3)]
    digest = body_digest(BODY)

    signed = await signing.sign([ToSign("POST", url, digest, first) for url in urls])
    again = await signing.sign(
        [ToSign("POST", urls[0], digest, second), ToSign("POST", urls[1], digest, first)]
    )

    assert signed is not None and again is not None
    for url, headers in zip(urls, signed, strict=True):
        assert headers["Host"] == url.split("/")[2]
        assert await verifies(url, headers, first_public, first.key_id)
    assert await verifies(urls[0], again[0], second_public, second.key_id)
    assert await verifies(urls[1], again[1], first_public, first.key_id)
    # An implementation we did not write agrees (draft-cavage, rsa-sha256).
    checked = httpsig.HeaderVerifier(
        headers=signed[0],
        secret=first_public,
        method="POST",
        path="/inbox",
        host="h0.example",
        required_headers=["(request-target)", "host", "date", "digest"],
        sign_header="signature",
    )
    assert checked.verify()
    assert signing.batches == 2


async def test_each_signature_is_handed_over_as_it_comes(signing: SigningProcess) -> None:
    signer, public = signer_and_public("https://terreau.test/orgs/a")
    urls = [f"https://h{n}.example/inbox" for n in range(5)]
    heard: list[tuple[int, dict[str, str]]] = []

    signed = await signing.sign(
        [ToSign("POST", url, body_digest(BODY), signer) for url in urls],
        lambda index, headers: heard.append((index, headers)),
    )

    assert signed is not None
    assert heard == list(enumerate(signed))
    for url, headers in zip(urls, signed, strict=True):
        assert await verifies(url, headers, public, signer.key_id)


async def test_a_child_that_fails_answers_none_and_the_next_batch_gets_a_new_one(
    signing: SigningProcess, caplog: pytest.LogCaptureFixture
) -> None:
    good, public = signer_and_public("https://terreau.test/orgs/a")
    broken = Signer("https://terreau.test/orgs/x#main-key", "not a key")
    url = "https://h.example/inbox"

    assert await signing.sign([ToSign("POST", url, body_digest(BODY), broken)]) is None
    assert "signing process failed" in caplog.text

    signed = await signing.sign([ToSign("POST", url, body_digest(BODY), good)])
    assert signed is not None and await verifies(url, signed[0], public, good.key_id)


def test_the_child_answers_each_request_with_a_line_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer, _public = signer_and_public("https://terreau.test/orgs/a")
    digest = body_digest(BODY)
    post = ["POST", "https://h.example/inbox", digest, signer.key_id]
    get = ["GET", "https://h.example/outbox?page=2", None, signer.key_id]
    batches = [
        {"keys": {signer.key_id: signer.private_pem}, "requests": [post]},
        {"keys": {}, "requests": [get, get]},  # the key it was given before
    ]
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)

    serve([json.dumps(batch).encode() for batch in batches])

    first, second, third = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["Digest"] == f"SHA-256={digest}"
    assert 'headers="(request-target) host date digest"' in first["Signature"]
    assert "Digest" not in second
    assert 'headers="(request-target) host date"' in third["Signature"]


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def queue(database: Database, inboxes: list[str], number: int) -> None:
    async with database.session() as session:
        activity = {
            "id": f"https://terreau.test/activities/{number}",
            "type": "Announce",
            "actor": "https://terreau.test/orgs/atelier",
        }
        await publish(session, CONFIG, activity, inboxes)
        await session.commit()


async def test_a_worker_has_large_batches_signed_by_the_child_and_small_ones_itself(
    database: Database, signing: SigningProcess
) -> None:
    received: list[httpx.Request] = []

    async def inbox(request: httpx.Request) -> httpx.Response:
        received.append(request)
        await asyncio.sleep(0.05)  # a remote inbox takes its time: rows wait for a slot
        return httpx.Response(202)

    # Two slots: the rows they do not start at once wait, and the child signs those.
    config = replace(CONFIG, delivery_concurrency=2)
    many = [f"https://h{n}.example/inbox" for n in range(PRESIGN_AT_LEAST + 4)]
    await queue(database, many, 1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(inbox)) as client:
        federation = Federation(config, database.session, Fetcher(client, config), signing=signing)
        worker = Worker(federation, clock=lambda: utcnow() + timedelta(minutes=1))
        assert await worker.run_once() == len(many)
        assert signing.batches >= 1
        batches = signing.batches

        await queue(database, ["https://alone.example/inbox"], 2)
        assert await worker.run_once() == 1
        assert signing.batches == batches  # one row: signed in place

    async with database.session() as session:
        states = set((await session.exec(select(Delivery.state))).all())
    assert states == {DeliveryState.SENT}
    assert len({r.headers["signature"] for r in received}) == len(many) + 1
    assert all(r.headers["digest"] == f"SHA-256={body_digest(r.content)}" for r in received)
