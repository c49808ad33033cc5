"""Reading a submitted form: CSRF checked, JSON accepted for scripts, errors per field."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from catalogue.errors import N_, InvalidFields
from instance.i18n import error_message
from instance.security import CSRF_FIELD, CSRF_HEADER, check_csrf


async def read_json(request: Request) -> Any:
    """The body parsed as JSON, or a 400 that says where it is malformed."""
    body = await request.body()
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"Malformed JSON: {error}") from None


async def read_form(request: Request) -> dict[str, str]:
    """The submitted fields as strings, after the CSRF check, without NUL characters.

    HTML forms post url-encoded or multipart bodies; scripts may post a JSON object with the
    same fields (and the token in the X-CSRF-Token header or the csrf_token field).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, str] = {}
    if content_type == "application/json":
        data = await read_json(request)
        if not isinstance(data, dict):
            raise HTTPException(400, N_("Malformed JSON: expected an object of form fields."))
        fields = {str(k): "" if v is None else str(v) for k, v in data.items()}
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form() as form:
            for key, value in form.multi_items():
                if not isinstance(value, UploadFile):
                    fields[key] = value
    elif content_type:
        raise HTTPException(415, f"Send a form or a JSON object, not {content_type}.")
    check_csrf(request, fields.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER))
    # No one types a NUL character, and PostgreSQL refuses it in text (SQLite keeps it): it
    # is dropped here, as federation.remote_json drops it from what other servers send.
    return {key: value.replace("\x00", "") for key, value in fields.items()}


def field_errors(error: InvalidFields) -> dict[str, str]:
    """Translated messages keyed by field name, for the template to show beside each input."""
    return {field: error_message(item) for field, item in error.by_field().items()}
