"""How fast the catalogue answers at the size of a national network, on SQLite and PostgreSQL.

Issue #3 sets the bar: with 20,000 commons and 200,000 declarations, the catalogue page with
filters, search and a commons page must each answer with a p95 under 50 ms on one core, and the
commons page must run the same number of SQL statements whether 0 or 2,000 organisations use
the commons. Past that size a slow query is no longer a nuisance but the page people leave.

What it does, for each database:

1. makes a throwaway database (a temporary SQLite file; ``CREATE DATABASE`` on the PostgreSQL
   server, dropped at the end) and builds the schema with the real migrations;
2. fills it with SQLAlchemy Core ``executemany``: organisations, commons with French and English
   names and descriptions drawn from a Zipf-weighted vocabulary (so search has common and rare
   words), tags, maintainers, declarations skewed so a few commons have thousands of users,
   improvements with milestones; counters are computed from the same rows, the SQLite FTS5
   index is filled by its triggers;
3. times pages through the real application in process (``create_app`` driven by
   ``httpx.ASGITransport`` inside its lifespan), so templates and middleware count; and times
   the domain calls behind them (``list_commons``, ``commons_page``) on their own, which also
   works before the pages exist;
4. counts the SQL statements of the commons page for the least and the most used commons, and
   for any row over its target prints the plan of its slowest statement.

"One core": one process, one client, requests one after the other; the process is pinned to a
single CPU and PostgreSQL's parallel query is off in the bench database (``--all-cores`` lifts
both). Run on demand, never by the test suite::

    python bench/catalogue.py [--sqlite-only] [--postgres-url URL] [--commons 20000]
                              [--declarations 200000] [--requests 200]
"""

