"""terreau import and export, on SQLite and PostgreSQL: all or nothing, and round trips."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from typer.testing import CliRunner

from catalogue import operations as ops
from catalogue.commons import Commons, CommonsKind, CommonsMaintainer
from catalogue.declarations import validate_declaration
from catalogue.errors import InvalidField, InvalidFields
from catalogue.exchange import COLUMNS, ImportFormat, parse_rows
from catalogue.improvements import Improvement, ImprovementStatus, validate_improvement
from catalogue.organisations import Organisation
from catalogue.queries import tags_of
from instance.cli import app
from instance.database import Database, upgrade
from instance.demo import load_demo
from instance.transfer import (
    UnknownOrganisation,
    export_commons_csv,
    export_data,
    import_commons,
)

BASE = "http://testserver"
DATA = Path(__file__).parent.parent / "data"


async def organisation(session: AsyncSession, slug: str, **fields: Any) -> Organisation:
    org = Organisation(
        uri=fields.pop("uri", f"{BASE}/orgs/{slug}"),
        slug=slug,
        name=slug.title(),
        sort_key=slug,
        kind="tiers-lieu",
        **fields,
    )
    session.add(org)
    await session.commit()
    return org


async def two_organisations(session: AsyncSession) -> None:
    await organisation(session, "cae-nord")
    await organisation(session, "lieu-sud")


def rows_of(name: str) -> list[Any]:
    path = DATA / name
    file_format = {".csv": ImportFormat.CSV, ".json": ImportFormat.JSON}.get(
        path.suffix, ImportFormat.PUBLICCODE
    )
    return parse_rows(path.read_text(encoding="utf-8"), file_format)


async def slugs(session: AsyncSession) -> list[str]:
    return sorted((await session.exec(select(Commons.slug))).all())


async def test_an_import_creates_commons_with_their_tags_and_maintainers(
    session: AsyncSession,
) -> None:
    await two_organisations(session)
    report = await import_commons(
        session, rows_of("commons.csv"), base_url=BASE, default_maintainer="cae-nord"
    )
    assert report.written and report.created == ["yeswiki", "serre", "guide"]
    assert await slugs(session) == ["guide", "serre", "yeswiki"]
    yeswiki = await ops.get_local_commons(session, "yeswiki")
    assert yeswiki is not None and yeswiki.id is not None
    assert yeswiki.uri == f"{BASE}/commons/yeswiki"
    assert yeswiki.description_html.startswith("<p>Un <strong>wiki</strong> facile.</p>")
    assert (await tags_of(session, [yeswiki.id]))[yeswiki.id] == ["coopération", "wiki"]
    maintainers = (
        await session.exec(
            select(Organisation.slug)
            .join(CommonsMaintainer)
            .where(CommonsMaintainer.commons_id == yeswiki.id)
        )
    ).all()
    assert sorted(maintainers) == ["cae-nord", "lieu-sud"]


async def test_one_bad_row_among_good_ones_leaves_the_database_unchanged(
    session: AsyncSession,
) -> None:
    await two_organisations(session)
    report = await import_commons(session, rows_of("commons-bad-rows.csv"), base_url=BASE)
    assert not report.written
    lines = [line for rejected in report.rejected for line in rejected.lines()]
    assert lines[0].startswith("line 3: licence: Unknown licence Foo-1.0")
    assert lines[1] == "line 5: website: Give a full web address starting with https://."
    assert await slugs(session) == []


async def test_a_dry_run_checks_every_row_and_writes_nothing(session: AsyncSession) -> None:
    await two_organisations(session)
    report = await import_commons(
        session, rows_of("commons.csv"), base_url=BASE, default_maintainer="lieu-sud", dry_run=True
    )
    assert report.created == ["yeswiki", "serre", "guide"] and not report.written
    assert await slugs(session) == []


async def test_rows_whose_slug_exists_update_the_commons(session: AsyncSession) -> None:
    await two_organisations(session)
    rows = rows_of("commons.csv")
    await import_commons(session, rows, base_url=BASE, default_maintainer="cae-nord")
    changed = parse_rows(
        (DATA / "commons.csv").read_text().replace("Les plans d'une serre", "Des plans revus"),
        ImportFormat.CSV,
    )
    report = await import_commons(session, changed, base_url=BASE, default_maintainer="lieu-sud")
    assert (report.created, report.updated) == ([], ["yeswiki", "serre", "guide"])
    serre = await ops.get_local_commons(session, "serre")
    assert serre is not None and serre.summary == "Des plans revus"
    guide = await ops.get_local_commons(session, "guide")
    assert guide is not None
    maintainer = await session.exec(
        select(Organisation.slug)
        .join(CommonsMaintainer)
        .where(CommonsMaintainer.commons_id == guide.id)
    )
    assert maintainer.all() == ["lieu-sud"]
    assert len(await slugs(session)) == 3


async def test_a_row_failing_while_writing_rolls_back_the_rows_before_it(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checks pass, then the database refuses one row (a race): the rows before it go too."""
    await two_organisations(session)
    create = ops.create_commons

    async def refuse_serre(*args: Any, **kwargs: Any) -> Commons:
        if args[1]["slug"] == "serre":
            raise InvalidFields([InvalidField("slug", "Taken meanwhile.")])
        return await create(*args, **kwargs)

    monkeypatch.setattr(ops, "create_commons", refuse_serre)
    report = await import_commons(
        session, rows_of("commons.csv"), base_url=BASE, default_maintainer="cae-nord"
    )
    assert [r.lines() for r in report.rejected] == [["line 5: slug: Taken meanwhile."]]
    assert not report.written
    assert await slugs(session) == []


