"""Settings: documented, overridable by the environment, refused with a message naming the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel
from support import TEST_SECRET

from instance.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "instance.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "instance.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_setting_is_in_the_example_file_with_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    example = tomllib.loads("\n".join(lines))
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        assert set(example[section]) == set(model.model_fields), section
        for key in model.model_fields:
            index = next(
                i
                for i, line in enumerate(lines)
                if re.match(rf"{key} = ", line) and _section_of(lines, i) == section
            )
            assert lines[index - 1].startswith("#"), f"[{section}] {key} has no comment above it"


def _section_of(lines: list[str], index: int) -> str:
    for line in reversed(lines[:index]):
        if line.startswith("["):
            return line.strip("[]")
    return ""


def test_the_example_file_holds_no_secret_and_is_otherwise_valid() -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert example["instance"]["secret_key"] == ""
    settings = load_settings(EXAMPLE, {"TERREAU_INSTANCE_SECRET_KEY": TEST_SECRET})
    assert settings.database.url == "sqlite+aiosqlite:///data/terreau.db"
    assert settings.instance.languages == ["fr", "en"]
    assert settings.instance.currency == "EUR"
    assert settings.instance.domain == "127.0.0.1:8000"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, f'[instance]\nsecret_key = "{TEST_SECRET}"\nbase_url = "http://a.example"\n'
    )
    settings = load_settings(
        path,
        {
            "TERREAU_INSTANCE_BASE_URL": "https://commons.example.org",
            "TERREAU_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/test",
            "TERREAU_INSTANCE_LANGUAGES": "en",
            "TERREAU_INSTANCE_DEFAULT_LANGUAGE": "en",
            "TERREAU_ACCOUNTS_SIGNUP_OPEN": "false",
            "TERREAU_LIMITS_MAX_BODY_BYTES": "4096",
        },
    )
    assert settings.instance.base_url == "https://commons.example.org"
    assert settings.instance.domain == "commons.example.org"
    assert settings.instance.https
    assert settings.database.url.startswith("postgresql+asyncpg://")
    assert settings.instance.languages == ["en"]
    assert settings.accounts.signup_open is False
    assert settings.limits.max_body_bytes == 4096


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        (
            '[instance]\ntimezone = "Mars/Olympus"\n',
            {},
            r"\[instance\] timezone .*unknown time zone",
        ),
        ('[instance]\nbase_url = "ftp://x"\n', {}, r"\[instance\] base_url .*http"),
        ('[instance]\nlanguages = ["de"]\n', {}, r"\[instance\] languages"),
        ('[database]\nurl = "mysql://x"\n', {}, r"\[database\] url"),
        ('[limits]\nlogin_attempts = "many"\n', {}, r"\[limits\] login_attempts"),
        ('[instance]\nbase_ulr = "http://x"\n', {}, r"\[instance\] base_ulr .*unknown setting"),
        ("", {"TERREAU_ACCOUNTS_SIGNUP_OPEN": "perhaps"}, r"TERREAU_ACCOUNTS_SIGNUP_OPEN"),
    ],
)
def test_a_wrong_value_is_refused_naming_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], expected: str
) -> None:
    path = write(
        tmp_path,
        text.replace("[instance]\n", f'[instance]\nsecret_key = "{TEST_SECRET}"\n')
        if "[instance]" in text
        else f'[instance]\nsecret_key = "{TEST_SECRET}"\n' + text,
    )
    with pytest.raises(ConfigError, match=expected):
        load_settings(path, environ)


def test_a_missing_secret_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[instance\] secret_key .*terreau init"):
        load_settings(write(tmp_path, "[instance]\n"), {})


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"instance\.toml is not valid TOML"):
        load_settings(write(tmp_path, "[instance\n"), {})
