"""The simulate command's format: exact amounts, errors that name the field, exit code 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from instance.cli import app
from pledges.scenario import ScenarioError, simulate

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs/scenarios/france-tiers-lieux.json"


def scenario() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def changed(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(scenario())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["pledges", 0, "amount"], "-5.00", r"pledges\[0\]\.amount: must be an amount"),
        (["pledges", 0, "amount"], "0.00", r"pledges\[0\]\.amount: must be more than zero"),
        (["pledges", 0, "amount"], 300.0, r"pledges\[0\]\.amount: must be an amount as a string"),
        (["pledges", 0, "amount"], "300.001", r"pledges\[0\]\.amount"),
        (["pledges", 0, "amount"], "trois cents", r"pledges\[0\]\.amount"),
        (["pledges", 0, "at"], "2026-11-16 09:00", r"pledges\[0\]\.at: give the time zone"),
        (["pledges", 0, "status"], "promised", r"pledges\[0\]\.status: must be one of"),
        (["pledges", 0, "improvement"], "nope", r"pledges\[0\]\.improvement: unknown"),
        (["programs", 0, "ratio"], "0", r"programs\[0\]\.ratio: must be more than zero"),
        (["programs", 0, "ratio"], "-1", r"programs\[0\]\.ratio: must be more than zero"),
        (["programs", 0, "ends"], "2026-11-01T00:00:00Z", r"programs\[0\]\.ends: the window ends"),
        (["programs", 0, "funder"], KeyError, r"programs\[0\]\.funder: missing"),
        (["programs", 0, "eligible"], {"colours": ["green"]}, r"eligible\.colours: unknown"),
        (["improvements", 0, "budget"], "0", r"improvements\[0\]\.budget: must be more than zero"),
        (["currency"], "euros", r"currency: must be an ISO 4217 code"),
        (["pledges"], {"p1": {}}, r"pledges: must be a list"),
    ],
)
def test_a_scenario_that_does_not_fit_names_the_field(
    path: list[Any], value: Any, message: str
) -> None:
    with pytest.raises(ScenarioError, match=message):
        simulate(changed(path, value))


def test_duplicate_ids_are_refused() -> None:
    data = scenario()
    data["pledges"].append(dict(data["pledges"][0]))
    with pytest.raises(ScenarioError, match=r"pledges\[6\]\.id: 'p1' appears twice"):
        simulate(data)


def test_the_cli_prints_the_result_as_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["matching", "simulate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == simulate(scenario())


def test_the_cli_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(changed(["programs", 1, "ratio"], "0")))
    result = CliRunner().invoke(app, ["matching", "simulate", str(bad)])
    assert result.exit_code == 2
    assert "programs[1].ratio: must be more than zero" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert CliRunner().invoke(app, ["matching", "simulate", str(broken)]).exit_code == 2
    missing = CliRunner().invoke(app, ["matching", "simulate", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and "Cannot read" in missing.output