async def test_an_unknown_default_maintainer_is_refused(session: AsyncSession) -> None:
    with pytest.raises(UnknownOrganisation):
        await import_commons(
            session, rows_of("commons.csv"), base_url=BASE, default_maintainer="nulle-part"
        )


async def test_publiccode_and_json_files_import(session: AsyncSession) -> None:
    await two_organisations(session)
    report = await import_commons(
        session, rows_of("publiccode.yml"), base_url=BASE, default_maintainer="cae-nord"
    )
    assert report.created == ["gestionnaire-de-prets"]
    report = await import_commons(
        session, rows_of("commons.json"), base_url=BASE, default_maintainer="lieu-sud"
    )
    assert report.created == ["yeswiki", "plans-de-four-a-pain"] and report.skipped_remote == 1


async def fill(session: AsyncSession) -> None:
    """A local commons with a declaration and improvements, a hidden one, a remote one."""
    lieu = await organisation(session, "lieu-sud", siret="73282932000074")
    remote_org = await organisation(
        session, "ailleurs", uri="https://ailleurs.example/orgs/ailleurs", origin="ailleurs.example"
    )
    assert lieu.id is not None and remote_org.id is not None
    data = {
        "name": "YesWiki",
        "kind": "software",
        "summary": "Un wiki",
        "tags": "wiki",
        "payment_links": "Don | https://opencollective.com/yeswiki",
    }
    yeswiki = await ops.create_commons(
        session, data, base_url=BASE, creator_id=None, maintainer_ids=[lieu.id]
    )
    hidden = await ops.create_commons(
        session,
        {**data, "slug": "cache", "name": "Caché"},
        base_url=BASE,
        creator_id=None,
        maintainer_ids=[lieu.id],
    )
    await ops.set_hidden(session, hidden, True)
    session.add(
        Commons(
            uri="https://ailleurs.example/commons/yeswiki",
            origin="ailleurs.example",
            slug="yeswiki",
            name="YesWiki là-bas",
            sort_key="yeswiki la-bas",
            kind="software",
        )
    )
    await session.commit()
    uses = validate_declaration("uses", "2024-01-01", "Très bien", "5", today=ops.today_utc())
    await ops.declare(session, lieu, yeswiki, uses, base_url=BASE, creator_id=None)
    await ops.declare(session, lieu, hidden, uses, base_url=BASE, creator_id=None)
    for title, status in (("Export PDF", "open"), ("Brouillon", "draft")):
        improvement = await ops.create_improvement(
            session,
            yeswiki,
            validate_improvement(
                {
                    "title": title,
                    "budget": "4000.50",
                    "milestones": "Étape: 1000\nFin: 3000.50",
                    "payment_links": "Payer | https://yeswiki.net/payer",
                }
            ),
            base_url=BASE,
            currency="EUR",
            provider_id=lieu.id,
            creator_id=None,
        )
        if status != "draft":
            await ops.change_status(session, improvement, status)


