"""Instance roles: the first admin comes from the CLI; admins name moderators and admins."""

from __future__ import annotations

import re

from starlette.testclient import TestClient
from support import log_in, post_form, sign_up

from instance.accounts import create_admin
from instance.database import Database


async def make_admin(database_url: str, email: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        await create_admin(session, email, "an admin password", "Admin")
    await database.dispose()


def test_only_admins_see_the_people_page(client: TestClient, database_url: str) -> None:
    sign_up(client, "someone@example.org")
    assert client.get("/admin/people").status_code == 403
    assert 'href="/admin/people"' not in client.get("/").text


async def test_an_admin_names_a_moderator(
    client: TestClient, other_client, database_url: str
) -> None:
    sign_up(client, "mod@example.org", name="Future Moderator")
    await make_admin(database_url, "root@example.org")
    admin = other_client()
    assert log_in(admin, "root@example.org", "an admin password").status_code == 303
    page = admin.get("/admin/people").text
    assert "Future Moderator" in page
    target = re.search(
        r'people/(\d+)/role"[^>]*>\s*<input[^>]*>\s*<label[^>]*>Role of Future', page
    )
    assert target
    response = post_form(
        admin, f"/admin/people/{target.group(1)}/role", {"role": "moderator"}, page="/admin/people"
    )
    assert response.status_code == 303
    assert "Instance role: moderator" in client.get("/account").text
    bad = post_form(
        admin, f"/admin/people/{target.group(1)}/role", {"role": "emperor"}, page="/admin/people"
    )
    assert bad.status_code == 400


async def test_an_admin_cannot_remove_their_own_role(client: TestClient, database_url: str) -> None:
    await make_admin(database_url, "root@example.org")
    log_in(client, "root@example.org", "an admin password")
    own = re.search(r"people/(\d+)/role", client.get("/admin/people").text)
    assert own
    response = post_form(
        client, f"/admin/people/{own.group(1)}/role", {"role": ""}, page="/admin/people"
    )
    assert response.status_code == 409
    assert client.get("/admin/people").status_code == 200


async def test_instance_admins_may_manage_any_local_organisation(
    client: TestClient, other_client, database_url: str
) -> None:
    sign_up(client, "founder@example.org")
    post_form(client, "/orgs/new", {"name": "Lieu", "kind": "tiers-lieu"})
    await make_admin(database_url, "root@example.org")
    admin = other_client()
    log_in(admin, "root@example.org", "an admin password")
    assert admin.get("/orgs/lieu/settings").status_code == 200
