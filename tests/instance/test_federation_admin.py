"""The federation admin page: who sees it, what blocking and allowing do to the rows, and how
"retry now" puts deliveries back in line without ever sending one twice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from starlette.testclient import TestClient
from support import csrf_token, log_in, make_settings, post_form, sign_up

from catalogue.columns import utcnow
from catalogue.errors import InvalidField
from federation.models import Delivery, DeliveryState, KnownInstance, OutboxActivity
from instance.accounts import create_admin
from instance.app import create_app
from instance.config import Settings
from instance.database import Database
from instance.views.federation_admin import parse_host

PAGE = "/admin/federation"
ADMIN = "root@example.org"
ADMIN_PASSWORD = "an admin password"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """No worker in the app: the rows a test puts in the queue stay as the test left them."""
    return make_settings(database_url, tmp_path, federation={"run_worker": False})


@pytest.fixture
async def admin(client: TestClient, database_url: str) -> TestClient:
    await make_admin(database_url)
    assert log_in(client, ADMIN, ADMIN_PASSWORD).status_code == 303
    return client


async def make_admin(database_url: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        await create_admin(session, ADMIN, ADMIN_PASSWORD, "Admin")
    await database.dispose()


async def add(database_url: str, *rows: Any) -> list[int]:
    """Store the rows in one transaction; returns their ids."""
    database = Database(database_url)
    async with database.session() as session:
        for row in rows:
            session.add(row)
            await session.flush()
        ids = [row.id for row in rows]
        await session.commit()
    await database.dispose()
    return ids


async def activity(database_url: str, kind: str = "Create") -> int:
    number = utcnow().timestamp()
    (activity_id,) = await add(
        database_url,
        OutboxActivity(
            uri=f"http://testserver/activities/{kind}-{number}",
            actor_uri="http://testserver/actor",
            type=kind,
            body="{}",
        ),
    )
    return activity_id


def delivery(activity_id: int, host: str, state: str, **values: Any) -> Delivery:
    settled = state in (DeliveryState.FAILED, DeliveryState.GONE, DeliveryState.SENT)
    values.setdefault("finished_at", utcnow() if settled else None)
    return Delivery(
        activity_id=activity_id,
        inbox=f"https://{host}/users/{state}-{values.pop('n', 0)}/inbox",
        host=host,
        state=state,
        **values,
    )


async def deliveries(database_url: str, activity_id: int, *specs: tuple[str, str]) -> list[int]:
    rows = [delivery(activity_id, host, state, n=n) for n, (host, state) in enumerate(specs)]
    return await add(database_url, *rows)


async def stored(database_url: str, model: Any, **where: Any) -> Any:
    database = Database(database_url)
    async with database.session() as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        row = (await session.exec(query)).first()
    await database.dispose()
    return row


def post(client: TestClient, path: str, data: dict[str, str] | None = None) -> Any:
    return post_form(client, path, data or {}, page=PAGE)


def figure(page: str, label: str) -> int:
    match = re.search(rf"<strong>(\d+)</strong> {label}</li>", page)
    assert match, label
    return int(match.group(1))


# Who sees the page


async def test_an_admin_sees_the_servers_and_the_queue(
    admin: TestClient, database_url: str
) -> None:
    await add(database_url, KnownInstance(host="a.example", note="friendly tiers-lieu"))
    created = await activity(database_url)
    await deliveries(
        database_url,
        created,
        ("a.example", DeliveryState.NEW),
        ("a.example", DeliveryState.NEW),
        ("b.example", DeliveryState.FAILED),
        ("c.example", DeliveryState.GONE),
        ("a.example", DeliveryState.SENT),
    )
    page = admin.get(PAGE)
    assert page.status_code == 200
    text = page.text
    assert "a.example" in text and "friendly tiers-lieu" in text
    assert "b.example" in text  # known only from the queue
    assert (figure(text, "pending"), figure(text, "failed"), figure(text, "gone")) == (2, 1, 1)
    assert figure(text, "sent") == 1
    assert "Open mode" in text and "[federation] allow_list_only" in text
    assert text.count("/retry") >= 4  # pending, failed and gone rows, and b.example's failures
    assert 'href="/admin/federation"' in admin.get("/admin/people").text


async def test_an_empty_queue_shows_zeros(admin: TestClient) -> None:
    text = admin.get(PAGE).text
    assert figure(text, "pending") == figure(text, "failed") == 0


def test_a_visitor_is_sent_to_log_in(client: TestClient) -> None:
    response = client.get(PAGE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    token = csrf_token(client)
    refused = client.post(f"{PAGE}/block", data={"host": "a.example", "csrf_token": token})
    assert refused.status_code == 401


async def test_people_without_the_admin_role_are_refused(
    client: TestClient, database_url: str
) -> None:
    sign_up(client, "someone@example.org")
    assert client.get(PAGE).status_code == 403
    token = csrf_token(client, "/account")
    for action in ("block", "unblock", "allow", "disallow", "retry"):
        response = client.post(f"{PAGE}/{action}", data={"host": "a.example", "csrf_token": token})
        assert response.status_code == 403, action
    response = client.post(
        f"{PAGE}/hosts", data={"host": "a.example", "decision": "block", "csrf_token": token}
    )
    assert response.status_code == 403
    assert await stored(database_url, KnownInstance, host="a.example") is None


async def test_every_action_checks_the_csrf_token(admin: TestClient, database_url: str) -> None:
    (failed,) = await deliveries(
        database_url, await activity(database_url), ("a.example", DeliveryState.FAILED)
    )
    paths = [
        "block",
        "unblock",
        "allow",
        "disallow",
        "retry",
        "hosts",
        f"deliveries/{failed}/retry",
    ]
    for path in paths:
        response = admin.post(
            f"{PAGE}/{path}",
            data={"host": "a.example", "decision": "block"},
            headers={"accept": "text/html"},
        )
        assert response.status_code == 403, path
        assert "security token" in response.text, path
    assert await stored(database_url, KnownInstance, host="a.example") is None
    row = await stored(database_url, Delivery, id=failed)
    assert row.state == DeliveryState.FAILED


# Decisions about a host


async def test_block_closes_pending_deliveries_and_unblock_reopens_the_host(
    admin: TestClient, database_url: str
) -> None:
    created = await activity(database_url)
    pending, sent = await deliveries(
        database_url,
        created,
        ("a.example", DeliveryState.NEW),
        ("a.example", DeliveryState.SENT),
    )
    # The inbox's copy of the host's row (not blocked) must not outlive the decision.
    senders = admin.app.state.federation.senders  # type: ignore[attr-defined]
    senders.put("a.example", None, "https://a.example/actor", None)
    response = post(admin, f"{PAGE}/block", {"host": "a.example", "note": "spam"})
    assert response.status_code == 303 and response.headers["location"] == PAGE
    assert senders.get("a.example", "https://a.example/actor") is None
    known = await stored(database_url, KnownInstance, host="a.example")
    assert known.blocked and known.note == "spam"
    closed = await stored(database_url, Delivery, id=pending)
    assert closed.state == DeliveryState.FAILED and closed.last_error == "host blocked"
    assert (await stored(database_url, Delivery, id=sent)).state == DeliveryState.SENT
    page = admin.get(PAGE).text
    assert "a.example is blocked; 1 pending delivery to it is closed." in page
    assert "Unblock a.example" in page

    assert post(admin, f"{PAGE}/unblock", {"host": "a.example"}).status_code == 303
    known = await stored(database_url, KnownInstance, host="a.example")
    assert not known.blocked and known.note == "spam"
    # What the block failed stays failed until an admin retries it.
    assert (await stored(database_url, Delivery, id=pending)).state == DeliveryState.FAILED
    assert "Block a.example" in admin.get(PAGE).text


async def test_a_host_never_heard_of_can_be_blocked_by_hand(
    admin: TestClient, database_url: str
) -> None:
    response = post(
        admin, f"{PAGE}/hosts", {"host": " Spam.Example ", "note": "", "decision": "block"}
    )
    assert response.status_code == 303
    known = await stored(database_url, KnownInstance, host="spam.example")
    assert known.blocked and not known.allowed
    assert post(admin, f"{PAGE}/hosts", {"host": "x.example"}).status_code == 400


async def test_allow_and_disallow_in_allow_list_mode(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, tmp_path, federation={"run_worker": False, "allow_list_only": True}
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        await make_admin(database_url)
        log_in(client, ADMIN, ADMIN_PASSWORD)
        assert "Allow-list mode" in client.get(PAGE).text
        added = post(client, f"{PAGE}/hosts", {"host": "friend.example:8443", "decision": "allow"})
        assert added.status_code == 303
        known = await stored(database_url, KnownInstance, host="friend.example:8443")
        assert known.allowed and not known.blocked
        assert "Take friend.example:8443 off the allow list" in client.get(PAGE).text

        response = post(client, f"{PAGE}/disallow", {"host": "friend.example:8443"})
        assert response.status_code == 303
        known = await stored(database_url, KnownInstance, host="friend.example:8443")
        assert not known.allowed
        assert post(client, f"{PAGE}/allow", {"host": "friend.example:8443"}).status_code == 303
        assert (await stored(database_url, KnownInstance, host="friend.example:8443")).allowed


# Host names


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "https://a.example",
        "a.example/inbox",
        "someone@a.example",
        "a example",
        "a.example:99999",
        "a.example:",
        "a.example:80:80",
        "-a.example",
        "a..example",
        "a.example.",
        "::1",
        "[not-an-address]",
    ],
)
async def test_a_bad_host_is_refused_and_the_form_shown_again(
    admin: TestClient, database_url: str, raw: str
) -> None:
    response = post(admin, f"{PAGE}/hosts", {"host": raw, "note": "kept", "decision": "block"})
    assert response.status_code == 422
    assert 'id="f-host-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert "Enter a host name" in response.text
    assert 'value="kept"' in response.text
    assert (await stored(database_url, KnownInstance, blocked=True)) is None


async def test_the_instance_cannot_block_itself(admin: TestClient) -> None:
    response = post(admin, f"{PAGE}/block", {"host": "testserver"})
    assert response.status_code == 422
    assert "This is this instance&#39;s own host." in response.text


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("Social.Example", "social.example"),
        ("social.example:443", "social.example"),
        ("social.example:8443", "social.example:8443"),
        ("café.example", "xn--caf-dma.example"),
        ("[2001:DB8::0001]:8443", "[2001:db8::1]:8443"),
        ("192.0.2.1", "192.0.2.1"),
        ("localhost:8000", "localhost:8000"),
    ],
)
def test_hosts_are_stored_as_deliveries_name_them(raw: str, host: str) -> None:
    assert parse_host(raw, "terreau.example") == host


def test_parse_host_names_the_field() -> None:
    with pytest.raises(InvalidField) as error:
        parse_host("https://a.example/", "terreau.example")
    assert error.value.field == "host"


# Retrying


async def test_retry_now_puts_a_failed_delivery_back_in_line(
    admin: TestClient, database_url: str
) -> None:
    created = await activity(database_url, "Announce")
    later = utcnow() + timedelta(days=1)
    (failed,) = await add(
        database_url,
        delivery(
            created,
            "a.example",
            DeliveryState.FAILED,
            attempts=16,
            last_status=503,
            last_error="503 Service Unavailable",
            next_attempt_at=later,
        ),
    )
    page = admin.get(PAGE).text
    assert "Announce" in page and "503 Service Unavailable" in page
    before = utcnow()
    response = post(admin, f"{PAGE}/deliveries/{failed}/retry")
    assert response.status_code == 303
    row = await stored(database_url, Delivery, id=failed)
    assert row.state == DeliveryState.NEW and row.attempts == 0
    assert before <= row.next_attempt_at <= utcnow()
    assert row.finished_at is None and row.locked_until is None
    assert row.last_error == "503 Service Unavailable"  # why it had failed, until next attempt
    assert "is queued again" in admin.get(PAGE).text


async def test_retry_now_never_sends_a_delivery_twice(admin: TestClient, database_url: str) -> None:
    created = await activity(database_url)
    (sent,) = await deliveries(database_url, created, ("a.example", DeliveryState.SENT))
    finished = (await stored(database_url, Delivery, id=sent)).finished_at
    response = post(admin, f"{PAGE}/deliveries/{sent}/retry")
    assert response.status_code == 409
    assert "already sent" in response.text
    row = await stored(database_url, Delivery, id=sent)
    assert row.state == DeliveryState.SENT and row.finished_at == finished


async def test_retry_now_leaves_a_delivery_being_sent_alone(
    admin: TestClient, database_url: str
) -> None:
    created = await activity(database_url)
    lease = utcnow() + timedelta(minutes=1)
    (held,) = await add(
        database_url, delivery(created, "a.example", DeliveryState.NEW, locked_until=lease)
    )
    response = post(admin, f"{PAGE}/deliveries/{held}/retry")
    assert response.status_code == 409
    assert "being sent right now" in response.text
    assert (await stored(database_url, Delivery, id=held)).locked_until == lease


async def test_retry_now_of_an_unknown_delivery_is_not_found(admin: TestClient) -> None:
    assert post(admin, f"{PAGE}/deliveries/999/retry").status_code == 404
    assert post(admin, f"{PAGE}/deliveries/nine/retry").status_code == 404


async def test_retrying_a_gone_delivery_forgets_that_its_host_is_gone(
    admin: TestClient, database_url: str
) -> None:
    await add(database_url, KnownInstance(host="a.example", gone_at=utcnow()))
    (gone,) = await deliveries(
        database_url, await activity(database_url), ("a.example", DeliveryState.GONE)
    )
    assert post(admin, f"{PAGE}/deliveries/{gone}/retry").status_code == 303
    assert (await stored(database_url, Delivery, id=gone)).state == DeliveryState.NEW
    assert (await stored(database_url, KnownInstance, host="a.example")).gone_at is None


async def test_deliveries_to_a_blocked_host_are_not_retried(
    admin: TestClient, database_url: str
) -> None:
    await add(database_url, KnownInstance(host="a.example", blocked=True))
    (failed,) = await deliveries(
        database_url, await activity(database_url), ("a.example", DeliveryState.FAILED)
    )
    response = post(admin, f"{PAGE}/deliveries/{failed}/retry")
    assert response.status_code == 409 and "unblock" in response.text
    assert post(admin, f"{PAGE}/retry", {"host": "a.example"}).status_code == 409
    assert (await stored(database_url, Delivery, id=failed)).state == DeliveryState.FAILED


async def test_retry_every_failed_delivery_to_a_host(admin: TestClient, database_url: str) -> None:
    ids = await deliveries(
        database_url,
        await activity(database_url),
        ("a.example", DeliveryState.FAILED),
        ("a.example", DeliveryState.FAILED),
        ("a.example", DeliveryState.SENT),
        ("a.example", DeliveryState.GONE),
        ("b.example", DeliveryState.FAILED),
    )
    response = post(admin, f"{PAGE}/retry", {"host": "A.example"})
    assert response.status_code == 303
    states = [(await stored(database_url, Delivery, id=i)).state for i in ids]
    assert states == ["new", "new", "sent", "gone", "failed"]
    assert "2 failed deliveries to a.example are queued again." in admin.get(PAGE).text


class FakeWorker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


@pytest.fixture
def worker(admin: TestClient) -> Iterator[FakeWorker]:
    fake = FakeWorker()
    admin.app.state.worker = fake  # type: ignore[attr-defined]
    yield fake
    admin.app.state.worker = None  # type: ignore[attr-defined]


async def test_a_retry_wakes_the_worker_of_this_process(
    admin: TestClient, worker: FakeWorker, database_url: str
) -> None:
    (failed,) = await deliveries(
        database_url, await activity(database_url), ("a.example", DeliveryState.FAILED)
    )
    post(admin, f"{PAGE}/deliveries/{failed}/retry")
    post(admin, f"{PAGE}/retry", {"host": "a.example"})
    assert worker.woken == 2
    post(admin, f"{PAGE}/block", {"host": "a.example"})
    assert worker.woken == 2