async def test_the_export_holds_everything_public_and_nothing_else(session: AsyncSession) -> None:
    await fill(session)
    data = await export_data(session, base_url=BASE)
    assert data["instance"] == BASE and data["exported_at"].endswith("+00:00")
    assert [(c["slug"], c["origin"]) for c in data["commons"]] == [
        ("yeswiki", None),
        ("yeswiki", "ailleurs.example"),
    ]
    assert data["commons"][0]["tags"] == ["wiki"]
    assert data["commons"][0]["maintainers"] == ["lieu-sud"]
    assert data["commons"][0]["payment_links"] == [
        {"label": "Don", "url": "https://opencollective.com/yeswiki"}
    ]
    assert data["commons"][1]["payment_links"] == []
    assert {o["slug"] for o in data["organisations"]} == {"lieu-sud", "ailleurs"}
    assert "@" not in json.dumps(data["organisations"])  # no member, so no email
    [declaration] = data["declarations"]  # not the one on the hidden commons
    assert (declaration["commons_slug"], declaration["satisfaction"]) == ("yeswiki", 5)
    [improvement] = data["improvements"]  # not the draft
    assert (improvement["budget_cents"], improvement["budget"]) == (400050, "4000.50")
    assert improvement["milestones"][1] == {
        "title": "Fin",
        "amount_cents": 300050,
        "amount": "3000.50",
        "currency": "EUR",
    }
    assert improvement["provider_slug"] == "lieu-sud" and improvement["status"] == "open"
    assert improvement["payment_links"] == [{"label": "Payer", "url": "https://yeswiki.net/payer"}]
    json.dumps(data)  # serialisable as it is


async def test_the_csv_export_holds_local_visible_commons_in_import_columns(
    session: AsyncSession,
) -> None:
    await fill(session)
    rows = list(csv.reader(io.StringIO(await export_commons_csv(session))))
    assert tuple(rows[0]) == COLUMNS
    assert [row[0] for row in rows[1:]] == ["yeswiki"]


