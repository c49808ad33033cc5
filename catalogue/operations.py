"""Changes to the catalogue, each in one transaction with the counters it affects.

Callers (the web views, the CLI, later federation) check who may act; these functions check
what is valid and keep the data consistent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from catalogue.commons import (
    Commons,
    CommonsMaintainer,
    CommonsTag,
    search_document,
    validate_commons,
)
from catalogue.declarations import Declaration, DeclarationKind, declaration_uri
from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.improvements import (
    Improvement,
    ImprovementStatus,
    Milestone,
    check_transition,
)
from catalogue.organisations import Organisation
from catalogue.text import fold


def commons_uri(base_url: str, slug: str) -> str:
    return f"{base_url}/commons/{slug}"


def improvement_uri(base_url: str, commons_slug: str, number: int) -> str:
    return f"{base_url}/commons/{commons_slug}/improvements/{number}"


SLUG_OF_COMMONS = N_("Another commons already uses this address.")
SLUG_OF_ORGANISATION = N_("Another organisation already uses this address.")
SLUG_OF_OTHER_KIND_COMMONS = N_(
    "A commons already uses this address (organisations and commons share addresses);"
    " choose another."
)
SLUG_OF_OTHER_KIND_ORG = N_(
    "An organisation already uses this address (organisations and commons share addresses);"
    " choose another."
)


async def get_local_commons(session: AsyncSession, slug: str) -> Commons | None:
    query = select(Commons).where(Commons.slug == slug, col(Commons.origin).is_(None))
    return (await session.exec(query)).first()


async def get_remote_commons(session: AsyncSession, slug: str, origin: str) -> Commons | None:
    """The copy of the commons ``slug`` made on ``origin`` (slugs are unique per origin only)."""
    query = select(Commons).where(Commons.slug == slug, Commons.origin == origin)
    return (await session.exec(query.order_by(col(Commons.id)))).first()


async def get_local_organisation(session: AsyncSession, slug: str) -> Organisation | None:
    query = select(Organisation).where(
        Organisation.slug == slug, col(Organisation.origin).is_(None)
    )
    return (await session.exec(query)).first()


async def check_slug_free(
    session: AsyncSession, slug: str, creating: type[Commons] | type[Organisation]
) -> None:
    """Refuse a slug any local commons or organisation holds, hidden or merged ones included.

    A slug names an actor (``acct:slug@domain``): were an organisation and a commons to share
    one, WebFinger could answer for only one of them, and Mastodon, which checks that the
    actor's ``preferredUsername@host`` leads back to it, would refuse the other.
    """
    if await get_local_commons(session, slug) is not None:
        message = SLUG_OF_COMMONS if creating is Commons else SLUG_OF_OTHER_KIND_COMMONS
    elif await get_local_organisation(session, slug) is not None:
        message = SLUG_OF_ORGANISATION if creating is Organisation else SLUG_OF_OTHER_KIND_ORG
    else:
        return
    raise InvalidFields([InvalidField("slug", message)])


async def lock_commons(session: AsyncSession, commons_id: int) -> None:
    """Serialise the changes that move a commons' counters (PostgreSQL row lock).

    Taken before any insert: the foreign keys of new rows share-lock the commons row, and
    upgrading that lock later would deadlock two concurrent declarations. SQLite has a single
    writer, so there is nothing to lock there (and no statement is run).
    """
    await lock_all_commons(session, [commons_id])


async def lock_all_commons(session: AsyncSession, commons_ids: Iterable[int]) -> None:
    """``lock_commons`` for many commons in one statement, taking the locks in id order (as
    every caller does, so that none deadlocks): a change of funding may touch every commons
    with a pledge, and one statement each made that cost a round trip per commons."""
    ids = sorted(set(commons_ids))
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    await session.exec(
        select(Commons.id)
        .where(col(Commons.id).in_(ids))
        .order_by(col(Commons.id))
        .with_for_update()
    )


async def refresh_counts(session: AsyncSession, commons_id: int) -> None:
    """Recount a commons' users, interested organisations and open needs from the rows.

    Callers hold ``lock_commons`` from the start of their transaction, so two changes
    committed at once cannot both write a count that misses the other.

    A remote commons' users and interested organisations keep the figures its origin sent
    (``usesCount``, ``interestedCount``): only the origin hears of every declaration, while
    this instance holds just those that reached it. Counting them here would show a smaller
    figure, or the same organisation twice once the origin's count includes it.
    """
    origin = (await session.exec(select(Commons.origin).where(Commons.id == commons_id))).first()
    # What each open improvement still lacks: its budget, less what its origin reported funded
    # for a copy from another instance (local ones count their pledges in pledges.ledger).
    funded = func.coalesce(Improvement.origin_funded_cents, 0)
    lacking = case((funded >= Improvement.budget_cents, 0), else_=Improvement.budget_cents - funded)
    open_query = select(func.count(), func.coalesce(func.sum(lacking), 0)).where(
        Improvement.commons_id == commons_id, Improvement.status == ImprovementStatus.OPEN
    )
    open_count, need = (await session.exec(open_query)).one()
    values: dict[str, int] = {"open_improvements": open_count, "need_cents": int(need)}
    if origin is None:
        active = select(Declaration.kind, func.count()).where(
            Declaration.commons_id == commons_id, col(Declaration.withdrawn_at).is_(None)
        )
        counts = dict((await session.exec(active.group_by(Declaration.kind))).all())
        values["uses_count"] = counts.get(DeclarationKind.USES, 0)
        values["interested_count"] = counts.get(DeclarationKind.INTERESTED, 0)
    await session.exec(update(Commons).where(col(Commons.id) == commons_id).values(**values))


async def _set_tags(session: AsyncSession, commons_id: int, tags: list[str]) -> None:
    await session.exec(delete(CommonsTag).where(col(CommonsTag.commons_id) == commons_id))
    for tag in tags:
        session.add(CommonsTag(commons_id=commons_id, tag=tag))


async def create_commons(
    session: AsyncSession,
    data: dict[str, Any],
    *,
    base_url: str,
    creator_id: int | None,
    maintainer_ids: list[int],
    commit: bool = True,
) -> Commons:
    """A new local commons; ``commit=False`` only flushes, for a caller's larger transaction."""
    cleaned = validate_commons(data, creating=True)
    await check_slug_free(session, cleaned["slug"], Commons)
    tags = cleaned.pop("tags")
    commons = Commons(
        uri=commons_uri(base_url, cleaned["slug"]),
        created_by_id=creator_id,
        updated_by_id=creator_id,
        **cleaned,
    )
    session.add(commons)
    await session.flush()
    assert commons.id is not None
    await _set_tags(session, commons.id, tags)
    for organisation_id in dict.fromkeys(maintainer_ids):
        session.add(CommonsMaintainer(commons_id=commons.id, organisation_id=organisation_id))
    if commit:
        await session.commit()
    else:
        await session.flush()
    return commons


