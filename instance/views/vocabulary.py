"""``/ns/terreau``: the JSON-LD context of Terreau's terms, as bundled with the code.

Served whether or not the instance federates: it is documentation of a vocabulary, the same on
every instance, and a JSON-LD processor reading a document we published may ask for it later.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from federation.vocabulary import CONTEXT_MEDIA_TYPE, CONTEXT_PATH, bundled_context

HEADERS = {
    "Access-Control-Allow-Origin": "*",
    # It changes only with a new release; a day keeps processors from asking at every document.
    "Cache-Control": "public, max-age=86400",
}


async def terreau_context(request: Request) -> Response:
    return Response(bundled_context(), media_type=CONTEXT_MEDIA_TYPE, headers=HEADERS)


routes = [Route(CONTEXT_PATH, terreau_context, name="terreau_context")]
