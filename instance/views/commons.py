"""Commons pages: the catalogue, one commons, its forms, declarations, moderation and logos."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from catalogue import operations as ops
from catalogue import queries
from catalogue.commons import (
    Commons,
    CommonsKind,
    Maturity,
    validate_commons,
)
from catalogue.declarations import Declaration, DeclarationKind, validate_declaration
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.organisations import Organisation
from catalogue.payment_links import format_payment_links
from catalogue.territories import parse_territory, territory_choices
from federation.commons_feed import CommonsChange
from federation.declarations_feed import Counts
from instance import media
from instance import permissions as can
from instance.accounts import Account
from instance.forms import field_errors, read_form, read_json
from instance.i18n import error_message
from instance.i18n import gettext as _
from instance.memberships import get_local_organisation
from instance.outgoing import (
    announce_commons,
    announce_declaration,
    announce_improvements,
    announce_profile,
    declaration_inboxes,
    wake_worker,
)
from instance.security import CSRF_FIELD, CSRF_HEADER, check_csrf
from instance.sessions import current_account, flash, require_account
from instance.templating import render
from instance.views.pledge_lists import local_pledges_by_improvement, pledge_status_label
from pledges.operations import commons_changed

# The catalogue shows fewer cards per page than settings.limits.page_size: each card is large.
PER_PAGE = 20
# Beyond this many results the page says "more than 1,000": nobody pages that far, and
# counting every match of a frequent word costs more than finding the page (bench/).
COUNT_LIMIT = 1000
MAX_QUERY = 200
MAX_PAGE = 10_000
FIELDS = (
    "name", "slug", "kind", "maturity", "summary", "description", "tags", "licence", "website",
    "repository", "languages", "territory", "payment_links",
)  # fmt: skip
SORT_LABELS = {
    queries.Sort.USED: N_("Most used"),
    queries.Sort.RECENT: N_("Most recent"),
    queries.Sort.NEED: N_("Most in need of funds"),
    queries.Sort.NAME: N_("Name"),
}
TRUE_VALUES = {"1", "on", "true", "yes"}


# The catalogue page.


def _whole(text: str) -> bool:
    """A whole number in ASCII digits ("²" is a digit to str.isdigit, not to int)."""
    return text.isascii() and text.isdigit() and len(text) < 10


def catalogue_filter(
    params: Mapping[str, str], per_page: int = PER_PAGE
) -> queries.CatalogueFilter:
    """The catalogue's filter from query parameters; InvalidField names a wrong parameter."""
    text = params.get("q", "").strip()
    if len(text) > MAX_QUERY:
        raise InvalidField("q", N_("The search is too long: at most 200 characters."))
    kind = params.get("kind", "")
    if kind and kind not in {k.value for k in CommonsKind}:
        raise InvalidField("kind", N_("Unknown kind of commons."))
    maturity = params.get("maturity", "")
    if maturity and maturity not in {m.value for m in Maturity}:
        raise InvalidField("maturity", N_("Unknown maturity."))
    territory = params.get("territory", "")
    if territory and parse_territory(territory) is None:
        raise InvalidField("territory", N_("Unknown territory."))
    tag = " ".join(params.get("tag", "").split()).lower()
    if len(tag) > 50:
        raise InvalidField("tag", N_("A tag has at most 50 characters."))
    open_value = params.get("open", "").lower()
    if open_value not in TRUE_VALUES | {"", "0"}:
        raise InvalidField("open", N_("The open improvements filter is 1 or nothing."))
    sort = params.get("sort", "") or queries.Sort.USED
    if sort not in {s.value for s in queries.Sort}:
        raise InvalidField("sort", N_("Unknown sort order."))
    page = params.get("page", "1")
    if not _whole(page) or not 1 <= int(page) <= MAX_PAGE:
        raise InvalidField("page", N_("The page number must be a whole number from 1."))
    return queries.CatalogueFilter(
        text=text,
        kind=kind,
        tag=tag,
        maturity=maturity,
        territory=territory,
        open_improvements=open_value in TRUE_VALUES,
        sort=queries.Sort(sort),
        page=int(page),
        per_page=per_page,
    )


