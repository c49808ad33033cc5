"""The federation as the rest of the instance sees it: settings, database sessions, the client.

``instance`` builds one ``Federation`` per process (in the app's lifespan, or in
``terreau worker``) and hands it to routes and the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from federation.context import FederationConfig
from federation.fetch import Fetcher

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass
class Federation:
    config: FederationConfig
    sessions: SessionFactory
    fetcher: Fetcher
