"""Which addresses we agree to send a request to.

Any actor can make us fetch a URL of its choosing (its key id, its inbox, a redirect): without
this check it could make us probe the private network behind us, or a cloud metadata service.

The check resolves the name itself and the HTTP client resolves it again when it connects, so a
name whose answers change in between (DNS rebinding) is not stopped here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORTS = {"http": 80, "https": 443}


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


async def _resolve(url: str, host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise RefusedAddress(url, f"cannot resolve {host}") from None
    # The address may carry an IPv6 zone ("fe80::1%eth0"), which ipaddress does not read.
    addresses = [_literal(str(answer[4][0]).split("%")[0]) for answer in answers]
    if not addresses or None in addresses:
        raise RefusedAddress(url, f"cannot resolve {host}")
    return [address for address in addresses if address is not None]


async def check_url(url: str, *, allow_private: bool, allow_http: bool) -> None:
    """Raises RefusedAddress unless ``url`` is https (or http when allowed) to a host whose
    every address is public (or private addresses are allowed, as in tests)."""
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
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise RefusedAddress(url, "invalid port") from None
    if allow_private:
        return
    literal = _literal(host)
    addresses = [literal] if literal is not None else await _resolve(url, host, port)
    for address in addresses:
        if not is_public_address(address):
            raise RefusedAddress(url, f"{host} is not a public address ({address})")
