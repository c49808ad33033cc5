"""The catalogue's pages: proposing, editing, declaring, finding, logos and moderation."""

from __future__ import annotations

import io
import random
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select
from starlette.testclient import TestClient
from support import csrf_token, make_settings, post_form, sign_up

from catalogue import operations as ops
from catalogue.errors import InvalidField
from catalogue.organisations import Organisation
from catalogue.queries import CatalogueFilter, Sort
from instance.accounts import Account
from instance.app import create_app
from instance.database import Database
from instance.views.commons import catalogue_filter, filter_query

COMMONS = {
    "name": "YesWiki",
    "slug": "",
    "kind": "software",
    "maturity": "stable",
    "summary": "Un wiki pour coopérer en équipe",
    "description": "Un **wiki** facile.",
    "tags": "wiki, Coopération",
    "licence": "AGPL-3.0-or-later",
    "website": "https://yeswiki.net",
    "repository": "https://github.com/YesWiki/yeswiki",
    "languages": "fr, en",
    "territory": "",
}


def member_of(client: TestClient, email: str, org_name: str, **org: str) -> str:
    """Sign up and create an organisation; return its slug."""
    sign_up(client, email)
    data = {"name": org_name, "kind": "tiers-lieu", "slug": "", "territory": "", **org}
    response = post_form(client, "/orgs/new", data)
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[1]


def propose(client: TestClient, maintainers: list[str], **changes: Any) -> Any:
    data: dict[str, Any] = {**COMMONS, **changes, "maintainers": maintainers}
    return post_form(client, "/commons/new", data)


def propose_with_logo(client: TestClient, maintainers: list[str], name: str, content: bytes) -> Any:
    token = csrf_token(client, "/commons/new")
    return client.post(
        "/commons/new",
        data={**COMMONS, "maintainers": maintainers, "csrf_token": token},
        files={"logo": (name, content, "image/png")},
        follow_redirects=False,
    )


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="(?:f|uses|interest)-(\w+)-error">([^<]+)<', html))


