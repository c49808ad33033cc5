"""What every object that may travel between instances carries: a stable URI and an origin.

``uri`` is the object's global identifier (its ActivityPub id once federated); it is fixed when
the object is created and never changes. ``origin`` is ``None`` for objects made on this
instance and the remote instance's host for copies received from elsewhere: only the origin
may change an object.
"""

from __future__ import annotations

from sqlmodel import Field


def uri_field() -> str:
    return Field(max_length=2048, unique=True, index=True)


def origin_field() -> str | None:
    return Field(default=None, max_length=255, index=True)
