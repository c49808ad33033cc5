"""The database side of ``terreau import`` and ``terreau export``.

An import is all or nothing: every row is checked before anything is written, and the writes
then happen in one transaction that is rolled back if any row still fails (a slug taken by
someone else in the meantime), so a refused file never leaves half a catalogue behind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue import operations
from catalogue.columns import utcnow
from catalogue.commons import Commons, CommonsMaintainer
from catalogue.declarations import Declaration
from catalogue.errors import InvalidFields
from catalogue.exchange import (
    CheckedRow,
    ImportRow,
    RejectedRow,
    check_rows,
    commons_csv,
    commons_record,
    declaration_record,
    improvement_record,
    organisation_record,
)
from catalogue.improvements import Improvement, ImprovementStatus, Milestone
from catalogue.organisations import Organisation
from catalogue.queries import tags_of, visible
from instance import models  # noqa: F401  (every table: the commons' keys to accounts resolve)
from instance.outgoing import queue_commons_changes

if TYPE_CHECKING:
    from federation.service import Federation


class UnknownOrganisation(LookupError):
    """The default maintainer given on the command line is no local organisation."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"No local organisation has the slug {slug!r}.")
        self.slug = slug


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    skipped_remote: int = 0
    dry_run: bool = False

    @property
    def written(self) -> bool:
        return not self.rejected and not self.dry_run


async def local_organisation_ids(session: AsyncSession) -> dict[str, int]:
    rows = await session.exec(
        select(Organisation.slug, Organisation.id).where(col(Organisation.origin).is_(None))
    )
    return {slug: organisation_id for slug, organisation_id in rows.all() if organisation_id}


async def _existing_commons(session: AsyncSession, slugs: list[str]) -> dict[str, Commons]:
    if not slugs:
        return {}
    rows = await session.exec(
        select(Commons).where(col(Commons.slug).in_(slugs), col(Commons.origin).is_(None))
    )
    return {commons.slug: commons for commons in rows.all()}


async def import_commons(
    session: AsyncSession,
    rows: Sequence[ImportRow],
    *,
    base_url: str,
    default_maintainer: str | None = None,
    dry_run: bool = False,
    creator_id: int | None = None,
    progress: Callable[[int], None] | None = None,
    federation: Federation | None = None,
) -> ImportReport:
    """Create the rows' new commons and update those whose slug exists, all or none of them.

    Given ``federation``, the transaction also queues what the pages would: ``Create`` or
    ``Update`` of each public commons written, for the instance actor's followers."""
    organisations = await local_organisation_ids(session)
    if default_maintainer and default_maintainer not in organisations:
        raise UnknownOrganisation(default_maintainer)
    checked = check_rows(
        rows, organisations=organisations.keys(), default_maintainer=default_maintainer
    )
    existing = await _existing_commons(session, [row.slug for row in checked.accepted])
    report = ImportReport(
        created=[row.slug for row in checked.accepted if row.slug not in existing],
        updated=[row.slug for row in checked.accepted if row.slug in existing],
        rejected=checked.rejected,
        skipped_remote=checked.skipped_remote,
        dry_run=dry_run,
    )
    if report.rejected or dry_run or not checked.accepted:
        return report
    written: list[Commons] = []
    try:
        for row in checked.accepted:
            ids = [organisations[slug] for slug in row.maintainers]
            try:
                written.append(
                    await _write(session, row, existing.get(row.slug), ids, base_url, creator_id)
                )
            except InvalidFields as invalid:
                report.rejected.append(RejectedRow(row.row, invalid.errors))
            if progress is not None:
                progress(1)
        if report.rejected:
            await session.rollback()
        else:
            if federation is not None:
                created = [c for c in written if c.slug not in existing]
                updated = [c for c in written if c.slug in existing]
                await queue_commons_changes(session, federation, created, updated)
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return report


async def _write(
    session: AsyncSession,
    row: CheckedRow,
    commons: Commons | None,
    maintainer_ids: list[int],
    base_url: str,
    creator_id: int | None,
) -> Commons:
    if commons is None:
        return await operations.create_commons(
            session,
            row.data,
            base_url=base_url,
            creator_id=creator_id,
            maintainer_ids=maintainer_ids,
            commit=False,
        )
    await operations.update_commons(session, commons, row.data, editor_id=creator_id, commit=False)
    # The file says who maintains it now (set_maintainers would commit half the import).
    await session.exec(
        delete(CommonsMaintainer).where(col(CommonsMaintainer.commons_id) == commons.id)
    )
    assert commons.id is not None
    for organisation_id in dict.fromkeys(maintainer_ids):
        session.add(CommonsMaintainer(commons_id=commons.id, organisation_id=organisation_id))
    await session.flush()
    return commons


