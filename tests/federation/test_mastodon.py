"""A Mastodon account follows a commons: its Follow, signed its way, gets an Accept that verifies.

The payloads are the shapes Mastodon 4.x sends (tests/data/mastodon/), signed the way it signs
(draft-cavage ``rsa-sha256`` over ``(request-target) host date digest content-type``) by code
written here, not by our signer. The Accept that comes back is checked with ``httpsig``, an
implementation we did not write either. Mastodon's server is faked at the transport (respx):
it is a remote host.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

import httpsig
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from httpx import Request, Response
from starlette.testclient import TestClient
from support import make_settings, post_form, sign_up

from federation.worker import Worker
from instance.app import create_app
from instance.config import Settings

DATA = Path(__file__).parent.parent / "data" / "mastodon"
MASTODON_ACCEPT = (
    "application/activity+json, "
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams", text/html;q=0.1'
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # mastodon.example resolves nowhere: allow "private" addresses so the check does not
    # refuse a host that respx answers for. The worker runs when the test says so.
    return make_settings(
        database_url,
        tmp_path,
        federation={"allow_private_addresses": True, "run_worker": False},
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://testserver") as test_client:
        yield test_client


def mastodon_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def signed_like_mastodon(key: rsa.RSAPrivateKey, url: str, body: bytes) -> dict[str, str]:
    parts = urlsplit(url)
    headers = {
        "Host": parts.netloc,
        "Date": formatdate(usegmt=True),
        "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "Content-Type": "application/activity+json",
    }
    covered = ("Host", "Date", "Digest", "Content-Type")
    signed = "\n".join(
        [f"(request-target): post {parts.path}"]
        + [f"{name.lower()}: {headers[name]}" for name in covered]
    )
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        'keyId="https://mastodon.example/users/alice#main-key",algorithm="rsa-sha256",'
        'headers="(request-target) host date digest content-type",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return headers


def make_commons(client: TestClient) -> str:
    sign_up(client, "coordination@tiers-lieux.example")
    org = post_form(client, "/orgs/new", {"name": "Tiers-Lieux", "kind": "network"})
    assert org.status_code == 303, org.text
    commons = post_form(
        client,
        "/commons/new",
        {
            "name": "YesWiki",
            "slug": "yeswiki",
            "kind": "software",
            "maturity": "stable",
            "summary": "Un wiki pour coopérer",
            "licence": "AGPL-3.0-or-later",
            "maintainers": ["tiers-lieux"],
        },
    )
    assert commons.status_code == 303, commons.text
    return "http://testserver/commons/yeswiki"


def test_a_mastodon_follow_gets_an_accept_that_verifies(client: TestClient) -> None:
    commons_uri = make_commons(client)
    key = mastodon_key()
    actor = json.loads((DATA / "actor.json").read_text())
    actor["publicKey"]["publicKeyPem"] = public_pem(key)
    follow = json.loads((DATA / "follow.json").read_text())
    follow["object"] = commons_uri
    received: list[Request] = []

    with respx.mock(assert_all_called=False) as mastodon:
        fetches = mastodon.get("https://mastodon.example/users/alice").mock(
            return_value=Response(200, json=actor, headers={"content-type": "application/json"})
        )
        mastodon.post("https://mastodon.example/users/alice/inbox").mock(
            side_effect=lambda request: received.append(request) or Response(202)
        )
        body = json.dumps(follow).encode()
        url = "http://testserver/commons/yeswiki/inbox"
        response = client.post(url, content=body, headers=signed_like_mastodon(key, url, body))
        assert response.status_code == 202, response.text
        worker = Worker(client.app.state.federation)  # type: ignore[attr-defined]
        client.portal.call(worker.run_once)  # type: ignore[union-attr]

    assert fetches.called
    # Our key fetch was signed, as authorized-fetch servers require.
    assert "signature" in fetches.calls[0].request.headers
    [accept_request] = received  # to alice's own inbox: the Accept is for her alone
    accept = json.loads(accept_request.content)
    assert accept["type"] == "Accept"
    assert accept["actor"] == commons_uri
    assert accept["object"]["id"] == follow["id"]
    assert accept["object"]["actor"] == actor["id"]

    # The Accept's signature verifies with the key our actor document publishes.
    document = client.get("/commons/yeswiki", headers={"accept": MASTODON_ACCEPT}).json()
    assert accept_request.headers["signature"].startswith(f'keyId="{document["publicKey"]["id"]}"')
    verifier = httpsig.HeaderVerifier(
        headers=dict(accept_request.headers),
        secret=document["publicKey"]["publicKeyPem"],
        method="POST",
        path="/users/alice/inbox",
        host="mastodon.example",
        required_headers=["(request-target)", "host", "date", "digest"],
        sign_header="signature",
    )
    assert verifier.verify()
    digest = base64.b64encode(hashlib.sha256(accept_request.content).digest()).decode()
    assert accept_request.headers["digest"] == f"SHA-256={digest}"

    followers = client.get("/commons/yeswiki/followers", headers={"accept": MASTODON_ACCEPT})
    assert followers.json()["totalItems"] == 1


def test_a_mastodon_follower_receives_each_new_improvement_as_an_article(
    client: TestClient,
) -> None:
    """What Mastodon shows of an Article is its name, summary and link (it drops ``content``):
    the follower's server gets a Create it can show and verify, then an Update (with
    ``updated``, which Mastodon needs to edit a post) when the improvement is cancelled."""
    commons_uri = make_commons(client)
    key = mastodon_key()
    actor = json.loads((DATA / "actor.json").read_text())
    actor["publicKey"]["publicKeyPem"] = public_pem(key)
    follow = json.loads((DATA / "follow.json").read_text())
    follow["object"] = commons_uri
    shared: list[Request] = []

    def receive(request: Request) -> Response:
        shared.append(request)
        return Response(202)

    worker = Worker(client.app.state.federation)  # type: ignore[attr-defined]

    with respx.mock(assert_all_called=False) as mastodon:
        mastodon.get("https://mastodon.example/users/alice").mock(
            return_value=Response(200, json=actor, headers={"content-type": "application/json"})
        )
        mastodon.post("https://mastodon.example/users/alice/inbox").mock(return_value=Response(202))
        mastodon.post("https://mastodon.example/inbox").mock(side_effect=receive)
        body = json.dumps(follow).encode()
        url = "http://testserver/commons/yeswiki/inbox"
        response = client.post(url, content=body, headers=signed_like_mastodon(key, url, body))
        assert response.status_code == 202, response.text
        client.portal.call(worker.run_once)  # type: ignore[union-attr]

        improvement = {
            "title": "Export PDF",
            "description": "Un **export** propre, <script>alert(1)</script>",
            "budget": "4000",
        }
        page = "/commons/yeswiki/improvements/1"
        created = post_form(client, "/commons/yeswiki/improvements/new", improvement)
        assert created.status_code == 303, created.text
        client.portal.call(worker.run_once)  # type: ignore[union-attr]
        assert shared == []  # a draft is never sent
        hidden = client.get(page, headers={"accept": MASTODON_ACCEPT})
        assert hidden.status_code == 404  # nor shown to servers
        opened = post_form(client, f"{page}/status", {"status": "open"}, page=page)
        assert opened.status_code == 303, opened.text
        client.portal.call(worker.run_once)  # type: ignore[union-attr]
        cancelled = post_form(client, f"{page}/status", {"status": "cancelled"}, page=page)
        assert cancelled.status_code == 303, cancelled.text
        client.portal.call(worker.run_once)  # type: ignore[union-attr]

    create_request, update_request = shared  # to the shared inbox of alice's server
    create = json.loads(create_request.content)
    assert (create["type"], create["actor"]) == ("Create", commons_uri)
    assert create["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    article = create["object"]
    assert article["type"] == "Article"
    assert article["id"] == article["url"] == f"http://testserver{page}"
    assert article["attributedTo"] == commons_uri
    assert article["name"] == "Export PDF"
    assert article["summary"] == "Budget €4,000 · 0% funded"  # plain text, no markup
    assert "<" not in article["summary"] and "<script" not in article["content"]
    assert "published" in article

    document = client.get("/commons/yeswiki", headers={"accept": MASTODON_ACCEPT}).json()
    for request in (create_request, update_request):
        verifier = httpsig.HeaderVerifier(
            headers=dict(request.headers),
            secret=document["publicKey"]["publicKeyPem"],
            method="POST",
            path="/inbox",
            host="mastodon.example",
            required_headers=["(request-target)", "host", "date", "digest"],
            sign_header="signature",
        )
        assert verifier.verify()
        digest = base64.b64encode(hashlib.sha256(request.content).digest()).decode()
        assert request.headers["digest"] == f"SHA-256={digest}"

    update = json.loads(update_request.content)
    assert (update["type"], update["object"]["id"]) == ("Update", article["id"])
    assert update["object"]["summary"] == "Budget €4,000 · 0% funded · Cancelled"
    assert update["object"]["updated"] >= update["object"]["published"]

    # Fetching its id (a Mastodon search for the address) gives the Article as last sent.
    fetched = client.get(page, headers={"accept": MASTODON_ACCEPT})
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith("application/activity+json")
    assert {k: v for k, v in fetched.json().items() if k != "@context"} == update["object"]