async def update_commons(
    session: AsyncSession,
    commons: Commons,
    data: dict[str, Any],
    *,
    editor_id: int | None,
    commit: bool = True,
) -> Commons:
    cleaned = validate_commons(data, creating=False)
    tags = cleaned.pop("tags")
    for key, value in cleaned.items():
        setattr(commons, key, value)
    commons.updated_at = utcnow()
    commons.updated_by_id = editor_id
    session.add(commons)
    assert commons.id is not None
    await _set_tags(session, commons.id, tags)
    if commit:
        await session.commit()
    else:
        await session.flush()
    return commons


async def set_maintainers(
    session: AsyncSession, commons: Commons, organisation_ids: list[int]
) -> None:
    if not organisation_ids:
        raise InvalidFields(
            [
                InvalidField(
                    "maintainers", N_("A commons needs at least one maintaining organisation.")
                )
            ]
        )
    await session.exec(
        delete(CommonsMaintainer).where(col(CommonsMaintainer.commons_id) == commons.id)
    )
    assert commons.id is not None
    for organisation_id in dict.fromkeys(organisation_ids):
        session.add(CommonsMaintainer(commons_id=commons.id, organisation_id=organisation_id))
    await session.commit()


async def set_logo(session: AsyncSession, commons: Commons, filename: str | None) -> None:
    commons.logo = filename
    commons.updated_at = utcnow()
    session.add(commons)
    await session.commit()


