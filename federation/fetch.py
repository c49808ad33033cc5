"""Every request to another server goes through here: one ``httpx.AsyncClient``, signed, bounded.

Fetches are signed GETs (servers in authorized-fetch mode require them), follow at most three
redirects (each one checked again), stop reading past ``max_fetch_bytes``, time out, and refuse
private, loopback and link-local addresses unless the config allows them (tests do).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from federation import remote_json
from federation.addresses import RefusedAddress, check_url
from federation.context import FederationConfig
from federation.keys import Signer
from federation.media import ACTIVITY_JSON, FETCH_ACCEPT
from federation.signatures import sign_request

MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# What we keep of an inbox's answer: enough for an error message, not a memory bomb.
MAX_DELIVERY_RESPONSE_BYTES = 65_536
# What httpx raises on a failed exchange; InvalidURL and StreamError are not HTTPErrors.
_HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


class FetchError(Exception):
    """A remote document we could not get; ``status`` is the HTTP status when there was one."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Fetched:
    """A JSON object and the URL it finally came from (after redirects): an object is only
    trusted as far as that origin goes."""

    url: str
    document: dict[str, Any]


@dataclass(frozen=True)
class _Redirect:
    location: str


class Fetcher:
    def __init__(self, client: httpx.AsyncClient, config: FederationConfig) -> None:
        self.client = client
        self.config = config

    async def get_json(self, url: str, *, signer: Signer | None) -> dict[str, Any]:
        """An ActivityStreams document; raises FetchError (unsafe address, status, size, JSON)."""
        return (await self.fetch(url, signer=signer)).document

    async def fetch(self, url: str, *, signer: Signer | None) -> Fetched:
        """As ``get_json``, with the URL the document was finally served from."""
        try:
            async with asyncio.timeout(self.config.fetch_timeout_seconds):
                return await self._follow(url, signer)
        except TimeoutError:
            raise FetchError(url, "timed out") from None
        except RefusedAddress as refused:
            raise FetchError(url, f"refused address {refused.url}: {refused.reason}") from None
        except _HTTPX_ERRORS as error:
            raise FetchError(url, f"network error: {type(error).__name__}") from None

    async def post_activity(
        self, url: str, body: bytes, *, signer: Signer, signed: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST a signed activity to an inbox (no redirects). Raises FetchError only when the
        address is refused or the network fails; any HTTP status is returned to the caller.
        ``signed``: the signing headers when they were made ahead (by the worker's signing
        process); else ``signer`` signs now."""
        try:
            async with asyncio.timeout(self.config.delivery_timeout_seconds):
                self._check(url)
                headers = {
                    "Accept": FETCH_ACCEPT,
                    "Content-Type": ACTIVITY_JSON,
                    "User-Agent": self.config.user_agent,
                    **(signed or sign_request("POST", url, body, signer)),
                }
                request = self.client.build_request("POST", url, content=body, headers=headers)
                response = await self.client.send(request, stream=True, follow_redirects=False)
                return await _capped_copy(response, MAX_DELIVERY_RESPONSE_BYTES)
        except TimeoutError:
            raise FetchError(url, "timed out") from None
        except RefusedAddress as refused:
            raise FetchError(url, f"refused address: {refused.reason}") from None
        except _HTTPX_ERRORS as error:
            raise FetchError(url, f"network error: {type(error).__name__}") from None

    def _check(self, url: str) -> None:
        check_url(
            url,
            allow_private=self.config.allow_private_addresses,
            allow_http=self.config.allow_http,
        )

    async def _follow(self, url: str, signer: Signer | None) -> Fetched:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._check(current)
            outcome = await self._get_once(url, current, signer)
            if isinstance(outcome, Fetched):
                return outcome
            current = outcome.location
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    async def _get_once(self, asked: str, url: str, signer: Signer | None) -> Fetched | _Redirect:
        headers = {"Accept": FETCH_ACCEPT, "User-Agent": self.config.user_agent}
        if signer is not None:
            headers.update(sign_request("GET", url, None, signer))
        request = self.client.build_request("GET", url, headers=headers)
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code in REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(asked, "redirect without a Location", response.status_code)
                return _Redirect(urljoin(url, location))
            if response.status_code != 200:
                raise FetchError(asked, f"HTTP {response.status_code}", response.status_code)
            body = await _read_capped(asked, response, self.config.max_fetch_bytes)
        finally:
            await response.aclose()
        return Fetched(url, _json_object(asked, body))


def _declared_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _read_capped(asked: str, response: httpx.Response, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` (declared or streamed)."""
    declared = _declared_length(response)
    if declared is not None and declared > limit:
        raise FetchError(asked, f"larger than {limit} bytes", response.status_code)
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks += chunk
        if len(chunks) > limit:
            raise FetchError(asked, f"larger than {limit} bytes", response.status_code)
    return bytes(chunks)


def _json_object(asked: str, body: bytes) -> dict[str, Any]:
    try:
        document = remote_json.loads(body.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        raise FetchError(asked, "not JSON", 200) from None
    if not isinstance(document, dict):
        raise FetchError(asked, "not a JSON object", 200)
    return document


async def _capped_copy(response: httpx.Response, limit: int) -> httpx.Response:
    """The response with at most ``limit`` bytes of its body, read, and its stream closed."""
    kept = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            kept += chunk[: limit - len(kept)]
            if len(kept) >= limit:
                break
    finally:
        await response.aclose()
    skip = {"content-length", "content-encoding", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(kept), request=response.request
    )