def filter_query(wanted: queries.CatalogueFilter, **changes: Any) -> str:
    """The query string of ``wanted`` with ``changes`` (a link to another page or tag)."""
    params = {
        "q": wanted.text,
        "kind": wanted.kind,
        "tag": wanted.tag,
        "maturity": wanted.maturity,
        "territory": wanted.territory,
        "open": "1" if wanted.open_improvements else "",
        "sort": "" if wanted.sort == queries.Sort.USED else wanted.sort.value,
        "page": "" if wanted.page == 1 else str(wanted.page),
    }
    params.update({key: str(value) for key, value in changes.items()})
    if params["page"] == "1":
        params["page"] = ""
    return urlencode({key: value for key, value in params.items() if value})


async def catalogue(request: Request) -> Response:
    try:
        wanted = catalogue_filter(request.query_params)
    except InvalidField as error:
        raise HTTPException(400, error.message) from None
    async with request.app.state.db.session() as session:
        account = await current_account(request, session)
        page = await queries.list_commons(session, wanted, count_limit=COUNT_LIMIT)
        tags = await queries.tags_of(session, [c.id for c in page.items if c.id is not None])
        proposer = await can.can_propose(session, account)
    return render(
        request,
        "commons/list.html",
        {
            "page": page,
            "tags": tags,
            "wanted": wanted,
            "filter_query": filter_query,
            "territories": territory_choices(),
            "sorts": [(sort.value, label) for sort, label in SORT_LABELS.items()],
            "can_propose": proposer,
        },
    )


# Finding one commons.


async def load_commons(session: AsyncSession, slug: str, account: Account | None) -> Commons:
    """The local commons at ``slug``; hidden or merged ones exist for moderators only."""
    return visible_to(await ops.get_local_commons(session, slug), account)


def visible_to(commons: Commons | None, account: Account | None) -> Commons:
    """``commons`` when ``account`` may see it; hidden or merged ones are for moderators."""
    if commons is None or (
        (commons.hidden or commons.merged_into_id is not None) and not can.can_moderate(account)
    ):
        raise HTTPException(404, N_("No commons has this address."))
    return commons


async def editable_commons(request: Request, session: AsyncSession) -> tuple[Account, Commons]:
    """The commons of the URL and the account, when that account may edit it; else 403."""
    account = await require_account(request, session)
    commons = await load_commons(session, request.path_params["slug"], account)
    if not await can.can_edit(session, account, commons):
        raise HTTPException(403, N_("Only members of this commons' maintainers may change it."))
    return account, commons


async def _merged_target(session: AsyncSession, commons: Commons) -> Commons | None:
    if commons.merged_into_id is None:
        return None
    return await session.get(Commons, commons.merged_into_id)


# The commons page.


@dataclass
class DeclareForm:
    """What to show again in the declaration forms after a refused submission."""

    kind: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


async def _active_declarations(
    session: AsyncSession, commons: Commons, organisations: list[Organisation]
) -> list[tuple[Declaration, Organisation]]:
    """The reader's organisations' current declarations on this commons (to withdraw them)."""
    by_id = {o.id: o for o in organisations}
    if not by_id:
        return []
    rows = (
        await session.exec(
            select(Declaration).where(
                Declaration.commons_id == commons.id,
                col(Declaration.organisation_id).in_(list(by_id)),
                col(Declaration.withdrawn_at).is_(None),
            )
        )
    ).all()
    return [(d, by_id[d.organisation_id]) for d in sorted(rows, key=lambda d: (d.kind, d.id))]


