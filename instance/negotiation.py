"""One URL, two documents: the HTML page for people, the ActivityStreams actor for servers.

An organisation's or a commons' address is both what a person shares and its actor id, so the
Accept header picks the handler before the router does. Caches must know the answer depends
on that header: every response on those paths says ``Vary: Accept``, whichever side answered.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from federation.media import wants_activity_json

READ_METHODS = ("GET", "HEAD")


def add_vary_accept(send: Send) -> Send:
    async def send_with_vary(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            present = [v.strip().lower() for v in headers.get("vary", "").split(",")]
            if "accept" not in present and "*" not in present:
                headers.add_vary_header("Accept")
        await send(message)

    return send_with_vary


class ActivityNegotiation:
    """Sends GET/HEAD requests that ask for ActivityStreams to the ``routes`` matching their
    path; everything else goes on to the application."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], enabled: bool = True) -> None:
        self.app = app
        self.routes = routes
        self.enabled = enabled

    def _match(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match != Match.NONE:
                return route, child_scope
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._match(scope) if self.enabled and scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, child_scope = found
        send = add_vary_accept(send)
        accept = Headers(scope=scope).get("accept", "")
        if scope["method"] in READ_METHODS and wants_activity_json(accept):
            await route.handle({**scope, **child_scope}, receive, send)
        else:
            await self.app(scope, receive, send)
