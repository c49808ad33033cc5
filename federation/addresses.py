"""Which addresses we agree to send a request to.

Any actor can make us fetch a URL of its choosing (its key id, its inbox, a redirect): without
this check it could make us probe the private network behind us, or a cloud metadata service.

Two steps. ``check_url`` reads the URL alone (scheme, credentials, port, an IP literal or a
``localhost`` name), before any request. A host name is checked when a connection is opened
(``federation.transport``): resolved once, every answer checked, and the connection made to
those very addresses, so a name whose answers change between a check and the connection (DNS
rebinding) cannot lead anywhere private, and a delivery over a kept-alive connection asks
no DNS at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(Exception):
    """A URL we will not send a request to; ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is on the public internet (not private, loopback, link-local…)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public_address(address.ipv4_mapped)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


#: What resolves a host name: (host, port) -> the addresses it gives, as ``getaddrinfo``.
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def getaddrinfo(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(answer[4][0]) for answer in answers]


def _is_localhost(host: str) -> bool:
    """``localhost`` and its subdomains are loopback whatever DNS says (RFC 6761)."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


async def public_addresses(
    host: str, port: int, *, resolve: Resolver = getaddrinfo
) -> list[IPAddress]:
    """The addresses to connect to for ``host`` (a literal, or the name resolved once), in the
    resolver's order; RefusedAddress unless every one is public. One private answer refuses
    the name: an attacker's name may hold both."""
    literal = _literal(host.strip("[]"))
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = await resolve(host, port)
        except (OSError, UnicodeError):
            raise RefusedAddress(host, f"cannot resolve {host}") from None
        # An IPv6 answer may carry a zone ("fe80::1%eth0"), which ipaddress does not read.
        read = [_literal(answer.split("%")[0]) for answer in answers]
        addresses = [address for address in read if address is not None]
        if not addresses or len(addresses) != len(read):
            raise RefusedAddress(host, f"cannot resolve {host}")
    for address in addresses:
        if not is_public_address(address):
            raise RefusedAddress(host, f"{host} is not a public address ({address})")
    return list(dict.fromkeys(addresses))


def check_url(url: str, *, allow_private: bool, allow_http: bool) -> None:
    """Raises RefusedAddress unless ``url`` is https (or http when allowed), without
    credentials, to an IP literal that is public or a name other than ``localhost`` (or
    private addresses are allowed, as in tests). What a name resolves to is checked when the
    connection is made (``federation.transport``)."""
    parts = urlsplit(url)
    allowed_schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed_schemes:
        raise RefusedAddress(url, f"scheme {parts.scheme or '(none)'} is not allowed")
    host = parts.hostname
    if not host:
        raise RefusedAddress(url, "no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress(url, "credentials in the URL")
    try:
        parts.port  # noqa: B018 - reading it checks it (a number, in range)
    except ValueError:
        raise RefusedAddress(url, "invalid port") from None
    if allow_private:
        return
    if _is_localhost(host):
        raise RefusedAddress(url, f"{host} is a loopback name")
    literal = _literal(host)
    if literal is not None and not is_public_address(literal):
        raise RefusedAddress(url, f"{host} is not a public address ({literal})")