async def render_commons_page(
    request: Request,
    session: AsyncSession,
    account: Account | None,
    commons: Commons,
    *,
    declare: DeclareForm | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    editor = await can.can_edit(session, account, commons)
    page = await queries.commons_page(
        session, commons, request.app.state.funding, include_drafts=editor
    )
    mine = await can.organisations_of(session, account)
    return render(
        request,
        "commons/page.html",
        {
            "page": page,
            "commons": commons,
            "can_edit": editor,
            "can_moderate": can.can_moderate(account, commons),
            "my_organisations": mine,
            "my_declarations": await _active_declarations(session, commons, mine),
            "declare": declare or DeclareForm(),
            "address": commons.slug,
            "errors": errors or {},
            "values": values or {},
            "today": ops.today_utc().isoformat(),
        },
        status_code=status_code,
    )


async def load_remote_commons(session: AsyncSession, address: str) -> Commons:
    """The copy of a remote commons at ``slug@host``, unless its origin deleted it."""
    slug, _at, host = address.lower().partition("@")
    commons = await ops.get_remote_commons(session, slug, host)
    if commons is None or commons.hidden or commons.merged_into_id is not None:
        raise HTTPException(404, N_("No commons has this address."))
    return commons


def address_of(commons: Commons) -> str:
    """What follows ``/commons/`` in the commons' page address: ``slug``, or ``slug@host``."""
    return f"{commons.slug}@{commons.origin}" if commons.origin else commons.slug


async def remote_commons_page(
    request: Request,
    session: AsyncSession,
    account: Account | None,
    commons: Commons,
    *,
    declare: DeclareForm | None = None,
    status_code: int = 200,
) -> Response:
    """A commons copied from another instance (``slug@host``): read-only, since only its
    origin changes it; local organisations may declare they use it (sent to its origin)."""
    assert commons.id is not None
    tags = (await queries.tags_of(session, [commons.id]))[commons.id]
    mine = await can.organisations_of(session, account)
    improvements = await queries.shown_improvements(session, commons, request.app.state.funding)
    shown = [v.improvement.id for v in improvements if v.improvement.id is not None]
    return render(
        request,
        "commons/remote.html",
        {
            "commons": commons,
            "tags": tags,
            "improvements": improvements,
            "local_pledges": await local_pledges_by_improvement(
                session,
                shown,
                my_organisation_ids={o.id for o in mine},
                treasurer=await can.can_record_payments(session, account, commons),
            ),
            "pledge_status_label": pledge_status_label,
            "my_organisations": mine,
            "my_declarations": await _active_declarations(session, commons, mine),
            "declare": declare or DeclareForm(),
            "address": address_of(commons),
            "today": ops.today_utc().isoformat(),
        },
        status_code=status_code,
    )


async def commons_page(request: Request) -> Response:
    async with request.app.state.db.session() as session:
        account = await current_account(request, session)
        if "@" in request.path_params["slug"]:
            remote = await load_remote_commons(session, request.path_params["slug"])
            return await remote_commons_page(request, session, account, remote)
        found = await ops.get_local_commons(session, request.path_params["slug"])
        target = await _merged_target(session, found) if found is not None else None
        if target is not None:
            # A merged duplicate's address leads to the commons it became, for good.
            return RedirectResponse(f"/commons/{target.slug}", status_code=301)
        commons = visible_to(found, account)
        return await render_commons_page(request, session, account, commons)


# Declarations.


async def declarable_commons(
    session: AsyncSession, address: str, account: Account | None
) -> Commons:
    """The commons a declaration is about: a local one, or a remote one's copy (``slug@host``),
    whose origin the declaration is then sent to."""
    if "@" in address:
        return await load_remote_commons(session, address)
    return await load_commons(session, address, account)


async def declare(request: Request) -> Response:
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        commons = await declarable_commons(session, request.path_params["slug"], account)
        kind = form.get("kind", "")
        organisation = await get_local_organisation(session, form.get("organisation", ""))
        try:
            if organisation is None:
                raise InvalidFields(
                    [InvalidField("organisation", N_("Choose one of your organisations."))]
                )
            if not await can.can_declare_for(session, account, organisation):
                raise HTTPException(403, N_("You may only speak for your own organisations."))
            cleaned = validate_declaration(
                kind,
                form.get("since", ""),
                form.get("comment", ""),
                form.get("satisfaction", ""),
                today=ops.today_utc(),
            )
        except InvalidFields as error:
            refused = DeclareForm(kind, field_errors(error), form)
            page = remote_commons_page if commons.origin else render_commons_page
            return await page(request, session, account, commons, declare=refused, status_code=422)
        inboxes = await declaration_inboxes(request, session, organisation, commons)
        before = Counts.of(commons)
        declaration = await ops.declare(
            session,
            organisation,
            commons,
            cleaned,
            base_url=request.app.state.settings.instance.base_url,
            creator_id=account.id,
            commit=False,
        )
        await announce_declaration(
            request, session, declaration, organisation, commons, inboxes=inboxes, before=before
        )
        await session.commit()
    wake_worker(request)
    if kind == DeclarationKind.USES:
        flash(request, _("%(name)s now says it uses this commons.", name=organisation.name))
    else:
        flash(request, _("%(name)s now says it is interested.", name=organisation.name))
    return RedirectResponse(f"/commons/{address_of(commons)}", status_code=303)


async def withdraw(request: Request) -> Response:
    await read_form(request)
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        commons = await declarable_commons(session, request.path_params["slug"], account)
        raw_id = request.path_params["declaration"]
        declaration = await session.get(Declaration, int(raw_id)) if _whole(raw_id) else None
        if declaration is None or declaration.commons_id != commons.id or not declaration.active:
            raise HTTPException(404, N_("No such declaration on this commons."))
        organisation = await session.get(Organisation, declaration.organisation_id)
        if organisation is None or not await can.can_declare_for(session, account, organisation):
            raise HTTPException(403, N_("You may only speak for your own organisations."))
        inboxes = await declaration_inboxes(request, session, organisation, commons)
        before = Counts.of(commons)
        await ops.withdraw(session, declaration, commit=False)
        await announce_declaration(
            request, session, declaration, organisation, commons, inboxes=inboxes, before=before
        )
        await session.commit()
    wake_worker(request)
    flash(request, _("The declaration is withdrawn."))
    return RedirectResponse(f"/commons/{address_of(commons)}", status_code=303)


# Moderation.


async def _moderated(request: Request, session: AsyncSession) -> tuple[Account, Commons]:
    account = await require_account(request, session)
    commons = await load_commons(session, request.path_params["slug"], account)
    if not can.can_moderate(account, commons):
        raise HTTPException(403, N_("Only the instance's moderators may do this."))
    return account, commons


async def _set_hidden(request: Request, hidden: bool) -> Response:
    await read_form(request)
    async with request.app.state.db.session() as session:
        _account, commons = await _moderated(request, session)
        await ops.set_hidden(session, commons, hidden)
        change = CommonsChange.REMOVED if hidden else CommonsChange.CREATED
        await announce_commons(request, session, commons, change)
    flash(request, _("The commons is hidden.") if hidden else _("The commons is shown again."))
    return RedirectResponse(f"/commons/{commons.slug}", status_code=303)


async def hide(request: Request) -> Response:
    return await _set_hidden(request, True)


async def unhide(request: Request) -> Response:
    return await _set_hidden(request, False)


async def merge(request: Request) -> Response:
    form = await read_form(request)
    async with request.app.state.db.session() as session:
        account, duplicate = await _moderated(request, session)
        target = await ops.get_local_commons(session, form.get("target", "").strip().lower())
        try:
            if target is None or target.hidden or target.merged_into_id is not None:
                raise InvalidFields(
                    [InvalidField("target", N_("Give the address of a visible commons."))]
                )
            await ops.merge_commons(session, duplicate, target)
            assert target.id is not None
            await commons_changed(
                session, target.id, base_url=request.app.state.settings.instance.base_url
            )
        except InvalidFields as error:
            return await render_commons_page(
                request,
                session,
                account,
                duplicate,
                errors=field_errors(error),
                values=form,
                status_code=422,
            )
        await announce_commons(request, session, duplicate, CommonsChange.REMOVED)
        await announce_commons(request, session, target, CommonsChange.UPDATED)
        # The duplicate's improvements now belong to the target: their Articles say so.
        await announce_improvements(request, session, funding=True, commons_ids=[target.id])
    flash(request, _("The duplicate is merged into this commons."))
    return RedirectResponse(f"/commons/{target.slug}", status_code=303)


# The proposal and edit forms (multipart, for the logo).


@dataclass
class CommonsForm:
    fields: dict[str, str] = field(default_factory=dict)
    maintainers: list[str] = field(default_factory=list)
    logo: bytes | None = None  # None when no file was chosen


async def read_commons_form(request: Request, max_logo_bytes: int) -> CommonsForm:
    """Like read_form (CSRF checked, JSON accepted), keeping the maintainers list and the logo.

    At most one byte more than allowed is read from the logo: enough to know it is too large.
    """
    submitted = CommonsForm()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        data = await read_json(request)
        if not isinstance(data, dict):
            raise HTTPException(400, N_("Malformed JSON: expected an object of form fields."))
        raw = data.pop("maintainers", [])
        submitted.maintainers = [str(v) for v in (raw if isinstance(raw, list) else [raw])]
        submitted.fields = {str(k): "" if v is None else str(v) for k, v in data.items()}
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key == "logo" and value.filename:
                        submitted.logo = await value.read(max_logo_bytes + 1)
                elif key == "maintainers":
                    submitted.maintainers.append(value)
                else:
                    submitted.fields[key] = value
    elif content_type:
        raise HTTPException(415, N_("Send a form or a JSON object."))
    token = submitted.fields.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER)
    check_csrf(request, token)
    return submitted