# The command line


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("TERREAU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def configure(runner: CliRunner, path: Path, database_url: str) -> list[str]:
    result = runner.invoke(app, ["--config", str(path), "init", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    return ["--config", str(path)]


def in_database(database_url: str, job: Any) -> Any:
    async def run() -> Any:
        database = Database(database_url)
        try:
            async with database.session() as session:
                return await job(session)
        finally:
            await database.dispose()

    return asyncio.run(run())


@pytest.fixture
def base(runner: CliRunner, tmp_path: Path, database_url: str) -> list[str]:
    in_database(database_url, two_organisations)
    return configure(runner, tmp_path / "instance.toml", database_url)


def count_commons(database_url: str) -> int:
    async def job(session: AsyncSession) -> int:
        return int((await session.exec(select(func.count()).select_from(Commons))).one())

    return int(in_database(database_url, job))


@pytest.mark.parametrize("command", ["import", "export"])
def test_import_and_export_have_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--format" in result.output


def test_cli_import_reports_what_it_did(
    runner: CliRunner, base: list[str], database_url: str
) -> None:
    path = str(DATA / "commons.csv")
    dry = runner.invoke(app, [*base, "import", path, "--maintainer", "cae-nord", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run, nothing written: would have created 3, updated 0." in dry.output
    assert count_commons(database_url) == 0
    done = runner.invoke(app, [*base, "import", path, "--maintainer", "cae-nord"])
    assert done.exit_code == 0 and "Imported: created 3, updated 0." in done.output
    again = runner.invoke(app, [*base, "import", path, "--maintainer", "cae-nord"])
    assert "created 0, updated 3" in again.output
    publiccode = runner.invoke(
        app, [*base, "import", str(DATA / "publiccode.yml"), "--maintainer", "lieu-sud"]
    )
    assert "created 1, updated 0" in publiccode.output
    assert count_commons(database_url) == 4


def test_cli_import_refuses_a_file_with_a_bad_row_and_says_why(
    runner: CliRunner, base: list[str], database_url: str
) -> None:
    result = runner.invoke(app, [*base, "import", str(DATA / "commons-bad-rows.csv")])
    assert result.exit_code == 1
    assert "line 3: licence: Unknown licence Foo-1.0" in result.output
    assert "line 5: website: Give a full web address" in result.output
    assert "2 row(s) refused: nothing imported." in result.output
    assert "Traceback" not in result.output
    assert count_commons(database_url) == 0


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["commons-wrong-columns.csv"], 1, "Unknown column(s): 'nom', 'colour'"),
        (["commons.csv", "--maintainer", "personne"], 2, "No local organisation has the slug"),
        (["commons.csv", "--format", "xml"], 2, "Invalid value for '--format'"),
        (["missing.csv"], 2, "Cannot read"),
        (["commons.json", "--format", "csv"], 1, "Unknown column(s)"),
    ],
)
def test_cli_import_refuses_bad_files_and_options_clearly(
    runner: CliRunner, base: list[str], arguments: list[str], code: int, message: str
) -> None:
    result = runner.invoke(app, [*base, "import", str(DATA / arguments[0]), *arguments[1:]])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_cli_import_needs_a_format_it_can_tell(
    runner: CliRunner, base: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "commons.txt"
    path.write_text((DATA / "commons.csv").read_text())
    result = runner.invoke(app, [*base, "import", str(path)])
    assert result.exit_code == 2 and "use --format csv, json or publiccode" in result.output
    result = runner.invoke(app, [*base, "import", str(path), "--format", "csv", "--dry-run"])
    assert result.exit_code == 1 and "maintainers: Name at least one" in result.output


@pytest.fixture
def other_database_url(tmp_path: Path) -> str:
    """A second, empty migrated SQLite database to import into (from either database)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    upgrade(url)
    return url


def commons_rows(database_url: str) -> list[dict[str, Any]]:
    async def job(session: AsyncSession) -> list[dict[str, Any]]:
        data = await export_data(session, base_url=BASE)
        return [{key: c[key] for key in COLUMNS} for c in data["commons"] if c["origin"] is None]

    return list(in_database(database_url, job))


def copy_organisations(exported: dict[str, Any], database_url: str) -> None:
    async def job(session: AsyncSession) -> None:
        for org in exported["organisations"]:
            await organisation(session, org["slug"], uri=f"{BASE}/orgs/{org['slug']}")

    in_database(database_url, job)


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_the_demo_catalogue_round_trips_through_export_and_import(
    runner: CliRunner,
    tmp_path: Path,
    database_url: str,
    other_database_url: str,
    file_format: str,
) -> None:
    source = configure(runner, tmp_path / "source.toml", database_url)
    target = configure(runner, tmp_path / "target.toml", other_database_url)
    assert runner.invoke(app, [*source, "demo"]).exit_code == 0
    exported = runner.invoke(app, [*source, "export"])
    assert exported.exit_code == 0, exported.output
    everything = json.loads(exported.output)
    copy_organisations(everything, other_database_url)

    path = tmp_path / f"commons.{file_format}"
    result = runner.invoke(app, [*source, "export", "--format", file_format, "--output", str(path)])
    assert result.exit_code == 0 and f"Wrote {path}" in result.output
    imported = runner.invoke(app, [*target, "import", str(path)])
    assert imported.exit_code == 0, imported.output
    assert f"created {len(everything['commons'])}, updated 0" in imported.output
    assert commons_rows(other_database_url) == commons_rows(database_url)


async def test_the_demo_fills_a_catalogue_of_every_kind_once(session: AsyncSession) -> None:
    first = await load_demo(session, BASE, "demo admin password")
    assert first.commons_created >= 40
    assert first.declarations_created >= 40 and first.improvements_created >= 12
    kinds = set((await session.exec(select(Commons.kind))).all())
    assert kinds == {kind.value for kind in CommonsKind}
    statuses = list((await session.exec(select(Improvement.status))).all())
    assert statuses.count(ImprovementStatus.OPEN) > len(statuses) / 2
    assert {"draft", "funded", "delivered"} <= set(statuses)
    budgets = (await session.exec(select(Improvement.budget_cents))).all()
    assert all(isinstance(cents, int) and cents > 0 for cents in budgets)
    yeswiki = await ops.get_local_commons(session, "yeswiki")
    assert yeswiki is not None and yeswiki.uses_count >= 5 and yeswiki.open_improvements == 2

    again = await load_demo(session, BASE)
    assert (again.commons_created, again.declarations_created, again.improvements_created) == (
        0,
        0,
        0,
    )
    assert len((await session.exec(select(Commons.id))).all()) == first.commons_created
