"""The French catalog: complete, placeholders intact, loaded by instance.i18n; and the choice
of each request's language."""

from __future__ import annotations

import ast
import contextvars
import re
from functools import cache
from http import HTTPStatus
from pathlib import Path

import pytest
from babel.messages import frontend
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from babel.support import Translations

from catalogue.territories import territory_choices
from instance import i18n
from instance.accounts import InstanceRole
from instance.errors import TITLES
from instance.memberships import MemberRole

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "babel.cfg"
FRENCH_PO = ROOT / "instance" / "locales" / "fr" / "LC_MESSAGES" / "messages.po"
SOURCE_PACKAGES = ("instance", "catalogue", "pledges", "federation")

# %(name)s, %(num)d, %(max)d, ... (a conversion, optionally with flags, width and precision).
PLACEHOLDER = re.compile(r"%\(([^)]+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


@cache
def french() -> Catalog:
    with FRENCH_PO.open("rb") as po:
        return read_po(po, locale="fr")


@cache
def extracted() -> dict[str | tuple[str, ...], list[str]]:
    """msgid (a tuple for plurals) -> where it is used, extracted as ``pybabel extract`` does."""
    with BABEL_CFG.open() as cfg:
        # parse_mapping_cfg replaced parse_mapping (now deprecated) in recent Babel releases.
        parse_mapping = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
        method_map, options_map = parse_mapping(cfg, str(BABEL_CFG))
    keywords = {**DEFAULT_KEYWORDS, **frontend.parse_keywords(["N_"])}  # the command line's -k N_
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords
    ):
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def _marked(node: ast.expr | None) -> str | None:
    """The text of ``N_("...")``: marked for extraction, translated when shown."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "N_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _unmarked(node: ast.expr | None) -> bool:
    """A plain string literal: shown through gettext, but invisible to extraction."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _status(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def _called(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


@cache
def runtime_messages() -> dict[str, str]:
    """Messages passed to gettext at render time, which extraction cannot see.

    Error page titles (TITLES, else the HTTP phrase), literal HTTPException details and
    error_response details, the territory groups shown as ``_(group)`` and the role values
    shown as ``_(role)``: msgid -> where it comes from.
    """
    found: dict[str, str] = {}
    statuses: set[int] = set()
    unmarked: list[str] = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith("instance/migrations/"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), relative)):
                if not isinstance(node, ast.Call):
                    continue
                name = _called(node)
                if name == "HTTPException" and node.args:
                    status_node, detail_nodes = node.args[0], node.args[1:2]
                elif name == "error_response" and len(node.args) >= 3:
                    status_node, detail_nodes = node.args[1], node.args[2:3]
                else:
                    continue
                status = _status(status_node)
                if status is not None:
                    statuses.add(status)
                details = [*detail_nodes, *(k.value for k in node.keywords if k.arg == "detail")]
                for detail in details:
                    if _unmarked(detail):
                        unmarked.append(f"{relative}:{node.lineno}")
                    text = _marked(detail)
                    if text:
                        found[text] = f"{relative}:{node.lineno} (error detail)"
    for status in statuses:
        found[TITLES.get(status, HTTPStatus(status).phrase)] = f"error page title for {status}"
    for status, title in TITLES.items():
        found[title] = f"instance/errors.py TITLES[{status}]"
    for group, _territories in territory_choices():
        found[group] = "catalogue/territories.py territory_choices() group"
    for role in [*InstanceRole, *MemberRole]:
        found[role.value] = f"role {role!r}"
    assert not unmarked, f"wrap these error details in N_() so extraction finds them: {unmarked}"
    return found


def _texts(value: object) -> tuple[str, ...]:
    """A msgid or msgstr as a tuple of texts (one per plural form); None counts as empty."""
    if isinstance(value, (tuple, list)):
        return tuple(str(text or "") for text in value)
    return (str(value or ""),)


def _translation_problems(msgid: str | tuple[str, ...], where: str) -> list[str]:
    catalog = french()
    message = catalog.get(msgid)
    if message is None:
        return [f"{where}: {msgid!r} is not in {FRENCH_PO.name}"]
    if message.fuzzy:
        return [f"{where}: {msgid!r} is fuzzy"]
    if isinstance(msgid, tuple):
        if message.id != msgid:
            return [f"{where}: {msgid!r} is catalogued as {message.id!r}"]
        forms = _texts(message.string)
        if len(forms) != catalog.num_plurals or not all(forms):
            return [f"{where}: {msgid!r} needs {catalog.num_plurals} non-empty plural forms"]
        return []
    if isinstance(message.id, tuple) or not message.string:
        return [f"{where}: {msgid!r} has no French translation"]
    return []


