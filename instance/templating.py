"""Jinja2 set up for Terreau: translated, autoescaped, with the page's common context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from catalogue.organisations import KIND_LABELS, OrganisationKind
from catalogue.territories import parse_territory
from instance import i18n
from instance.bundle import bundled
from instance.config import Settings
from instance.formatting import display_helpers
from instance.passwords import MIN_LENGTH
from instance.security import csrf_token

TEMPLATES = bundled("templates")


def make_environment(settings: Settings) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: i18n.gettext(message),
        lambda singular, plural, n: i18n.translations().ngettext(singular, plural, n),
        newstyle=True,
    )
    tz = settings.instance.tz

    def local_time(value: datetime | None, format: str = "medium") -> str:
        """A stored UTC time shown in the instance's time zone and the reader's language."""
        if value is None:
            return ""
        return format_datetime(value, format=format, tzinfo=tz, locale=i18n.current_language())

    def kind_label(kind: str) -> str:
        try:
            return i18n.gettext(KIND_LABELS[OrganisationKind(kind)])
        except ValueError:
            return kind

    def territory_label(code: str) -> str:
        territory = parse_territory(code) if code else None
        return territory.label if territory else ""

    env.filters.update(
        local_time=local_time, kind_label=kind_label, territory_label=territory_label
    )
    env.globals.update(
        settings=settings,
        organisation_kinds=[(k.value, k) for k in OrganisationKind],
        language_name=i18n.language_name,
        password_min_length=MIN_LENGTH,
        **display_helpers(),
    )
    return env


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render ``template`` with what every page needs: account, CSRF token, language, flashes."""
    env: Environment = request.app.state.templates
    page = {
        "request": request,
        "account": request.scope.get("state", {}).get("account"),
        "csrf_token": csrf_token(request),
        "lang": i18n.current_language(),
        "flashes": request.session.pop("flash", []),
        "errors": {},
        "values": {},
    }
    page.update(context or {})
    html = env.get_template(template).render(page)
    return HTMLResponse(html, status_code=status_code)
