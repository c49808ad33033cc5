"""Reading the catalogue: the filtered, searched and sorted list, and a commons' whole page.

Full-text search uses each database's own engine: SQLite FTS5 over ``commons_search`` (kept in
step with ``commons.search_document`` by triggers), PostgreSQL ``tsvector`` with French and
English stemming. Both index the folded document, so accents never matter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, and_, false, func, literal_column, text
from sqlalchemy.orm import load_only
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from catalogue.commons import Commons, CommonsMaintainer, CommonsTag
from catalogue.declarations import Declaration, DeclarationKind
from catalogue.funding import Funding, FundingSource, funding_of
from catalogue.improvements import Improvement, ImprovementStatus, Milestone
from catalogue.organisations import Organisation
from catalogue.territories import DEPARTMENTS, parse_territory
from catalogue.text import fold


class Sort(StrEnum):
    USED = "used"
    RECENT = "recent"
    NEED = "need"
    NAME = "name"


@dataclass(frozen=True)
class CatalogueFilter:
    text: str = ""
    kind: str = ""
    tag: str = ""
    maturity: str = ""
    territory: str = ""
    open_improvements: bool = False
    sort: Sort = Sort.USED
    page: int = 1
    per_page: int = 20


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int
    # True when there are more than ``total`` items: counting stopped at a limit.
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def search_terms(text_query: str) -> list[str]:
    """The words of a query, folded: punctuation and search syntax are never passed through."""
    return re.findall(r"\w+", fold(text_query))[:20]


def _fts5_query(terms: list[str]) -> str:
    # Each word quoted (no FTS5 syntax from users) and prefix-matched: "equip" finds "équipe".
    return " ".join(f'"{term}"*' for term in terms)


def _text_condition(dialect: str, terms: list[str]) -> ColumnElement[bool]:
    if dialect == "sqlite":
        # "+commons.id" keeps SQLite from starting at the matches: it has no statistics about
        # FTS5, so it would look up every match and sort them all (13,000 rows and 17 ms for a
        # frequent word). Testing membership while it walks the sort's index stops after the
        # first page (2 ms); with no match at all, the walk reads the whole index in under 2 ms
        # for 20,000 commons. Other filters with an index of their own still go first.
        return literal_column("+commons.id").in_(
            select(text("rowid"))
            .select_from(text("commons_search"))
            .where(text("commons_search MATCH :fts").bindparams(fts=_fts5_query(terms)))
        )
    words = " ".join(terms)
    # commons.search_vector: a stored column generated from search_document (migration 0002).
    query = func.plainto_tsquery("french", words).op("||")(func.plainto_tsquery("english", words))
    return literal_column("commons.search_vector").op("@@")(query)


def _territory_codes(territory: str) -> list[str]:
    """A region stands for itself and its departments; anything else for itself."""
    place = parse_territory(territory)
    if place is None:
        return [territory]
    if territory.startswith("region:"):
        return [territory] + [
            f"department:{code}"
            for code, (_n, region) in DEPARTMENTS.items()
            if region == place.region
        ]
    return [territory]


def visible() -> ColumnElement[bool]:
    # "hidden = false" exactly as the partial sort indexes of migration 0002 say it, so that
    # both databases see the query implies their predicate and use them.
    return and_(col(Commons.hidden) == false(), col(Commons.merged_into_id).is_(None))


def _filtered(
    query: SelectOfScalar[Commons], dialect: str, wanted: CatalogueFilter
) -> SelectOfScalar[Commons]:
    query = query.where(visible())
    terms = search_terms(wanted.text)
    if terms:
        query = query.where(_text_condition(dialect, terms))
    if wanted.kind:
        query = query.where(Commons.kind == wanted.kind)
    if wanted.maturity:
        query = query.where(Commons.maturity == wanted.maturity)
    if wanted.territory:
        query = query.where(col(Commons.territory).in_(_territory_codes(wanted.territory)))
    if wanted.tag:
        query = query.where(
            col(Commons.id).in_(
                select(CommonsTag.commons_id).where(CommonsTag.tag == wanted.tag.lower())
            )
        )
    if wanted.open_improvements:
        query = query.where(Commons.open_improvements > 0)
    return query


SORTS = {
    Sort.USED: (col(Commons.uses_count).desc(), col(Commons.sort_key), col(Commons.id)),
    Sort.RECENT: (col(Commons.created_at).desc(), col(Commons.id).desc()),
    Sort.NEED: (col(Commons.need_cents).desc(), col(Commons.sort_key), col(Commons.id)),
    Sort.NAME: (col(Commons.sort_key), col(Commons.id)),
}


async def list_commons(
    session: AsyncSession, wanted: CatalogueFilter, *, count_limit: int | None = None
) -> Page[Commons]:
    """A page of the catalogue; ``count_limit`` stops counting there (a frequent search word
    matches thousands of commons, and counting them all costs more than finding the page).
    """
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    matching = _filtered(select(Commons), dialect, wanted).with_only_columns(col(Commons.id))
    if count_limit is not None:
        matching = matching.limit(count_limit + 1)
    count_query = select(func.count()).select_from(matching.subquery())
    total = int((await session.exec(count_query)).one())
    capped = count_limit is not None and total > count_limit
    if capped:
        assert count_limit is not None
        total = count_limit
    rows = (
        await session.exec(
            _filtered(select(Commons), dialect, wanted)
            .order_by(*SORTS[wanted.sort])
            .offset((wanted.page - 1) * wanted.per_page)
            .limit(wanted.per_page)
        )
    ).all()
    return Page(list(rows), total, wanted.page, wanted.per_page, capped)


async def tags_of(session: AsyncSession, commons_ids: Sequence[int]) -> dict[int, list[str]]:
    """Tags per commons for a whole page of commons, in one query."""
    if not commons_ids:
        return {}
    rows = (
        await session.exec(
            select(CommonsTag.commons_id, CommonsTag.tag)
            .where(col(CommonsTag.commons_id).in_(commons_ids))
            .order_by(col(CommonsTag.tag))
        )
    ).all()
    result: dict[int, list[str]] = {commons_id: [] for commons_id in commons_ids}
    for commons_id, tag in rows:
        result[commons_id].append(tag)
    return result


@dataclass
class ImprovementView:
    improvement: Improvement
    funding: Funding
    milestones: list[Milestone] = field(default_factory=list)
    provider: Organisation | None = None


@dataclass
class CommonsPage:
    commons: Commons
    tags: list[str]
    maintainers: list[Organisation]
    users: list[tuple[Declaration, Organisation]]
    interested: list[tuple[Declaration, Organisation]]
    improvements: list[ImprovementView]


# Names listed per kind on a commons page (the page gives the full count): the lists are the
# bulk of a popular commons' page, in queries and in rendering (bench/catalogue.py).
DECLARATIONS_SHOWN = 50
DECLARATION_LIST_COLUMNS = (
    "id", "uri", "origin", "organisation_id", "commons_id", "kind", "since", "comment",
    "satisfaction", "created_at", "withdrawn_at",
)  # fmt: skip
ORGANISATION_LIST_COLUMNS = ("id", "uri", "origin", "slug", "name", "kind", "territory")


async def plan_for_these_values(session: AsyncSession) -> None:
    """On PostgreSQL, plan the rest of this transaction's statements for their own values.

    asyncpg prepares statements, and after five runs PostgreSQL may switch one to a generic
    plan, chosen without the parameters. Declarations are skewed (one commons has 2,000
    users, most a few): the generic plan of "the first 50 users of this commons" hash-joins
    every declaration, 21 ms on the most used commons where its own plan walks an index in
    0.4 ms (bench/catalogue.py). Not a session-wide setting: for a frequent search word the
    generic plan (a GIN bitmap) is the better one.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.exec(text("SET LOCAL plan_cache_mode = force_custom_plan"))  # type: ignore[call-overload]


