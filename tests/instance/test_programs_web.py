"""Matching programs through their pages: funders' forms, rules, approvals, dashboard, exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.testclient import TestClient
from support import csrf_token, post_form, sign_up
from typer.testing import CliRunner

from catalogue import operations as ops
from catalogue.improvements import Improvement, ImprovementStatus, validate_improvement
from catalogue.organisations import Organisation
from instance.cli import app as cli
from instance.database import Database
from instance.views.programs import from_local, to_local
from pledges.models import Match, MatchingProgram, Pledge
from pledges.operations import cancel_pledge, create_program, make_pledge, set_program_status
from pledges.reports import projected_exhaustion

BASE = "http://testserver"
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime.now(UTC)
FUNDER = "france-tiers-lieux"
T = TypeVar("T")


def local(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


PROGRAM: dict[str, Any] = {
    "name": "Tiers-lieux 2026",
    "description": "Un euro pour un euro.",
    "ratio": "1",
    "budget": "20000",
    "per_contributor_cap": "500",
    "starts": local(NOW - timedelta(days=1)),
    "ends": local(NOW + timedelta(days=30)),
    "eligible_kinds": ["tiers-lieu"],
}


def on_db(client: TestClient, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``job`` with a session of the running app, on its event loop."""

    async def run() -> T:
        async with client.app.state.db.session() as session:  # type: ignore[attr-defined]
            return await job(session)

    assert client.portal is not None
    return client.portal.call(run)


def funder(client: TestClient) -> None:
    """Fanny, admin of the funder France Tiers-Lieux."""
    sign_up(client, "fanny@example.org", name="Fanny")
    response = post_form(client, "/orgs/new", {"name": "France Tiers-Lieux", "kind": "funder"})
    assert response.status_code == 303, response.text


async def place_with_improvement(session: AsyncSession, slug: str = "le-lieu") -> int:
    """A tiers-lieu maintaining a commons with an open 6,000 € improvement; its id."""
    place = Organisation(
        uri=f"{BASE}/orgs/{slug}", slug=slug, name="Le Lieu", sort_key=slug, kind="tiers-lieu"
    )
    session.add(place)
    await session.commit()
    assert place.id is not None
    commons = await ops.create_commons(
        session,
        {"name": "YesWiki", "summary": "Un wiki", "kind": "software", "slug": "yeswiki"},
        base_url=BASE,
        creator_id=None,
        maintainer_ids=[place.id],
    )
    improvement = await ops.create_improvement(
        session,
        commons,
        validate_improvement({"title": "Export PDF", "budget": "6000"}),
        base_url=BASE,
        currency="EUR",
        provider_id=None,
        creator_id=None,
    )
    await ops.change_status(session, improvement, ImprovementStatus.OPEN)
    assert improvement.id is not None
    return improvement.id


def pledge(client: TestClient, cents: int, slug: str = "le-lieu") -> int:
    async def job(session: AsyncSession) -> int:
        place = (await session.exec(select(Organisation).where(Organisation.slug == slug))).one()
        improvement = (await session.exec(select(Improvement))).one()
        made = await make_pledge(
            session, place, improvement, cents, base_url=BASE, created_by_id=None
        )
        assert made.id is not None
        return made.id

    return on_db(client, job)


def matches(client: TestClient) -> dict[int, int]:
    async def job(session: AsyncSession) -> dict[int, int]:
        return {m.pledge_id: m.amount_cents for m in (await session.exec(select(Match))).all()}

    return on_db(client, job)


def new_program(client: TestClient, **changes: Any) -> Any:
    path = f"/programs/new?funder={FUNDER}"
    return post_form(client, path, {**PROGRAM, **changes})


def created(client: TestClient, **changes: Any) -> str:
    response = new_program(client, **changes)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def set_status(client: TestClient, url: str, status: str) -> Any:
    return post_form(client, f"{url}/status", {"status": status}, page=url)


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'id="f-(\w+)-error">([^<]+)<', html))


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\u202f", " ")


# --- Pure helpers ----------------------------------------------------------------------------


def test_window_times_are_read_and_shown_in_the_instance_time_zone() -> None:
    moment = from_local("2026-11-15T00:00", PARIS)
    assert moment == datetime(2026, 11, 14, 23, 0, tzinfo=UTC)
    assert isinstance(moment, datetime) and to_local(moment, PARIS) == "2026-11-15T00:00"
    assert from_local("tomorrow", PARIS) == "tomorrow"  # validate_program names the field