def chosen_maintainers(submitted: list[str], options: list[Organisation]) -> list[int]:
    """The ids of the organisations ticked among ``options``, or InvalidField("maintainers")."""
    by_slug = {o.slug: o.id for o in options if o.id is not None}
    wanted = list(dict.fromkeys(s for s in submitted if s))
    if any(slug not in by_slug for slug in wanted):
        raise InvalidField("maintainers", N_("Choose among the organisations listed."))
    if not wanted:
        raise InvalidField(
            "maintainers", N_("A commons needs at least one maintaining organisation.")
        )
    return [by_slug[slug] for slug in wanted]


def check_commons_form(
    submitted: CommonsForm, options: list[Organisation], *, creating: bool, max_logo_bytes: int
) -> tuple[dict[str, str], list[int], str | None]:
    """Every error of the form at once: fields, maintainers and logo (nothing saved yet)."""
    errors: dict[str, str] = {}
    ids: list[int] = []
    extension = None
    try:
        validate_commons(submitted.fields, creating=creating)
    except InvalidFields as error:
        errors.update(field_errors(error))
    try:
        ids = chosen_maintainers(submitted.maintainers, options)
    except InvalidField as error:
        errors[error.field] = error_message(error)
    if submitted.logo is not None:
        try:
            extension = media.logo_extension(submitted.logo, max_logo_bytes)
        except InvalidField as error:
            errors[error.field] = error_message(error)
    return errors, ids, extension


