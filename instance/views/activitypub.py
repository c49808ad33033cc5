"""ActivityPub's read side: actors, WebFinger, host-meta, NodeInfo, outboxes, followers.

(Helper C implements this module.) ``routes`` are plain routes; ``negotiated`` holds routes for
paths that also have an HTML page (``/orgs/{slug}``, ``/commons/{slug}``): the
``ActivityNegotiation`` middleware sends a request there when its Accept header asks for
ActivityStreams.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
negotiated: list[BaseRoute] = []
