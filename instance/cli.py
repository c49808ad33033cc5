"""The ``terreau`` command: set up, migrate, serve and fill an instance."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from catalogue.errors import InvalidField, InvalidFields
from catalogue.exchange import ExportFormat, ImportFormat
from instance.bundle import bundled
from instance.config import CONFIG_ENV, DEFAULT_CONFIG_PATH, ConfigError, Settings, load_settings
from instance.database import Database, NotMigrated, check_migrated, upgrade

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from federation.service import Federation
    from instance.transfer import ImportReport

app = typer.Typer(
    help="Terreau: a federated catalogue of commons and the co-funding of their improvements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
EXAMPLE_CONFIG = bundled("instance.example.toml")
T = TypeVar("T")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise fail(str(error)) from None


def run(make: Callable[[Database], Awaitable[T]], config: Settings, *, migrated: bool = True) -> T:
    """Run one async job against the database, checking the schema first."""

    async def job() -> T:
        database = Database(config.database.url)
        try:
            if migrated:
                await check_migrated(database.engine)
            return await make(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(job())
    except NotMigrated as error:
        raise fail(str(error), 1) from None


@app.callback()
def main_options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Settings file (default: $TERREAU_CONFIG or ./instance.toml)."
        ),
    ] = None,
) -> None:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)


@app.command()
def init(
    base_url: Annotated[
        str, typer.Option(help="The public address of the instance.")
    ] = "http://127.0.0.1:8000",
    database_url: Annotated[
        str | None, typer.Option(help="Database URL; default SQLite in ./data.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing settings file.")] = False,
) -> None:
    """Write a settings file with a freshly generated secret key."""
    path = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_PATH))
    if path.exists() and not force:
        typer.echo(f"{path} already exists; keeping it (use --force to overwrite).")
        return
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^secret_key = ""', f'secret_key = "{secrets.token_urlsafe(48)}"', text)
    text = re.sub(r'(?m)^base_url = ".*"', f'base_url = "{base_url}"', text, count=1)
    if database_url:
        text = re.sub(r'(?m)^url = ".*"', f'url = "{database_url}"', text, count=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    loaded = settings()
    loaded.instance.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(f"Wrote {path} for {loaded.instance.base_url}. Next: terreau migrate")


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or upgrade the database schema (the only way the schema is made)."""
    config = settings()
    upgrade(config.database.url, revision)
    typer.echo(f"Database is at revision {revision}.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Web worker processes (PostgreSQL for more than 1).")
    ] = 1,
) -> None:
    """Serve the web application."""
    import uvicorn

    config = settings()
    run(lambda _db: asyncio.sleep(0), config)
    if workers > 1 and config.database.url.startswith("sqlite"):
        raise fail("Several web workers need PostgreSQL: SQLite takes one writer at a time.")
    typer.echo(
        f"{config.instance.name} listening on http://{host}:{port}"
        f" (public address: {config.instance.base_url})"
    )
    uvicorn.run(
        "instance.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_level="warning",
    )


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Run one pass, print how many rows it handled, exit.")
    ] = False,
) -> None:
    """Apply received activities and send queued deliveries until SIGINT or SIGTERM.

    Run it when the web server's own worker is off ([federation] run_worker = false). On
    PostgreSQL several may run side by side (each takes its own rows); on SQLite one is
    enough, as the database takes one writer at a time.
    """
    config = settings()
    if not config.federation.enabled:
        raise fail("Federation is turned off ([federation] enabled = false): nothing to do.")
    from instance.observability import configure_logging

    configure_logging(config.logging)
    handled = run(lambda database: _work(config, database, once=once), config)
    if once:
        typer.echo(f"Handled {handled} row(s).")