def test_projection_follows_the_rate_matched_since_the_window_opened() -> None:
    starts, now = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC)
    ends = datetime(2026, 12, 31, tzinfo=UTC)
    # 1,000 € in 10 days, 2,000 € left: 20 more days.
    assert projected_exhaustion(100000, 300000, starts, ends, now) == datetime(
        2026, 12, 1, tzinfo=UTC
    )
    assert projected_exhaustion(10000, 300000, starts, ends, now) is None  # past the end
    assert projected_exhaustion(0, 300000, starts, ends, now) is None
    assert projected_exhaustion(300000, 300000, starts, ends, now) == now


# --- Creating and editing ----------------------------------------------------------------------


def test_only_the_funders_admins_create_programs(
    client: TestClient, other_client: Callable[[], TestClient]
) -> None:
    funder(client)
    assert client.get(f"/programs/new?funder={FUNDER}").status_code == 200
    stranger = other_client()
    sign_up(stranger, "sam@example.org")
    assert stranger.get(f"/programs/new?funder={FUNDER}").status_code == 403
    token = csrf_token(stranger, "/programs")
    refused = stranger.post(f"/programs/new?funder={FUNDER}", data={**PROGRAM, "csrf_token": token})
    assert refused.status_code == 403
    assert client.get("/programs/new?funder=nobody").status_code == 404
    assert "Tiers-lieux 2026" not in client.get("/programs").text


def test_a_program_is_created_as_a_draft_seen_by_its_funder_only(
    client: TestClient, other_client: Callable[[], TestClient]
) -> None:
    funder(client)
    url = created(client, starts="2026-11-15T00:00", ends="2026-12-20T00:00", min_pledge="10")
    page = text(client.get(url).text)
    assert "Tiers-lieux 2026" in page and "Draft" in page
    assert "from November 15, 2026 until December 20, 2026 (excluded)" in page
    edit = client.get(f"{url}/edit").text
    assert 'value="2026-11-15T00:00"' in edit and 'value="tiers-lieu" checked' in edit
    assert 'value="500.00"' in edit
    reader = other_client()
    assert reader.get(url).status_code == 404
    assert "Tiers-lieux 2026" not in reader.get("/programs").text
    assert "Tiers-lieux 2026" in client.get("/programs").text

    async def stored(session: AsyncSession) -> MatchingProgram:
        return (await session.exec(select(MatchingProgram))).one()

    program = on_db(client, stored)
    assert program.starts_at == datetime(2026, 11, 14, 23, 0, tzinfo=UTC)
    assert program.eligible_kinds == "tiers-lieu" and program.min_pledge_cents == 1000
    changed = post_form(client, f"{url}/edit", {**PROGRAM, "name": "Renamed", "budget": "900"})
    assert changed.status_code == 303
    assert "Renamed" in client.get(url).text
    assert set_status(client, url, "active").status_code == 303
    assert client.get(f"{url}/edit").status_code == 409  # only drafts change


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ratio": "0"}, "ratio", "The ratio must be more than zero."),
        (
            {"ends": local(NOW - timedelta(days=2))},
            "ends",
            "The window must end after it starts.",
        ),
        ({"budget": "-5"}, "budget", "Give a positive amount, such as 500 or 500.50."),
        ({"starts": ""}, "starts", "Give a date and time such as 2026-11-15T00:00Z."),
        (
            {"eligible_improvements": "12, export"},
            "eligible_improvements",
            "Give improvement numbers separated by commas, such as 12, 15.",
        ),
    ],
)
def test_bad_programs_are_shown_beside_the_field_and_nothing_is_saved(
    client: TestClient, changes: dict[str, str], field: str, message: str
) -> None:
    funder(client)
    response = new_program(client, **changes)
    assert response.status_code == 422
    assert field_errors(response.text)[field] == message
    assert 'value="Tiers-lieux 2026"' in response.text  # the form keeps what was typed
    assert "Tiers-lieux 2026" not in client.get("/programs").text


# --- Matching from the pages -----------------------------------------------------------------


