"""HTTP signatures: what we sign verifies here and elsewhere; what we receive is checked strictly.

Signatures in other formats (hs2019, RFC 9421, bovine's query-less target) are built in these
tests by hand, from the specifications, not with our signing code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import httpsig
import pytest
from bovine.crypto import generate_rsa_public_private_key
from bovine.crypto.http_signature import build_signature
from bovine.crypto.multibase import encode_public_key_to_multibase
from bovine.crypto.types import CryptographicSecret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from federation.keys import Signer
from federation.signatures import SignatureError, SignedBy, sign_request, verify_request

ACTOR = "https://remote.example/users/alice"
KEY_ID = f"{ACTOR}#main-key"
NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
WINDOW = 300
BODY = b'{"type": "Follow", "actor": "https://remote.example/users/alice"}'
INBOX = "https://tiers-lieux.example/inbox"
OUTBOX_PAGE = "https://tiers-lieux.example/actor/outbox?page=2"


@cache
def rsa_pair(name: str) -> tuple[str, str]:
    """(public PEM, private PEM), one pair per name for the whole run."""
    return generate_rsa_public_private_key()


def signer(name: str = "alice") -> Signer:
    return Signer(KEY_ID, rsa_pair(name)[1])


@dataclass
class Keys:
    """A key lookup as the inbox gives one: answers and records how it was asked."""

    cached: tuple[str, str] | None
    fresh: tuple[str, str] | None = None
    calls: list[tuple[str, bool]] = field(default_factory=list)

    async def __call__(self, key_id: str, refresh: bool) -> tuple[str, str] | None:
        self.calls.append((key_id, refresh))
        return self.fresh if refresh else self.cached


def alice_keys() -> Keys:
    """Alice's key, cached and still the same when fetched again."""
    return Keys((rsa_pair("alice")[0], ACTOR), (rsa_pair("alice")[0], ACTOR))


async def verify(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes = b"",
    keys: Keys | None = None,
    now: datetime = NOW,
) -> SignedBy:
    return await verify_request(
        method, url, headers, body, keys or alice_keys(), now=now, window_seconds=WINDOW
    )


async def refused(
    method: str, url: str, headers: dict[str, str], body: bytes = b"", keys: Keys | None = None
) -> str:
    with pytest.raises(SignatureError) as caught:
        await verify(method, url, headers, body, keys)
    assert caught.value.status == 401
    return caught.value.reason


def rsa_sign(private_pem: str, message: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), SHA256())).decode()


def sha256_b64(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


# --- What we send -------------------------------------------------------------------------------


def test_get_headers_sign_target_with_query_host_and_date() -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW)

    assert headers["Host"] == "tiers-lieux.example"
    assert headers["Date"] == "Fri, 14 Mar 2025 15:09:26 GMT"
    assert "Digest" not in headers
    assert f'keyId="{KEY_ID}"' in headers["Signature"]
    assert 'algorithm="rsa-sha256"' in headers["Signature"]
    assert 'headers="(request-target) host date"' in headers["Signature"]
    # The signed string, rebuilt by hand, verifies with the public key.
    signed = re.search(r'signature="([^"]+)"', headers["Signature"])
    assert signed
    public = serialization.load_pem_public_key(rsa_pair("alice")[0].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    message = (
        "(request-target): get /actor/outbox?page=2\n"
        "host: tiers-lieux.example\n"
        "date: Fri, 14 Mar 2025 15:09:26 GMT"
    )
    public.verify(base64.b64decode(signed.group(1)), message.encode(), padding.PKCS1v15(), SHA256())


def test_post_headers_carry_the_body_digest() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)

    assert headers["Digest"] == f"SHA-256={sha256_b64(BODY)}"
    assert headers["Content-Digest"] == f"sha-256=:{sha256_b64(BODY)}:"
    assert 'headers="(request-target) host date digest"' in headers["Signature"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://remote.example:8443/inbox", "remote.example:8443"),
        ("https://remote.example:443/inbox", "remote.example"),
        ("http://127.0.0.1:8000/inbox", "127.0.0.1:8000"),
        ("https://Remote.Example/inbox", "remote.example"),
    ],
)
def test_host_header_is_what_an_http_client_sends(url: str, host: str) -> None:
    assert sign_request("GET", url, None, signer(), now=NOW)["Host"] == host


