"""What federation keeps in the database: keys, remote actors, follows, the inbox and the queue.

Everything that crosses the network passes through a row first. An incoming activity is stored
before the 202 goes out, and its effects run from that row; an outgoing activity and its
deliveries are written in the transaction of the change that caused them. A crash at any point
therefore loses nothing: the worker picks up where the rows say.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from catalogue.columns import UTCDateTime, utcnow


def _when(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime, nullable=nullable, index=index)


class ActorKey(SQLModel, table=True):
    """A local actor's key pairs: RSA-2048 for HTTP signatures (what Mastodon checks) and
    Ed25519 for FEP-521a ``assertionMethod`` and FEP-8b32 object proofs.

    Made on first use, so an organisation that never federates costs no key generation.
    """

    __tablename__ = "actor_key"

    id: int | None = Field(default=None, primary_key=True)
    actor_uri: str = Field(max_length=2048, unique=True, index=True)
    rsa_private_pem: str = Field(sa_column=Column(Text, nullable=False))
    rsa_public_pem: str = Field(sa_column=Column(Text, nullable=False))
    ed25519_private_pem: str = Field(sa_column=Column(Text, nullable=False))
    # The public Ed25519 key as a multibase-encoded Multikey ("z6Mk…").
    ed25519_multikey: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class RemoteActor(SQLModel, table=True):
    """What we know of an actor on another server: where to deliver, and its public key."""

    __tablename__ = "remote_actor"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True, index=True)
    host: str = Field(max_length=255, index=True)
    type: str = Field(default="Person", max_length=50)
    preferred_username: str = Field(default="", max_length=255)
    name: str = Field(default="", max_length=500)
    url: str = Field(default="", max_length=2048)
    inbox: str = Field(max_length=2048)
    shared_inbox: str | None = Field(default=None, max_length=2048)
    key_id: str = Field(default="", max_length=2048, index=True)
    public_key_pem: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The actor document as fetched (JSON text), for what later issues need from it.
    document: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    fetched_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class FetchFailure(SQLModel, table=True):
    """A remote document we could not get, and until when we do not try again.

    A flood of Deletes from unknown (already gone) actors must not become a storm of fetches.
    """

    __tablename__ = "fetch_failure"

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True, index=True)
    reason: str = Field(default="", max_length=500)
    failed_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    retry_after: datetime = Field(sa_column=_when())


class FollowState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Follower(SQLModel, table=True):
    """A remote actor following one of ours; local actors accept every follow at once."""

    __tablename__ = "follower"
    __table_args__ = (UniqueConstraint("actor_uri", "follower_uri", name="uq_follower"),)

    id: int | None = Field(default=None, primary_key=True)
    actor_uri: str = Field(max_length=2048, index=True)  # ours
    follower_uri: str = Field(max_length=2048, index=True)  # theirs
    inbox: str = Field(max_length=2048)
    shared_inbox: str | None = Field(default=None, max_length=2048)
    follow_id: str = Field(max_length=2048)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Following(SQLModel, table=True):
    """One of our actors (usually the instance actor) following a remote one."""

    __tablename__ = "following"
    __table_args__ = (UniqueConstraint("actor_uri", "followed_uri", name="uq_following"),)

    id: int | None = Field(default=None, primary_key=True)
    actor_uri: str = Field(max_length=2048, index=True)  # ours
    followed_uri: str = Field(max_length=2048, index=True)  # theirs
    follow_id: str = Field(max_length=2048, unique=True)
    state: str = Field(default=FollowState.PENDING, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    changed_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class InboxState(StrEnum):
    NEW = "new"
    DONE = "done"
    # Its effects raised an error; the reason is kept, and the row can be replayed.
    FAILED = "failed"
    # It needs an object we do not hold yet (``waiting_for``): applied when that object
    # arrives, or tried again at ``next_attempt_at``.
    HELD = "held"


class InboxItem(SQLModel, table=True):
    """An activity as received, signature checked, before any of its effects."""

    __tablename__ = "inbox_item"
    __table_args__ = (Index("ix_inbox_item_pending", "state", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    activity_id: str = Field(max_length=2048, unique=True)
    type: str = Field(max_length=50)
    actor_uri: str = Field(max_length=2048, index=True)
    # The inbox it was posted to: a local actor's, or None for the shared inbox.
    recipient_uri: str | None = Field(default=None, max_length=2048)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default=InboxState.NEW, max_length=16)
    attempts: int = 0
    error: str = Field(default="", max_length=2000)
    received_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    processed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # While HELD: the id of the object it waits for, and when to try again without it.
    waiting_for: str | None = Field(default=None, max_length=2048, index=True)
    next_attempt_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class OutboxActivity(SQLModel, table=True):
    """An activity one of our actors published; its outbox lists the public ones."""

    __tablename__ = "outbox_activity"
    __table_args__ = (Index("ix_outbox_activity_actor", "actor_uri", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    uri: str = Field(max_length=2048, unique=True)
    actor_uri: str = Field(max_length=2048)
    type: str = Field(max_length=50)
    body: str = Field(sa_column=Column(Text, nullable=False))
    public: bool = True
    published_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class DeliveryState(StrEnum):
    NEW = "new"  # waiting for its first or next attempt
    SENT = "sent"  # the inbox answered 2xx
    FAILED = "failed"  # a 4xx that retrying cannot fix, or two days of errors
    GONE = "gone"  # the host answered 410, or was known gone


class Delivery(SQLModel, table=True):
    """One activity to one inbox: a small state machine the workers drive.

    ``locked_until`` is a lease: a worker that dies mid-send leaves the row to be taken again
    once the lease ends, never lost and never held forever.
    """

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("activity_id", "inbox", name="uq_delivery_inbox"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    activity_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("outbox_activity.id", ondelete="CASCADE"), nullable=False
        )
    )
    inbox: str = Field(max_length=2048)
    host: str = Field(max_length=255, index=True)
    state: str = Field(default=DeliveryState.NEW, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    locked_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_status: int | None = None
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    finished_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class KnownInstance(SQLModel, table=True):
    """Another server we have heard from or sent to, and what the admins decided about it."""

    __tablename__ = "known_instance"

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(max_length=255, unique=True, index=True)
    blocked: bool = False
    allowed: bool = False  # counts only in allow-list mode
    note: str = Field(default="", max_length=500)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    # Set when it answered 410; cleared when it speaks to us again.
    gone_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ImprovementPublication(SQLModel, table=True):
    """What the commons last told its followers about one local improvement.

    ``fingerprint`` digests the Article as sent, but for its times: an improvement is sent
    again (``Update``) only when what a reader sees or a machine reads changed, so a busy day
    of pledges that leaves the summary line as it was sends nothing. No row: never sent, or
    withdrawn (``Delete``) when it went back to draft.
    """

    __tablename__ = "improvement_publication"

    id: int | None = Field(default=None, primary_key=True)
    improvement_uri: str = Field(max_length=2048, unique=True, index=True)
    fingerprint: str = Field(max_length=64)
    published_at: datetime = Field(default_factory=utcnow, sa_column=_when())  # its Create
    updated_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class MatchFeed(SQLModel, table=True):
    """How far the funder's ledger has been told: the last ledger entry published.

    The ledger is the log of every match change; publishing reads what lies past this mark, so a
    change made by a view, a handler or a crashed process is announced once, by whichever
    worker comes next (under the ledger lock, so two workers never announce it twice).
    """

    __tablename__ = "match_feed"

    id: int = Field(default=1, primary_key=True)
    last_entry_id: int = 0
