"""The federation as the rest of the instance sees it: settings, database sessions, the client.

``instance`` builds one ``Federation`` per process (in the app's lifespan, or in
``terreau worker``) and hands it to routes and the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.activities import instance_signer
from federation.context import FederationConfig
from federation.fetch import Fetcher
from federation.keys import Signer

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass
class Federation:
    config: FederationConfig
    sessions: SessionFactory
    fetcher: Fetcher
    # instance actor URI → its signer. A key never changes once stored, so one read per
    # process is enough; keyed by URI because tests swap ``config``.
    _signers: dict[str, Signer] = field(default_factory=dict, init=False, repr=False)

    async def instance_signer(self, session: AsyncSession) -> Signer:
        """The instance actor's signer, read from the database once per process (or made
        there, committing ``session``: see ``activities.instance_signer``). Read, not made
        here, so that a key another process stored first is the one everybody signs with."""
        uri = self.config.instance_actor_uri
        signer = self._signers.get(uri)
        if signer is None:
            signer = await instance_signer(session, self.config)
            self._signers[uri] = signer
        return signer