def test_signing_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError):
        sign_request("GET", INBOX, None, signer(), now=datetime(2025, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("method", "url", "body", "path"),
    [
        ("GET", OUTBOX_PAGE, None, "/actor/outbox?page=2"),
        ("POST", INBOX, BODY, "/inbox"),
    ],
)
def test_an_independent_implementation_verifies_our_signatures(
    method: str, url: str, body: bytes | None, path: str
) -> None:
    """httpsig (2019, pycryptodome) shares no code with us or bovine."""
    headers = sign_request(method, url, body, signer())
    required = ["(request-target)", "host", "date"] + (["digest"] if body else [])

    def verifier(signed_path: str) -> httpsig.HeaderVerifier:
        return httpsig.HeaderVerifier(
            headers,
            rsa_pair("alice")[0],
            required_headers=required,
            method=method,
            path=signed_path,
            sign_header="signature",
        )

    assert verifier(path).verify() is True
    assert verifier(path + "x").verify() is False


# --- Round trips -----------------------------------------------------------------------------


async def test_signed_get_with_query_string_verifies() -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW)

    assert await verify("GET", OUTBOX_PAGE, headers) == SignedBy(KEY_ID, ACTOR)


async def test_signed_post_verifies_and_names_the_keys_owner() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    keys = Keys((rsa_pair("alice")[0], "https://remote.example/the-owner"))

    signed_by = await verify("POST", INBOX, headers, BODY, keys)

    assert signed_by == SignedBy(KEY_ID, "https://remote.example/the-owner")
    assert keys.calls == [(KEY_ID, False)]


async def test_header_names_are_case_insensitive() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    shouted = {name.upper(): value for name, value in headers.items()}
    whispered = {name.lower(): value for name, value in headers.items()}

    assert (await verify("POST", INBOX, shouted, BODY)).key_id == KEY_ID
    assert (await verify("POST", INBOX, whispered, BODY)).key_id == KEY_ID


async def test_a_date_within_the_window_is_accepted() -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW - timedelta(minutes=4))

    assert (await verify("GET", OUTBOX_PAGE, headers)).controller == ACTOR


async def test_target_without_query_is_accepted_as_bovine_and_old_mastodon_sign_it() -> None:
    """bovine signs (and checks) ``(request-target)`` without the query string."""
    date = "Fri, 14 Mar 2025 15:09:26 GMT"
    secret = CryptographicSecret.from_pem(KEY_ID, rsa_pair("alice")[1])
    signature = (
        build_signature("tiers-lieux.example", "get", "/actor/outbox")
        .with_field("date", date)
        .sign_for_http_draft(secret)
    )
    headers = {"Host": "tiers-lieux.example", "Date": date, "Signature": signature}

    assert (await verify("GET", OUTBOX_PAGE, headers)).key_id == KEY_ID


# --- Refusals ------------------------------------------------------------------------------------


async def test_unsigned_request_is_refused() -> None:
    headers = {"Host": "tiers-lieux.example", "Date": "Fri, 14 Mar 2025 15:09:26 GMT"}

    assert await refused("POST", INBOX, headers, BODY) == "request is not signed"


async def test_tampered_body_is_refused() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)

    reason = await refused("POST", INBOX, headers, BODY.replace(b"Follow", b"Delete"))

    assert reason == "Digest does not match the body"


async def test_a_content_digest_that_does_not_match_is_refused() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    headers["Content-Digest"] = f"sha-256=:{sha256_b64(b'other')}:"

    assert await refused("POST", INBOX, headers, BODY) == "Content-Digest does not match the body"


async def test_a_post_whose_signature_covers_no_digest_is_refused() -> None:
    """Otherwise anyone holding a signed request could swap its body."""
    headers = sign_request("GET", INBOX, None, signer(), now=NOW)  # signs no digest
    headers["Digest"] = f"SHA-256={sha256_b64(BODY)}"

    assert await refused("POST", INBOX, headers, BODY) == "signature does not cover the digest"


async def test_a_post_without_its_signed_digest_header_is_refused() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    del headers["Digest"], headers["Content-Digest"]

    assert await refused("POST", INBOX, headers, BODY) == "signed header digest is missing"


@pytest.mark.parametrize("minutes", [-10, 10])
async def test_a_date_ten_minutes_off_is_refused(minutes: int) -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW + timedelta(minutes=minutes))

    assert await refused("GET", OUTBOX_PAGE, headers) == "Date outside the accepted window"