# ruff: noqa: E402, S311, S608
# E402: the path fix below must run before the imports. S311: random numbers make fake data.
# S608: the only SQL built from strings is EXPLAIN over statements SQLAlchemy itself compiled.

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/catalogue.py`, this file's folder comes first on sys.path and this file's
# name would hide the `catalogue` package: look in the project's root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import gc
import itertools
import os
import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import Table, event, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from bench.databases import postgres_database, sqlite_database
from catalogue.commons import (
    Commons,
    CommonsKind,
    CommonsMaintainer,
    CommonsTag,
    Maturity,
    search_document,
)
from catalogue.declarations import Declaration, DeclarationKind
from catalogue.funding import NothingPledgedYet
from catalogue.improvements import Improvement, ImprovementStatus, Milestone
from catalogue.operations import get_local_commons
from catalogue.organisations import Organisation, OrganisationKind, slugify
from catalogue.queries import CatalogueFilter, Sort, commons_page, list_commons, tags_of
from catalogue.territories import DEPARTMENTS, NATIONAL, REGIONS
from catalogue.text import fold, render_markdown
from instance.app import create_app
from instance.config import Settings
from instance.database import Database, create_engine, run_migrations
from instance.views.commons import COUNT_LIMIT

TARGET_MS = 50.0
BASE_URL = "http://bench.example"
POSTGRES_ENV = "TERREAU_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CHUNK = 10_000  # rows per executemany call

# --------------------------------------------------------------------------- the fake network

# Content words, most frequent first (drawn with Zipf weights): French and English interleaved,
# with and without accents, so that "equipe" has to find "équipe".
VOCABULARY_TEXT = """
outil tool réseau network logiciel software données data partagé shared libre open
coopérative cooperative équipe team gestion management atelier workshop formation training
projet project commun commons lieu place habitants residents carte map agenda calendar
adhérents members bénévoles volunteers comptabilité accounting facturation invoicing énergie
energy bâtiment building réemploi reuse fabrique maker numérique digital éducation education
santé health agriculture farming mobilité mobility habitat housing forêt forest école school
gouvernance governance médiation mediation cartographie mapping bibliothèque library plateforme
platform matériel hardware semences seeds jardin garden financement funding communauté
community local paysan farmer circuit court archive heritage patrimoine culture musique music
vidéo video radio électricité heating chauffage insulation isolation paille straw bois wood
terre land foncier trust fiducie booking réservation spreadsheet tableur wiki directory
annuaire visioconférence chat messagerie poll sondage vote decision décision budget grant
subvention mécénat sponsorship cantine canteen cuisine kitchen recyclage recycling vélo bicycle
covoiturage carpooling solaire solar éolien wind eau water compost compostage tri sorting
économie economy solidaire solidarity emploi employment insertion inclusion accessibilité
accessibility traduction translation sous-titres subtitles podcast photothèque photos
inventaire inventory prêt lending outillage tooling menuiserie carpentry impression printing
découpe cutting laser brodeuse embroidery textile couture sewing céramique ceramics fonderie
casting électronique electronics capteurs sensors météo weather qualité quality air pollution
bruit noise arbres trees haies hedges rivière river zones humides wetlands biodiversité
biodiversity pollinisateurs pollinators apiculture beekeeping élevage livestock fromagerie
dairy boulangerie bakery meunerie milling brasserie brewery conserverie cannery marché market
"""
VOCABULARY = VOCABULARY_TEXT.split()

FILLER_FR = "le la les un une des du de pour avec et dans sur par qui que son sa ses nos"
FILLER_EN = "the a an of for with and in on by which that its our their"
NAME_SYLLABLES = "ter co li bri mo ka vi lu zé na pa ro sol gal fab dé mé ré bo ta"
NAME_ENDINGS = "wiki cloud pad lab map box fab kit plan hub base doc forge cal vote grange"
LICENCES = ["AGPL-3.0-or-later", "GPL-3.0-or-later", "MIT", "Apache-2.0", "CC-BY-SA-4.0",
            "CC-BY-4.0", "ODbL-1.0", "CERN-OHL-S-2.0", ""]  # fmt: skip
TERRITORIES = (
    [""] * 20
    + [NATIONAL] * 10
    + [f"region:{code}" for code in REGIONS]
    + [f"department:{code}" for code in DEPARTMENTS]
)
STATUSES = (
    [ImprovementStatus.DRAFT] * 10
    + [ImprovementStatus.OPEN] * 40
    + ([ImprovementStatus.FUNDED, ImprovementStatus.IN_PROGRESS, ImprovementStatus.DELIVERED] * 15)
    + [ImprovementStatus.CANCELLED] * 5
)
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Scale:
    organisations: int
    commons: int
    declarations: int
    improvements: int


@dataclass
class Dataset:
    """Rows per table, and the commons and words worth asking for."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    most_used: str = ""
    least_used: str = ""
    most_used_declarations: int = 0
    least_used_declarations: int = 0
    sampled: list[str] = field(default_factory=list)
    popular_tag: str = ""


class Words:
    """Zipf-weighted draws from the vocabulary: a few words everywhere, most of them rare."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cumulative = list(
            itertools.accumulate(1 / (rank + 3) for rank in range(len(VOCABULARY)))
        )

    def draw(self, k: int) -> list[str]:
        return self.rng.choices(VOCABULARY, cum_weights=self.cumulative, k=k)

    def sentence(self, french: bool) -> str:
        filler = (FILLER_FR if french else FILLER_EN).split()
        words = [
            self.rng.choice(filler) if i % 2 else word
            for i, word in enumerate(self.draw(self.rng.randint(6, 14)))
        ]
        return " ".join(words).capitalize() + "."


def commons_name(rng: random.Random, words: Words) -> str:
    if rng.random() < 0.6:
        syllables = "".join(rng.choices(NAME_SYLLABLES.split(), k=rng.randint(1, 2)))
        return (syllables + rng.choice(NAME_ENDINGS.split())).capitalize()
    first, second = words.draw(2)
    return f"{first.capitalize()} {second} {rng.choice(list(REGIONS.values()))}"


def description(rng: random.Random, words: Words, french: bool) -> str:
    paragraphs = [
        " ".join(words.sentence(french) for _ in range(rng.randint(2, 4)))
        for _ in range(rng.randint(1, 3))
    ]
    if rng.random() < 0.4:
        paragraphs.append("\n".join(f"- **{word}**" for word in words.draw(3)))
    return "\n\n".join(paragraphs)


def uniform_slug(name: str, taken: set[str]) -> str:
    base = slugify(name)[:56] or "commons"
    slug, suffix = base, 1
    while slug in taken:
        suffix += 1
        slug = f"{base}-{suffix}"
    taken.add(slug)
    return slug


def spread_counts(total: int, items: int, cap: int) -> list[int]:
    """``items`` counts summing to ``total``, Zipf-like (rank r ∝ 1/(r+5)), none above ``cap``."""
    weights = [1 / (rank + 5) for rank in range(items)]
    low, high = 0.0, float(total) * 10
    for _ in range(60):
        scale = (low + high) / 2
        if sum(min(cap, int(scale * w)) for w in weights) < total:
            low = scale
        else:
            high = scale
    counts = [min(cap, int(low * w)) for w in weights]
    deficit = total - sum(counts)
    for rank in itertools.cycle(range(items)):
        if deficit <= 0:
            break
        if counts[rank] < cap:
            counts[rank] += 1
            deficit -= 1
    return counts


def when(rng: random.Random, days: int = 3 * 365) -> datetime:
    return NOW - timedelta(seconds=rng.randint(0, days * 86_400))


def organisations(rng: random.Random, scale: Scale) -> list[dict[str, Any]]:
    kinds = [kind.value for kind in OrganisationKind]
    rows = []
    for number in range(1, scale.organisations + 1):
        name = f"{rng.choice(['Tiers-lieu', 'CAE', 'Atelier', 'Réseau', 'Fabrique'])} {number}"
        slug = f"org-{number}"
        created = when(rng)
        rows.append(
            {
                "id": number,
                "uri": f"{BASE_URL}/orgs/{slug}",
                "origin": None,
                "slug": slug,
                "name": name,
                "sort_key": fold(name),
                "kind": rng.choice(kinds),
                "description": "",
                "website": "",
                "territory": rng.choice(TERRITORIES),
                "siret": None,
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


def commons_rows(
    rng: random.Random, scale: Scale, words: Words
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Commons, their tags and maintainers; counters are filled in later from the other rows."""
    tag_pool = [
        *list(dict.fromkeys(VOCABULARY))[:190],
        "tiers-lieux", "économie sociale", "open data", "low-tech", "open source", "cae",
        "éducation populaire", "circuits courts", "habitat partagé", "énergie citoyenne",
    ]  # fmt: skip
    tag_weights = list(itertools.accumulate(1 / (rank + 2) for rank in range(len(tag_pool))))
    kinds = [kind.value for kind in CommonsKind]
    maturities = [maturity.value for maturity in Maturity]
    rendered: dict[str, str] = {}
    taken: set[str] = set()
    commons: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    maintainers: list[dict[str, Any]] = []
    for number in range(1, scale.commons + 1):
        french = rng.random() < 0.65
        name = commons_name(rng, words)
        slug = uniform_slug(name, taken)
        first, second = words.draw(2)
        summary = (
            f"Un {first} pour les tiers-lieux, avec {second}."
            if french
            else f"A {first} for shared places, with {second}."
        )
        text_ = description(rng, words, french)
        own_tags = list(
            dict.fromkeys(rng.choices(tag_pool, cum_weights=tag_weights, k=rng.randint(1, 5)))
        )
        created = when(rng)
        if text_ not in rendered:
            rendered[text_] = render_markdown(text_)
        commons.append(
            {
                "id": number,
                "uri": f"{BASE_URL}/commons/{slug}",
                "origin": None,
                "slug": slug,
                "name": name,
                "sort_key": fold(name)[:200],
                "kind": rng.choice(kinds),
                "summary": summary,
                "description": text_,
                "description_html": rendered[text_],
                "licence": rng.choice(LICENCES),
                "website": f"https://{slug}.example",
                "repository": "",
                "logo": None,
                "maturity": rng.choice(maturities),
                "languages": "fr" if french else rng.choice(["en", "fr,en"]),
                "territory": rng.choice(TERRITORIES),
                "hidden": rng.random() < 0.005,
                "merged_into_id": None,
                "search_document": search_document(name, summary, text_, own_tags),
                "uses_count": 0,
                "interested_count": 0,
                "open_improvements": 0,
                "need_cents": 0,
                "created_by_id": None,
                "updated_by_id": None,
                "created_at": created,
                "updated_at": created,
            }
        )
        tags.extend({"commons_id": number, "tag": tag} for tag in own_tags)
        for organisation_id in rng.sample(range(1, scale.organisations + 1), rng.randint(1, 2)):
            maintainers.append({"commons_id": number, "organisation_id": organisation_id})
    return commons, tags, maintainers


def declaration_rows(
    rng: random.Random, scale: Scale, ranked_commons: list[int]
) -> list[dict[str, Any]]:
    """Declarations, skewed: the first commons of ``ranked_commons`` is used by nearly everyone."""
    cap = scale.organisations
    per_commons = spread_counts(scale.declarations, scale.commons, 2 * cap)
    rows: list[dict[str, Any]] = []
    for commons_id, count in zip(ranked_commons, per_commons, strict=True):
        uses = min(cap, round(count * 0.7))
        interested = count - uses
        if interested > cap:
            uses, interested = count - cap, cap
        for kind, how_many in (
            (DeclarationKind.USES, uses),
            (DeclarationKind.INTERESTED, interested),
        ):
            for organisation_id in rng.sample(range(1, cap + 1), how_many):
                number = len(rows) + 1
                created = when(rng)
                using = kind == DeclarationKind.USES
                rows.append(
                    {
                        "id": number,
                        "uri": f"{BASE_URL}/orgs/org-{organisation_id}/declarations/{number}",
                        "origin": None,
                        "organisation_id": organisation_id,
                        "commons_id": commons_id,
                        "kind": kind.value,
                        "since": created.date() - timedelta(days=rng.randint(0, 900))
                        if using
                        else None,
                        "comment": "" if rng.random() < 0.8 else "Nous l'utilisons tous les jours.",
                        "satisfaction": rng.randint(1, 5) if using and rng.random() < 0.6 else None,
                        "created_by_id": None,
                        "created_at": created,
                        "withdrawn_at": created + timedelta(days=30)
                        if rng.random() < 0.03
                        else None,
                    }
                )
    return rows


def improvement_rows(
    rng: random.Random, scale: Scale, ranked_commons: list[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Improvements (more of them on popular commons) and their milestones."""
    weights = [1 / (rank + 20) for rank in range(len(ranked_commons))]
    chosen = rng.choices(ranked_commons, weights=weights, k=scale.improvements)
    numbers: Counter[int] = Counter()
    improvements: list[dict[str, Any]] = []
    milestones: list[dict[str, Any]] = []
    for number, commons_id in enumerate(chosen, start=1):
        numbers[commons_id] += 1
        budget = rng.randint(5, 500) * 100_00
        created = when(rng, 700)
        improvements.append(
            {
                "id": number,
                "uri": f"{BASE_URL}/commons/{commons_id}/improvements/{numbers[commons_id]}",
                "origin": None,
                "commons_id": commons_id,
                "number": numbers[commons_id],
                "title": f"Amélioration {number}",
                "description": "Export **PDF** et traduction.",
                "description_html": "<p>Export <strong>PDF</strong> et traduction.</p>\n",
                "budget_cents": budget,
                "currency": "EUR",
                "provider_id": rng.randint(1, scale.organisations) if rng.random() < 0.7 else None,
                "deadline": date(2027, rng.randint(1, 12), 1) if rng.random() < 0.5 else None,
                "status": rng.choice(STATUSES).value,
                "allow_overfunding": False,
                "created_by_id": None,
                "created_at": created,
                "updated_at": created,
            }
        )
        if rng.random() < 0.3:
            parts = rng.randint(1, 4)
            for position in range(1, parts + 1):
                milestones.append(
                    {
                        "id": len(milestones) + 1,
                        "improvement_id": number,
                        "position": position,
                        "title": f"Étape {position}",
                        "amount_cents": budget // parts,
                    }
                )
    return improvements, milestones


def fill_counters(dataset: Dataset) -> None:
    """What catalogue.operations.refresh_counts would store, computed from the same rows."""
    uses: Counter[int] = Counter()
    interested: Counter[int] = Counter()
    for row in dataset.rows["declaration"]:
        if row["withdrawn_at"] is None:
            (uses if row["kind"] == DeclarationKind.USES else interested)[row["commons_id"]] += 1
    open_count: Counter[int] = Counter()
    need: Counter[int] = Counter()
    for row in dataset.rows["improvement"]:
        if row["status"] == ImprovementStatus.OPEN:
            open_count[row["commons_id"]] += 1
            need[row["commons_id"]] += row["budget_cents"]
    for row in dataset.rows["commons"]:
        row["uses_count"] = uses[row["id"]]
        row["interested_count"] = interested[row["id"]]
        row["open_improvements"] = open_count[row["id"]]
        row["need_cents"] = need[row["id"]]


def generate(scale: Scale, seed: int) -> Dataset:
    rng = random.Random(seed)
    words = Words(rng)
    dataset = Dataset()
    dataset.rows["organisation"] = organisations(rng, scale)
    commons, tags, maintainers = commons_rows(rng, scale, words)
    dataset.rows["commons"] = commons
    dataset.rows["commons_tag"] = tags
    dataset.rows["commons_maintainer"] = maintainers
    visible = [row["id"] for row in commons if not row["hidden"]]
    hidden = [row["id"] for row in commons if row["hidden"]]
    rng.shuffle(visible)
    ranked = visible + hidden  # the most used commons is a visible one, anywhere in the table
    dataset.rows["declaration"] = declaration_rows(rng, scale, ranked)
    dataset.rows["improvement"], dataset.rows["milestone"] = improvement_rows(rng, scale, ranked)
    fill_counters(dataset)
    total = Counter(row["commons_id"] for row in dataset.rows["declaration"])
    slugs = {row["id"]: row["slug"] for row in commons}
    # The least used commons that still shows an improvement with a provider and milestones,
    # so that it runs the same kinds of statements as the most used one: only the number of
    # declarations differs between the two.
    with_milestones = {row["improvement_id"] for row in dataset.rows["milestone"]}
    complete = {
        row["commons_id"]
        for row in dataset.rows["improvement"]
        if row["status"] != ImprovementStatus.DRAFT
        and row["provider_id"] is not None
        and row["id"] in with_milestones
    }
    least = next(commons_id for commons_id in reversed(visible) if commons_id in complete)
    dataset.most_used, dataset.least_used = slugs[ranked[0]], slugs[least]
    dataset.most_used_declarations = total[ranked[0]]
    dataset.least_used_declarations = total[least]
    dataset.sampled = [slugs[commons_id] for commons_id in rng.sample(visible, 50)]
    dataset.popular_tag = Counter(row["tag"] for row in tags).most_common(1)[0][0]
    return dataset


# --------------------------------------------------------------------------- databases


# In the order foreign keys need.
TABLES: dict[str, Table] = {
    str(model.__tablename__): SQLModel.metadata.tables[str(model.__tablename__)]
    for model in (
        Organisation, Commons, CommonsTag, CommonsMaintainer, Declaration, Improvement, Milestone
    )
}  # fmt: skip


async def _insert(connection: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await connection.execute(insert(table), rows[start : start + CHUNK])


async def fill(engine: AsyncEngine, dataset: Dataset) -> None:
    """Schema by the migrations, then every row by executemany, in one transaction."""
    await run_migrations(engine)
    async with engine.begin() as connection:
        for name, table in TABLES.items():
            await _insert(connection, table, dataset.rows[name])
        if engine.dialect.name == "postgresql":
            for name in ("organisation", "commons", "declaration", "improvement", "milestone"):
                await connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )
    if engine.dialect.name == "postgresql":
        # What autovacuum does a minute after a large import; without it the first plans
        # would be made blind and change halfway through the measurement.
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))


async def check_counters(engine: AsyncEngine, slug: str, expected: int) -> None:
    """The stored counter agrees with the declarations (refresh_counts' own rule)."""
    query = text(
        "SELECT c.uses_count, (SELECT count(*) FROM declaration d WHERE d.commons_id = c.id "
        "AND d.kind = 'uses' AND d.withdrawn_at IS NULL) FROM commons c WHERE c.slug = :slug"
    )
    async with engine.connect() as connection:
        stored, counted = (await connection.execute(query, {"slug": slug})).one()
    assert stored == counted, f"{slug}: uses_count {stored} but {counted} active uses"
    assert expected > 0


# --------------------------------------------------------------------------- what is measured


@dataclass(frozen=True)
class Case:
    """One row of the report: HTTP paths (taken in turn) and the domain call behind them."""

    page: str
    label: str
    paths: tuple[str, ...]
    slugs: tuple[str, ...] = ()  # commons pages: the domain call is commons_page

    def filters(self, per_page: int) -> list[CatalogueFilter]:
        return [catalogue_filter(path, per_page) for path in self.paths]


def catalogue_filter(path: str, per_page: int) -> CatalogueFilter:
    """The CatalogueFilter a catalogue URL stands for."""
    query = {key: values[-1] for key, values in parse_qs(urlsplit(path).query).items()}
    return CatalogueFilter(
        text=query.get("q", ""),
        kind=query.get("kind", ""),
        tag=query.get("tag", ""),
        maturity=query.get("maturity", ""),
        territory=query.get("territory", ""),
        open_improvements=query.get("open_improvements", "") == "1",
        sort=Sort(query.get("sort", Sort.USED.value)),
        page=int(query.get("page", "1")),
        per_page=per_page,
    )


def cases(dataset: Dataset) -> list[Case]:
    sampled = tuple(dataset.sampled)
    most, least = dataset.most_used, dataset.least_used
    return [
        Case("catalogue", "all, most used", ("/commons",)),
        Case(
            "catalogue",
            "kind+maturity+region, most used",
            ("/commons?kind=software&maturity=stable&territory=region:84&sort=used",),
        ),
        Case(
            "catalogue",
            "open needs, most in need, p.3",
            ("/commons?sort=need&open_improvements=1&page=3",),
        ),
        Case(
            "catalogue",
            f"tag '{dataset.popular_tag}', newest",
            (f"/commons?tag={dataset.popular_tag}&sort=recent",),
        ),
        Case("search", "frequent word 'logiciel'", ("/commons?q=logiciel",)),
        Case("search", "'equipe' finds équipe", ("/commons?q=equipe",)),
        Case("search", "accented 'énergie'", ("/commons?q=%C3%A9nergie",)),
        Case("search", "rare word 'fromagerie'", ("/commons?q=fromagerie",)),
        Case(
            "search", "two words + kind", ("/commons?q=fiducie+fonci%C3%A8re&kind=infrastructure",)
        ),
        Case(
            "search",
            "5 words in turn",
            tuple(
                f"/commons?q={word}"
                for word in ("wiki", "cooperative", "jardin", "solar", "formation")
            ),
        ),
        Case(
            "commons page",
            f"most used ({dataset.most_used_declarations} decl.)",
            (f"/commons/{most}",),
            (most,),
        ),
        Case(
            "commons page",
            f"least used ({dataset.least_used_declarations} decl.)",
            (f"/commons/{least}",),
            (least,),
        ),
        Case(
            "commons page",
            "50 random in turn",
            tuple(f"/commons/{slug}" for slug in sampled),
            sampled,
        ),
        Case("API", "search 'equipe'", ("/api/v1/commons?q=equipe",)),
        Case("API", "list, page 2", ("/api/v1/commons?page=2",)),
    ]


@dataclass
class Result:
    page: str
    label: str
    samples: list[float] = field(default_factory=list)
    note: str = ""  # why there is no measurement, or what the rows matched

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.samples, n=100, method="inclusive")[94]

    @property
    def measured(self) -> bool:
        return bool(self.samples)


async def timed(
    call: Callable[[int], Awaitable[None]], requests: int, warmup: int, budget: float
) -> list[float]:
    """Milliseconds per call, after ``warmup`` untimed calls; one at a time, as one client.

    Stops early once ``budget`` seconds are spent, so that one pathological query cannot hold
    the whole run: its few samples already say what matters.
    """
    deadline = time.perf_counter() + budget
    for number in range(warmup):
        await call(number)
        if time.perf_counter() > deadline:
            break
    samples: list[float] = []
    for number in range(requests):
        start = time.perf_counter()
        await call(number)
        samples.append((time.perf_counter() - start) * 1000)
        if start > deadline and len(samples) >= 5:
            break
    return samples


def stopped_early(samples: list[float], requests: int) -> str:
    return f"stopped after {len(samples)} requests" if len(samples) < requests else ""


async def measure_http(
    client: httpx.AsyncClient, case: Case, requests: int, warmup: int, budget: float
) -> Result:
    result = Result(case.page, case.label)
    first = await client.get(case.paths[0])
    if first.status_code != 200:
        result.note = f"not measured: GET {case.paths[0]} answered {first.status_code}"
        return result

    async def call(number: int) -> None:
        response = await client.get(case.paths[number % len(case.paths)])
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}")

    result.samples = await timed(call, requests, warmup, budget)
    result.note = stopped_early(result.samples, requests)
    return result


def domain_call(database: Database, case: Case, per_page: int) -> Callable[[int], Awaitable[None]]:
    """What a request to the case's page asks of the domain, with a session of its own."""
    if case.slugs:

        async def page(number: int) -> None:
            async with database.session() as session:
                commons = await get_local_commons(session, case.slugs[number % len(case.slugs)])
                assert commons is not None
                await commons_page(session, commons, NothingPledgedYet(), include_drafts=False)

        return page
    filters = case.filters(per_page)

    async def listing(number: int) -> None:
        async with database.session() as session:
            found = await list_commons(
                session, filters[number % len(filters)], count_limit=COUNT_LIMIT
            )
            await tags_of(session, [c.id for c in found.items if c.id is not None])

    return listing


async def measure_domain(
    database: Database, case: Case, per_page: int, requests: int, warmup: int, budget: float
) -> Result:
    result = Result(case.page, case.label)
    if case.page == "API":
        result.note = "same calls as the search rows"
        return result
    if not case.slugs:
        async with database.session() as session:
            totals = [(await list_commons(session, f)).total for f in case.filters(per_page)]
        result.note = f"{sum(totals) // len(totals)} matches"
    result.samples = await timed(domain_call(database, case, per_page), requests, warmup, budget)
    result.note = ", ".join(filter(None, [result.note, stopped_early(result.samples, requests)]))
    return result


# --------------------------------------------------------------------------- SQL statements


@dataclass
class Statement:
    sql: str
    parameters: Any
    milliseconds: float


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """Every statement the engine runs inside the block, with its parameters and duration."""
    statements: list[Statement] = []
    started: list[float] = []

    def before(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_rest: Any) -> None:
        started.append(time.perf_counter())
        statements.append(Statement(sql, parameters, 0.0))

    def after(*_args: Any) -> None:
        statements[-1].milliseconds = (time.perf_counter() - started.pop()) * 1000

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)


async def explain(engine: AsyncEngine, statement: Statement) -> list[str]:
    """The plan the database chooses for a statement, as printable lines."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters
            )
            return [str(tuple(row)[3]) for row in rows]
        rows = await connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, statement.parameters
        )
        return [str(row[0]) for row in rows]


async def diagnose(database: Database, case: Case, per_page: int) -> list[str]:
    """The slowest statement of the case's domain call, with its plan."""
    with recording(database.engine) as statements:
        await domain_call(database, case, per_page)(0)
    slowest = max(statements, key=lambda s: s.milliseconds)
    lines = [
        f"  {case.page} / {case.label}: {len(statements)} statements, slowest "
        f"{slowest.milliseconds:.1f} ms:",
        "    " + " ".join(slowest.sql.split())[:600],
        f"    parameters: {str(slowest.parameters)[:200]}",
    ]
    lines += ["    | " + line for line in await explain(database.engine, slowest)]
    return lines


async def statement_counts(
    database: Database, app: tuple[httpx.AsyncClient, AsyncEngine] | None, dataset: Dataset
) -> list[str]:
    """Statements per commons page, least vs most used: the same number, whatever the users."""
    lines = []
    for label, slug, declarations in (
        ("least used", dataset.least_used, dataset.least_used_declarations),
        ("most used", dataset.most_used, dataset.most_used_declarations),
    ):
        case = Case("commons page", label, (f"/commons/{slug}",), (slug,))
        with recording(database.engine) as statements:
            await domain_call(database, case, 0)(0)
        counts = f"domain {len(statements)}"
        if app is not None:
            client, app_engine = app
            with recording(app_engine) as statements:
                status = (await client.get(case.paths[0])).status_code
            counts += f", page {len(statements)}" if status == 200 else f", page {status}"
        lines.append(f"  {label:<11} ({declarations:>5} declarations): {counts} statements")
    return lines


# --------------------------------------------------------------------------- report


def table(title: str, results: Sequence[Result]) -> list[str]:
    lines = [
        title,
        f"  {'page':<13} {'case':<36} {'median':>7} {'p95':>7} {'target':>7} {'p95/t':>6}  verdict",
    ]
    for r in results:
        head = f"  {r.page:<13} {r.label[:36]:<36}"
        if not r.measured:
            lines.append(f"{head} {r.note}")
            continue
        ratio = r.p95 / TARGET_MS
        verdict = "PASS" if ratio <= 1 else "FAIL"
        note = f"  ({r.note})" if r.note else ""
        lines.append(
            f"{head} {r.median:7.1f} {r.p95:7.1f} {TARGET_MS:7.0f} {ratio:6.2f}  {verdict}{note}"
        )
    return lines


def comparison(sqlite: Sequence[Result], postgres: Sequence[Result]) -> list[str]:
    lines = [f"  {'page':<13} {'case':<36} {'median':>7} {'p95':>7}"]
    for s, p in zip(sqlite, postgres, strict=True):
        if s.measured and p.measured:
            lines.append(
                f"  {s.page:<13} {s.label[:36]:<36} {s.median / p.median:7.2f} {s.p95 / p.p95:7.2f}"
            )
    return lines


@dataclass
class Run:
    database: str
    fill_seconds: float = 0.0
    http: list[Result] = field(default_factory=list)
    domain: list[Result] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def bench_settings(url: str, data_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "instance": {
                "base_url": BASE_URL,
                "secret_key": "bench-secret-" + "x" * 40,
                "default_language": "fr",
                "data_dir": str(data_dir),
            },
            "database": {"url": url},
            "logging": {"level": "WARNING"},
        }
    )


async def run_on(label: str, url: str, dataset: Dataset, args: argparse.Namespace) -> Run:
    run = Run(label)
    print(f"\n== {label}: filling…", flush=True)
    engine = create_engine(url)
    start = time.perf_counter()
    try:
        await fill(engine, dataset)
        await check_counters(engine, dataset.most_used, dataset.most_used_declarations)
    finally:
        await engine.dispose()
    run.fill_seconds = time.perf_counter() - start
    sizes = ", ".join(f"{len(rows):,} {name}" for name, rows in dataset.rows.items())
    print(f"   filled in {run.fill_seconds:.1f} s ({sizes})", flush=True)

    data_dir = Path(tempfile.mkdtemp(prefix="terreau-bench-data-"))
    try:
        await measure(run, url, dataset, data_dir, args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return run


async def measure(
    run: Run, url: str, dataset: Dataset, data_dir: Path, args: argparse.Namespace
) -> None:
    """Every case through the app, then through the domain; statement counts; slow plans."""
    settings = bench_settings(url, data_dir)
    per_page = settings.limits.page_size
    all_cases = cases(dataset)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        # The generated rows (millions of objects) stay in this process; a server's heap holds
        # none of them. Freeze them out of the collector so its full passes do not walk them
        # and add pauses to the pages' p95 that a real server would not have.
        gc.collect()
        gc.freeze()
        print("   timing pages through the app…", flush=True)
        for case in all_cases:
            run.http.append(
                await measure_http(client, case, args.requests, args.warmup, args.budget)
            )
        database = Database(url)
        try:
            print("   timing the domain calls…", flush=True)
            for case in all_cases:
                result = await measure_domain(
                    database, case, per_page, args.requests, args.warmup, args.budget
                )
                run.domain.append(result)
            page_exists = any(r.measured for r in run.http if r.page == "commons page")
            run.lines += ["SQL statements of the commons page (must not grow with its users):"]
            app_side = (client, app.state.db.engine) if page_exists else None
            run.lines += await statement_counts(database, app_side, dataset)
            slow = [
                case
                for case, h, d in zip(all_cases, run.http, run.domain, strict=True)
                if args.explain
                or (h.measured and h.p95 > TARGET_MS)
                or (d.measured and d.p95 > TARGET_MS)
            ]
            if slow:
                run.lines += ["Slowest statement of each row over its target, and its plan:"]
                for case in slow:
                    if case.page != "API":
                        run.lines += await diagnose(database, case, per_page)
        finally:
            await database.dispose()


def report(runs: Sequence[Run], args: argparse.Namespace) -> None:
    print(
        f"\nEach row: {args.requests} requests after {args.warmup} warm-up ones, one at a time "
        "from one client in this process"
        + ("" if args.all_cores else ", pinned to one CPU (PostgreSQL: no parallel workers)")
        + f". Target: p95 under {TARGET_MS:.0f} ms."
    )
    for run in runs:
        print(f"\n=== {run.database} (filled in {run.fill_seconds:.0f} s)")
        for line in table("Pages through the application (HTTP, templates, middleware):", run.http):
            print(line)
        for line in table("Domain calls alone (catalogue.queries, one session each):", run.domain):
            print(line)
        for line in run.lines:
            print(line)
    if len(runs) == 2:
        print("\n=== SQLite time / PostgreSQL time (below 1: SQLite is faster)")
        print("Pages:")
        print("\n".join(comparison(runs[0].http, runs[1].http)))
        print("Domain calls:")
        print("\n".join(comparison(runs[0].domain, runs[1].domain)))


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Times the catalogue, search and commons pages at 20,000 commons."
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES),
        help=f"server to make a throwaway database on (default: ${POSTGRES_ENV} or "
        f"{DEFAULT_POSTGRES}); the database it names is never touched",
    )
    parser.add_argument("--organisations", type=int, default=2_000)
    parser.add_argument("--commons", type=int, default=20_000)
    parser.add_argument("--declarations", type=int, default=200_000)
    parser.add_argument("--improvements", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per row")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per row first")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="seconds per row before it stops early"
    )
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--explain", action="store_true", help="print every row's slowest plan")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    if args.declarations > 2 * args.organisations * args.commons:
        parser.error("more declarations than organisations × commons × 2 kinds allow")
    return args


async def main_async(args: argparse.Namespace) -> None:
    scale = Scale(args.organisations, args.commons, args.declarations, args.improvements)
    start = time.perf_counter()
    dataset = generate(scale, args.seed)
    print(f"generated the rows in {time.perf_counter() - start:.1f} s", flush=True)
    runs = []
    with sqlite_database(keep=args.keep) as url:
        runs.append(await run_on("SQLite", url, dataset, args))
    if not args.sqlite_only:
        async with postgres_database(
            args.postgres_url, one_core=not args.all_cores, keep=args.keep
        ) as url:
            runs.append(await run_on("PostgreSQL", url, dataset, args))
    report(runs, args)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
