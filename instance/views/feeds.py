"""Atom feeds (RFC 4287): new commons, new improvements, and each commons' improvements.

Feed readers rarely send a language, so titles come out in the instance's default language
unless they do. Entries' ids are the objects' URIs, which never change, so a reader never shows
an entry twice; their links lead to the HTML pages. Text goes through the autoescaped XML
template, after the characters XML 1.0 cannot carry at all are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from babel.numbers import format_currency
from jinja2 import Environment
from sqlmodel import col, select
from sqlmodel.sql.expression import Select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.columns import utcnow
from catalogue.commons import COMMONS_KIND_LABELS, Commons, CommonsKind
from catalogue.errors import N_
from catalogue.funding import Funding
from catalogue.improvements import STATUS_LABELS, Improvement, ImprovementStatus
from catalogue.operations import get_local_commons
from catalogue.queries import improvement_views, visible
from instance import i18n
from instance.i18n import gettext as _

FEED_SIZE = 50
ATOM_TYPE = "application/atom+xml; charset=utf-8"
# Characters XML 1.0 forbids even escaped: C0 controls but tab and newlines, lone surrogates,
# U+FFFE and U+FFFF. A name holding one would otherwise make the whole feed unreadable.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    return NOT_XML.sub("", value)


def atom_time(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second: 2026-11-28T13:53:51Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    id: str
    title: str
    url: str
    published: datetime
    updated: datetime
    summary: str
    content_html: str = ""
    categories: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Feed:
    id: str
    title: str
    self_url: str
    page_url: str
    author: str
    author_uri: str
    language: str
    entries: list[Entry]
    subtitle: str = ""
    # When nothing is in the feed yet, what else says when it last changed.
    changed_at: datetime | None = None

    @property
    def updated(self) -> str:
        moments = [e.updated for e in self.entries]
        if self.changed_at is not None:
            moments.append(self.changed_at)
        return atom_time(max(moments, default=utcnow()))


def render_feed(environment: Environment, feed: Feed) -> Response:
    entries = [
        {
            "id": xml_text(e.id),
            "title": xml_text(e.title),
            "url": xml_text(e.url),
            "published": atom_time(e.published),
            "updated": atom_time(e.updated),
            "summary": xml_text(e.summary),
            "content_html": xml_text(e.content_html),
            "categories": [(xml_text(t), xml_text(label)) for t, label in e.categories],
        }
        for e in feed.entries
    ]
    context = {
        "id": xml_text(feed.id),
        "title": xml_text(feed.title),
        "subtitle": xml_text(feed.subtitle),
        "updated": feed.updated,
        "self_url": xml_text(feed.self_url),
        "page_url": xml_text(feed.page_url),
        "author": xml_text(feed.author),
        "author_uri": xml_text(feed.author_uri),
        "language": feed.language,
        "entries": entries,
    }
    xml = environment.get_template("feeds/atom.xml").render(feed=context)
    return Response(xml, media_type=ATOM_TYPE)


def commons_path(commons: Commons) -> str:
    return f"/commons/{commons.slug}"


def page_url(base_url: str, commons: Commons, path: str) -> str:
    """The HTML page of a local object here; a remote copy's page is at its origin (its uri)."""
    return base_url + path if commons.is_local else ""


def kind_label(kind: str) -> str:
    try:
        return _(COMMONS_KIND_LABELS[CommonsKind(kind)])
    except ValueError:
        return kind


def status_label(status: str) -> str:
    try:
        return _(STATUS_LABELS[ImprovementStatus(status)])
    except ValueError:
        return status


def money(cents: int, currency: str) -> str:
    return format_currency(Decimal(cents) / 100, currency, locale=i18n.current_language())


def commons_entry(commons: Commons, base_url: str) -> Entry:
    url = page_url(base_url, commons, commons_path(commons)) or commons.uri
    return Entry(
        id=commons.uri,
        title=commons.name,
        url=url,
        published=commons.created_at,
        updated=commons.updated_at,
        summary=commons.summary,
        content_html=commons.description_html,
        categories=[(commons.kind, kind_label(commons.kind))],
    )


def improvement_summary(improvement: Improvement, funding: Funding) -> str:
    return _(
        "%(status)s · budget %(budget)s · %(percent)d%% funded",
        status=status_label(improvement.status),
        budget=money(improvement.budget_cents, improvement.currency),
        percent=funding.percent,
    )