async def test_a_missing_date_is_refused() -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW)
    del headers["Date"]

    assert await refused("GET", OUTBOX_PAGE, headers) == "signed header date is missing"


async def test_a_signature_by_another_key_is_refused_after_one_refresh() -> None:
    headers = sign_request("POST", INBOX, BODY, signer("mallory"), now=NOW)
    keys = Keys(cached=(rsa_pair("alice")[0], ACTOR), fresh=(rsa_pair("alice")[0], ACTOR))

    assert await refused("POST", INBOX, headers, BODY, keys) == "signature does not verify"
    assert keys.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_an_unknown_key_is_refused_without_refresh() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    keys = Keys(cached=None)

    assert await refused("POST", INBOX, headers, BODY, keys) == "unknown key"
    assert keys.calls == [(KEY_ID, False)]


@pytest.mark.parametrize(
    ("url", "verified_as"),
    [
        (OUTBOX_PAGE, "https://tiers-lieux.example/actor/outbox?page=3"),
        (OUTBOX_PAGE, "https://tiers-lieux.example/actor/outbox"),
        (INBOX, "https://tiers-lieux.example/other/inbox"),
    ],
)
async def test_a_signature_for_another_target_is_refused(url: str, verified_as: str) -> None:
    headers = sign_request("GET", url, None, signer(), now=NOW)

    assert await refused("GET", verified_as, headers) == "signature does not verify"


async def test_a_signature_for_another_host_is_refused() -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW)
    headers["Host"] = "other.example"

    assert await refused("GET", OUTBOX_PAGE, headers) == "signature does not verify"


@pytest.mark.parametrize(
    "signature",
    [
        "garbage",
        'keyId="https://remote.example/users/alice#main-key"',  # no signature
        'keyId="k",headers="(request-target) host date",signature="not base64!"',
        'keyId="k",algorithm="rsa-sha512",headers="(request-target) host date",signature="AA=="',
    ],
)
async def test_a_malformed_signature_is_refused(signature: str) -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW)
    headers["Signature"] = signature

    reason = await refused("GET", OUTBOX_PAGE, headers)

    assert "malformed" in reason or "unsupported" in reason


async def test_a_signature_that_covers_no_target_is_refused() -> None:
    date = "Fri, 14 Mar 2025 15:09:26 GMT"
    message = f"host: tiers-lieux.example\ndate: {date}".encode()
    headers = {
        "Host": "tiers-lieux.example",
        "Date": date,
        "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="host date",'
        f'signature="{rsa_sign(rsa_pair("alice")[1], message)}"',
    }

    assert await refused("GET", OUTBOX_PAGE, headers) == "signature does not cover (request-target)"


async def test_a_get_whose_signature_covers_no_host_is_refused() -> None:
    date = "Fri, 14 Mar 2025 15:09:26 GMT"
    message = f"(request-target): get /actor/outbox?page=2\ndate: {date}".encode()
    headers = {
        "Host": "tiers-lieux.example",
        "Date": date,
        "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) date",'
        f'signature="{rsa_sign(rsa_pair("alice")[1], message)}"',
    }

    assert await refused("GET", OUTBOX_PAGE, headers) == "signature does not cover host"


async def test_a_signature_that_covers_no_time_is_refused() -> None:
    message = b"(request-target): get /actor/outbox?page=2\nhost: tiers-lieux.example"
    headers = {
        "Host": "tiers-lieux.example",
        "Signature": f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host",'
        f'signature="{rsa_sign(rsa_pair("alice")[1], message)}"',
    }

    reason = await refused("GET", OUTBOX_PAGE, headers)

    assert reason == "signature covers neither date nor created"


async def test_an_unreadable_date_is_refused() -> None:
    headers = sign_request("GET", OUTBOX_PAGE, None, signer(), now=NOW)
    headers["Date"] = "yesterday"

    assert await refused("GET", OUTBOX_PAGE, headers) == "malformed Date header"


# --- Key rotation ------------------------------------------------------------------------------


async def test_a_rotated_key_is_fetched_again_once() -> None:
    headers = sign_request("POST", INBOX, BODY, signer("rotated"), now=NOW)
    keys = Keys(cached=(rsa_pair("alice")[0], ACTOR), fresh=(rsa_pair("rotated")[0], ACTOR))

    signed_by = await verify("POST", INBOX, headers, BODY, keys)

    assert signed_by == SignedBy(KEY_ID, ACTOR)
    assert keys.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_a_key_that_is_gone_after_refresh_is_unknown() -> None:
    headers = sign_request("POST", INBOX, BODY, signer("rotated"), now=NOW)
    keys = Keys(cached=(rsa_pair("alice")[0], ACTOR), fresh=None)

    assert await refused("POST", INBOX, headers, BODY, keys) == "unknown key"