async def set_hidden(session: AsyncSession, commons: Commons, hidden: bool) -> None:
    commons.hidden = hidden
    session.add(commons)
    await session.commit()


async def merge_commons(session: AsyncSession, duplicate: Commons, target: Commons) -> None:
    """Fold a duplicate into ``target``: its declarations, improvements, tags and maintainers move;
    the duplicate stays (hidden, pointing at the target) so its old address still leads somewhere.
    """
    if duplicate.id == target.id or target.merged_into_id is not None:
        raise InvalidFields([InvalidField("target", N_("Choose another commons to merge into."))])
    assert duplicate.id is not None and target.id is not None
    for commons_id in sorted((duplicate.id, target.id)):  # always in the same order
        await lock_commons(session, commons_id)
    now = utcnow()
    moving = (
        await session.exec(
            select(Declaration).where(
                Declaration.commons_id == duplicate.id, col(Declaration.withdrawn_at).is_(None)
            )
        )
    ).all()
    existing = set(
        (
            await session.exec(
                select(Declaration.organisation_id, Declaration.kind).where(
                    Declaration.commons_id == target.id, col(Declaration.withdrawn_at).is_(None)
                )
            )
        ).all()
    )
    for declaration in moving:
        if (declaration.organisation_id, declaration.kind) in existing:
            declaration.withdrawn_at = now  # the target already has it: keep one
        else:
            declaration.commons_id = target.id
        session.add(declaration)
    await session.flush()
    highest = (
        await session.exec(
            select(func.max(Improvement.number)).where(Improvement.commons_id == target.id)
        )
    ).one() or 0
    improvements = (
        await session.exec(
            select(Improvement)
            .where(Improvement.commons_id == duplicate.id)
            .order_by(col(Improvement.number))
        )
    ).all()
    for offset, improvement in enumerate(improvements, start=1):
        improvement.commons_id = target.id
        improvement.number = highest + offset
        session.add(improvement)
    tags = (
        await session.exec(select(CommonsTag.tag).where(CommonsTag.commons_id == duplicate.id))
    ).all()
    target_tags = set(
        (await session.exec(select(CommonsTag.tag).where(CommonsTag.commons_id == target.id))).all()
    )
    for tag in tags:
        if tag not in target_tags:
            session.add(CommonsTag(commons_id=target.id, tag=tag))
    maintainers = (
        await session.exec(
            select(CommonsMaintainer.organisation_id).where(
                CommonsMaintainer.commons_id == duplicate.id
            )
        )
    ).all()
    target_maintainers = set(
        (
            await session.exec(
                select(CommonsMaintainer.organisation_id).where(
                    CommonsMaintainer.commons_id == target.id
                )
            )
        ).all()
    )
    for organisation_id in maintainers:
        if organisation_id not in target_maintainers:
            session.add(CommonsMaintainer(commons_id=target.id, organisation_id=organisation_id))
    duplicate.hidden = True
    duplicate.merged_into_id = target.id
    session.add(duplicate)
    await session.flush()
    await refresh_counts(session, duplicate.id)
    await refresh_counts(session, target.id)
    await session.commit()


async def active_declaration(
    session: AsyncSession, organisation: Organisation, commons: Commons, kind: str
) -> Declaration | None:
    query = select(Declaration).where(
        Declaration.organisation_id == organisation.id,
        Declaration.commons_id == commons.id,
        Declaration.kind == kind,
        col(Declaration.withdrawn_at).is_(None),
    )
    return (await session.exec(query)).first()


