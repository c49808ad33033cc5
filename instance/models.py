"""Imports every table so that SQLModel.metadata is complete (for Alembic and its tests)."""

from catalogue.commons import Commons, CommonsMaintainer, CommonsTag
from catalogue.declarations import Declaration
from catalogue.improvements import Improvement, Milestone
from catalogue.organisations import Organisation
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
    "Commons",
    "CommonsMaintainer",
    "CommonsTag",
    "Declaration",
    "Improvement",
    "LedgerEntry",
    "LedgerHead",
    "LoginFailure",
    "Match",
    "MatchingProgram",
    "Membership",
    "Milestone",
    "Organisation",
    "Pledge",
    "ProgramApproval",
]