async def test_an_unusable_cached_key_is_refreshed() -> None:
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    keys = Keys(cached=("not a key", ACTOR), fresh=(rsa_pair("alice")[0], ACTOR))

    assert (await verify("POST", INBOX, headers, BODY, keys)).controller == ACTOR
    assert keys.calls == [(KEY_ID, False), (KEY_ID, True)]


# --- hs2019 -------------------------------------------------------------------------------------


def hs2019_headers(fields: str, lines: list[str], sign: str, extra: str = "") -> dict[str, str]:
    return {
        "Host": "tiers-lieux.example",
        "Date": "Fri, 14 Mar 2025 15:09:26 GMT",
        "Digest": f"SHA-256={sha256_b64(BODY)}",
        "Signature": f'keyId="{KEY_ID}",algorithm="hs2019",{extra}headers="{fields}",'
        f'signature="{sign}"',
    }


async def test_hs2019_with_an_rsa_key_is_accepted() -> None:
    lines = [
        "(request-target): post /inbox",
        "host: tiers-lieux.example",
        "date: Fri, 14 Mar 2025 15:09:26 GMT",
        f"digest: SHA-256={sha256_b64(BODY)}",
    ]
    signature = rsa_sign(rsa_pair("alice")[1], "\n".join(lines).encode())
    headers = hs2019_headers("(request-target) host date digest", lines, signature)

    assert (await verify("POST", INBOX, headers, BODY)).key_id == KEY_ID


async def test_hs2019_with_created_and_an_ed25519_multikey_is_accepted() -> None:
    """The FEP-521a form of a key (multibase) is what some servers hand out."""
    private = ed25519.Ed25519PrivateKey.generate()
    created = int(NOW.timestamp()) - 30
    lines = [
        "(request-target): post /inbox",
        f"(created): {created}",
        f"digest: SHA-256={sha256_b64(BODY)}",
    ]
    signature = base64.b64encode(private.sign("\n".join(lines).encode())).decode()
    headers = hs2019_headers(
        "(request-target) (created) digest", lines, signature, extra=f'created="{created}",'
    )
    keys = Keys((encode_public_key_to_multibase(private.public_key()), ACTOR))

    assert (await verify("POST", INBOX, headers, BODY, keys)).controller == ACTOR


async def test_rsa_sha256_named_with_an_ed25519_key_is_refused() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    headers = sign_request("POST", INBOX, BODY, signer(), now=NOW)
    keys = Keys(cached=None, fresh=None)
    keys.cached = keys.fresh = (encode_public_key_to_multibase(private.public_key()), ACTOR)

    reason = await refused("POST", INBOX, headers, BODY, keys)

    assert reason == "the signer's key does not fit the signature algorithm"


# --- RFC 9421 ------------------------------------------------------------------------------------