async def _declarations(
    session: AsyncSession, commons_id: int, kind: DeclarationKind
) -> list[tuple[Declaration, Organisation]]:
    query = (
        select(Declaration, Organisation)
        .join(Organisation, col(Organisation.id) == col(Declaration.organisation_id))
        # Only what a list of users shows: these rows are the bulk of a popular commons' page.
        .options(
            load_only(
                *(getattr(Declaration, name) for name in DECLARATION_LIST_COLUMNS),
                raiseload=True,
            ),
            load_only(
                *(getattr(Organisation, name) for name in ORGANISATION_LIST_COLUMNS),
                raiseload=True,
            ),
        )
        .where(
            Declaration.commons_id == commons_id,
            Declaration.kind == kind,
            col(Declaration.withdrawn_at).is_(None),
        )
        .order_by(col(Organisation.sort_key), col(Organisation.id))
        .limit(DECLARATIONS_SHOWN)
    )
    return list((await session.exec(query)).all())


async def improvement_views(
    session: AsyncSession, improvements: Sequence[Improvement], source: FundingSource
) -> list[ImprovementView]:
    """Improvements with funding, milestones and provider, in three queries for any number."""
    ids = [i.id for i in improvements if i.id is not None]
    funding = await funding_of(session, improvements, source)
    milestones: dict[int, list[Milestone]] = {i: [] for i in ids}
    if ids:
        for milestone in (
            await session.exec(
                select(Milestone)
                .where(col(Milestone.improvement_id).in_(ids))
                .order_by(col(Milestone.position))
            )
        ).all():
            milestones[milestone.improvement_id].append(milestone)
    provider_ids = {i.provider_id for i in improvements if i.provider_id is not None}
    providers: dict[int, Organisation] = {}
    if provider_ids:
        for organisation in (
            await session.exec(select(Organisation).where(col(Organisation.id).in_(provider_ids)))
        ).all():
            assert organisation.id is not None
            providers[organisation.id] = organisation
    return [
        ImprovementView(
            i,
            funding[i.id],
            milestones[i.id],
            providers.get(i.provider_id) if i.provider_id is not None else None,
        )
        for i in improvements
        if i.id is not None
    ]


