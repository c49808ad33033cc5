"""People with an account on this instance: sign-up, log-in, password changes, instance roles."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, delete, func
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from catalogue.columns import UTCDateTime, utcnow
from catalogue.errors import N_, InvalidField, InvalidFields
from instance.passwords import MIN_LENGTH, hash_password, needs_rehash, verify_password


class InstanceRole(StrEnum):
    ADMIN = "admin"
    MODERATOR = "moderator"


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=100)
    password_hash: str = Field(max_length=255)
    instance_role: str | None = Field(default=None, max_length=16)
    locale: str | None = Field(default=None, max_length=8)
    # Bumped on every password change: sessions carry it, so older sessions stop working.
    session_version: int = Field(default=1)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    last_login_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))

    @property
    def is_admin(self) -> bool:
        return self.instance_role == InstanceRole.ADMIN

    @property
    def is_moderator(self) -> bool:
        return self.instance_role in (InstanceRole.ADMIN, InstanceRole.MODERATOR)


class LoginFailure(SQLModel, table=True):
    """One failed log-in, kept for the rate limit window; shared by every web worker."""

    __tablename__ = "login_failure"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, index=True)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )


EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidField(field, N_("Use at least %(min)d characters."), min=MIN_LENGTH)
    if len(password) > 1024:
        raise InvalidField(field, N_("At most %(max)d characters."), max=1024)


async def find_by_email(session: AsyncSession, email: str) -> Account | None:
    result = await session.exec(select(Account).where(Account.email == normalise_email(email)))
    return result.first()


async def sign_up(session: AsyncSession, email: str, password: str, display_name: str) -> Account:
    """Create an account, or raise InvalidFields naming every field that is wrong."""
    errors: list[InvalidField] = []
    email = normalise_email(email)
    if not EMAIL.match(email) or len(email) > 254:
        errors.append(InvalidField("email", N_("Give a valid email address.")))
    elif await find_by_email(session, email) is not None:
        errors.append(InvalidField("email", N_("An account already uses this email address.")))
    display_name = display_name.strip()
    if not display_name:
        errors.append(InvalidField("display_name", N_("Give the name others will see.")))
    elif len(display_name) > 100:
        errors.append(InvalidField("display_name", N_("At most %(max)d characters."), max=100))
    try:
        check_password_strength(password)
    except InvalidField as error:
        errors.append(error)
    if errors:
        raise InvalidFields(errors)
    account = Account(email=email, display_name=display_name, password_hash=hash_password(password))
    session.add(account)
    await session.flush()
    return account


class TooManyAttempts(Exception):
    """Too many failed log-ins for this email or address; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed log-ins; retry in {retry_after} s")
        self.retry_after = retry_after


async def authenticate(
    session: AsyncSession,
    email: str,
    password: str,
    client: str,
    *,
    max_failures: int,
    window_seconds: int,
) -> Account | None:
    """The account for these credentials, or None; raises TooManyAttempts when rate limited.

    Failures count per email and per client address (an address gets ten times the allowance,
    since many people may share it); the check runs before the password is even hashed.
    """
    email = normalise_email(email)
    keys = {f"email:{email}": max_failures, f"client:{client}": max_failures * 10}
    since = utcnow() - timedelta(seconds=window_seconds)
    await session.exec(delete(LoginFailure).where(col(LoginFailure.at) < since))
    for key, allowed in keys.items():
        count_query = select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.key == key, LoginFailure.at >= since
        )
        failures, oldest = (await session.exec(count_query)).one()
        if failures >= allowed:
            await session.commit()
            retry_after = int((oldest - since).total_seconds()) + 1 if oldest else window_seconds
            raise TooManyAttempts(max(retry_after, 1))

    account = await find_by_email(session, email)
    if account is None or not verify_password(account.password_hash, password):
        for key in keys:
            session.add(LoginFailure(key=key))
        await session.commit()
        return None
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    await session.exec(delete(LoginFailure).where(col(LoginFailure.key) == f"email:{email}"))
    account.last_login_at = utcnow()
    session.add(account)
    await session.commit()
    return account


async def change_password(session: AsyncSession, account: Account, current: str, new: str) -> None:
    if not verify_password(account.password_hash, current):
        raise InvalidFields(
            [InvalidField("current_password", N_("This is not your current password."))]
        )
    try:
        check_password_strength(new, "new_password")
    except InvalidField as error:
        raise InvalidFields([error]) from None
    account.password_hash = hash_password(new)
    account.session_version += 1
    session.add(account)
    await session.commit()


async def create_admin(
    session: AsyncSession, email: str, password: str, display_name: str = "Admin"
) -> tuple[Account, bool]:
    """Make ``email`` an instance admin, creating the account if needed; True if created."""
    account = await find_by_email(session, email)
    created = account is None
    if account is None:
        account = await sign_up(session, email, password, display_name)
    else:
        check_password_strength(password)
        account.password_hash = hash_password(password)
        account.session_version += 1
    account.instance_role = InstanceRole.ADMIN
    session.add(account)
    await session.commit()
    return account, created
