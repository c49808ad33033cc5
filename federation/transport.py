"""The HTTP transport under the instance's one client: it connects only where it has checked.

httpx resolves a host name when it opens a connection. Checking the name beforehand (and
letting httpx resolve it again) leaves a gap: a name that answers a public address to the
check and a private one to the connection (DNS rebinding) would reach the private network.
Here the connection itself resolves the name once, refuses it if any answer is not public
(``addresses.public_addresses``), and connects to those very addresses. TLS is unchanged:
httpcore still checks the certificate against the URL's host name.

A connection kept alive is reused without asking DNS again, so a fan-out to one host resolves
its name once, not once per delivery. A proxy from the environment (``HTTPS_PROXY``) is the
admin's choice: the transport then checks the proxy's address, and the proxy reaches the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpcore
import httpx

from federation.addresses import Resolver, getaddrinfo, public_addresses
from federation.context import FederationConfig

# httpcore's own signature: its parameters keep httpcore's names (``timeout`` included).
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses ``public_addresses`` allows."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = getaddrinfo,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolve = resolve
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first of the host's checked addresses that answers."""
        if self.allow_private:  # tests and local networks: as httpx would connect
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await public_addresses(host, port, resolve=self.resolve)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # public_addresses never answers an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("federation requests never go through a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def checked_transport(
    config: FederationConfig, limits: httpx.Limits, *, backend: CheckedBackend | None = None
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, its connections opened by a ``CheckedBackend`` (``backend``: one
    with another resolver or network, for tests)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool  # httpx builds it; only its backend changes
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(
        pool, "_network_backend"
    ):  # an httpx or httpcore that changed: refuse to run unchecked
        raise RuntimeError("cannot check addresses with this version of httpx and httpcore")
    pool._network_backend = backend or CheckedBackend(allow_private=config.allow_private_addresses)
    return transport
