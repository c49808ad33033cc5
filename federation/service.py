"""The federation as the rest of the instance sees it: settings, database sessions, the client.

``instance`` builds one ``Federation`` per process (in the app's lifespan, or in
``terreau worker``) and hands it to routes and the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.activities import instance_signer
from federation.context import FederationConfig, SessionFactory
from federation.fetch import Fetcher
from federation.improvements import SummaryWriter
from federation.inbox_store import InboxWriter, SenderCache
from federation.keys import Signer
from federation.signing_process import SigningProcess


@dataclass
class Federation:
    config: FederationConfig
    sessions: SessionFactory
    fetcher: Fetcher
    # Words an improvement's summary line in the instance's language (``instance`` owns the
    # catalogs): the worker needs it when a pledge received from elsewhere moves a funding.
    describe: SummaryWriter | None = None
    # Where the worker has its claimed batches signed (``federation.signing_process``); None:
    # it signs in its own process.
    signing: SigningProcess | None = None
    # instance actor URI → its signer. A key never changes once stored, so one read per
    # process is enough; keyed by URI because tests swap ``config``.
    _signers: dict[str, Signer] = field(default_factory=dict, init=False, repr=False)
    # What the inbox keeps between requests (``federation.inbox_store``): one per process.
    senders: SenderCache = field(default_factory=SenderCache, init=False, repr=False)
    _inbox_writer: InboxWriter | None = field(default=None, init=False, repr=False)

    @property
    def inbox_writer(self) -> InboxWriter:
        if self._inbox_writer is None:
            self._inbox_writer = InboxWriter(self.sessions)
        return self._inbox_writer

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