async def declare(
    session: AsyncSession,
    organisation: Organisation,
    commons: Commons,
    cleaned: dict[str, Any],
    *,
    base_url: str,
    creator_id: int | None,
    commit: bool = True,
) -> Declaration:
    """Record (or update) the organisation's declaration of this kind for this commons.

    ``commit=False`` only flushes, so the caller commits the declaration together with the
    activity that tells other instances about it."""
    assert organisation.id is not None and commons.id is not None
    await lock_commons(session, commons.id)
    declaration = await active_declaration(session, organisation, commons, cleaned["kind"])
    if declaration is None:
        declaration = Declaration(
            uri=declaration_uri(base_url, organisation.slug),
            organisation_id=organisation.id,
            commons_id=commons.id,
            created_by_id=creator_id,
            kind=cleaned["kind"],
        )
    declaration.since = cleaned.get("since")
    declaration.comment = str(cleaned.get("comment", ""))
    declaration.satisfaction = cleaned.get("satisfaction")
    session.add(declaration)
    await session.flush()
    await refresh_counts(session, commons.id)
    if commit:
        await session.commit()
    return declaration


async def withdraw(session: AsyncSession, declaration: Declaration, *, commit: bool = True) -> None:
    """Withdraw a declaration, keeping its row; ``commit=False`` as for ``declare``."""
    await lock_commons(session, declaration.commons_id)
    declaration.withdrawn_at = utcnow()
    session.add(declaration)
    await session.flush()
    await refresh_counts(session, declaration.commons_id)
    if commit:
        await session.commit()


async def create_improvement(
    session: AsyncSession,
    commons: Commons,
    cleaned: dict[str, Any],
    *,
    base_url: str,
    currency: str,
    provider_id: int | None,
    creator_id: int | None,
) -> Improvement:
    assert commons.id is not None
    await lock_commons(session, commons.id)
    milestones = cleaned.pop("milestones")
    highest = (
        await session.exec(
            select(func.max(Improvement.number)).where(Improvement.commons_id == commons.id)
        )
    ).one() or 0
    improvement = Improvement(
        uri=improvement_uri(base_url, commons.slug, highest + 1),
        commons_id=commons.id,
        number=highest + 1,
        currency=currency,
        provider_id=provider_id,
        created_by_id=creator_id,
        **cleaned,
    )
    session.add(improvement)
    await session.flush()
    await _set_milestones(session, improvement, milestones)
    await refresh_counts(session, commons.id)
    await session.commit()
    return improvement


async def _set_milestones(
    session: AsyncSession, improvement: Improvement, milestones: list[tuple[str, int]]
) -> None:
    assert improvement.id is not None
    await session.exec(delete(Milestone).where(col(Milestone.improvement_id) == improvement.id))
    for position, (title, cents) in enumerate(milestones, start=1):
        session.add(
            Milestone(
                improvement_id=improvement.id, position=position, title=title, amount_cents=cents
            )
        )


async def update_improvement(
    session: AsyncSession,
    improvement: Improvement,
    cleaned: dict[str, Any],
    *,
    provider_id: int | None,
) -> Improvement:
    await lock_commons(session, improvement.commons_id)
    milestones = cleaned.pop("milestones")
    for key, value in cleaned.items():
        setattr(improvement, key, value)
    improvement.provider_id = provider_id
    improvement.updated_at = utcnow()
    session.add(improvement)
    await _set_milestones(session, improvement, milestones)
    await refresh_counts(session, improvement.commons_id)
    await session.commit()
    return improvement


async def change_status(session: AsyncSession, improvement: Improvement, target: str) -> None:
    try:
        check_transition(improvement.status, target)
    except InvalidField as error:
        raise InvalidFields([error]) from None
    await lock_commons(session, improvement.commons_id)
    improvement.status = target
    improvement.updated_at = utcnow()
    session.add(improvement)
    await session.flush()
    await refresh_counts(session, improvement.commons_id)
    await session.commit()


def today_utc() -> date:
    return utcnow().date()


# Copies of commons made on other instances.

REMOTE_COLUMNS = frozenset(
    {
        "slug", "name", "kind", "maturity", "summary", "description", "description_html",
        "licence", "website", "repository", "languages", "territory", "uses_count",
        "interested_count", "payment_links", "created_at", "updated_at",
    }
)  # fmt: skip


class NotFromOrigin(ValueError):
    """A change to a commons from somewhere other than where it was made (or to a local one)."""


