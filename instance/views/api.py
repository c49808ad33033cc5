"""The read-only JSON API under /api/v1/ (issue #3): public data only, JSON always.

Public means what an anonymous visitor sees: never a hidden or merged commons (nor anything
attached to one), never a draft improvement, never an account. Every answer to a GET is JSON,
errors included, whatever the client's Accept header says: the errors are built here rather
than left to the HTML error pages. Shapes and parameters come from instance.openapi, which
also makes the OpenAPI document, so what is served and what is documented are one thing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.sql.selectable import GenerativeSelect
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.commons import Commons, CommonsMaintainer
from catalogue.declarations import Declaration, DeclarationKind
from catalogue.errors import N_
from catalogue.funding import FundingSource
from catalogue.improvements import Improvement, ImprovementStatus
from catalogue.operations import get_local_commons
from catalogue.organisations import SLUG, Organisation
from catalogue.queries import (
    CatalogueFilter,
    ImprovementView,
    Sort,
    improvement_views,
    list_commons,
    maintainers_of,
    tags_of,
    visible,
)
from instance.i18n import gettext as _
from instance.memberships import get_local_organisation
from instance.openapi import (
    MAX_NUMBER,
    OPERATIONS,
    PAGE,
    PER_PAGE,
    Amount,
    CommonsDetail,
    CommonsList,
    CommonsRef,
    CommonsSummary,
    DeclarationList,
    DeclarationOut,
    ErrorOut,
    FundingProgress,
    ImprovementList,
    ImprovementOut,
    MilestoneOut,
    Operation,
    OrganisationDetail,
    OrganisationList,
    OrganisationOut,
    OrganisationRef,
    PageLinks,
    ParameterError,
    PaymentLinkOut,
    build_document,
)

# Public, read-only data: any web page may read it (no cookies are involved).
HEADERS = {"Access-Control-Allow-Origin": "*"}


class ApiError(Exception):
    """Ends an API request with a JSON error; ``detail`` is an English msgid."""

    def __init__(
        self, status: int, detail: str, parameter: str | None = None, **params: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter
        self.params = params


def error_json(status: int, detail: str, parameter: str | None = None) -> JSONResponse:
    body = ErrorOut(error=HTTPStatus(status).phrase, detail=detail, parameter=parameter)
    return JSONResponse(body.model_dump(mode="json"), status, headers=HEADERS)


def json_of(model: BaseModel) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), headers=HEADERS)


def not_found() -> ApiError:
    return ApiError(404, N_("Nothing public has this address."))


# ---------------------------------------------------------------------------------------------
# Reading the request


def query(request: Request, operation: Operation) -> dict[str, Any]:
    """Every documented query parameter, read and checked; unknown ones are ignored."""
    values: dict[str, Any] = {}
    for param in operation.query:
        try:
            values[param.name] = param.parse(request.query_params.get(param.name))
        except ParameterError as error:
            raise ApiError(400, error.message, param.name, **error.params) from None
    return values


def path_slug(request: Request) -> str:
    """The slug in the path; one that could not be a slug names nothing (and is never queried)."""
    slug = str(request.path_params["slug"])
    if not SLUG.match(slug):
        raise not_found()
    return slug


def path_number(request: Request) -> int:
    """The improvement number in the path; anything else names nothing."""
    raw = str(request.path_params["number"])
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not 1 <= int(raw) <= MAX_NUMBER:
        raise not_found()
    return int(raw)


def page_links(request: Request, operation: Operation, page: int, pages: int) -> PageLinks:
    """Absolute links to this page and its neighbours, keeping the documented parameters."""
    base = request.app.state.settings.instance.base_url + request.url.path
    kept = [
        (param.name, request.query_params[param.name])
        for param in operation.query
        if param is not PAGE and param.name in request.query_params
    ]

    def link(number: int) -> str:
        return f"{base}?{urlencode([*kept, ('page', str(number))])}"

    return PageLinks.model_validate(
        {
            "self": link(page),
            "next": link(page + 1) if page < pages else None,
            "prev": link(min(page - 1, pages)) if page > 1 else None,
        }
    )


def page_of(
    request: Request,
    operation: Operation,
    values: dict[str, Any],
    items: Sequence[BaseModel],
    total: int,
) -> dict[str, Any]:
    page, per_page = values[PAGE.name], values[PER_PAGE.name]
    pages = max(1, -(-total // per_page))
    return {
        "items": list(items),
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": pages,
        "links": page_links(request, operation, page, pages),
    }


Window = TypeVar("Window", bound=GenerativeSelect)


def window(found: Window, values: dict[str, Any]) -> Window:
    """The rows of the requested page only."""
    return found.offset((values["page"] - 1) * values["per_page"]).limit(values["per_page"])


async def count(session: AsyncSession, found: GenerativeSelect) -> int:
    total = await session.exec(select(func.count()).select_from(found.order_by(None).subquery()))
    return int(total.one())


# ---------------------------------------------------------------------------------------------
# Turning rows into the documented shapes


def _or_none(value: str) -> str | None:
    return value or None


def commons_ref(commons: Commons) -> CommonsRef:
    return CommonsRef(uri=commons.uri, slug=commons.slug, name=commons.name)


def organisation_ref(organisation: Organisation) -> OrganisationRef:
    return OrganisationRef(uri=organisation.uri, slug=organisation.slug, name=organisation.name)


def commons_fields(commons: Commons, tags: list[str], base_url: str) -> dict[str, Any]:
    return {
        "uri": commons.uri,
        "origin": commons.origin,
        "slug": commons.slug,
        "name": commons.name,
        "kind": commons.kind,
        "summary": commons.summary,
        "tags": tags,
        "licence": _or_none(commons.licence),
        "website": _or_none(commons.website),
        "repository": _or_none(commons.repository),
        "logo": f"{base_url}/media/logos/{commons.logo}" if commons.logo else None,
        "maturity": commons.maturity,
        "languages": commons.language_list,
        "territory": _or_none(commons.territory),
        "uses_count": commons.uses_count,
        "interested_count": commons.interested_count,
        "open_improvements": commons.open_improvements,
        "payment_links": [PaymentLinkOut.of(link) for link in commons.payment_links],
        "created_at": commons.created_at,
        "updated_at": commons.updated_at,
    }


def improvement_out(view: ImprovementView, commons: Commons) -> ImprovementOut:
    improvement = view.improvement
    return ImprovementOut(
        uri=improvement.uri,
        origin=improvement.origin,
        number=improvement.number,
        commons=commons_ref(commons),
        title=improvement.title,
        description=improvement.description,
        description_html=improvement.description_html,
        status=improvement.status,  # type: ignore[arg-type]  # drafts are filtered out
        budget=Amount.of(improvement.budget_cents, improvement.currency),
        funding=FundingProgress.of(view.funding),
        allow_overfunding=improvement.allow_overfunding,
        deadline=improvement.deadline,
        provider=organisation_ref(view.provider) if view.provider else None,
        milestones=[
            MilestoneOut(
                position=milestone.position,
                title=milestone.title,
                amount=Amount.of(milestone.amount_cents, improvement.currency),
            )
            for milestone in view.milestones
        ],
        payment_links=[PaymentLinkOut.of(link) for link in improvement.payment_links],
        created_at=improvement.created_at,
        updated_at=improvement.updated_at,
    )


def organisation_fields(organisation: Organisation) -> dict[str, Any]:
    return {
        "uri": organisation.uri,
        "origin": organisation.origin,
        "slug": organisation.slug,
        "name": organisation.name,
        "kind": organisation.kind,
        "description": organisation.description,
        "website": _or_none(organisation.website),
        "territory": _or_none(organisation.territory),
        "created_at": organisation.created_at,
        "updated_at": organisation.updated_at,
    }


# ---------------------------------------------------------------------------------------------
# The endpoints


async def list_commons_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    values = query(request, operation)
    wanted = CatalogueFilter(
        text=values["q"] or "",
        kind=values["kind"] or "",
        tag=values["tag"] or "",
        maturity=values["maturity"] or "",
        territory=values["territory"] or "",
        open_improvements=bool(values["open_improvements"]),
        sort=Sort(values["sort"]),
        page=values["page"],
        per_page=values["per_page"],
    )
    found = await list_commons(session, wanted)
    tags = await tags_of(session, [c.id for c in found.items if c.id is not None])
    base_url = request.app.state.settings.instance.base_url
    items = [
        CommonsSummary(**commons_fields(c, tags.get(c.id or 0, []), base_url)) for c in found.items
    ]
    return CommonsList(**page_of(request, operation, values, items, found.total))


async def public_commons(session: AsyncSession, slug: str) -> Commons:
    commons = await get_local_commons(session, slug)
    if commons is None or commons.hidden or commons.merged_into_id is not None:
        raise not_found()
    return commons


async def get_commons_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    commons = await public_commons(session, path_slug(request))
    assert commons.id is not None
    tags = (await tags_of(session, [commons.id]))[commons.id]
    maintainers = await maintainers_of(session, commons.id)
    return CommonsDetail(
        **commons_fields(commons, tags, request.app.state.settings.instance.base_url),
        description=commons.description,
        description_html=commons.description_html,
        maintainers=[organisation_ref(o) for o in maintainers],
    )


def public_improvements() -> Select[Improvement, Commons]:
    return (
        select(Improvement, Commons)
        .join(Commons, col(Commons.id) == col(Improvement.commons_id))
        .where(visible(), Improvement.status != ImprovementStatus.DRAFT)
    )


async def improvements_out(
    session: AsyncSession, rows: Sequence[tuple[Improvement, Commons]], source: FundingSource
) -> list[ImprovementOut]:
    views = await improvement_views(session, [i for i, _c in rows], source)
    return [improvement_out(v, c) for v, (_i, c) in zip(views, rows, strict=True)]


async def list_improvements_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    values = query(request, operation)
    found = public_improvements()
    if values["status"]:
        found = found.where(Improvement.status == values["status"])
    if values["commons"]:
        found = found.where(Commons.slug == values["commons"], col(Commons.origin).is_(None))
    total = await count(session, found)
    rows = (
        await session.exec(
            window(
                found.order_by(col(Improvement.created_at).desc(), col(Improvement.id).desc()),
                values,
            )
        )
    ).all()
    items = await improvements_out(session, rows, request.app.state.funding)
    return ImprovementList(**page_of(request, operation, values, items, total))


async def get_improvement_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    commons = await public_commons(session, path_slug(request))
    number = path_number(request)
    row = (
        await session.exec(
            public_improvements().where(
                Improvement.commons_id == commons.id, Improvement.number == number
            )
        )
    ).first()
    if row is None:
        raise not_found()
    return (await improvements_out(session, [row], request.app.state.funding))[0]


async def list_organisations_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    values = query(request, operation)
    found = select(Organisation)
    if values["kind"]:
        found = found.where(Organisation.kind == values["kind"])
    total = await count(session, found)
    rows = (
        await session.exec(
            window(found.order_by(col(Organisation.sort_key), col(Organisation.id)), values)
        )
    ).all()
    items = [OrganisationOut(**organisation_fields(o)) for o in rows]
    return OrganisationList(**page_of(request, operation, values, items, total))


async def get_organisation_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    organisation = await get_local_organisation(session, path_slug(request))
    if organisation is None:
        raise not_found()
    declared = (
        await session.exec(
            select(Declaration.kind, Commons)
            .join(Commons, col(Commons.id) == col(Declaration.commons_id))
            .where(
                Declaration.organisation_id == organisation.id,
                col(Declaration.withdrawn_at).is_(None),
                visible(),
            )
            .order_by(col(Commons.sort_key), col(Commons.id))
        )
    ).all()
    maintained = (
        await session.exec(
            select(Commons)
            .join(CommonsMaintainer, col(CommonsMaintainer.commons_id) == col(Commons.id))
            .where(CommonsMaintainer.organisation_id == organisation.id, visible())
            .order_by(col(Commons.sort_key), col(Commons.id))
        )
    ).all()
    return OrganisationDetail(
        **organisation_fields(organisation),
        uses=[commons_ref(c) for kind, c in declared if kind == "uses"],
        interested_in=[commons_ref(c) for kind, c in declared if kind == "interested"],
        maintains=[commons_ref(c) for c in maintained],
    )


async def list_declarations_view(
    request: Request, session: AsyncSession, operation: Operation
) -> BaseModel:
    values = query(request, operation)
    found = (
        select(Declaration, Organisation, Commons)
        .join(Organisation, col(Organisation.id) == col(Declaration.organisation_id))
        .join(Commons, col(Commons.id) == col(Declaration.commons_id))
        .where(col(Declaration.withdrawn_at).is_(None), visible())
    )
    if values["commons"]:
        found = found.where(Commons.slug == values["commons"], col(Commons.origin).is_(None))
    if values["organisation"]:
        found = found.where(
            Organisation.slug == values["organisation"], col(Organisation.origin).is_(None)
        )
    if values["kind"]:
        found = found.where(Declaration.kind == values["kind"])
    total = await count(session, found)
    rows = (
        await session.exec(
            window(
                found.order_by(col(Declaration.created_at).desc(), col(Declaration.id).desc()),
                values,
            )
        )
    ).all()
    items = [
        DeclarationOut(
            uri=declaration.uri,
            origin=declaration.origin,
            kind=DeclarationKind(declaration.kind),
            organisation=organisation_ref(organisation),
            commons=commons_ref(commons),
            since=declaration.since,
            satisfaction=declaration.satisfaction,
            comment=declaration.comment,
            created_at=declaration.created_at,
        )
        for declaration, organisation, commons in rows
    ]
    return DeclarationList(**page_of(request, operation, values, items, total))


async def openapi_view(request: Request) -> Response:
    settings = request.app.state.settings.instance
    return JSONResponse(build_document(settings.base_url, settings.name), headers=HEADERS)


# ---------------------------------------------------------------------------------------------
# Routing: one route per documented operation, plus a JSON 404 for any other GET under /api/.
# Other methods get the app-wide 405 (JSON when asked for): this API has no POST route at all,
# so no route here escapes the CSRF rule that every POST route follows.

View = Callable[[Request, AsyncSession, Operation], Awaitable[BaseModel]]

VIEWS: dict[str, View] = {
    "listCommons": list_commons_view,
    "getCommons": get_commons_view,
    "listImprovements": list_improvements_view,
    "getImprovement": get_improvement_view,
    "listOrganisations": list_organisations_view,
    "getOrganisation": get_organisation_view,
    "listDeclarations": list_declarations_view,
}


def endpoint(operation: Operation, view: View) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for ``view``: a session, and JSON errors."""

    async def handle(request: Request) -> Response:
        try:
            async with request.app.state.db.session() as session:
                result = await view(request, session, operation)
        except ApiError as error:
            return error_json(error.status, _(error.detail, **error.params), error.parameter)
        return json_of(result)

    handle.__name__ = operation.operation_id
    return handle


async def unknown_endpoint(request: Request) -> Response:
    """Any other address under /api/: a JSON 404, never the HTML error page."""
    return error_json(404, _("Nothing public has this address."))


def _routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for operation in OPERATIONS:
        handler = VIEWS.get(operation.operation_id)
        view = openapi_view if handler is None else endpoint(operation, handler)
        routes.append(Route(operation.path, view, methods=["GET"]))
    routes.append(Route("/api/{rest:path}", unknown_endpoint, methods=["GET"]))
    return routes


routes: list[BaseRoute] = _routes()
