"""What each incoming activity type does, applied from its stored ``inbox_item`` row.

(Implemented by the lead; the worker calls ``process_pending``.)
"""

from __future__ import annotations

from federation.service import Federation


async def process_pending(federation: Federation, limit: int = 100) -> int:
    """Apply up to ``limit`` stored activities, oldest first; how many it finished."""
    raise NotImplementedError