def _form_page(
    request: Request,
    *,
    creating: bool,
    options: list[Organisation],
    chosen: list[str],
    commons: Commons | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "commons/form.html",
        {
            "creating": creating,
            "commons": commons,
            "territories": territory_choices(),
            "maintainer_options": options,
            "chosen": chosen,
            "errors": errors or {},
            "values": values or {},
            "logo_max_kb": request.app.state.settings.limits.logo_max_bytes // 1024,
        },
        status_code=status_code,
    )


async def commons_new(request: Request) -> Response:
    settings = request.app.state.settings
    submitted = None
    if request.method == "POST":  # the CSRF check comes before anything else
        submitted = await read_commons_form(request, settings.limits.logo_max_bytes)
    async with request.app.state.db.session() as session:
        account = await require_account(request, session)
        options = await can.organisations_of(session, account)
        if not options:
            raise HTTPException(
                403, N_("Only members of an organisation may propose a commons: create one first.")
            )
        if submitted is None:
            chosen = [options[0].slug] if len(options) == 1 else []
            return _form_page(request, creating=True, options=options, chosen=chosen)
        errors, ids, extension = check_commons_form(
            submitted, options, creating=True, max_logo_bytes=settings.limits.logo_max_bytes
        )
        commons = None
        if not errors:
            try:
                commons = await ops.create_commons(
                    session,
                    submitted.fields,
                    base_url=settings.instance.base_url,
                    creator_id=account.id,
                    maintainer_ids=ids,
                )
            except InvalidFields as error:
                errors = field_errors(error)
        if commons is None:
            return _form_page(
                request,
                creating=True,
                options=options,
                chosen=submitted.maintainers,
                errors=errors,
                values=submitted.fields,
                status_code=422,
            )
        if submitted.logo is not None and extension is not None:
            name = media.store_logo(settings.instance.data_dir, submitted.logo, extension)
            await ops.set_logo(session, commons, name)
        await announce_commons(request, session, commons, CommonsChange.CREATED)
    flash(request, _("%(name)s is in the catalogue.", name=commons.name))
    return RedirectResponse(f"/commons/{commons.slug}", status_code=303)