class Elements(HTMLParser):
    """Every element and attribute of a page, as a browser would build them (not the text)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: set[str] = set()
        self.values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            self.values.append(value or "")


def png(size: int = 16, noise: bool = False) -> bytes:
    image = Image.new("RGB", (size, size), (47, 107, 58))
    if noise:
        rng = random.Random(3)
        image.putdata([(rng.randrange(256),) * 3 for _ in range(size * size)])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def set_role(database_url: str, email: str, role: str) -> None:
    database = Database(database_url)
    async with database.session() as session:
        account = (await session.exec(select(Account).where(Account.email == email))).one()
        account.instance_role = role
        session.add(account)
        await session.commit()
    await database.dispose()


def declaration_ids(html: str) -> list[str]:
    return re.findall(r"/declarations/(\d+)/withdraw", html)


# The filter read from the query string (a pure function).


def test_the_catalogue_filter_reads_every_parameter() -> None:
    wanted = catalogue_filter(
        {
            "q": " équipe ",
            "kind": "software",
            "tag": " Coopération ",
            "maturity": "stable",
            "territory": "region:84",
            "open": "1",
            "sort": "need",
            "page": "3",
        }
    )
    assert wanted == CatalogueFilter(
        text="équipe",
        kind="software",
        tag="coopération",
        maturity="stable",
        territory="region:84",
        open_improvements=True,
        sort=Sort.NEED,
        page=3,
        per_page=20,
    )
    assert catalogue_filter({}) == CatalogueFilter(per_page=20)
    assert filter_query(wanted, page=1) == (
        "q=%C3%A9quipe&kind=software&tag=coop%C3%A9ration&maturity=stable"
        "&territory=region%3A84&open=1&sort=need"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"kind": "castle"}, "kind"),
        ({"maturity": "ripe"}, "maturity"),
        ({"territory": "department:99"}, "territory"),
        ({"sort": "random"}, "sort"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"open": "maybe"}, "open"),
        ({"tag": "x" * 51}, "tag"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_the_catalogue_filter_names_a_wrong_parameter(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidField) as error:
        catalogue_filter(params)
    assert error.value.field == field


# Proposing and editing.


def test_a_member_proposes_a_commons_and_it_shows_everywhere(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    response = propose(client, [org])
    assert response.status_code == 303
    assert response.headers["location"] == "/commons/yeswiki"
    page = client.get("/commons/yeswiki").text
    assert "<h1>YesWiki</h1>" in page
    assert "Un <strong>wiki</strong> facile." in page
    assert "Software" in page and "Stable" in page and "AGPL-3.0-or-later" in page
    assert 'href="/orgs/la-fabrique-du-coin">La Fabrique du Coin</a>' in page
    assert 'href="/commons?tag=coop%C3%A9ration"' in page
    assert "English" in page and "French" in page
    assert 'href="/commons/yeswiki/edit"' in page
    assert "Used by 0 organisations" in page
    listing = client.get("/commons").text
    assert 'href="/commons/yeswiki"' in listing and "1 commons" in listing
    home = client.get("/").text
    assert 'href="/commons/yeswiki"' in home
    assert 'href="/commons"' in home


def test_proposing_needs_an_account_and_an_organisation(client: TestClient) -> None:
    response = client.get("/commons/new", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/commons/new"
    sign_up(client, "loner@example.org")
    refused = client.get("/commons/new")
    assert refused.status_code == 403
    assert "create one first" in refused.text
    assert 'href="/commons/new"' not in client.get("/commons").text


def test_wrong_fields_are_shown_beside_each_input_and_nothing_is_saved(
    client: TestClient,
) -> None:
    member_of(client, "amina@example.org", "La Fabrique du Coin")
    response = propose(
        client,
        [],
        name="",
        slug="yeswiki",
        licence="Foo-1.0",
        website="yeswiki.net",
        repository="ftp://example.org",
        kind="castle",
        languages="fr, klingon",
        territory="department:99",
    )
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert set(errors) == {
        "name", "licence", "website", "repository", "kind", "languages", "territory",
        "maintainers",
    }  # fmt: skip
    assert "Unknown licence Foo-1.0" in errors["licence"]
    assert "https://" in errors["website"]
    assert "at least one maintaining organisation" in errors["maintainers"]
    assert 'value="Un wiki pour coopérer en équipe"' in response.text  # kept for correction
    assert "0 commons" in client.get("/commons").text


@pytest.mark.parametrize("licence", ["12,5", "<b>libre</b>", "()+"])
def test_a_licence_the_spdx_reader_chokes_on_is_named_not_a_500(
    client: TestClient, licence: str
) -> None:
    member_of(client, "amina@example.org", "La Fabrique du Coin")
    response = propose(client, ["la-fabrique-du-coin"], licence=licence)
    assert response.status_code == 422
    assert set(field_errors(response.text)) == {"licence"}


def test_a_member_cannot_name_someone_elses_organisation_as_maintainer(
    client: TestClient, other_client
) -> None:
    member_of(other_client(), "other@example.org", "Autre Lieu")
    member_of(client, "amina@example.org", "La Fabrique du Coin")
    response = propose(client, ["autre-lieu"])
    assert response.status_code == 422
    assert "Choose among the organisations listed." in field_errors(response.text)["maintainers"]


def test_a_duplicate_address_is_refused(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    assert propose(client, [org]).status_code == 303
    again = propose(client, [org], name="Yes Wiki", slug="yeswiki")
    assert again.status_code == 422
    assert "Another commons already uses this address." in again.text


def test_html_and_scripts_in_markdown_never_reach_the_page(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    description = (
        "<script>alert('x')</script>\n\n"
        "[click](javascript:alert(1)) and <img src=x onerror=alert(2)>\n\n"
        '<a href="javascript:alert(3)">raw</a> [ok](https://yeswiki.net)'
    )
    assert propose(client, [org], description=description).status_code == 303
    page = client.get("/commons/yeswiki").text
    tags = Elements()
    tags.feed(page)
    assert "script" not in tags.names and "img" not in tags.names
    assert not [value for value in tags.values if value.strip().lower().startswith("javascript:")]
    assert not [name for name in tags.attributes if name.startswith("on")]
    assert "&lt;script&gt;" in page  # shown as text, harmless
    assert 'href="https://yeswiki.net" rel="nofollow noopener noreferrer ugc">ok</a>' in page


def test_only_maintainers_and_moderators_edit(
    client: TestClient, other_client, database_url: str
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    outsider = other_client()
    member_of(outsider, "other@example.org", "Autre Lieu")
    assert outsider.get("/commons/yeswiki/edit").status_code == 403
    token = csrf_token(outsider, "/commons")
    forbidden = outsider.post(
        "/commons/yeswiki/edit",
        data={**COMMONS, "maintainers": ["autre-lieu"], "csrf_token": token},
        follow_redirects=False,
    )
    assert forbidden.status_code == 403
    assert 'href="/commons/yeswiki/edit"' not in outsider.get("/commons/yeswiki").text

    form = client.get("/commons/yeswiki/edit").text
    assert 'value="coopération, wiki"' in form and 'value="fr, en"' in form
    saved = post_form(
        client,
        "/commons/yeswiki/edit",
        {**COMMONS, "summary": "Un outil de gestion", "maintainers": [org]},
    )
    assert saved.status_code == 303
    assert "Un outil de gestion" in client.get("/commons/yeswiki").text
    assert client.get("/commons?q=gestion").text.count('href="/commons/yeswiki"') == 1


async def test_a_moderator_edits_any_commons_and_keeps_its_maintainers(
    client: TestClient, other_client, database_url: str
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    moderator = other_client()
    sign_up(moderator, "mod@example.org")
    await set_role(database_url, "mod@example.org", "moderator")
    form = moderator.get("/commons/yeswiki/edit")
    assert form.status_code == 200
    assert 'value="la-fabrique-du-coin" checked' in form.text
    saved = post_form(
        moderator,
        "/commons/yeswiki/edit",
        {**COMMONS, "name": "YesWiki 4", "maintainers": [org]},
    )
    assert saved.status_code == 303
    assert "<h1>YesWiki 4</h1>" in client.get("/commons/yeswiki").text


def test_edit_errors_keep_the_form(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    response = post_form(
        client, "/commons/yeswiki/edit", {**COMMONS, "licence": "nope", "maintainers": []}
    )
    assert response.status_code == 422
    assert set(field_errors(response.text)) == {"licence", "maintainers"}
    assert "AGPL-3.0-or-later" in client.get("/commons/yeswiki").text  # unchanged


# Payment links.

LINKS = (
    "Donate | https://opencollective.com/yeswiki\n"
    "Adhérer <vite> & bien | http://yeswiki.net/a?b=1&c=2"
)


def test_maintainers_set_payment_links_and_the_page_shows_them(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    assert propose(client, [org], payment_links=LINKS).status_code == 303
    page = client.get("/commons/yeswiki").text
    assert "Support / pay" in page
    assert '<a href="https://opencollective.com/yeswiki" rel="payment noopener">Donate</a>' in page
    # Labels are text and addresses attributes: both escaped, nothing becomes markup.
    assert (
        '<a href="http://yeswiki.net/a?b=1&amp;c=2" rel="payment noopener">'
        "Adhérer &lt;vite&gt; &amp; bien</a>" in page
    )
    form = client.get("/commons/yeswiki/edit").text
    assert "Donate | https://opencollective.com/yeswiki\nAdhérer &lt;vite&gt; &amp; bien" in form

    saved = post_form(
        client,
        "/commons/yeswiki/edit",
        {
            **COMMONS,
            "payment_links": "Soutenir | https://liberapay.com/yeswiki",
            "maintainers": [org],
        },
    )
    assert saved.status_code == 303
    page = client.get("/commons/yeswiki").text
    assert 'href="https://liberapay.com/yeswiki" rel="payment noopener">Soutenir</a>' in page
    assert "opencollective" not in page
    cleared = {**COMMONS, "payment_links": "", "maintainers": [org]}
    assert post_form(client, "/commons/yeswiki/edit", cleared).status_code == 303
    assert "Support / pay" not in client.get("/commons/yeswiki").text


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ("Donate | javascript:alert(1)", "Line 1: give a full web address starting with https://."),
        ("\nDonate https://opencollective.com/yeswiki", "Line 2: write a label, a vertical bar"),
        ("D" * 101 + " | https://example.org", "Line 1: a label has at most 100 characters."),
        ("\n".join(f"Don {n} | https://example.org/{n}" for n in range(6)), "At most 5 payment"),
    ],
)
def test_bad_payment_links_are_named_and_change_nothing(
    client: TestClient, links: str, message: str
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    refused = propose(client, [org], payment_links=links)
    assert refused.status_code == 422
    assert field_errors(refused.text)["payment_links"].startswith(message)
    assert "0 commons" in client.get("/commons").text

    assert propose(client, [org], payment_links=LINKS).status_code == 303
    data = {**COMMONS, "name": "YesWiki 5", "payment_links": links, "maintainers": [org]}
    response = post_form(client, "/commons/yeswiki/edit", data)
    assert response.status_code == 422
    assert set(field_errors(response.text)) == {"payment_links"}
    assert 'value="YesWiki 5"' in response.text  # the form comes back as typed
    page = client.get("/commons/yeswiki").text
    assert "<h1>YesWiki</h1>" in page  # unchanged: neither the name nor the links
    assert 'href="https://opencollective.com/yeswiki" rel="payment noopener"' in page


# Logos.


def test_a_real_image_becomes_the_logo_and_is_served(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    image = png()
    assert propose_with_logo(client, [org], "whatever.txt", image).status_code == 303
    page = client.get("/commons/yeswiki").text
    match = re.search(r'src="/media/logos/([0-9a-f]{32}\.png)"', page)
    assert match
    served = client.get(f"/media/logos/{match.group(1)}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert "max-age=31536000" in served.headers["cache-control"]
    assert served.content == image


def test_a_text_file_named_png_is_refused(client: TestClient) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    response = propose_with_logo(client, [org], "logo.png", b"not an image at all\n")
    assert response.status_code == 422
    assert "must be a PNG, JPEG, WebP or GIF image" in field_errors(response.text)["logo"]
    assert client.get("/commons/yeswiki").status_code == 404


def test_an_oversized_logo_is_refused(database_url: str, tmp_path) -> None:
    settings = make_settings(database_url, tmp_path, limits={"logo_max_bytes": 2048})
    with TestClient(create_app(settings)) as client:
        org = member_of(client, "amina@example.org", "La Fabrique du Coin")
        big = png(64, noise=True)
        assert len(big) > 2048
        response = propose_with_logo(client, [org], "logo.png", big)
        assert response.status_code == 422
        assert "too large: at most 2 kB" in field_errors(response.text)["logo"]
        assert not (tmp_path / "data" / "logos").exists() or not any(
            (tmp_path / "data" / "logos").iterdir()
        )


def test_a_logo_is_replaced_then_removed(client: TestClient, settings) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose_with_logo(client, [org], "a.png", png())
    first = re.search(r"/media/logos/(\w+\.png)", client.get("/commons/yeswiki").text)
    assert first
    token = csrf_token(client, "/commons/yeswiki/edit")
    client.post(
        "/commons/yeswiki/edit",
        data={**COMMONS, "maintainers": [org], "csrf_token": token},
        files={"logo": ("b.png", png(24), "image/png")},
        follow_redirects=False,
    )
    assert client.get(f"/media/logos/{first.group(1)}").status_code == 404  # old file gone
    assert "/media/logos/" in client.get("/commons/yeswiki").text
    post_form(
        client, "/commons/yeswiki/edit", {**COMMONS, "maintainers": [org], "remove_logo": "1"}
    )
    assert "/media/logos/" not in client.get("/commons/yeswiki").text


@pytest.mark.parametrize(
    "name", ["nope.png", "..%2F..%2Finstance.toml", "0123456789abcdef0123456789abcdef.svg"]
)
def test_only_stored_logo_names_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/media/logos/{name}").status_code == 404


# Declarations.


def test_an_organisation_declares_it_uses_a_commons_and_it_is_shown(
    client: TestClient, other_client
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    louis = other_client()
    other = member_of(louis, "louis@example.org", "Autre Lieu")
    declare = "/commons/yeswiki/declarations"
    used = post_form(
        louis,
        declare,
        {
            "organisation": other,
            "kind": "uses",
            "since": "2024-09-01",
            "satisfaction": "4",
            "comment": "Notre wiki interne.",
        },
        page="/commons/yeswiki",
    )
    assert used.status_code == 303
    page = louis.get("/commons/yeswiki").text
    assert "Used by 1 organisation<" in page
    assert "since September 1, 2024" in page
    assert "satisfaction 4/5" in page
    assert "Notre wiki interne." in page
    assert 'href="/orgs/autre-lieu">Autre Lieu</a>' in page
    assert "Used by 1 organisation" in louis.get("/commons").text

    # Declaring again updates the one declaration instead of adding another.
    again = {"organisation": other, "kind": "uses", "since": "", "satisfaction": "5"}
    post_form(louis, declare, {**again, "comment": "Indispensable."}, page="/commons/yeswiki")
    page = louis.get("/commons/yeswiki").text
    assert "Used by 1 organisation<" in page
    assert "Indispensable." in page and "Notre wiki interne." not in page
    assert len(declaration_ids(page)) == 1

    post_form(
        client,
        declare,
        {"organisation": org, "kind": "interested", "comment": "Pour nos adhérents."},
        page="/commons/yeswiki",
    )
    page = client.get("/commons/yeswiki").text
    assert "Interested: 1" in page and "Pour nos adhérents." in page

    organisation_page = client.get("/orgs/autre-lieu").text
    assert "What we use" in organisation_page
    assert 'href="/commons/yeswiki">YesWiki</a>' in organisation_page
    assert 'href="/commons/yeswiki">YesWiki</a>' in client.get("/orgs/la-fabrique-du-coin").text


def test_declarations_are_checked(client: TestClient, other_client) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    member_of(other_client(), "louis@example.org", "Autre Lieu")
    declare = "/commons/yeswiki/declarations"
    page = "/commons/yeswiki"
    bad = post_form(
        client,
        declare,
        {"organisation": org, "kind": "uses", "since": "2999-01-01", "satisfaction": "9"},
        page=page,
    )
    assert bad.status_code == 422
    assert set(field_errors(bad.text)) == {"since", "satisfaction"}
    assert 'value="2999-01-01"' in bad.text
    someone_elses = post_form(
        client, declare, {"organisation": "autre-lieu", "kind": "uses"}, page=page
    )
    assert someone_elses.status_code == 403
    unknown = post_form(client, declare, {"organisation": "nowhere", "kind": "uses"}, page=page)
    assert unknown.status_code == 422
    assert "Used by 0 organisations" in client.get(page).text


def test_a_declaration_is_withdrawn_by_its_organisation_only(
    client: TestClient, other_client
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    post_form(
        client,
        "/commons/yeswiki/declarations",
        {"organisation": org, "kind": "uses"},
        page="/commons/yeswiki",
    )
    (declaration,) = declaration_ids(client.get("/commons/yeswiki").text)
    withdraw = f"/commons/yeswiki/declarations/{declaration}/withdraw"
    outsider = other_client()
    member_of(outsider, "louis@example.org", "Autre Lieu")
    assert post_form(outsider, withdraw, {}, page="/commons").status_code == 403
    assert post_form(client, withdraw, {}, page="/commons").status_code == 303
    page = client.get("/commons/yeswiki").text
    assert "Used by 0 organisations" in page
    assert declaration_ids(page) == []
    assert post_form(client, withdraw, {}, page="/commons").status_code == 404  # already gone


# Moderation.


async def test_a_hidden_commons_is_not_found_except_by_moderators(
    client: TestClient, other_client, database_url: str
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    assert post_form(client, "/commons/yeswiki/hide", {}, page="/commons").status_code == 403
    moderator = other_client()
    sign_up(moderator, "mod@example.org")
    await set_role(database_url, "mod@example.org", "moderator")
    assert post_form(moderator, "/commons/yeswiki/hide", {}, page="/commons").status_code == 303
    assert client.get("/commons/yeswiki").status_code == 404
    assert "0 commons" in client.get("/commons").text
    seen = moderator.get("/commons/yeswiki")
    assert seen.status_code == 200 and "only moderators see it" in seen.text
    assert post_form(moderator, "/commons/yeswiki/unhide", {}, page="/commons").status_code == 303
    assert client.get("/commons/yeswiki").status_code == 200


async def test_merging_a_duplicate_moves_its_declarations_and_redirects(
    client: TestClient, other_client, database_url: str
) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org])
    propose(client, [org], name="Yes Wiki (doublon)", slug="yes-wiki")
    louis = other_client()
    other = member_of(louis, "louis@example.org", "Autre Lieu")
    post_form(
        louis,
        "/commons/yes-wiki/declarations",
        {"organisation": other, "kind": "uses", "comment": "Sur le doublon"},
        page="/commons/yes-wiki",
    )
    post_form(
        client,
        "/commons/yeswiki/declarations",
        {"organisation": org, "kind": "uses"},
        page="/commons/yeswiki",
    )
    moderator = other_client()
    sign_up(moderator, "mod@example.org")
    await set_role(database_url, "mod@example.org", "moderator")
    refused = post_form(moderator, "/commons/yes-wiki/merge", {"target": "nothing"}, page="/")
    assert refused.status_code == 422
    assert "Give the address of a visible commons." in refused.text
    merged = post_form(moderator, "/commons/yes-wiki/merge", {"target": "yeswiki"}, page="/")
    assert merged.status_code == 303
    assert merged.headers["location"] == "/commons/yeswiki"
    moved = louis.get("/commons/yes-wiki", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == "/commons/yeswiki"
    page = louis.get("/commons/yeswiki").text
    assert "Used by 2 organisations" in page and "Sur le doublon" in page
    assert "1 commons" in louis.get("/commons").text


# Finding commons.


async def _seed(database_url: str, count: int) -> None:
    """Many commons at once, through the domain (the pages' forms are tested above)."""
    database = Database(database_url)
    async with database.session() as session:
        org = Organisation(uri="http://testserver/orgs/seed", slug="seed", name="Seed", kind="cae")
        session.add(org)
        await session.commit()
        assert org.id is not None
        for index in range(count):
            await ops.create_commons(
                session,
                {
                    "name": f"Commun {index:02d}",
                    "summary": "Un commun numéroté",
                    "kind": "data",
                },
                base_url="http://testserver",
                creator_id=None,
                maintainer_ids=[org.id],
            )
    await database.dispose()


async def test_the_catalogue_paginates_twenty_at_a_time(
    client: TestClient, database_url: str
) -> None:
    await _seed(database_url, 23)
    first = client.get("/commons?sort=name").text
    assert "23 commons" in first and "Page 1 of 2" in first
    assert "Commun 19" in first and "Commun 20" not in first
    assert 'href="/commons?sort=name&amp;page=2"' in first
    second = client.get("/commons?sort=name&page=2").text
    assert "Commun 22" in second and "Commun 19" not in second


def test_search_filters_and_sorts_through_the_page(client: TestClient, other_client) -> None:
    org = member_of(client, "amina@example.org", "La Fabrique du Coin")
    propose(client, [org], territory="department:69")
    propose(
        client,
        [org],
        name="Plans de serre",
        slug="serre",
        kind="hardware",
        summary="Une serre bioclimatique à construire",
        tags="serre, autoconstruction",
        maturity="idea",
        licence="CERN-OHL-S-2.0",
        territory="region:53",
    )
    propose(client, [org], name="Atlas des lieux", slug="atlas", kind="data", summary="Données")
    louis = other_client()
    other = member_of(louis, "louis@example.org", "Autre Lieu")
    post_form(
        louis,
        "/commons/serre/declarations",
        {"organisation": other, "kind": "uses"},
        page="/commons/serre",
    )

    def found(query: str) -> list[str]:
        response = client.get(f"/commons?{query}")
        assert response.status_code == 200, response.text
        return re.findall(r'<h3><a href="/commons/([\w-]+)">', response.text)

    assert found("q=equipe") == ["yeswiki"]  # no accent typed, "équipe" found
    assert found("q=BIOCLIMATIQUE") == ["serre"]
    assert found("kind=hardware") == ["serre"]
    assert found("tag=autoconstruction") == ["serre"]
    assert found("maturity=idea") == ["serre"]
    assert found("territory=region:84") == ["yeswiki"]  # Rhône is in Auvergne-Rhône-Alpes
    assert found("sort=name") == ["atlas", "serre", "yeswiki"]
    assert found("sort=recent") == ["atlas", "serre", "yeswiki"]
    assert found("")[0] == "serre"  # most used first
    assert found("open=1") == []
    assert "Used by 1 organisation" in client.get("/commons?kind=hardware").text


@pytest.mark.parametrize(
    "query", ["kind=castle", "sort=random", "page=0", "territory=mars", "maturity=ripe"]
)
def test_bad_filters_get_a_clear_400(client: TestClient, query: str) -> None:
    response = client.get(f"/commons?{query}")
    assert response.status_code == 400
    assert "Unknown" in response.text or "page number" in response.text


def test_unknown_commons_are_not_found(client: TestClient) -> None:
    assert client.get("/commons/nothing").status_code == 404
    assert client.get("/commons/nothing/edit", follow_redirects=False).status_code == 303