def improvement_entry(
    improvement: Improvement, funding: Funding, commons: Commons, base_url: str
) -> Entry:
    path = f"{commons_path(commons)}/improvements/{improvement.number}"
    return Entry(
        id=improvement.uri,
        title=_("%(commons)s: %(title)s", commons=commons.name, title=improvement.title),
        url=page_url(base_url, commons, path) or improvement.uri,
        published=improvement.created_at,
        updated=improvement.updated_at,
        summary=improvement_summary(improvement, funding),
        content_html=improvement.description_html,
        categories=[(improvement.status, status_label(improvement.status))],
    )


def base_feed(request: Request, title: str, page_path: str, entries: list[Entry]) -> Feed:
    settings = request.app.state.settings.instance
    self_url = settings.base_url + request.url.path
    return Feed(
        id=self_url,
        title=title,
        self_url=self_url,
        page_url=settings.base_url + page_path,
        author=settings.name,
        author_uri=settings.base_url,
        language=i18n.current_language(),
        entries=entries,
    )


async def commons_feed(request: Request) -> Response:
    settings = request.app.state.settings.instance
    async with request.app.state.db.session() as session:
        rows = (
            await session.exec(
                select(Commons)
                .where(visible())
                .order_by(col(Commons.created_at).desc(), col(Commons.id).desc())
                .limit(FEED_SIZE)
            )
        ).all()
    entries = [commons_entry(c, settings.base_url) for c in rows]
    feed = base_feed(request, _("New commons on %(name)s", name=settings.name), "/commons", entries)
    return render_feed(request.app.state.templates, feed)


def newest_improvements(limit: int) -> Select[Improvement, Commons]:
    """Non-draft improvements of visible commons, newest first."""
    return (
        select(Improvement, Commons)
        .join(Commons, col(Commons.id) == col(Improvement.commons_id))
        .where(visible(), Improvement.status != ImprovementStatus.DRAFT)
        .order_by(col(Improvement.created_at).desc(), col(Improvement.id).desc())
        .limit(limit)
    )


async def improvements_feed(request: Request) -> Response:
    settings = request.app.state.settings.instance
    async with request.app.state.db.session() as session:
        rows = (await session.exec(newest_improvements(FEED_SIZE))).all()
        views = await improvement_views(session, [i for i, _c in rows], request.app.state.funding)
    entries = [
        improvement_entry(v.improvement, v.funding, c, settings.base_url)
        for v, (_i, c) in zip(views, rows, strict=True)
    ]
    feed = base_feed(
        request, _("Improvements to fund on %(name)s", name=settings.name), "/", entries
    )
    return render_feed(request.app.state.templates, feed)


async def commons_improvements_feed(request: Request) -> Response:
    settings = request.app.state.settings.instance
    async with request.app.state.db.session() as session:
        commons = await get_local_commons(session, request.path_params["slug"])
        if commons is not None and commons.merged_into_id is not None:
            target = await session.get(Commons, commons.merged_into_id)
            if target is not None and not target.hidden and target.is_local:
                # A merged duplicate's readers follow the commons it was merged into.
                return RedirectResponse(f"{commons_path(target)}/feed.atom", status_code=301)
        if commons is None or commons.hidden:
            raise HTTPException(404, N_("No commons has this address."))
        rows = (
            await session.exec(
                newest_improvements(FEED_SIZE).where(Improvement.commons_id == commons.id)
            )
        ).all()
        views = await improvement_views(session, [i for i, _c in rows], request.app.state.funding)
    entries = [
        improvement_entry(v.improvement, v.funding, commons, settings.base_url) for v in views
    ]
    feed = base_feed(
        request,
        _("Improvements of %(name)s", name=commons.name),
        commons_path(commons),
        entries,
    )
    feed.subtitle = commons.summary
    feed.changed_at = commons.updated_at
    return render_feed(request.app.state.templates, feed)


routes: list[BaseRoute] = [
    Route("/feeds/commons.atom", commons_feed, name="feed_commons"),
    Route("/feeds/improvements.atom", improvements_feed, name="feed_improvements"),
    Route("/commons/{slug}/feed.atom", commons_improvements_feed, name="feed_commons_improvements"),
]