async def maintainers_of(session: AsyncSession, commons_id: int) -> list[Organisation]:
    query = (
        select(Organisation)
        .join(CommonsMaintainer, col(CommonsMaintainer.organisation_id) == col(Organisation.id))
        .where(CommonsMaintainer.commons_id == commons_id)
        .order_by(col(Organisation.sort_key), col(Organisation.id))
    )
    return list((await session.exec(query)).all())


async def commons_page(
    session: AsyncSession, commons: Commons, source: FundingSource, *, include_drafts: bool
) -> CommonsPage:
    """Everything the commons page shows, in a fixed number of queries."""
    assert commons.id is not None
    tags = (await tags_of(session, [commons.id]))[commons.id]
    maintainers = await maintainers_of(session, commons.id)
    query = select(Improvement).where(Improvement.commons_id == commons.id)
    if not include_drafts:
        query = query.where(Improvement.status != ImprovementStatus.DRAFT)
    improvements = (await session.exec(query.order_by(col(Improvement.number).desc()))).all()
    await plan_for_these_values(session)
    return CommonsPage(
        commons=commons,
        tags=tags,
        maintainers=list(maintainers),
        users=await _declarations(session, commons.id, DeclarationKind.USES),
        interested=await _declarations(session, commons.id, DeclarationKind.INTERESTED),
        improvements=await improvement_views(session, improvements, source),
    )


async def shown_improvements(
    session: AsyncSession, commons: Commons, source: FundingSource
) -> list[ImprovementView]:
    """A commons' improvements but its drafts, newest first (a remote commons' page: copies
    show the funding their origin reported, catalogue.funding)."""
    query = select(Improvement).where(
        Improvement.commons_id == commons.id, Improvement.status != ImprovementStatus.DRAFT
    )
    improvements = (await session.exec(query.order_by(col(Improvement.number).desc()))).all()
    return await improvement_views(session, improvements, source)


async def open_improvements(
    session: AsyncSession, source: FundingSource, limit: int = 10
) -> list[tuple[ImprovementView, Commons]]:
    """The newest improvements open for funding, with their commons (for the home page)."""
    rows = (
        await session.exec(
            select(Improvement, Commons)
            .join(Commons, col(Commons.id) == col(Improvement.commons_id))
            .where(Improvement.status == ImprovementStatus.OPEN, visible())
            .order_by(col(Improvement.created_at).desc(), col(Improvement.id).desc())
            .limit(limit)
        )
    ).all()
    views = await improvement_views(session, [i for i, _c in rows], source)
    return list(zip(views, [c for _i, c in rows], strict=True))


async def uses_of(
    session: AsyncSession, organisation: Organisation
) -> list[tuple[Declaration, Commons]]:
    """What an organisation uses and is interested in (its page's "who uses what")."""
    rows = (
        await session.exec(
            select(Declaration, Commons)
            .join(Commons, col(Commons.id) == col(Declaration.commons_id))
            .where(
                Declaration.organisation_id == organisation.id,
                col(Declaration.withdrawn_at).is_(None),
            )
            .order_by(col(Declaration.kind).desc(), col(Commons.sort_key))
        )
    ).all()
    return list(rows)


async def figures_changed_at(session: AsyncSession, commons_id: int) -> datetime | None:
    """When the commons' usage figures last moved: its latest declaration made or withdrawn
    (None without any). A copy elsewhere orders the versions it receives by this as well as
    by the commons' own edits, or a late delivery would bring back older counts."""
    made = func.max(col(Declaration.created_at))
    withdrawn = func.max(col(Declaration.withdrawn_at))
    row = (
        await session.exec(select(made, withdrawn).where(Declaration.commons_id == commons_id))
    ).one()
    times = [moment for moment in row if moment is not None]
    return max(times) if times else None
