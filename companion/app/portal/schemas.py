"""The portal JSON API's models (the phone app's view of the same services the pages use)."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Password = Annotated[str, StringConstraints(max_length=128)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=100)]
EmailText = Annotated[str, StringConstraints(min_length=3, max_length=254)]


class TokenPair(BaseModel):
    """OAuth2 token response: a short-lived bearer access token and a single-use refresh token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class Me(BaseModel):
    """The signed-in user and their profile."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    role: str
    name: str
    phone: str
    address: str
    vehicles: list[str]
    email_prefs: dict[str, bool]
    language: str
    must_change_password: bool


class ProfileUpdate(BaseModel):
    """Profile fields to change (all optional; validated by the service, all or nothing)."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    phone: Annotated[str, StringConstraints(max_length=20)] | None = None
    address: Annotated[str, StringConstraints(max_length=400)] | None = None
    vehicles: Annotated[list[Annotated[str, StringConstraints(max_length=80)]], Field(max_length=5)] | None = None
    email_prefs: dict[Annotated[str, StringConstraints(max_length=32)], bool] | None = None
    language: Literal["en", "es"] | None = None


class PasswordChange(BaseModel):
    """Change the password."""

    current: Password
    new: Password


class EmailChange(BaseModel):
    """Ask to change the sign-in email (a link goes to the new address)."""

    email: EmailText
    password: Password


class ResetRequest(BaseModel):
    """Ask for a reset link."""

    email: Annotated[str, StringConstraints(max_length=254)]


class TokenPassword(BaseModel):
    """A claim or reset token with the new password."""

    token: Token
    password: Password


class TokenOnly(BaseModel):
    """An email-verification token."""

    token: Token


class Accepted(BaseModel):
    """The same answer whether or not anything was sent."""

    detail: str


class DeviceCardPublic(BaseModel):
    """One device on the dashboard."""

    id: int
    label: str
    kind: str
    serial: str
    state: str
    state_text: str
    locked: bool
    lockout: bool
    cause_text: str
    until: dt.datetime | None
    until_kind: str
    service_due: dt.date | None
    inspection_due: dt.date | None
    module_expiry: dt.date | None
    last_sync: dt.datetime | None
    open_clear: int | None


class DashboardPublic(BaseModel):
    """The driver's dashboard."""

    name: str
    next_due: dt.date
    amount_due_cents: int
    reset_fee_cents: int
    allow_codes: bool
    unread: int
    cards: list[DeviceCardPublic]


class CodeRequest(BaseModel):
    """What the code is for."""

    action: Literal["clear", "service"] = "clear"


class CodeIssued(BaseModel):
    """An unlock code and how to enter it."""

    device_id: int
    action: str
    code: str
    valid_until: dt.datetime
    entry: list[tuple[str, str, int]]


class ClearStepPublic(BaseModel):
    """One step of a clear."""

    name: str
    at: dt.datetime | None
    done: bool


class ClearPublic(BaseModel):
    """A reset fee's clear and where it is."""

    payment_id: int
    device_id: int
    label: str
    amount_cents: int
    status: str
    final: bool
    steps: list[ClearStepPublic]


class NotificationPublic(BaseModel):
    """A notification in the reader's language."""

    id: int
    kind: str
    title: str
    text: str
    link: str
    read: bool
    created_at: dt.datetime
