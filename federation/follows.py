"""Following other servers' actors: ask (Follow), hear back (Accept/Reject), stop (Undo)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import utcnow
from federation.activities import activity
from federation.fetch import FetchError
from federation.media import ACTIVITY_JSON
from federation.models import Following, FollowState
from federation.outbox import publish
from federation.remote_actors import get_remote_actor
from federation.service import Federation

ACTIVITY_TYPES = (ACTIVITY_JSON, "application/ld+json")


async def follow(
    session: AsyncSession, federation: Federation, actor_uri: str, target_uri: str
) -> Following:
    """Ask ``target_uri`` to let our ``actor_uri`` follow it; pending until it answers.

    Asking again re-sends the Follow (the first may have been lost), under the same row.
    Raises FetchError when the target cannot be fetched.
    """
    config = federation.config
    signer = await federation.instance_signer(session)
    target = await get_remote_actor(session, federation.fetcher, config, target_uri, signer=signer)
    request = activity(config, "Follow", actor_uri, target.uri, [target.uri])
    row = (
        await session.exec(
            select(Following).where(
                Following.actor_uri == actor_uri, Following.followed_uri == target.uri
            )
        )
    ).first()
    if row is None:
        row = Following(actor_uri=actor_uri, followed_uri=target.uri, follow_id=request["id"])
        session.add(row)
    else:
        row.follow_id, row.state, row.changed_at = request["id"], FollowState.PENDING, utcnow()
    await publish(session, config, request, [target.inbox], public=False)
    await session.commit()
    return row


async def unfollow(
    session: AsyncSession, federation: Federation, actor_uri: str, target_uri: str
) -> bool:
    """Undo a follow; False when we were not following."""
    config = federation.config
    row = (
        await session.exec(
            select(Following).where(
                Following.actor_uri == actor_uri, Following.followed_uri == target_uri
            )
        )
    ).first()
    if row is None:
        return False
    signer = await federation.instance_signer(session)
    target = await get_remote_actor(session, federation.fetcher, config, target_uri, signer=signer)
    original = {"id": row.follow_id, "type": "Follow", "actor": actor_uri, "object": target_uri}
    undo = activity(config, "Undo", actor_uri, original, [target_uri])
    await session.delete(row)
    await publish(session, config, undo, [target.inbox], public=False)
    await session.commit()
    return True


async def resolve_actor(federation: Federation, target: str) -> str:
    """An actor's id from what a person types: its URL, ``@user@host`` / ``acct:user@host``
    (through WebFinger), or a bare ``https://host`` for a Terreau instance's own actor.

    Raises FetchError when WebFinger does not answer or names no ActivityPub actor.
    """
    config = federation.config
    target = target.strip()
    if target.startswith(("https://", "http://")):
        parts = urlsplit(target)
        if parts.path in ("", "/"):
            return f"{parts.scheme}://{parts.netloc}/actor"
        return target
    user, _, host = target.removeprefix("acct:").lstrip("@").partition("@")
    if not user or not host:
        raise FetchError(target, "expected a URL, @user@host or acct:user@host")
    # allow_http is for tests and closed networks, whose peers have no certificates at all.
    scheme = "http" if config.allow_http else "https"
    query = urlencode({"resource": f"acct:{user}@{host}"})
    url = f"{scheme}://{host}/.well-known/webfinger?{query}"
    document = await federation.fetcher.get_json(url, signer=None)
    for link in document.get("links", []):
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("href"), str)
            and str(link.get("type", "")).startswith(ACTIVITY_TYPES)
        ):
            return str(link["href"])
    raise FetchError(url, "WebFinger names no ActivityPub actor")
