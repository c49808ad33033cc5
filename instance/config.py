"""One typed settings object, read from a TOML file and overridden by the environment.

``[section] key`` in the file is overridden by ``TERREAU_<SECTION>_<KEY>``; lists are written
comma-separated in the environment. Anything wrong stops start-up with a message naming the key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SUPPORTED_LANGUAGES = ("fr", "en")
CONFIG_ENV = "TERREAU_CONFIG"
DEFAULT_CONFIG_PATH = Path("instance.toml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceSettings(Section):
    base_url: str = "http://127.0.0.1:8000"
    domain: str = ""
    name: str = "Terreau"
    description: str = "Commons shared by our network, and the improvements we fund together."
    languages: list[str] = Field(default_factory=lambda: list(SUPPORTED_LANGUAGES))
    default_language: str = "fr"
    timezone: str = "Europe/Paris"
    currency: str = "EUR"
    secret_key: str = Field(default="", validate_default=True)
    data_dir: Path = Path("data")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be the site's root, without a path, query or fragment")
        return value.rstrip("/")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        unknown = [lang for lang in value if lang not in SUPPORTED_LANGUAGES]
        if unknown or not value:
            raise ValueError(f"choose among {', '.join(SUPPORTED_LANGUAGES)}; got {value}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (example: Europe/Paris)") from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha() or not value.isupper():
            raise ValueError("must be an ISO 4217 code such as EUR")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(value) < 32:
            raise ValueError("must be at least 32 characters: run `terreau init` to generate one")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> InstanceSettings:
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        if not self.domain:
            object.__setattr__(self, "domain", urlsplit(self.base_url).netloc)
        return self

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///data/terreau.db"
    pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")
        return value


class AccountSettings(Section):
    signup_open: bool = True


class LimitSettings(Section):
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    login_attempts: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)
    logo_max_bytes: int = Field(default=512 * 1024, ge=1024)


class FederationSettings(Section):
    enabled: bool = True
    allow_private_addresses: bool = False
    allow_http: bool = False
    allow_list_only: bool = False
    run_worker: bool = True
    signing_process: bool = True
    fetch_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_fetch_bytes: int = Field(default=1_048_576, ge=1024)
    delivery_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    delivery_concurrency: int = Field(default=16, ge=1, le=256)
    actor_cache_seconds: int = Field(default=86_400, ge=0)
    failed_fetch_seconds: int = Field(default=3_600, ge=0)
    signature_window_seconds: int = Field(default=300, ge=30, le=86_400)


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(Section):
    instance: InstanceSettings
    database: DatabaseSettings = DatabaseSettings()
    accounts: AccountSettings = AccountSettings()
    limits: LimitSettings = LimitSettings()
    federation: FederationSettings = FederationSettings()
    logging: LoggingSettings = LoggingSettings()


class ConfigError(Exception):
    """The settings cannot be used; the message names the file and key and says how to fix it."""


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for section_name, field in Settings.model_fields.items():
        section_type = field.annotation
        assert isinstance(section_type, type) and issubclass(section_type, BaseModel)
        for key, key_field in section_type.model_fields.items():
            raw = environ.get(f"TERREAU_{section_name}_{key}".upper())
            if raw is None:
                continue
            value: Any = raw
            if getattr(key_field.annotation, "__origin__", None) is list:
                value = [item.strip() for item in raw.split(",") if item.strip()]
            overrides.setdefault(section_name, {})[key] = value
    return overrides


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"Invalid settings in {source}:"]
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        if len(location) >= 2:
            where = f"[{location[0]}] {location[1]}"
            env = f"TERREAU_{location[0]}_{location[1]}".upper()
            where += f" (or {env})"
        elif location:
            where = f"[{location[0]}]"
        else:
            where = "settings"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (see instance.example.toml for the documented ones)"
        if item["type"] == "missing":
            message = "missing: run `terreau init` to write a complete file"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the file (``$TERREAU_CONFIG`` or ./instance.toml) and the environment."""
    environ = os.environ if environ is None else environ
    path = path or Path(environ.get(CONFIG_ENV, DEFAULT_CONFIG_PATH))
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from None
    for section, values in _env_overrides(environ).items():
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"Invalid settings in {path}: [{section}] must be a table")
        data.setdefault(section, {}).update(values)
    data.setdefault("instance", {})
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, str(path))) from None
