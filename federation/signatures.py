"""HTTP signatures: sign what we send, verify what we receive (draft-cavage and RFC 9421).

We sign the way Mastodon verifies: draft-cavage, ``rsa-sha256``, covering ``(request-target)``
(with its query string), ``host``, ``date`` and, with a body, ``digest``.

We verify what the fediverse sends: draft-cavage with ``rsa-sha256`` or ``hs2019``, and RFC 9421
(``Signature-Input`` + ``Signature``). bovine's ``SignatureChecker`` is not used as a whole: it
drops the query string from ``(request-target)`` (so a signed ``GET /outbox?page=2`` fails),
reads the clock itself, answers only "None" without a reason, and its RFC 9421 parser calls an
``http_sf`` function whose signature changed (it raises with http-sf 1.5). Its pieces are used
where they hold: the signing secret, the public-key identifiers and the Content-Digest check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import SplitResult, urlsplit

import http_sf
from bovine.crypto.digest import validate_digest
from bovine.crypto.types import CryptographicIdentifier, CryptographicSecret
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from federation.keys import Signer


class SignatureError(Exception):
    """A request whose signature does not hold; ``status`` is what the inbox answers."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class SignedBy:
    key_id: str
    # The actor that owns the key, as the key's document says (the caller binds it to `actor`).
    controller: str


# (key_id, refresh) -> (public key as PEM or multibase, owning actor), or None when unknown.
KeyLookup = Callable[[str, bool], Awaitable[tuple[str, str] | None]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Methods that carry no body, so no digest is required of them.
_BODILESS = frozenset({"GET", "HEAD"})


# --- What both sides share -------------------------------------------------------------------


def host_header(parts: SplitResult) -> str:
    """``host[:port]`` as an HTTP client sends it: no user info, no default port."""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


def request_target(parts: SplitResult, *, with_query: bool = True) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if with_query and parts.query else path


def http_date(moment: datetime) -> str:
    """RFC 7231 ``IMF-fixdate``: ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    if moment.tzinfo is None:
        raise ValueError("a naive time has no place in a Date header")
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _b64(data: bytes) -> str:
    return base64.standard_b64encode(data).decode("ascii")


# --- Signing -----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _secret(key_id: str, private_pem: str) -> CryptographicSecret:
    """Parsing an RSA key costs more than signing with it, and a worker signs with few keys."""
    return CryptographicSecret.from_pem(key_id, private_pem)


def body_digest(body: bytes) -> str:
    """The body's SHA-256, base64: what ``Digest`` and ``Content-Digest`` carry."""
    return _b64(hashlib.sha256(body).digest())


def sign_request(
    method: str, url: str, body: bytes | None, signer: Signer, *, now: datetime | None = None
) -> dict[str, str]:
    """The headers that sign a request: Host, Date, Digest (with a body) and Signature."""
    digest = None if body is None else body_digest(body)
    return sign_digest(method, url, digest, signer, now=now)


def sign_digest(
    method: str, url: str, digest: str | None, signer: Signer, *, now: datetime | None = None
) -> dict[str, str]:
    """As ``sign_request``, from the body's digest: what a signing process is handed, since
    one activity's body, sent to many inboxes, is digested once."""
    parts = urlsplit(url)
    headers = {"Host": host_header(parts), "Date": http_date(now or datetime.now(UTC))}
    if digest is not None:
        headers["Digest"] = f"SHA-256={digest}"
        headers["Content-Digest"] = f"sha-256=:{digest}:"
    covered = [("(request-target)", f"{method.lower()} {request_target(parts)}")]
    covered += [
        (name.lower(), headers[name]) for name in ("Host", "Date", "Digest") if name in headers
    ]
    message = "\n".join(f"{name}: {value}" for name, value in covered)
    signature = _secret(signer.key_id, signer.private_pem).sign(message)
    names = " ".join(name for name, _ in covered)
    headers["Signature"] = (
        f'keyId="{signer.key_id}",algorithm="rsa-sha256",headers="{names}",signature="{signature}"'
    )
    return headers


# --- Reading a signature -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    method: str
    parts: SplitResult
    url: str
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True)
class _Signature:
    """A signature as received, whatever its format, with the bases it may have signed."""

    key_id: str
    algorithm: str  # "" when the sender left it to the key
    covered: frozenset[str]
    created: int | None
    expires: int | None
    value: bytes
    # More than one when the sender may have built the base differently (query or not).
    bases: tuple[bytes, ...]