def test_activation_recomputes_the_matches(client: TestClient) -> None:
    funder(client)
    on_db(client, place_with_improvement)
    url = created(client)
    before = pledge(client, 30000)
    assert matches(client) == {}  # a draft matches nothing
    assert set_status(client, url, "active").status_code == 303
    assert matches(client) == {before: 30000}
    after = pledge(client, 30000)
    assert matches(client) == {before: 30000, after: 20000}  # the 500 € cap
    page = text(client.get(url).text)
    assert "€500 matched, €19,500 left of €20,000" in page
    assert '<progress max="2000000" value="50000"' in client.get(url).text
    assert set_status(client, url, "active").status_code == 409  # already active
    assert set_status(client, url, "closed").status_code == 303
    assert "Closed" in client.get(url).text


def test_the_program_page_publishes_the_rules_and_the_totals(
    client: TestClient, other_client: Callable[[], TestClient]
) -> None:
    funder(client)
    on_db(client, place_with_improvement)
    url = created(client, per_improvement_cap="2000", ratio="0.5")
    set_status(client, url, "active")
    pledge(client, 30000)
    page = text(other_client().get(url).text)
    assert "For every €1 a contributor gives, France Tiers-Lieux adds €0.50." in page
    assert "At most €500 per contributing organisation." in page
    assert "At most €2,000 per improvement." in page
    assert "Only for contributors of these kinds: Tiers-lieu." in page
    assert "Pledges that are not cancelled are taken in order of time" in page
    assert "A zero match is not recorded." in page
    assert "Matches by improvement Improvement Matches Matched Export PDF · YesWiki 1 €150" in page
    assert "Matches by contributor Organisation Matches Matched Le Lieu 1 €150" in page
    assert "Export (CSV)" not in page  # for the funder's admins only


def test_approvals_decide_which_contributors_are_matched(
    client: TestClient, other_client: Callable[[], TestClient]
) -> None:
    funder(client)
    on_db(client, place_with_improvement)
    url = created(client, manual_approval="1")
    set_status(client, url, "active")
    first = pledge(client, 10000)
    assert matches(client) == {}
    page = client.get(url).text
    assert "Le Lieu · waiting for your decision" in text(page)
    assert f'action="{url}/approvals/le-lieu"' in page
    assert "waiting for your decision" not in other_client().get(url).text
    dashboard = text(client.get(f"/orgs/{FUNDER}/programs").text)
    assert "Pending approvals" in dashboard
    approve = post_form(client, f"{url}/approvals/le-lieu", {"decision": "approve"}, page=url)
    assert approve.status_code == 303
    assert matches(client) == {first: 10000}
    assert "No contributor is waiting for a decision." in client.get(url).text
    refuse = post_form(client, f"{url}/approvals/le-lieu", {"decision": "refuse"}, page=url)
    assert refuse.status_code == 303
    assert matches(client) == {}
    assert "refused" in client.get(url).text
    stranger = other_client()
    sign_up(stranger, "sam@example.org")
    denied = post_form(stranger, f"{url}/approvals/le-lieu", {"decision": "approve"}, page=url)
    assert denied.status_code == 403


def test_the_funder_dashboard_projects_when_the_envelope_runs_out(
    client: TestClient, other_client: Callable[[], TestClient]
) -> None:
    funder(client)
    on_db(client, place_with_improvement)
    lasting = created(client, name="Large envelope")
    short = created(client, name="Small envelope", budget="600", per_contributor_cap="")
    created(client, name="Not yet")
    for url in (lasting, short):
        set_status(client, url, "active")
    pledge(client, 30000)
    page = client.get(f"/orgs/{FUNDER}/programs")
    assert page.status_code == 200
    rows = text(page.text)
    assert "Large envelope Active" in rows and "Small envelope Active" in rows
    assert "At this rate, the envelope lasts until the end of the window." in rows
    assert "At this rate, the envelope runs out around" in rows  # 300 € a day, 300 € left
    assert "Not yet Draft" in rows
    stranger = other_client()
    sign_up(stranger, "sam@example.org")
    assert stranger.get(f"/orgs/{FUNDER}/programs").status_code == 403


# --- Exports ---------------------------------------------------------------------------------


