"""ActivityPub's write side: the shared inbox and each local actor's inbox.

(Implemented by the lead.)
"""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
