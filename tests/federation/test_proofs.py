"""FEP-8b32 proofs, against the FEP's own test vector (written by its authors, not by us)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bovine.crypto.multibase import encode_public_key_to_multibase, multibase_to_private_key
from cryptography.hazmat.primitives.asymmetric import ed25519

from federation.proofs import BadProof, sign, verify

# From fep/8b32/fep-8b32.feature: the secret key, the time, the signed document and the key
# its actor lists.
SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
KEY_ID = "https://server.example/users/alice#ed25519-key"
CREATED = datetime(2023, 2, 24, 23, 36, 38, tzinfo=UTC)
SIGNED: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "data" / "fep" / "8b32-signed.json").read_text()
)


def vector_key() -> ed25519.Ed25519PrivateKey:
    key = multibase_to_private_key(SECRET)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def test_signing_the_vector_gives_the_fep_s_proof() -> None:
    unsigned = {k: v for k, v in SIGNED.items() if k != "proof"}
    assert sign(unsigned, vector_key(), KEY_ID, created=CREATED) == SIGNED


def test_the_fep_s_signed_document_verifies_with_its_actor_s_key() -> None:
    assert encode_public_key_to_multibase(vector_key().public_key()) == PUBLIC
    assert verify(SIGNED, PUBLIC) == KEY_ID


def test_the_integrity_context_is_added_when_missing() -> None:
    document = {"@context": "https://www.w3.org/ns/activitystreams", "type": "Offer"}
    signed = sign(document, vector_key(), KEY_ID, created=CREATED)
    assert signed["@context"] == [
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/data-integrity/v2",
    ]
    assert signed["proof"]["@context"] == signed["@context"]
    assert verify(signed, PUBLIC) == KEY_ID


def _changed(change: str) -> dict[str, Any]:
    document = copy.deepcopy(SIGNED)
    if change == "content":
        document["object"]["content"] = "Hello world!"
    elif change == "amount":
        document["object"]["location"]["latitude"] = 25.273963
    elif change == "created":
        document["proof"]["created"] = "2023-02-24T23:36:39Z"
    elif change == "key id":
        document["proof"]["verificationMethod"] = "https://evil.example/users/mallory#key"
    elif change == "proof context":
        document["proof"]["@context"] = ["https://www.w3.org/ns/activitystreams"]
    return document


@pytest.mark.parametrize("change", ["content", "amount", "created", "key id", "proof context"])
def test_any_change_breaks_the_proof(change: str) -> None:
    with pytest.raises(BadProof):
        verify(_changed(change), PUBLIC)


def test_another_key_does_not_verify() -> None:
    other = encode_public_key_to_multibase(ed25519.Ed25519PrivateKey.generate().public_key())
    with pytest.raises(BadProof, match="does not match"):
        verify(SIGNED, other)


@pytest.mark.parametrize(
    ("proof", "reason"),
    [
        (None, "no proof"),
        ([], "not one object"),
        ({"type": "RsaSignature2017"}, "cryptosuite"),
        ({**SIGNED["proof"], "proofPurpose": "authentication"}, "purpose"),
        ({**SIGNED["proof"], "proofValue": ""}, "no proofValue"),
        ({**SIGNED["proof"], "proofValue": "not multibase"}, "unreadable"),
    ],
)
def test_malformed_proofs_are_refused_with_their_reason(proof: Any, reason: str) -> None:
    document = {k: v for k, v in SIGNED.items() if k != "proof"}
    if proof is not None:
        document["proof"] = proof
    with pytest.raises(BadProof, match=reason):
        verify(document, PUBLIC)
