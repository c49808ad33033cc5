"""Requests to other servers: signed, bounded, and never to addresses we should not reach.

Remote servers are httpx MockTransports: nothing leaves the machine. Tests that serve a
document allow private addresses; the refusals are tested with IP literals and ``localhost``,
and the mock asserts that no request went out. What a name resolves to is checked by the
transport when it connects (test_transport.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import cache

import httpx
import pytest
from bovine.crypto import generate_rsa_public_private_key

from federation.addresses import RefusedAddress, check_url, is_public_address
from federation.context import FederationConfig
from federation.fetch import Fetcher, FetchError
from federation.keys import Signer
from federation.media import ACTIVITY_JSON, FETCH_ACCEPT
from federation.signatures import verify_request

ACTOR = "https://tiers-lieux.example/actor"
KEY_ID = f"{ACTOR}#main-key"
DOCUMENT = {"id": "https://remote.example/users/bob", "type": "Person"}
# A public address that nothing in these tests connects to: the mock transport answers.
PUBLIC_IP = "93.184.216.34"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


@cache
def keys() -> tuple[str, str]:
    return generate_rsa_public_private_key()


def signer() -> Signer:
    return Signer(KEY_ID, keys()[1])


def config(**changes: object) -> FederationConfig:
    values: dict[str, object] = {
        "base_url": "https://tiers-lieux.example",
        "allow_private_addresses": True,
        "fetch_timeout_seconds": 5.0,
        "delivery_timeout_seconds": 5.0,
    }
    values.update(changes)
    return FederationConfig(**values)  # type: ignore[arg-type]


class Remote:
    """A fake remote server that records every request it is sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await request.aread()
        answer = self.handler(request)
        return await answer if isinstance(answer, Awaitable) else answer


def fetcher(remote: Remote, **changes: object) -> Fetcher:
    client = httpx.AsyncClient(transport=httpx.MockTransport(remote), follow_redirects=False)
    return Fetcher(client, config(**changes))


def serve_json(document: object = DOCUMENT, status: int = 200) -> Remote:
    return Remote(lambda request: httpx.Response(status, json=document))


async def public_key_of_ours(key_id: str, refresh: bool) -> tuple[str, str] | None:
    return (keys()[0], ACTOR) if key_id == KEY_ID else None


# --- get_json ------------------------------------------------------------------------------------


async def test_get_json_returns_the_document_with_activity_accept() -> None:
    remote = serve_json()

    document = await fetcher(remote).get_json("https://remote.example/users/bob", signer=None)

    assert document == DOCUMENT
    assert remote.requests[0].headers["accept"] == FETCH_ACCEPT
    assert "signature" not in remote.requests[0].headers


async def test_a_signed_get_verifies_on_the_remote_side() -> None:
    """The remote checks the signature with the request it received, query string included."""
    remote = serve_json()
    url = "https://remote.example/users/bob/outbox?page=2"

    await fetcher(remote).get_json(url, signer=signer())

    request = remote.requests[0]
    signed_by = await verify_request(
        "GET",
        str(request.url),
        request.headers,
        b"",
        public_key_of_ours,
        now=datetime.now(UTC),
        window_seconds=300,
    )
    assert signed_by.controller == ACTOR
    assert 'headers="(request-target) host date"' in request.headers["signature"]


async def test_fetch_reports_where_the_document_came_from_after_redirects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/@bob":
            return httpx.Response(301, headers={"Location": "/users/bob"})
        return httpx.Response(200, json=DOCUMENT)

    fetched = await fetcher(Remote(handler)).fetch("https://remote.example/@bob", signer=None)

    assert fetched.url == "https://remote.example/users/bob"
    assert fetched.document == DOCUMENT


def redirect_chain(length: int) -> Remote:
    """/0 → /1 → … → /length, which serves the document; each hop signed afresh."""

    def handler(request: httpx.Request) -> httpx.Response:
        step = int(request.url.path.strip("/"))
        if step < length:
            return httpx.Response(302, headers={"Location": f"https://remote.example/{step + 1}"})
        return httpx.Response(200, json=DOCUMENT)

    return Remote(handler)


