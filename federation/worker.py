"""The worker: applies stored incoming activities, then sends due deliveries, until stopped.

(Helper B implements this module; the signatures below are the contract others code against.)
"""

from __future__ import annotations

import asyncio

from federation.service import Federation


class Worker:
    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    async def run_once(self) -> int:
        """One pass: pending inbox items, then due deliveries; how many rows it finished."""
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        """Passes until ``stop`` is set, sleeping between them unless woken."""
        raise NotImplementedError

    def wake(self) -> None:
        """Start the next pass now (something was just queued in this process)."""
        raise NotImplementedError