_CAVAGE_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^",\s]*))\s*(?:,|$)')
_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_RFC9421_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "ed25519"})


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), value)
    return lowered


def _header(request: _Request, name: str) -> str:
    if name not in request.headers:
        raise SignatureError(f"signed header {name} is missing")
    return request.headers[name].strip()


def _cavage_params(header: str) -> dict[str, str]:
    params: dict[str, str] = {}
    position = 0
    while position < len(header):
        match = _CAVAGE_PARAM.match(header, position)
        if match is None or match.end() == position:
            raise SignatureError("malformed Signature header")
        name, quoted, bare = match.groups()
        params[name] = quoted if quoted is not None else bare
        position = match.end()
    return params


def _int_param(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SignatureError(f"malformed signature parameter {name}") from None


def _parse_cavage(request: _Request) -> _Signature:
    params = _cavage_params(request.headers["signature"])
    if "keyId" not in params or "signature" not in params:
        raise SignatureError("malformed Signature header: keyId and signature are required")
    algorithm = params.get("algorithm", "").lower()
    if algorithm and algorithm not in _CAVAGE_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm {algorithm}")
    try:
        value = base64.b64decode(params["signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed signature value") from None
    # The draft's defaults, as Mastodon reads them.
    default_fields = "date" if algorithm == "rsa-sha256" else "(created)"
    fields = params.get("headers", default_fields).lower().split()
    created = _int_param(params.get("created"), "created")
    expires = _int_param(params.get("expires"), "expires")
    targets = [True, False] if request.parts.query else [True]
    bases = tuple(
        _cavage_base(request, fields, created, expires, with_query=with_query).encode()
        for with_query in targets
    )
    return _Signature(params["keyId"], algorithm, frozenset(fields), created, expires, value, bases)


def _cavage_base(
    request: _Request,
    fields: list[str],
    created: int | None,
    expires: int | None,
    *,
    with_query: bool,
) -> str:
    lines = []
    for name in fields:
        if name == "(request-target)":
            target = request_target(request.parts, with_query=with_query)
            value = f"{request.method.lower()} {target}"
        elif name in ("(created)", "(expires)"):
            moment = created if name == "(created)" else expires
            if moment is None:
                raise SignatureError(f"signature covers {name} without its parameter")
            value = str(moment)
        else:
            value = _header(request, name)
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _parse_rfc9421(request: _Request) -> _Signature:
    raw_input = request.headers["signature-input"]
    inputs = _structured_dictionary(raw_input)
    values = _structured_dictionary(request.headers["signature"])
    label = next((name for name in inputs if name in values), None)
    if label is None:
        raise SignatureError("malformed signature: no Signature for the Signature-Input")
    components, params = _inner_list(inputs[label])
    value = values[label][0] if isinstance(values[label], tuple) else None
    if not isinstance(value, bytes):
        raise SignatureError("malformed signature value")
    key_id = params.get("keyid")
    if not isinstance(key_id, str):
        raise SignatureError("malformed signature: keyid is required")
    algorithm = str(params.get("alg", "")).lower()
    if algorithm and algorithm not in _RFC9421_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm {algorithm}")
    lines = [f'"{name}": {_component(request, name)}' for name in components]
    # The parameters as signed: canonically serialised, or (one signature only) as written.
    written = [http_sf.ser({label: inputs[label]}).split("=", 1)[1]]
    if len(inputs) == 1:
        written.append(raw_input.partition("=")[2].strip())
    bases = tuple(
        "\n".join([*lines, f'"@signature-params": {params_text}']).encode()
        for params_text in dict.fromkeys(written)
    )
    return _Signature(
        key_id,
        algorithm,
        frozenset(components),
        _int_param(params.get("created"), "created"),
        _int_param(params.get("expires"), "expires"),
        value,
        bases,
    )


def _structured_dictionary(header: str) -> dict[str, Any]:
    try:
        parsed = http_sf.parse(header.encode(), tltype="dictionary")
    except (ValueError, UnicodeEncodeError):  # http_sf.StructuredFieldError is a ValueError
        raise SignatureError("malformed Signature-Input or Signature header") from None
    if not isinstance(parsed, dict):
        raise SignatureError("malformed Signature-Input or Signature header")
    return parsed


def _inner_list(member: Any) -> tuple[list[str], dict[str, Any]]:
    """The covered components' names; parameters on a component (``;sf``, ``;req``…) are not
    supported, and a signature using them is refused rather than checked wrongly."""
    if not (isinstance(member, tuple) and isinstance(member[0], list)):
        raise SignatureError("malformed Signature-Input")
    names = []
    for item, item_params in member[0]:
        if not isinstance(item, str) or item_params:
            raise SignatureError("unsupported component in Signature-Input")
        names.append(item.lower())
    return names, dict(member[1])


def _component(request: _Request, name: str) -> str:
    parts = request.parts
    match name:
        case "@method":
            return request.method.upper()
        case "@target-uri":
            return request.url
        case "@authority":
            return request.headers.get("host", host_header(parts)).strip().lower()
        case "@scheme":
            return parts.scheme.lower()
        case "@request-target":
            return request_target(parts)
        case "@path":
            return parts.path or "/"
        case "@query":
            return f"?{parts.query}"
        case _ if name.startswith("@"):
            raise SignatureError(f"unsupported component {name}")
        case _:
            return _header(request, name)


def _parse(request: _Request) -> _Signature:
    if "signature" not in request.headers:
        raise SignatureError("request is not signed")
    if "signature-input" in request.headers:
        return _parse_rfc9421(request)
    return _parse_cavage(request)


# --- What a signature must cover, and when --------------------------------------------------


def _check_coverage(request: _Request, signature: _Signature) -> None:
    """What the signature must cover so that it cannot be replayed elsewhere or later, nor
    carry another body: close to Mastodon's rules, which senders already follow."""
    covered = signature.covered
    bodiless = request.method.upper() in _BODILESS
    if "signature-input" in request.headers:
        if "@method" not in covered:
            raise SignatureError("signature does not cover @method")
        located = covered & {"@path", "@request-target"} and covered & {"@authority", "host"}
        if "@target-uri" not in covered and not located:
            raise SignatureError("signature does not cover the target URI")
        has_time = "date" in covered or signature.created is not None
    else:
        if "(request-target)" not in covered:
            raise SignatureError("signature does not cover (request-target)")
        if bodiless and "host" not in covered:
            raise SignatureError("signature does not cover host")
        has_time = bool(covered & {"date", "(created)"})
    if not has_time:
        raise SignatureError("signature covers neither date nor created")
    if not bodiless and not covered & {"digest", "content-digest"}:
        raise SignatureError("signature does not cover the digest")


def _check_time(
    request: _Request, signature: _Signature, now: datetime, window_seconds: int
) -> None:
    """Both times, when both are given, must be recent. ``_check_coverage`` made sure that one
    of them is signed (and a signed Date that is absent already failed parsing)."""
    window = timedelta(seconds=window_seconds)
    date = request.headers.get("date")
    if date is not None:
        try:
            sent = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            raise SignatureError("malformed Date header") from None
        sent = sent if sent.tzinfo else sent.replace(tzinfo=UTC)
        if abs(now - sent) > window:
            raise SignatureError("Date outside the accepted window")
    if signature.created is not None:
        created = datetime.fromtimestamp(signature.created, UTC)
        if abs(now - created) > window:
            raise SignatureError("signature created outside the accepted window")
    if signature.expires is not None and datetime.fromtimestamp(signature.expires, UTC) < now:
        raise SignatureError("signature expired")


def _digest_header_matches(header: str, body: bytes) -> bool:
    """``Digest: SHA-256=…[, SHA-512=…]``: every algorithm we know must match, one at least."""
    hashes = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    known = 0
    for entry in header.split(","):
        algorithm, _, value = entry.strip().partition("=")
        algorithm = algorithm.lower()
        if algorithm in hashes:
            known += 1
            if value != _b64(hashes[algorithm](body).digest()):
                return False
    return known > 0


def _check_digest(request: _Request, body: bytes) -> None:
    """Every digest sent must match. That a POST carries one is already settled: the signature
    must cover one (``_check_coverage``), and a covered header that is absent fails parsing."""
    headers = request.headers
    if "digest" in headers and not _digest_header_matches(headers["digest"], body):
        raise SignatureError("Digest does not match the body")
    content_digest = headers.get("content-digest")
    if content_digest is not None and not validate_digest({"content-digest": content_digest}, body):
        raise SignatureError("Content-Digest does not match the body")


# --- Keys ------------------------------------------------------------------------------------


def _identifier(material: tuple[str, str], algorithm: str) -> CryptographicIdentifier:
    key_text, owner = material
    try:
        if key_text.lstrip().startswith("-----BEGIN"):
            identifier = CryptographicIdentifier.from_pem(key_text, owner)
        else:
            identifier = CryptographicIdentifier.from_tuple(owner, key_text)
    except (ValueError, TypeError, IndexError):
        raise SignatureError("the signer's key is unusable") from None
    key = identifier.public_key
    wants_rsa = algorithm in ("rsa-sha256", "rsa-v1_5-sha256")
    if isinstance(key, rsa.RSAPublicKey) and algorithm != "ed25519":
        return identifier
    if isinstance(key, ed25519.Ed25519PublicKey) and not wants_rsa:
        return identifier
    raise SignatureError("the signer's key does not fit the signature algorithm")


def _verifies(signature: _Signature, material: tuple[str, str]) -> str | None:
    """The key's controller when one of the possible bases verifies."""
    identifier = _identifier(material, signature.algorithm)
    for base in signature.bases:
        controller = identifier.verify(base, signature.value)
        if controller is not None:
            return controller
    return None


def _verifies_with_cached(signature: _Signature, material: tuple[str, str]) -> str | None:
    """As ``_verifies``, but a cached key that cannot serve is only a reason to refresh it."""
    try:
        return _verifies(signature, material)
    except SignatureError:
        return None


async def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup: KeyLookup,
    *,
    now: datetime,
    window_seconds: int,
) -> SignedBy:
    """Who signed this request; raises SignatureError. Asks ``lookup`` again with
    ``refresh=True`` once when the cached key does not verify (the key may have rotated)."""
    request = _Request(method, urlsplit(url), url, _lower_keys(headers))
    signature = _parse(request)
    _check_coverage(request, signature)
    _check_time(request, signature, now, window_seconds)
    _check_digest(request, body)

    material = await lookup(signature.key_id, False)
    if material is None:
        raise SignatureError("unknown key")
    controller = _verifies_with_cached(signature, material)
    if controller is None:
        refreshed = await lookup(signature.key_id, True)
        if refreshed is None:
            raise SignatureError("unknown key")
        controller = _verifies(signature, refreshed)
    if controller is None:
        raise SignatureError("signature does not verify")
    return SignedBy(signature.key_id, controller)