async def test_three_redirects_are_followed() -> None:
    remote = redirect_chain(3)

    assert await fetcher(remote).get_json("https://remote.example/0", signer=signer()) == DOCUMENT
    assert [request.url.path for request in remote.requests] == ["/0", "/1", "/2", "/3"]
    for request in remote.requests:  # each hop is signed for its own target
        signed_by = await verify_request(
            "GET",
            str(request.url),
            request.headers,
            b"",
            public_key_of_ours,
            now=datetime.now(UTC),
            window_seconds=300,
        )
        assert signed_by.key_id == KEY_ID


async def test_a_fourth_redirect_is_refused() -> None:
    remote = redirect_chain(4)

    with pytest.raises(FetchError) as caught:
        await fetcher(remote).get_json("https://remote.example/0", signer=None)

    assert caught.value.reason == "more than 3 redirects"
    assert caught.value.url == "https://remote.example/0"
    assert len(remote.requests) == 4


async def test_a_redirect_to_a_private_address_is_refused_before_any_request() -> None:
    remote = Remote(
        lambda request: httpx.Response(302, headers={"Location": "https://10.0.0.1/secrets"})
    )

    with pytest.raises(FetchError) as caught:
        await fetcher(remote, allow_private_addresses=False).get_json(
            f"https://{PUBLIC_IP}/users/bob", signer=None
        )

    assert "10.0.0.1" in caught.value.reason
    assert [str(request.url) for request in remote.requests] == [f"https://{PUBLIC_IP}/users/bob"]


async def test_a_redirect_to_http_is_refused() -> None:
    remote = Remote(
        lambda request: httpx.Response(302, headers={"Location": "http://remote.example/bob"})
    )

    with pytest.raises(FetchError) as caught:
        await fetcher(remote).get_json("https://remote.example/users/bob", signer=None)

    assert "scheme http is not allowed" in caught.value.reason
    assert len(remote.requests) == 1


async def test_http_is_fetched_when_allowed() -> None:
    remote = serve_json()

    document = await fetcher(remote, allow_http=True).get_json(
        "http://remote.example/u", signer=None
    )

    assert document == DOCUMENT


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/actor",
        "https://10.0.0.1/actor",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/actor",
        "https://192.168.1.1/actor",
        "https://[::ffff:127.0.0.1]/actor",
        "https://0.0.0.0/actor",
        "https://localhost/actor",
        "http://remote.example/actor",
        "ftp://remote.example/actor",
        "https://user:secret@remote.example/actor",
    ],
)
async def test_refused_addresses_get_no_request(url: str) -> None:
    remote = serve_json()
    refusing = fetcher(remote, allow_private_addresses=False)

    with pytest.raises(FetchError) as caught:
        await refusing.get_json(url, signer=signer())
    with pytest.raises(FetchError):
        await refusing.post_activity(url, b"{}", signer=signer())

    assert caught.value.reason.startswith("refused address")
    assert remote.requests == []


@pytest.mark.parametrize(
    ("status", "reason"), [(404, "HTTP 404"), (410, "HTTP 410"), (500, "HTTP 500")]
)
async def test_an_error_status_is_a_fetch_error_with_that_status(status: int, reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher(serve_json(status=status)).get_json("https://remote.example/x", signer=None)

    assert caught.value.status == status
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"<html>hello</html>", "not JSON"),
        (b"\xff\xfe not utf-8", "not JSON"),
        (b'["a", "list"]', "not a JSON object"),
        (b'"a string"', "not a JSON object"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_refused(content: bytes, reason: str) -> None:
    remote = Remote(lambda request: httpx.Response(200, content=content))

    with pytest.raises(FetchError) as caught:
        await fetcher(remote).get_json("https://remote.example/x", signer=None)

    assert caught.value.reason == reason


async def test_a_declared_length_past_the_limit_is_refused_unread() -> None:
    remote = Remote(lambda request: httpx.Response(200, content=json.dumps(DOCUMENT).encode()))

    with pytest.raises(FetchError) as caught:
        await fetcher(remote, max_fetch_bytes=10).get_json("https://remote.example/x", signer=None)

    assert caught.value.reason == "larger than 10 bytes"


async def test_an_endless_stream_is_cut_past_the_limit() -> None:
    """No Content-Length: the body is read chunk by chunk and dropped past the limit."""
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1)
            yield b"x" * 1024

    remote = Remote(lambda request: httpx.Response(200, content=endless()))

    with pytest.raises(FetchError) as caught:
        await fetcher(remote, max_fetch_bytes=10_000).get_json(
            "https://remote.example/x", signer=None
        )

    assert caught.value.reason == "larger than 10000 bytes"
    assert len(sent) < 20