async def _work(config: Settings, database: Database, *, once: bool) -> int:
    """One pass (``once``), or passes until a signal; how many rows the single pass handled."""
    from federation.worker import Worker
    from instance.federating import federation_for

    async with federation_for(config, database) as federation:
        runner = Worker(federation)
        if once:
            return await runner.run_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await runner.run(stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    return 0


@app.command()
def follow(
    target: Annotated[
        str,
        typer.Argument(
            help="https://host (a Terreau instance), an actor's URL, or @slug@host (one commons)."
        ),
    ],
) -> None:
    """Follow another instance, or one of its commons, as this instance.

    The Follow is queued; the worker sends it, and the other side's Accept marks it followed.
    """
    config = settings()
    if not config.federation.enabled:
        raise fail("Federation is turned off ([federation] enabled = false).")
    actor = run(lambda database: _follow(config, database, target, undo=False), config)
    typer.echo(f"Asked to follow {actor}; the worker sends the request.")


@app.command()
def unfollow(
    target: Annotated[str, typer.Argument(help="What `terreau follow` was given.")],
) -> None:
    """Stop following another instance or commons."""
    config = settings()
    if not config.federation.enabled:
        raise fail("Federation is turned off ([federation] enabled = false).")
    actor = run(lambda database: _follow(config, database, target, undo=True), config)
    typer.echo(f"No longer following {actor}.")


async def _follow(config: Settings, database: Database, target: str, *, undo: bool) -> str:
    from federation.fetch import FetchError
    from federation.follows import follow, resolve_actor, unfollow
    from instance.federating import federation_for

    async with federation_for(config, database) as federation:
        ours = federation.config.instance_actor_uri
        try:
            actor = await resolve_actor(federation, target)
            async with database.session() as session:
                if undo:
                    if not await unfollow(session, federation, ours, actor):
                        raise fail(f"This instance does not follow {actor}.")
                else:
                    await follow(session, federation, ours, actor)
        except FetchError as error:
            raise fail(f"Could not reach {error.url}: {error.reason}") from None
    return actor


@asynccontextmanager
async def announcing(config: Settings, database: Database) -> AsyncIterator[Federation | None]:
    """What commands that write commons announce them with (as the pages do), or None when
    federation is off. Only queued: a worker (``terreau serve``'s, or ``terreau worker``)
    sends them."""
    if not config.federation.enabled:
        yield None
        return
    from instance.federating import federation_for

    async with federation_for(config, database) as federation:
        yield federation


def _field_error(error: InvalidFields | InvalidField) -> typer.Exit:
    errors = error.errors if isinstance(error, InvalidFields) else [error]
    return fail(
        "\n".join(f"{e.field}: {e.message % e.params if e.params else e.message}" for e in errors)
    )


@app.command("create-admin")
def create_admin_command(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email address.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters."
        ),
    ],
    name: Annotated[str, typer.Option(help="The name others will see.")] = "Admin",
) -> None:
    """Make an instance admin (creating the account, or promoting an existing one)."""
    from instance.accounts import create_admin

    async def job(database: Database) -> bool:
        async with database.session() as session:
            _account, created = await create_admin(session, email, password, name)
            return created

    try:
        created = run(job, settings())
    except (InvalidFields, InvalidField) as error:
        raise _field_error(error) from None
    typer.echo(f"{'Created' if created else 'Promoted'} admin {email.strip().lower()}.")


@app.command()
def demo(
    admin_password: Annotated[
        str | None, typer.Option(help="Password for the demo admin (default: a new random one).")
    ] = None,
) -> None:
    """Load the demo data set (idempotent) and print the demo admin's login.

    The commons it adds are announced to other instances as if made in the pages, and the
    improvements it opens are sent once (now, or at the next start of the server).
    """
    from instance.demo import DemoResult, load_demo
    from instance.outgoing import announce_unsent_improvements

    config = settings()

    async def job(database: Database) -> DemoResult:
        async with announcing(config, database) as federation:
            async with database.session() as session:
                result = await load_demo(
                    session,
                    config.instance.base_url,
                    admin_password,
                    currency=config.instance.currency,
                    federation=federation,
                )
            if federation is not None:
                await announce_unsent_improvements(federation, config)
            return result

    try:
        result = run(job, config)
    except (InvalidFields, InvalidField) as error:
        raise _field_error(error) from None
    typer.echo(
        f"Demo data: {result.organisations_created} organisations"
        f" and {result.people_created} people added."
    )
    typer.echo(
        f"Catalogue: {result.commons_created} commons, {result.declarations_created}"
        f" declarations and {result.improvements_created} improvements added."
    )
    typer.secho(
        f"Admin login: {result.admin_email} / {result.admin_password}",
        fg=typer.colors.GREEN,
        bold=True,
    )


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A CSV, JSON or publiccode.yml file.")],
    file_format: Annotated[
        ImportFormat | None,
        typer.Option("--format", help="The file's format (default: guessed from its name)."),
    ] = None,
    maintainer: Annotated[
        str | None,
        typer.Option(help="Slug of the local organisation that maintains rows naming none."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row, write nothing.")
    ] = False,
) -> None:
    """Import commons: all rows or none. Existing slugs are updated, and other instances
    hear of what changed as if it was made in the pages.

    Exits with 1 and the list of refused rows when any row (or the file) is refused: then
    nothing is written.
    """
    from catalogue.exchange import ImportFileError, guess_format, parse_rows
    from instance.transfer import UnknownOrganisation, import_commons

    config = settings()
    chosen = file_format or guess_format(file.name)
    if chosen is None:
        raise fail(f"Cannot tell the format of {file}: use --format csv, json or publiccode.")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"Cannot read {file}: {error}") from None
    try:
        rows = parse_rows(text, chosen)
    except ImportFileError as error:
        raise fail(f"{file}: {error} Nothing imported.", 1) from None

    async def job(database: Database) -> ImportReport:
        async with announcing(config, database) as federation, database.session() as session:
            if dry_run or not sys.stderr.isatty():
                return await _import(session, None, federation)
            with typer.progressbar(length=len(rows), label="Importing", file=sys.stderr) as bar:
                return await _import(session, bar.update, federation)

    async def _import(
        session: AsyncSession,
        progress: Callable[[int], None] | None,
        federation: Federation | None,
    ) -> ImportReport:
        return await import_commons(
            session,
            rows,
            base_url=config.instance.base_url,
            default_maintainer=maintainer.strip().lower() if maintainer else None,
            dry_run=dry_run,
            progress=progress,
            federation=federation,
        )

    try:
        report = run(job, config)
    except UnknownOrganisation as error:
        raise fail(f"--maintainer: {error}") from None
    _print_import_report(report)


