"""People: sign-up, log-in, log-out, password changes, and the protections around them."""

from __future__ import annotations

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient
from support import csrf_token, log_in, log_out, make_settings, post_form, sign_up

from catalogue.errors import InvalidFields
from instance import accounts
from instance.accounts import Account
from instance.app import SESSION_COOKIE, create_app


def test_sign_up_logs_in_and_shows_the_profile(client: TestClient) -> None:
    response = sign_up(client, "Claire@Example.org", name="Claire Martin")
    assert response.headers["location"] == "/account"
    page = client.get("/account")
    assert page.status_code == 200
    assert "Claire Martin" in page.text
    assert "claire@example.org" in page.text  # emails are kept in lower case


async def test_passwords_are_stored_as_argon2id_hashes(session: AsyncSession) -> None:
    account = await accounts.sign_up(session, "a@example.org", "correct horse battery", "A")
    assert account.password_hash.startswith("$argon2id$")
    assert "correct horse" not in account.password_hash


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"email": "not-an-email", "password": "long enough pw", "display_name": "X"},
            "email",
            "Give a valid email address.",
        ),
        (
            {"email": "x@example.org", "password": "short", "display_name": "X"},
            "password",
            "Use at least 10 characters.",
        ),
        (
            {"email": "x@example.org", "password": "long enough pw", "display_name": " "},
            "display_name",
            "Give the name others will see.",
        ),
    ],
)
def test_sign_up_shows_each_wrong_field(
    client: TestClient, form: dict[str, str], field: str, message: str
) -> None:
    response = post_form(client, "/signup", form)
    assert response.status_code == 422
    assert f'id="f-{field}-error">{message}</p>' in response.text
    assert f'id="f-{field}" name="{field}"' in response.text


def test_a_duplicate_email_is_refused_with_a_clear_message(client: TestClient) -> None:
    sign_up(client, "dup@example.org")
    log_out(client)
    response = post_form(
        client,
        "/signup",
        {"email": "DUP@example.org", "password": "another long one", "display_name": "Dup"},
    )
    assert response.status_code == 422
    assert "An account already uses this email address." in response.text
    assert 'value="DUP@example.org"' in response.text  # what was typed is kept
    assert "another long one" not in response.text  # never echo a password


def test_log_out_then_log_in_again(client: TestClient) -> None:
    sign_up(client, "l@example.org")
    assert log_out(client).status_code == 303
    assert (
        client.get("/account", follow_redirects=False).headers["location"] == "/login?next=/account"
    )
    response = log_in(client, "l@example.org")
    assert response.status_code == 303
    assert client.get("/account").status_code == 200


def test_a_wrong_password_is_refused_without_saying_which_part(client: TestClient) -> None:
    sign_up(client, "w@example.org")
    log_out(client)
    for email in ("w@example.org", "nobody@example.org"):
        response = log_in(client, email, "wrong password!")
        assert response.status_code == 401
        assert "Wrong email address or password." in response.text
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_log_in_returns_to_the_page_asked_for_but_never_elsewhere(client: TestClient) -> None:
    sign_up(client, "n@example.org")
    log_out(client)
    token = csrf_token(client)
    for target, expected in (
        ("/orgs", "/orgs"),
        ("https://evil.example/", "/account"),
        ("//evil.example", "/account"),
    ):
        response = client.post(
            "/login",
            data={
                "email": "n@example.org",
                "password": "correct horse battery",
                "next": target,
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected
        log_out(client)
        token = csrf_token(client)


def test_failed_log_ins_are_rate_limited(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, limits={"login_attempts": 3})
    with TestClient(create_app(settings)) as client:
        sign_up(client, "r@example.org")
        log_out(client)
        for _ in range(3):
            assert log_in(client, "r@example.org", "wrong password!").status_code == 401
        blocked = log_in(client, "r@example.org")  # even the right password waits
        assert blocked.status_code == 429
        assert "Too many failed attempts" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0


def test_changing_the_password_logs_out_other_sessions(client: TestClient, other_client) -> None:
    laptop, phone = client, other_client()
    if True:
        sign_up(laptop, "p@example.org")
        assert log_in(phone, "p@example.org").status_code == 303
        assert phone.get("/account", follow_redirects=False).status_code == 200
        response = post_form(
            laptop,
            "/account/password",
            {"current_password": "correct horse battery", "new_password": "a brand new secret"},
            page="/account",
        )
        assert response.status_code == 303
        assert laptop.get("/account", follow_redirects=False).status_code == 200
        assert phone.get("/account", follow_redirects=False).status_code == 303
        log_out(laptop)
        assert log_in(laptop, "p@example.org").status_code == 401
        assert log_in(laptop, "p@example.org", "a brand new secret").status_code == 303


def test_changing_the_password_needs_the_current_one(client: TestClient) -> None:
    sign_up(client, "c@example.org")
    response = post_form(
        client,
        "/account/password",
        {"current_password": "not it at all", "new_password": "a brand new secret"},
        page="/account",
    )
    assert response.status_code == 422
    assert "This is not your current password." in response.text


def test_a_tampered_session_cookie_is_ignored(client: TestClient) -> None:
    sign_up(client, "t@example.org")
    cookie = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies[SESSION_COOKIE] = cookie[:-4] + (
        "AAAA" if not cookie.endswith("AAAA") else "BBBB"
    )
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_forms_without_a_csrf_token_are_refused(client: TestClient) -> None:
    response = client.post(
        "/signup",
        data={"email": "x@example.org", "password": "long enough pw", "display_name": "X"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "security token" in response.text
    forged = client.post(
        "/signup",
        data={
            "email": "x@example.org",
            "password": "long enough pw",
            "display_name": "X",
            "csrf_token": "forged",
        },
    )
    assert forged.status_code == 403


async def test_no_account_is_created_by_a_refused_form(
    client: TestClient, session: AsyncSession
) -> None:
    client.post(
        "/signup",
        data={"email": "x@example.org", "password": "long enough pw", "display_name": "X"},
    )
    assert (await session.exec(select(Account))).all() == []


def test_sign_up_can_be_closed(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, accounts={"signup_open": False})
    with TestClient(create_app(settings)) as client:
        assert client.get("/signup").status_code == 403
        assert "Sign-up is closed" in client.get("/signup").text
        assert 'href="/signup"' not in client.get("/").text


async def test_create_admin_promotes_an_existing_account(session: AsyncSession) -> None:
    await accounts.sign_up(session, "m@example.org", "correct horse battery", "M")
    await session.commit()
    account, created = await accounts.create_admin(session, "M@example.org", "another long secret")
    assert not created and account.is_admin and account.is_moderator
    with pytest.raises(InvalidFields):
        await accounts.create_admin(session, "bad", "another long secret")


def test_the_log_in_form_leads_to_the_profile_by_default(client: TestClient) -> None:
    sign_up(client, "f@example.org")
    log_out(client)
    assert 'name="next" value="/account"' in client.get("/login").text
    assert 'name="next" value="/orgs"' in client.get("/login?next=/orgs").text
