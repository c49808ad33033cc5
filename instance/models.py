"""Imports every table so that SQLModel.metadata is complete (for Alembic and its tests)."""

from catalogue.organisations import Organisation
from instance.accounts import Account, LoginFailure
from instance.memberships import Membership

__all__ = ["Account", "LoginFailure", "Membership", "Organisation"]