async def _commons_for_update(session: AsyncSession, uri: str) -> Commons | None:
    query = select(Commons).where(Commons.uri == uri).with_for_update()
    # Another statement may have written the row: never answer from the identity map.
    return (await session.exec(query.execution_options(populate_existing=True))).first()


def _check_origin(commons: Commons, origin: str) -> None:
    if commons.origin != origin:
        where = commons.origin or "this instance"
        raise NotFromOrigin(f"{commons.uri} was made on {where}, not on {origin}")


async def _insert_unless_present(session: AsyncSession, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT (uri) DO NOTHING``: whether this statement made the row.

    Two activities about one new commons may be applied at once by two workers; the second
    then updates the row the first made instead of failing on the unique ``uri``.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: Any = insert(Commons).values(**values).on_conflict_do_nothing(index_elements=["uri"])
    result = await session.exec(statement)
    return bool(result.rowcount)


async def upsert_remote_commons(
    session: AsyncSession,
    uri: str,
    origin: str,
    fields: dict[str, Any],
    tags: list[str],
) -> Commons:
    """Store the copy of a commons made on ``origin`` (a host): created the first time,
    replaced afterwards, shown again if a deletion had hidden it.

    ``fields`` are plain column values (``slug``, ``name`` and ``kind`` at least; see
    ``REMOTE_COLUMNS``), already checked by the caller. A version older than the stored one
    (by ``updated_at``) changes nothing: deliveries may arrive out of order. A time in the
    future counts as now. Flushes only: the caller commits, once for the whole change.
    Raises NotFromOrigin when ``uri`` is a local commons or another origin's.
    """
    unknown = set(fields) - REMOTE_COLUMNS
    if unknown:
        raise ValueError(f"not columns of a remote commons: {', '.join(sorted(unknown))}")
    now = utcnow()
    values = dict(fields)
    values["updated_at"] = min(values.get("updated_at", now), now)
    if "created_at" in values:
        values["created_at"] = min(values["created_at"], now)
    values["sort_key"] = fold(values["name"])[:200]
    values["search_document"] = search_document(
        values["name"], values.get("summary", ""), values.get("description", ""), tags
    )
    values.update(hidden=False, merged_into_id=None)
    commons = await _commons_for_update(session, uri)
    if commons is None:
        created = {"created_at": values["updated_at"], **values, "uri": uri, "origin": origin}
        inserted = await _insert_unless_present(session, created)
        commons = await _commons_for_update(session, uri)
        assert commons is not None and commons.id is not None
        if inserted:
            await _set_tags(session, commons.id, tags)
            await session.flush()
            return commons
    _check_origin(commons, origin)
    if commons.updated_at > values["updated_at"]:
        return commons
    for key, value in values.items():
        setattr(commons, key, value)
    session.add(commons)
    assert commons.id is not None
    await _set_tags(session, commons.id, tags)
    await session.flush()
    return commons


async def hide_remote_commons(session: AsyncSession, uri: str, origin: str) -> bool:
    """Hide the copy of a commons its origin deleted; False when we hold no such copy.

    Hidden rather than deleted, as local commons are: nothing refers to a missing row, and
    the origin can show it again with a new Create. Flushes only; raises NotFromOrigin.
    """
    commons = await _commons_for_update(session, uri)
    if commons is None:
        return False
    _check_origin(commons, origin)
    commons.hidden = True
    session.add(commons)
    await session.flush()
    return True


# Copies of improvements made on other instances.

REMOTE_IMPROVEMENT_COLUMNS = frozenset(
    {
        "title", "description", "description_html", "budget_cents", "currency", "deadline",
        "status", "allow_overfunding", "origin_funded_cents", "payment_links", "created_at",
        "updated_at",
    }
)  # fmt: skip


async def _improvement_for_update(session: AsyncSession, uri: str) -> Improvement | None:
    query = select(Improvement).where(Improvement.uri == uri).with_for_update()
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def _next_number(session: AsyncSession, commons_id: int) -> int:
    query = select(func.max(Improvement.number)).where(Improvement.commons_id == commons_id)
    return ((await session.exec(query)).one() or 0) + 1


async def upsert_remote_improvement(
    session: AsyncSession, commons: Commons, uri: str, origin: str, fields: dict[str, Any]
) -> Improvement:
    """Store the copy of an improvement of the remote ``commons`` made on ``origin``.

    Created the first time (numbered after the commons' others), replaced afterwards; a
    version older than the stored one (by ``updated_at``) changes nothing, as for commons.
    ``fields`` are plain column values (see ``REMOTE_IMPROVEMENT_COLUMNS``), already checked.
    An improvement now attributed to another of ``origin``'s commons moves there (its origin
    merged the two). Flushes only. Raises NotFromOrigin when the commons or the improvement
    is not ``origin``'s (a local one included).
    """
    unknown = set(fields) - REMOTE_IMPROVEMENT_COLUMNS
    if unknown:
        raise ValueError(f"not columns of a remote improvement: {', '.join(sorted(unknown))}")
    _check_origin(commons, origin)
    assert commons.id is not None
    await lock_commons(session, commons.id)
    now = utcnow()
    values = dict(fields)
    values["updated_at"] = min(values.get("updated_at", now), now)
    if "created_at" in values:
        values["created_at"] = min(values["created_at"], now)
    improvement = await _improvement_for_update(session, uri)
    moved_from: int | None = None
    if improvement is None:
        improvement = Improvement(
            uri=uri,
            origin=origin,
            commons_id=commons.id,
            number=await _next_number(session, commons.id),
            **{"created_at": values["updated_at"], **values},
        )
    else:
        if improvement.origin != origin:
            where = improvement.origin or "this instance"
            raise NotFromOrigin(f"{uri} was made on {where}, not on {origin}")
        if improvement.updated_at > values["updated_at"]:
            return improvement
        moved_from = improvement.commons_id if improvement.commons_id != commons.id else None
        if moved_from is not None:  # its origin merged its commons into another of its own
            await lock_commons(session, moved_from)
            number = await _next_number(session, commons.id)  # before the row changes
            improvement.commons_id, improvement.number = commons.id, number
        for key, value in values.items():
            setattr(improvement, key, value)
    session.add(improvement)
    await session.flush()
    await refresh_counts(session, commons.id)
    if moved_from is not None:
        await refresh_counts(session, moved_from)
    return improvement


async def remove_remote_improvement(session: AsyncSession, uri: str, origin: str) -> bool:
    """Drop the copy of an improvement its origin withdrew; False when we hold none.

    Deleted rather than hidden: nothing here refers to a copy (pledges to remote improvements
    are made at their origin). Flushes only; raises NotFromOrigin.
    """
    improvement = await _improvement_for_update(session, uri)
    if improvement is None:
        return False
    if improvement.origin != origin:
        where = improvement.origin or "this instance"
        raise NotFromOrigin(f"{uri} was made on {where}, not on {origin}")
    commons_id = improvement.commons_id
    await lock_commons(session, commons_id)
    await session.exec(delete(Milestone).where(col(Milestone.improvement_id) == improvement.id))
    await session.delete(improvement)
    await session.flush()
    await refresh_counts(session, commons_id)
    return True


# Copies of organisations made on other instances, and their declarations.

REMOTE_ORGANISATION_COLUMNS = frozenset({"slug", "name", "kind", "description"})


class NotTheSame(ValueError):
    """A declaration that names, under a known id, another organisation, commons or kind."""


async def upsert_remote_organisation(
    session: AsyncSession, uri: str, origin: str, fields: dict[str, Any]
) -> Organisation:
    """Store the copy of an organisation made on ``origin`` (a host), as it declares something
    here: created the first time, its name and description refreshed afterwards.

    ``fields`` are plain column values (see ``REMOTE_ORGANISATION_COLUMNS``), already checked
    by the caller. Flushes only. Raises NotFromOrigin when ``uri`` is a local organisation or
    another origin's.
    """
    unknown = set(fields) - REMOTE_ORGANISATION_COLUMNS
    if unknown:
        raise ValueError(f"not columns of a remote organisation: {', '.join(sorted(unknown))}")
    values = {**fields, "sort_key": fold(fields["name"])[:200], "updated_at": utcnow()}
    query = select(Organisation).where(Organisation.uri == uri)
    organisation = (await session.exec(query.execution_options(populate_existing=True))).first()
    if organisation is None:
        # Two declarations from one new organisation may be applied at once by two workers.
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement: Any = (
            insert(Organisation)
            .values(**values, uri=uri, origin=origin, created_at=values["updated_at"])
            .on_conflict_do_nothing(index_elements=["uri"])
        )
        await session.exec(statement)
        organisation = (await session.exec(query.execution_options(populate_existing=True))).one()
    if organisation.origin != origin:
        where = organisation.origin or "this instance"
        raise NotFromOrigin(f"{uri} was made on {where}, not on {origin}")
    for key, value in values.items():
        setattr(organisation, key, value)
    session.add(organisation)
    await session.flush()
    return organisation


async def declaration_by_uri(session: AsyncSession, uri: str) -> Declaration | None:
    query = select(Declaration).where(Declaration.uri == uri)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def apply_remote_declaration(
    session: AsyncSession,
    *,
    uri: str,
    origin: str,
    organisation: Organisation,
    commons: Commons,
    cleaned: dict[str, Any],
    withdrawn: bool = False,
) -> Declaration:
    """Store, update or withdraw a declaration made on ``origin`` (a host); flushes only.

    ``cleaned`` holds ``kind``, ``since``, ``comment``, ``satisfaction`` and optionally
    ``created_at``. Idempotent: the same declaration applied twice changes nothing more. A
    withdrawn one stays withdrawn (a late or replayed copy cannot bring it back), and one
    first heard of as withdrawn is recorded withdrawn, for the same reason. A new declaration
    replaces the organisation's active one of the same kind on the same commons, as a local
    organisation declaring again would. Raises NotFromOrigin or NotTheSame.
    """
    assert organisation.id is not None and commons.id is not None
    await lock_commons(session, commons.id)
    now = utcnow()
    declaration = await declaration_by_uri(session, uri)
    if declaration is not None:
        if declaration.origin != origin:
            where = declaration.origin or "this instance"
            raise NotFromOrigin(f"{uri} was made on {where}, not on {origin}")
        named = (declaration.organisation_id, declaration.commons_id, declaration.kind)
        if named != (organisation.id, commons.id, cleaned["kind"]):
            raise NotTheSame(f"{uri} names another organisation, commons or kind than before")
        if not declaration.active:
            return declaration
    else:
        if not withdrawn:
            replaced = await active_declaration(session, organisation, commons, cleaned["kind"])
            if replaced is not None:
                replaced.withdrawn_at = now
                session.add(replaced)
                await session.flush()
        created_at = min(cleaned.get("created_at") or now, now)
        declaration = Declaration(
            uri=uri,
            origin=origin,
            organisation_id=organisation.id,
            commons_id=commons.id,
            kind=cleaned["kind"],
            created_at=created_at,
        )
    declaration.since = cleaned.get("since")
    declaration.comment = str(cleaned.get("comment", ""))
    declaration.satisfaction = cleaned.get("satisfaction")
    if withdrawn:
        declaration.withdrawn_at = now
    session.add(declaration)
    await session.flush()
    await refresh_counts(session, commons.id)
    return declaration


async def withdraw_remote_declaration(
    session: AsyncSession, uri: str, origin: str
) -> Declaration | None:
    """Withdraw the declaration ``uri`` made on ``origin``; None when we hold none by that id.
    Flushes only; raises NotFromOrigin."""
    declaration = await declaration_by_uri(session, uri)
    if declaration is None:
        return None
    if declaration.origin != origin:
        where = declaration.origin or "this instance"
        raise NotFromOrigin(f"{uri} was made on {where}, not on {origin}")
    if declaration.active:
        await lock_commons(session, declaration.commons_id)
        declaration.withdrawn_at = utcnow()
        session.add(declaration)
        await session.flush()
        await refresh_counts(session, declaration.commons_id)
    return declaration