def _print_import_report(report: ImportReport) -> None:
    counts = f"created {len(report.created)}, updated {len(report.updated)}"
    if report.skipped_remote:
        counts += f", skipped {report.skipped_remote} remote commons (only their origin edits them)"
    if report.rejected:
        for rejected in report.rejected:
            for line in rejected.lines():
                typer.secho(line, fg=typer.colors.RED, err=True)
        raise fail(f"{len(report.rejected)} row(s) refused: nothing imported.", 1)
    if report.dry_run:
        typer.echo(f"Dry run, nothing written: would have {counts}.")
    else:
        typer.echo(f"Imported: {counts}.")


@app.command("export")
def export_command(
    file_format: Annotated[
        ExportFormat,
        typer.Option("--format", help="json: everything public; csv: the commons table."),
    ] = ExportFormat.JSON,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of to stdout.")
    ] = None,
) -> None:
    """Export everything public (JSON), or the local commons as the CSV import reads."""
    from instance.transfer import export_commons_csv, export_data

    config = settings()

    async def job(database: Database) -> str:
        async with database.session() as session:
            if file_format == ExportFormat.CSV:
                return await export_commons_csv(session)
            data = await export_data(session, base_url=config.instance.base_url)
            return json.dumps(data, ensure_ascii=False, indent=2) + "\n"

    text = run(job, config)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise fail(f"Cannot write {output}: {error}") from None
    typer.echo(f"Wrote {output}.")


matching = typer.Typer(
    help="Matching programs: simulate the rules before launching a program.",
    no_args_is_help=True,
)
app.add_typer(matching, name="matching")


@matching.command("simulate")
def matching_simulate(
    scenario: Annotated[
        Path, typer.Argument(help="A scenario JSON file (see pledges/scenario.py).")
    ],
) -> None:
    """Apply the matching rules to a scenario and print the matches as JSON.

    Uses no database and no settings: a funder sizes an envelope with it before launching.
    """
    import json

    from pledges.scenario import ScenarioError, simulate

    try:
        data = json.loads(scenario.read_text(encoding="utf-8"))
    except OSError as error:
        raise fail(f"Cannot read {scenario}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise fail(f"{scenario} is not valid JSON: {error}") from None
    try:
        result = simulate(data)
    except ScenarioError as error:
        raise fail(f"Invalid scenario: {error}") from None
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


class PledgesFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


pledges_app = typer.Typer(
    help="Pledges and matches: export them for a funder's or a treasurer's books.",
    no_args_is_help=True,
)
app.add_typer(pledges_app, name="pledges")


@pledges_app.command("export")
def pledges_export(
    file_format: Annotated[
        PledgesFormat,
        typer.Option(
            "--format", help="json: pledges, matches and the ledger; csv: one pledge a row."
        ),
    ] = PledgesFormat.JSON,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of to stdout.")
    ] = None,
) -> None:
    """Export every pledge (with included_in_matching) and every match; JSON adds the ledger."""
    from pledges.exports import export_csv, export_json
    from pledges.reports import export_lines

    config = settings()

    async def job(database: Database) -> str:
        async with database.session() as session:
            lines, matches, ledger = await export_lines(session)
        if file_format == PledgesFormat.CSV:
            return export_csv(lines, matches)
        return export_json(lines, matches, ledger, currency=config.instance.currency)

    text = run(job, config)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise fail(f"Cannot write {output}: {error}") from None
    typer.echo(f"Wrote {output}.")


def main() -> None:
    app(prog_name="terreau")


if __name__ == "__main__":
    main()
