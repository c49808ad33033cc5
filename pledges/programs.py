"""What a matching program may say: validation by field, before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from catalogue.errors import N_, InvalidField, InvalidFields
from catalogue.money import parse_amount


def _amount(
    data: dict[str, Any], field: str, errors: list[InvalidField], *, required: bool
) -> int | None:
    raw = str(data.get(field, "") or "").strip()
    if not raw:
        if required:
            errors.append(InvalidField(field, N_("Give an amount, such as 20000.")))
        return None
    try:
        return parse_amount(raw)
    except ValueError:
        errors.append(InvalidField(field, N_("Give a positive amount, such as 500 or 500.50.")))
        return None


def _time(data: dict[str, Any], field: str, errors: list[InvalidField]) -> datetime | None:
    raw = data.get(field)
    if isinstance(raw, datetime):
        return raw.astimezone(UTC) if raw.tzinfo else None
    try:
        moment = datetime.fromisoformat(str(raw or "").strip().replace("Z", "+00:00"))
    except ValueError:
        errors.append(InvalidField(field, N_("Give a date and time such as 2026-11-15T00:00Z.")))
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def validate_program(data: dict[str, Any]) -> dict[str, Any]:
    """Cleaned column values for a MatchingProgram, or InvalidFields naming each bad field."""
    errors: list[InvalidField] = []
    cleaned: dict[str, Any] = {}
    name = str(data.get("name", "") or "").strip()
    if not name:
        errors.append(InvalidField("name", N_("Give the program a name.")))
    cleaned["name"] = name[:200]
    cleaned["description"] = str(data.get("description", "") or "").strip()[:10_000]
    ratio = str(data.get("ratio", "") or "").strip().replace(",", ".")
    try:
        if Decimal(ratio) <= 0:
            errors.append(InvalidField("ratio", N_("The ratio must be more than zero.")))
    except InvalidOperation:
        errors.append(InvalidField("ratio", N_("Give the ratio as a number, such as 1 or 0.5.")))
    cleaned["ratio"] = ratio
    cleaned["budget_cents"] = _amount(data, "budget", errors, required=True) or 0
    cleaned["per_contributor_cap_cents"] = _amount(
        data, "per_contributor_cap", errors, required=False
    )
    cleaned["per_improvement_cap_cents"] = _amount(
        data, "per_improvement_cap", errors, required=False
    )
    cleaned["min_pledge_cents"] = _amount(data, "min_pledge", errors, required=False)
    starts, ends = _time(data, "starts", errors), _time(data, "ends", errors)
    if starts and ends and ends <= starts:
        errors.append(InvalidField("ends", N_("The window must end after it starts.")))
    cleaned["starts_at"], cleaned["ends_at"] = starts, ends
    for field in (
        "eligible_kinds",
        "eligible_instances",
        "eligible_categories",
        "eligible_improvements",
    ):
        value = data.get(field, "")
        items = value if isinstance(value, list) else str(value or "").split(",")
        cleaned[field] = ",".join(str(v).strip() for v in items if str(v).strip())
    if any(not item.isdigit() for item in cleaned["eligible_improvements"].split(",") if item):
        errors.append(
            InvalidField(
                "eligible_improvements",
                N_("List improvements by their numbers, separated by commas."),
            )
        )
    try:
        cleaned["priority"] = int(str(data.get("priority", "0") or "0"))
    except ValueError:
        errors.append(InvalidField("priority", N_("Give the priority as a whole number.")))
    cleaned["manual_approval"] = str(data.get("manual_approval", "")).lower() in {
        "1",
        "on",
        "true",
        "yes",
    }
    if errors:
        raise InvalidFields(errors)
    return cleaned