async def test_a_slow_server_times_out() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=DOCUMENT)

    with pytest.raises(FetchError) as caught:
        await fetcher(Remote(slow), fetch_timeout_seconds=0.2).get_json(
            "https://remote.example/x", signer=None
        )

    assert caught.value.reason == "timed out"


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_network_errors_become_fetch_errors(error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(FetchError) as caught:
        await fetcher(Remote(fail)).get_json("https://remote.example/x", signer=None)

    assert caught.value.reason == f"network error: {type(error).__name__}"
    assert caught.value.status is None


# --- post_activity ----------------------------------------------------------------------------


async def test_post_activity_sends_a_signed_activity() -> None:
    remote = Remote(lambda request: httpx.Response(202))
    body = json.dumps({"type": "Create"}).encode()

    response = await fetcher(remote).post_activity(
        "https://remote.example/inbox", body, signer=signer()
    )

    assert response.status_code == 202
    request = remote.requests[0]
    assert request.method == "POST"
    assert request.content == body
    assert request.headers["content-type"] == ACTIVITY_JSON
    signed_by = await verify_request(
        "POST",
        str(request.url),
        request.headers,
        request.content,
        public_key_of_ours,
        now=datetime.now(UTC),
        window_seconds=300,
    )
    assert signed_by.key_id == KEY_ID


@pytest.mark.parametrize("status", [302, 400, 410, 429, 503])
async def test_post_activity_hands_back_any_status_without_following(status: int) -> None:
    remote = Remote(
        lambda request: httpx.Response(
            status, headers={"Location": "https://remote.example/elsewhere"}, text="nope"
        )
    )

    response = await fetcher(remote).post_activity(
        "https://remote.example/inbox", b"{}", signer=signer()
    )

    assert response.status_code == status
    assert response.text == "nope"
    assert len(remote.requests) == 1


async def test_post_activity_keeps_only_the_start_of_a_huge_answer() -> None:
    remote = Remote(lambda request: httpx.Response(400, content=b"x" * 1_000_000))

    response = await fetcher(remote).post_activity(
        "https://remote.example/inbox", b"{}", signer=signer()
    )

    assert response.status_code == 400
    assert len(response.content) == 65_536


async def test_post_activity_network_failure_and_timeout_are_fetch_errors() -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(202)

    with pytest.raises(FetchError) as failed:
        await fetcher(Remote(fail)).post_activity(
            "https://remote.example/inbox", b"{}", signer=signer()
        )
    with pytest.raises(FetchError) as timed_out:
        await fetcher(Remote(slow), delivery_timeout_seconds=0.2).post_activity(
            "https://remote.example/inbox", b"{}", signer=signer()
        )

    assert failed.value.reason == "network error: ConnectError"
    assert timed_out.value.reason == "timed out"


# --- The address check on its own -------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",  # shared address space (carrier-grade NAT)
        "224.0.0.1",
        "240.0.0.1",
        "0.0.0.0",  # noqa: S104
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["localhost", "LocalHost.", "api.localhost"])
def test_localhost_names_are_refused_without_asking_dns(host: str) -> None:
    with pytest.raises(RefusedAddress) as caught:
        check_url(f"https://{host}:8443/inbox", allow_private=False, allow_http=False)

    assert caught.value.reason == f"{host.lower()} is a loopback name"


def test_private_addresses_pass_when_allowed() -> None:
    check_url("http://127.0.0.1:8000/inbox", allow_private=True, allow_http=True)
    check_url(f"https://{PUBLIC_IP}/inbox", allow_private=False, allow_http=False)
    # A name is checked when its connection is made (test_transport.py), not here.
    check_url("https://remote.example/inbox", allow_private=False, allow_http=False)
