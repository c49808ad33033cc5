"""Imports every table so that SQLModel.metadata is complete (for Alembic and its tests)."""

from catalogue.commons import Commons, CommonsMaintainer, CommonsTag
from catalogue.declarations import Declaration
from catalogue.improvements import Improvement, Milestone
from catalogue.organisations import Organisation
from federation.models import (
    ActorKey,
    Delivery,
    FetchFailure,
    Follower,
    Following,
    InboxItem,
    KnownInstance,
    OutboxActivity,
    RemoteActor,
)
from instance.accounts import Account, LoginFailure
from instance.memberships import Membership
from pledges.models import (
    LedgerEntry,
    LedgerHead,
    Match,
    MatchingProgram,
    Pledge,
    ProgramApproval,
)

__all__ = [
    "Account",
    "ActorKey",
    "Commons",
    "CommonsMaintainer",
    "CommonsTag",
    "Declaration",
    "Delivery",
    "FetchFailure",
    "Follower",
    "Following",
    "Improvement",
    "InboxItem",
    "KnownInstance",
    "LedgerEntry",
    "LedgerHead",
    "LoginFailure",
    "Match",
    "MatchingProgram",
    "Membership",
    "Milestone",
    "Organisation",
    "OutboxActivity",
    "Pledge",
    "ProgramApproval",
    "RemoteActor",
]