def test_extraction_sees_python_and_templates() -> None:
    # Guards against a vacuous pass: a broken babel.cfg would extract nothing.
    messages = extracted()
    assert "Log in" in messages
    assert "Worker cooperative (CAE)" in messages  # N_() in catalogue/
    assert ("%(num)d organisation", "%(num)d organisations") in messages  # ngettext, template
    locations = [where for places in messages.values() for where in places]
    assert any(where.startswith("templates/") for where in locations)
    assert any(where.startswith("instance/views/") for where in locations)
    assert not any(where.startswith(("tests/", "instance/migrations/")) for where in locations)


def test_every_extracted_message_has_a_french_translation() -> None:
    problems = [
        problem
        for msgid, places in extracted().items()
        for problem in _translation_problems(msgid, ", ".join(places))
    ]
    assert not problems, "\n".join(problems)


def test_every_message_translated_at_run_time_has_a_french_translation() -> None:
    messages = runtime_messages()
    assert "Page not found" in messages
    assert "Only instance admins may do this." in messages
    problems = [
        problem
        for msgid, where in messages.items()
        for problem in _translation_problems(msgid, where)
    ]
    assert not problems, "\n".join(problems)


def test_no_french_entry_is_fuzzy_or_empty() -> None:
    problems = [
        message.id
        for message in french()
        if message.id and (message.fuzzy or not all(_texts(message.string)))
    ]
    assert not problems, f"fuzzy or untranslated: {problems}"


def test_translations_keep_exactly_the_placeholders_of_their_msgid() -> None:
    problems = []
    for message in french():
        if not message.id:
            continue
        expected = {name for text in _texts(message.id) for name in PLACEHOLDER.findall(text)}
        for form in _texts(message.string):
            names = set(PLACEHOLDER.findall(form))
            if names != expected:
                problems.append(f"{message.id!r}: {sorted(names)} instead of {sorted(expected)}")
                continue
            # Templates always apply % (new-style gettext): a lone % would break or garble a page.
            if "%" in PLACEHOLDER.sub("", form.replace("%%", "")):
                problems.append(f"{message.id!r}: {form!r} has a % that is not a placeholder")
                continue
            try:
                form % dict.fromkeys(names, 1)
            except (ValueError, TypeError, KeyError) as error:
                problems.append(f"{message.id!r}: {form!r} cannot be formatted ({error})")
    assert not problems, "\n".join(problems)


def test_gettext_follows_the_active_language() -> None:
    assert isinstance(i18n.catalog("fr"), Translations)
    assert i18n.catalog("fr").gettext("Log in") == "Se connecter"

    def in_a_request() -> None:
        i18n.activate("fr")
        assert i18n.current_language() == "fr"
        assert i18n.gettext("Log in") == "Se connecter"
        assert i18n.gettext("Role of %(name)s", name="Lou") == "Rôle de Lou"
        assert i18n.ngettext("%(num)d organisation", "%(num)d organisations", 0) == (
            "0 organisation"
        )
        assert i18n.ngettext("%(num)d organisation", "%(num)d organisations", 2) == (
            "2 organisations"
        )
        i18n.activate("en")
        assert i18n.current_language() == "en"
        assert i18n.gettext("Log in") == "Log in"
        assert i18n.ngettext("%(num)d organisation", "%(num)d organisations", 0) == (
            "0 organisations"
        )

    # activate() sets context variables: keep them out of the other tests.
    contextvars.copy_context().run(in_a_request)


AVAILABLE = ["fr", "en"]


@pytest.mark.parametrize(
    ("chosen", "accept_language", "default", "expected"),
    [
        pytest.param("en", "fr-FR,fr;q=0.9", "fr", "en", id="explicit choice wins"),
        pytest.param("fr", "en-GB,en;q=0.9", "en", "fr", id="explicit choice wins (fr)"),
        pytest.param("de", "en", "fr", "en", id="unavailable choice is ignored"),
        pytest.param(None, "en-GB,en;q=0.9,fr;q=0.8", "fr", "en", id="english browser"),
        pytest.param(None, "fr-CA", "en", "fr", id="regional variant"),
        pytest.param(None, "de", "fr", "fr", id="unsupported gives the default"),
        pytest.param(None, "de", "en", "en", id="unsupported gives the default (en)"),
        pytest.param(None, "", "en", "en", id="no header gives the default"),
        pytest.param(None, "fr;q=0, de", "en", "en", id="q=0 is excluded"),
        pytest.param(None, "fr;q=0.5, en;q=0.8", "fr", "en", id="q-values order"),
    ],
)
def test_choose_language(
    chosen: str | None, accept_language: str, default: str, expected: str
) -> None:
    assert i18n.choose_language(chosen, accept_language, AVAILABLE, default) == expected


def test_parse_accept_language_drops_q_zero() -> None:
    assert i18n.parse_accept_language("fr;q=0, en;q=0.5, de") == ["de", "en"]