def test_exports_list_pledges_and_matches_for_the_funder(
    client: TestClient, other_client: Callable[[], TestClient]
) -> None:
    funder(client)
    on_db(client, place_with_improvement)
    url = created(client)
    set_status(client, url, "active")
    kept = pledge(client, 30000)
    dropped = pledge(client, 10000)

    async def cancel(session: AsyncSession) -> None:
        row = await session.get(Pledge, dropped)
        assert row is not None
        await cancel_pledge(session, row, base_url=BASE)

    on_db(client, cancel)
    response = client.get(f"{url}/pledges.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == (
        "id,uri,organisation,improvement,amount_cents,amount,currency,status,pledged_at,"
        "included_in_matching,matched_cents,matches"
    )
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    program_id = url.rsplit("/", 1)[1]
    assert rows[str(kept)]["included_in_matching"] == "true"
    assert rows[str(kept)]["matches"] == f"{program_id}:30000"
    assert rows[str(kept)]["organisation"] == "le-lieu"
    assert rows[str(dropped)]["status"] == "cancelled"
    assert rows[str(dropped)]["included_in_matching"] == "false"
    data = client.get(f"{url}/pledges.json").json()
    assert [p["included_in_matching"] for p in data["pledges"]] == [True, False]
    assert data["matches"] == [
        {"program": int(program_id), "pledge": kept, "amount_cents": 30000, "amount": "300.00"}
    ]
    assert [e["kind"] for e in data["ledger"]] == ["created", "created", "released"]
    stranger = other_client()
    sign_up(stranger, "sam@example.org")
    assert stranger.get(f"{url}/pledges.csv").status_code == 403
    assert stranger.get(f"{url}/pledges.json").status_code == 403


def test_program_forms_check_the_csrf_token_before_anything(client: TestClient) -> None:
    funder(client)
    for path in (
        "/programs/999/status",
        "/programs/999/edit",
        "/programs/999/approvals/nobody",
        f"/programs/new?funder={FUNDER}",
    ):
        response = client.post(path, data={"status": "active"})
        assert response.status_code == 403, path
        assert "security token" in response.text, path


# --- The command line --------------------------------------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("TERREAU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


async def _seed(database_url: str) -> int:
    """A program matching one pledge, and a cancelled pledge; the kept pledge's id."""
    database = Database(database_url)
    try:
        async with database.session() as session:
            improvement_id = await place_with_improvement(session)
            improvement = await session.get(Improvement, improvement_id)
            place = (await session.exec(select(Organisation))).one()
            sponsor = Organisation(
                uri=f"{BASE}/orgs/ftl", slug="ftl", name="FTL", sort_key="ftl", kind="funder"
            )
            session.add(sponsor)
            await session.commit()
            program = await create_program(
                session,
                sponsor,
                {**PROGRAM, "starts": NOW - timedelta(days=1), "ends": NOW + timedelta(days=1)},
                base_url=BASE,
            )
            await set_program_status(session, program, "active", base_url=BASE)
            assert improvement is not None
            kept = await make_pledge(
                session, place, improvement, 20000, base_url=BASE, created_by_id=None
            )
            dropped = await make_pledge(
                session, place, improvement, 5000, base_url=BASE, created_by_id=None
            )
            await cancel_pledge(session, dropped, base_url=BASE)
            assert kept.id is not None
            return kept.id
    finally:
        await database.dispose()


def test_the_command_line_exports_pledges_and_matches(
    runner: CliRunner, tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "instance.toml"
    made = runner.invoke(cli, ["--config", str(config), "init", "--database-url", database_url])
    assert made.exit_code == 0, made.output
    kept = asyncio.run(_seed(database_url))
    result = runner.invoke(cli, ["--config", str(config), "pledges", "export"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(p["id"], p["included_in_matching"]) for p in data["pledges"]] == [
        (kept, True),
        (kept + 1, False),
    ]
    assert [(m["pledge"], m["amount_cents"]) for m in data["matches"]] == [(kept, 20000)]
    assert data["ledger"][0]["kind"] == "created"
    out = tmp_path / "pledges.csv"
    written = runner.invoke(
        cli, ["--config", str(config), "pledges", "export", "--format", "csv", "-o", str(out)]
    )
    assert written.exit_code == 0, written.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [row["included_in_matching"] for row in rows] == ["true", "false"]
    assert rows[0]["matched_cents"] == "20000" and rows[1]["amount"] == "50.00"
