"""The read-only JSON API under /api/v1/ (issue #3)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
