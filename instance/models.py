"""Imports every table so that SQLModel.metadata is complete (for Alembic and its tests)."""

from catalogue.commons import Commons, CommonsMaintainer, CommonsTag
from catalogue.declarations import Declaration
from catalogue.improvements import Improvement, Milestone
from catalogue.organisations import Organisation
from instance.accounts import Account, LoginFailure
from instance.memberships import Membership

__all__ = [
    "Account",
    "Commons",
    "CommonsMaintainer",
    "CommonsTag",
    "Declaration",
    "Improvement",
    "LoginFailure",
    "Membership",
    "Milestone",
    "Organisation",
]