# Export


async def _maintainers_of(
    session: AsyncSession, commons_ids: list[int]
) -> dict[int, list[Organisation]]:
    result: dict[int, list[Organisation]] = defaultdict(list)
    if commons_ids:
        rows = await session.exec(
            select(CommonsMaintainer.commons_id, Organisation)
            .join(Organisation, col(Organisation.id) == col(CommonsMaintainer.organisation_id))
            .where(col(CommonsMaintainer.commons_id).in_(commons_ids))
            .order_by(col(Organisation.sort_key), col(Organisation.id))
        )
        for commons_id, organisation in rows.all():
            result[commons_id].append(organisation)
    return result


async def _visible_commons(session: AsyncSession, *, local_only: bool) -> list[Commons]:
    query = select(Commons).where(visible())
    if local_only:
        query = query.where(col(Commons.origin).is_(None))
    return list((await session.exec(query.order_by(col(Commons.sort_key), col(Commons.id)))).all())


async def commons_records(
    session: AsyncSession, *, local_only: bool = False
) -> list[dict[str, Any]]:
    """Every visible commons with its tags and maintainers, in three queries."""
    commons = await _visible_commons(session, local_only=local_only)
    ids = [c.id for c in commons if c.id is not None]
    tags = await tags_of(session, ids)
    maintainers = await _maintainers_of(session, ids)
    return [
        commons_record(c, tags.get(c.id, []), maintainers.get(c.id, []))
        for c in commons
        if c.id is not None
    ]


async def _organisation_records(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.exec(
        select(Organisation).order_by(col(Organisation.sort_key), col(Organisation.id))
    )
    return [organisation_record(organisation) for organisation in rows.all()]


async def _declaration_records(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.exec(
        select(Declaration, Organisation, Commons)
        .join(Organisation, col(Organisation.id) == col(Declaration.organisation_id))
        .join(Commons, col(Commons.id) == col(Declaration.commons_id))
        .where(col(Declaration.withdrawn_at).is_(None), visible())
        .order_by(col(Commons.sort_key), col(Organisation.sort_key), col(Declaration.id))
    )
    return [declaration_record(d, o, c) for d, o, c in rows.all()]


async def _improvement_records(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (
        await session.exec(
            select(Improvement, Commons)
            .join(Commons, col(Commons.id) == col(Improvement.commons_id))
            .where(Improvement.status != ImprovementStatus.DRAFT, visible())
            .order_by(col(Commons.sort_key), col(Improvement.number))
        )
    ).all()
    ids = [i.id for i, _c in rows if i.id is not None]
    milestones: dict[int, list[Milestone]] = defaultdict(list)
    if ids:
        for milestone in (
            await session.exec(
                select(Milestone)
                .where(col(Milestone.improvement_id).in_(ids))
                .order_by(col(Milestone.improvement_id), col(Milestone.position))
            )
        ).all():
            milestones[milestone.improvement_id].append(milestone)
    provider_ids = {i.provider_id for i, _c in rows if i.provider_id is not None}
    providers: dict[int | None, Organisation] = {}
    if provider_ids:
        for organisation in (
            await session.exec(select(Organisation).where(col(Organisation.id).in_(provider_ids)))
        ).all():
            providers[organisation.id] = organisation
    return [
        improvement_record(i, c, milestones.get(i.id or 0, []), providers.get(i.provider_id))
        for i, c in rows
    ]


async def export_data(
    session: AsyncSession, *, base_url: str, now: datetime | None = None
) -> dict[str, Any]:
    """Everything public: visible commons (local and remote), organisations without their
    members, active declarations, and improvements past their draft, with milestones."""
    return {
        "instance": base_url,
        "exported_at": (now or utcnow()).isoformat(),
        "commons": await commons_records(session),
        "organisations": await _organisation_records(session),
        "declarations": await _declaration_records(session),
        "improvements": await _improvement_records(session),
    }


async def export_commons_csv(session: AsyncSession) -> str:
    """The local commons as the CSV ``terreau import`` reads: remote ones are their origin's."""
    return commons_csv(await commons_records(session, local_only=True))