# RFC 9421, appendix B.1.4: the test key test-key-ed25519.
RFC_ED25519_PRIVATE = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
RFC_ED25519_PUBLIC = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""
# RFC 9421, appendix B.2.6: signing a request using ed25519.
RFC_B26_PARAMS = (
    '("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
RFC_B26_BASE = "\n".join(
    [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        f'"@signature-params": {RFC_B26_PARAMS}',
    ]
)
RFC_B26_SIGNATURE = (
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)


def rfc_ed25519_sign(base: str) -> str:
    key = serialization.load_pem_private_key(RFC_ED25519_PRIVATE.encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return base64.b64encode(key.sign(base.encode())).decode()


def test_the_rfc_9421_helpers_reproduce_the_rfcs_own_example() -> None:
    """Ed25519 is deterministic: the hand-written base above is byte for byte the RFC's."""
    assert rfc_ed25519_sign(RFC_B26_BASE) == RFC_B26_SIGNATURE


async def test_the_rfc_example_post_is_refused_for_signing_no_digest() -> None:
    headers = {
        "Host": "example.com",
        "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "Content-Type": "application/json",
        "Content-Length": "18",
        "Signature-Input": f"sig-b26={RFC_B26_PARAMS}",
        "Signature": f"sig-b26=:{RFC_B26_SIGNATURE}:",
    }
    keys = Keys((RFC_ED25519_PUBLIC, "https://example.com/actor"))

    with pytest.raises(SignatureError) as caught:
        await verify_request(
            "POST",
            "https://example.com/foo?param=Value&Pet=dog",
            headers,
            b'{"hello": "world"}',
            keys,
            now=datetime(2021, 4, 20, 2, 7, 55, tzinfo=UTC),
            window_seconds=WINDOW,
        )
    assert caught.value.reason == "signature does not cover the digest"
    assert keys.calls == []


def rfc9421_post(sign: str, *, created: int, alg: str = "") -> dict[str, str]:
    """A POST signed as Mastodon 4.5 signs one: @method, @target-uri, content-digest."""
    content_digest = f"sha-256=:{sha256_b64(BODY)}:"
    alg_param = f';alg="{alg}"' if alg else ""
    params = (
        f'("@method" "@target-uri" "content-digest");created={created};keyid="{KEY_ID}"{alg_param}'
    )
    base = "\n".join(
        [
            '"@method": POST',
            f'"@target-uri": {INBOX}',
            f'"content-digest": {content_digest}',
            f'"@signature-params": {params}',
        ]
    )
    signature = rfc_ed25519_sign(base) if sign == "ed25519" else rsa_sign(sign, base.encode())
    return {
        "Host": "tiers-lieux.example",
        "Content-Digest": content_digest,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{signature}:",
    }


async def test_an_rfc_9421_rsa_signature_is_accepted() -> None:
    headers = rfc9421_post(
        rsa_pair("alice")[1], created=int(NOW.timestamp()), alg="rsa-v1_5-sha256"
    )

    assert await verify("POST", INBOX, headers, BODY) == SignedBy(KEY_ID, ACTOR)


async def test_an_rfc_9421_ed25519_signature_is_accepted() -> None:
    headers = rfc9421_post("ed25519", created=int(NOW.timestamp()) - 60)
    keys = Keys((RFC_ED25519_PUBLIC, ACTOR))

    assert (await verify("POST", INBOX, headers, BODY, keys)).controller == ACTOR


async def test_an_rfc_9421_signature_for_another_body_is_refused() -> None:
    headers = rfc9421_post(rsa_pair("alice")[1], created=int(NOW.timestamp()))

    reason = await refused("POST", INBOX, headers, b"{}")

    assert reason == "Content-Digest does not match the body"


async def test_an_rfc_9421_signature_created_long_ago_is_refused() -> None:
    headers = rfc9421_post(rsa_pair("alice")[1], created=int(NOW.timestamp()) - 3600)

    reason = await refused("POST", INBOX, headers, BODY)

    assert reason == "signature created outside the accepted window"


async def test_an_rfc_9421_signature_for_another_inbox_is_refused() -> None:
    headers = rfc9421_post(rsa_pair("alice")[1], created=int(NOW.timestamp()))

    reason = await refused("POST", "https://tiers-lieux.example/actor/inbox", headers, BODY)

    assert reason == "signature does not verify"


async def test_an_expired_rfc_9421_signature_is_refused() -> None:
    created = int(NOW.timestamp()) - 60
    params = f'("@method" "@target-uri");created={created};expires={created + 30};keyid="{KEY_ID}"'
    base = f'"@method": GET\n"@target-uri": {OUTBOX_PAGE}\n"@signature-params": {params}'
    headers = {
        "Host": "tiers-lieux.example",
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{rsa_sign(rsa_pair('alice')[1], base.encode())}:",
    }

    assert await refused("GET", OUTBOX_PAGE, headers) == "signature expired"
    del headers["Signature-Input"]  # the same Signature read as draft-cavage is nonsense
    assert "malformed" in await refused("GET", OUTBOX_PAGE, headers)


async def test_an_rfc_9421_get_with_query_verifies() -> None:
    created = int(NOW.timestamp())
    params = f'("@method" "@target-uri");created={created};keyid="{KEY_ID}"'
    base = f'"@method": GET\n"@target-uri": {OUTBOX_PAGE}\n"@signature-params": {params}'
    headers = {
        "Host": "tiers-lieux.example",
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{rsa_sign(rsa_pair('alice')[1], base.encode())}:",
    }

    assert (await verify("GET", OUTBOX_PAGE, headers)).key_id == KEY_ID
    assert await refused("GET", OUTBOX_PAGE.replace("2", "3"), headers) == (
        "signature does not verify"
    )