def _current_values(commons: Commons, tags: list[str]) -> dict[str, str]:
    values = {name: str(getattr(commons, name, "") or "") for name in FIELDS if name != "tags"}
    values["tags"] = ", ".join(tags)
    values["languages"] = ", ".join(commons.language_list)
    values["payment_links"] = format_payment_links(commons.payment_links)
    return values


async def commons_edit(request: Request) -> Response:
    settings = request.app.state.settings
    submitted = None
    if request.method == "POST":  # the CSRF check comes before anything else
        submitted = await read_commons_form(request, settings.limits.logo_max_bytes)
    async with request.app.state.db.session() as session:
        account, commons = await editable_commons(request, session)
        page = await queries.commons_page(
            session, commons, request.app.state.funding, include_drafts=False
        )
        mine = await can.organisations_of(session, account)
        options = sorted(
            {o.id: o for o in [*page.maintainers, *mine]}.values(), key=lambda o: o.sort_key
        )
        form_page: dict[str, Any] = {"creating": False, "options": options, "commons": commons}
        if submitted is None:
            return _form_page(
                request,
                **form_page,
                chosen=[o.slug for o in page.maintainers],
                values=_current_values(commons, page.tags),
            )
        errors, ids, extension = check_commons_form(
            submitted, options, creating=False, max_logo_bytes=settings.limits.logo_max_bytes
        )
        if not errors:
            try:
                await ops.update_commons(session, commons, submitted.fields, editor_id=account.id)
                await ops.set_maintainers(session, commons, ids)
            except InvalidFields as error:
                errors = field_errors(error)
        if errors:
            return _form_page(
                request,
                **form_page,
                chosen=submitted.maintainers,
                errors=errors,
                values={**submitted.fields, "slug": commons.slug},
                status_code=422,
            )
        old_logo = commons.logo
        if submitted.logo is not None and extension is not None:
            name = media.store_logo(settings.instance.data_dir, submitted.logo, extension)
            await ops.set_logo(session, commons, name)
            media.delete_logo(settings.instance.data_dir, old_logo)
        elif submitted.fields.get("remove_logo", "").lower() in TRUE_VALUES and old_logo:
            await ops.set_logo(session, commons, None)
            media.delete_logo(settings.instance.data_dir, old_logo)
        await announce_profile(request, session, commons.uri)
        await announce_commons(request, session, commons, CommonsChange.UPDATED)
    flash(request, _("The commons is saved."))
    return RedirectResponse(f"/commons/{commons.slug}", status_code=303)


async def logo(request: Request) -> Response:
    """A stored logo; its name is random and never reused, so browsers may keep it for a year."""
    name = request.path_params["name"]
    path = media.logo_path(request.app.state.settings.instance.data_dir, name)
    if path is None:
        raise HTTPException(404, N_("No such logo."))
    return FileResponse(
        path,
        media_type=media.content_type(name),
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )


routes = [
    Route("/commons", catalogue, name="catalogue"),
    Route("/commons/new", commons_new, methods=["GET", "POST"], name="commons_new"),
    Route("/commons/{slug}", commons_page, name="commons"),
    Route("/commons/{slug}/edit", commons_edit, methods=["GET", "POST"], name="commons_edit"),
    Route("/commons/{slug}/declarations", declare, methods=["POST"], name="commons_declare"),
    Route(
        "/commons/{slug}/declarations/{declaration}/withdraw",
        withdraw,
        methods=["POST"],
        name="commons_withdraw",
    ),
    Route("/commons/{slug}/hide", hide, methods=["POST"], name="commons_hide"),
    Route("/commons/{slug}/unhide", unhide, methods=["POST"], name="commons_unhide"),
    Route("/commons/{slug}/merge", merge, methods=["POST"], name="commons_merge"),
    Route("/media/logos/{name}", logo, name="logo"),
]
