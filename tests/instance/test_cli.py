"""The terreau command, run as an operator would: init, migrate, create-admin, demo, serve."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from instance.cli import app

COMMANDS = ["init", "migrate", "serve", "create-admin", "demo"]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("TERREAU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def init(runner: CliRunner, config: Path, database_url: str | None = None) -> None:
    args = ["--config", str(config), "init"]
    if database_url:
        args += ["--database-url", database_url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_init_writes_a_private_file_with_a_fresh_secret(runner: CliRunner, tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    init(runner, first)
    init(runner, second)
    secrets = [tomllib.loads(p.read_text())["instance"]["secret_key"] for p in (first, second)]
    assert len(secrets[0]) >= 32 and secrets[0] != secrets[1]
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    kept = runner.invoke(app, ["--config", str(first), "init"])
    assert "already exists" in kept.output
    assert tomllib.loads(first.read_text())["instance"]["secret_key"] == secrets[0]


def test_an_invalid_file_stops_the_command_naming_the_key(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "instance.toml"
    init(runner, config)
    config.write_text(config.read_text().replace('timezone = "Europe/Paris"', 'timezone = "Paris"'))
    result = runner.invoke(app, ["--config", str(config), "serve"])
    assert result.exit_code == 2
    assert "[instance] timezone" in result.output and "Traceback" not in result.output


def test_serve_refuses_an_unmigrated_database(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "instance.toml"
    init(runner, config)
    result = runner.invoke(app, ["--config", str(config), "serve"])
    assert result.exit_code == 1
    assert "Run `terreau migrate` first." in result.output


def test_serve_refuses_several_workers_on_sqlite(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "instance.toml"
    init(runner, config)
    assert runner.invoke(app, ["--config", str(config), "migrate"]).exit_code == 0
    result = runner.invoke(app, ["--config", str(config), "serve", "--workers", "2"])
    assert result.exit_code == 2 and "PostgreSQL" in result.output


def test_migrate_create_admin_and_demo(
    runner: CliRunner, tmp_path: Path, empty_database_url: str
) -> None:
    config = tmp_path / "instance.toml"
    init(runner, config, empty_database_url)
    base = ["--config", str(config)]
    assert runner.invoke(app, [*base, "demo"]).exit_code == 1  # not migrated yet
    assert runner.invoke(app, [*base, "migrate"]).exit_code == 0

    created = runner.invoke(
        app,
        [
            *base,
            "create-admin",
            "--email",
            "Root@Example.org",
            "--password",
            "a long admin password",
        ],
    )
    assert created.exit_code == 0 and "Created admin root@example.org" in created.output
    promoted = runner.invoke(
        app,
        [
            *base,
            "create-admin",
            "--email",
            "root@example.org",
            "--password",
            "another long password",
        ],
    )
    assert "Promoted admin" in promoted.output

    bad = runner.invoke(app, [*base, "create-admin", "--email", "nope", "--password", "short"])
    assert bad.exit_code == 2
    assert "email: Give a valid email address." in bad.output
    assert "password: Use at least 10 characters." in bad.output

    first = runner.invoke(app, [*base, "demo", "--admin-password", "demo admin password"])
    assert first.exit_code == 0, first.output
    assert "13 organisations" in first.output
    assert "Catalogue: 46 commons, 60 declarations and 16 improvements added." in first.output
    assert "Admin login: admin@terreau.example / demo admin password" in first.output
    again = runner.invoke(app, [*base, "demo"])
    assert "0 organisations and 0 people added" in again.output
    assert "Catalogue: 0 commons, 0 declarations and 0 improvements added." in again.output
    assert "Admin login: admin@terreau.example / " in again.output
