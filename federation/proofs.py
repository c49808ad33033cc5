"""Object integrity proofs (FEP-8b32, cryptosuite ``eddsa-jcs-2022``): objects that vouch for
themselves.

An HTTP signature proves who *delivered* an activity. A pledge made on a CAE's instance and
relayed by the commons' instance to a funder's is delivered by the relay, not by its author:
the proof, made by the author's Ed25519 key (the ``assertionMethod`` Multikey every actor
lists, FEP-521a), lets the funder check it without asking the CAE's instance.

Pure functions: JCS (RFC 8785) canonical form, SHA-256, Ed25519; no JSON-LD processing, no
network. Finding the key of a ``verificationMethod`` is the caller's business.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import jcs
from bovine.crypto.multibase import (
    decode_multibase_public_key,
    multibase_58btc_encode,
    multibase_decode,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

CRYPTOSUITE = "eddsa-jcs-2022"
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v2"


class BadProof(ValueError):
    """A proof that is missing, malformed, or does not verify; the message says which."""


def _hash(value: Any) -> bytes:
    return hashlib.sha256(jcs.canonicalize(value)).digest()


def _signing_input(document: dict[str, Any], options: dict[str, Any]) -> bytes:
    """What is signed: the proof's options, then the document, each canonical and hashed."""
    return _hash(options) + _hash(document)


def _with_integrity_context(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the data-integrity context in its ``@context`` (the FEP asks for it,
    so that JSON-LD readers understand ``proof``)."""
    context = document.get("@context")
    contexts = [context] if isinstance(context, (str, dict)) else list(context or [])
    if DATA_INTEGRITY_CONTEXT not in contexts:
        contexts.append(DATA_INTEGRITY_CONTEXT)
    return {**document, "@context": contexts}


def sign(
    document: dict[str, Any],
    private_key: ed25519.Ed25519PrivateKey,
    verification_method: str,
    *,
    created: datetime,
) -> dict[str, Any]:
    """A copy of ``document`` with a ``proof`` by ``private_key`` (any proof it had is
    replaced). ``verification_method`` is the key's id, ``<actor>#ed25519-key``."""
    unsigned = _with_integrity_context({k: v for k, v in document.items() if k != "proof"})
    options = {
        "@context": unsigned["@context"],
        "type": "DataIntegrityProof",
        "cryptosuite": CRYPTOSUITE,
        "verificationMethod": verification_method,
        "proofPurpose": "assertionMethod",
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    signature = private_key.sign(_signing_input(unsigned, options))
    return {**unsigned, "proof": {**options, "proofValue": multibase_58btc_encode(signature)}}


def proof_of(document: dict[str, Any]) -> dict[str, Any]:
    """The document's one proof, checked for shape; BadProof otherwise."""
    proof = document.get("proof")
    if not isinstance(proof, dict):
        raise BadProof("no proof" if proof is None else "the proof is not one object")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise BadProof(f"not a DataIntegrityProof with cryptosuite {CRYPTOSUITE}")
    if proof.get("proofPurpose") != "assertionMethod":
        raise BadProof("the proof's purpose is not assertionMethod")
    for name in ("verificationMethod", "proofValue"):
        if not isinstance(proof.get(name), str) or not proof[name]:
            raise BadProof(f"the proof has no {name}")
    return proof


def verify(document: dict[str, Any], public_multikey: str) -> str:
    """The ``verificationMethod`` that signed ``document``, once its proof checks out with
    ``public_multikey`` (an Ed25519 Multikey, ``z6Mk…``); BadProof otherwise.

    Which actor owns that key, and whether that actor may speak for the document, is for the
    caller to check: a valid proof by someone else's key proves nothing about the object.
    """
    proof = proof_of(document)
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    if "@context" in options and options["@context"] != unsigned.get("@context"):
        raise BadProof("the proof's @context is not the document's")
    try:
        public_key = decode_multibase_public_key(public_multikey)
        signature = multibase_decode(proof["proofValue"])
    except Exception as error:  # bovine raises plain errors for bad multibase
        raise BadProof(f"unreadable key or signature: {error}") from None
    if not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise BadProof("the key is not an Ed25519 key")
    try:
        public_key.verify(signature, _signing_input(unsigned, options))
    except InvalidSignature:
        raise BadProof("the signature does not match the document") from None
    return str(proof["verificationMethod"])


def private_key_from_pem(pem: str) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key as ``actor_key.ed25519_private_pem`` stores it."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key
