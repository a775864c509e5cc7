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


class AutopayCardPublic(BaseModel):
    """The card a device's automatic payments are charged to (never the number)."""

    id: int = Field(description="the saved card (GET /portal/billing/methods)")
    brand: str = Field(description="visa or mastercard")
    last4: str = Field(description="the card number's last four digits")
    exp_month: int = Field(description="expiry month, 1 to 12")
    exp_year: int = Field(description="expiry year")


class DeviceAutopayPublic(BaseModel):
    """One device's automatic payments, as the dashboard shows them."""

    device_id: int = Field(description="the device (the `id` of its card in `cards`)")
    label: str = Field(description="the device's name")
    autopay: bool = Field(description="automatic payments are on for this device")
    card: AutopayCardPublic | None = Field(description="the card they are charged to, if one is chosen")
    next_autopay: dt.date | None = Field(description="the date of the next automatic payment (null: off)")
    next_autopay_cents: int = Field(description="what the next automatic payment takes from this device's card")
    card_expiring: bool = Field(description="auto-pay is on and its card expires before the next due date")
    decline: str = Field(description="the last automatic payment's decline, in words (empty: none)")
    retry_at: dt.datetime | None = Field(description="when a declined automatic payment is tried again")


class DashboardBillingPublic(BaseModel):
    """Billing's lines on the dashboard: the next automatic payment, a card about to expire, the last decline."""

    autopay: bool = Field(description="automatic payments are on for at least one device")
    next_autopay: dt.date | None = Field(description="the date of the next automatic payment (null: none on)")
    next_autopay_cents: int = Field(description="what the next automatic payments take, every device together")
    card_expiring: bool = Field(description="a card charged automatically expires before the next due date")
    decline: str = Field(description="the last decline of an automatic payment, in words (empty: none)")
    retry_at: dt.datetime | None = Field(description="when that declined payment is tried again")
    devices: list[DeviceAutopayPublic] = Field(description="each device that has auto-pay settings, on or off")


class NextVisitPublic(BaseModel):
    """The next booked calibration or inspection at a service center."""

    id: int = Field(description="the appointment (GET /portal/appointments/{id})")
    kind: str = Field(description="what the visit is for: calibration or inspection")
    start: dt.datetime = Field(description="when it starts (UTC)")
    local: str = Field(description="when it starts in the center's time zone (ISO 8601 with offset)")
    center_id: int = Field(description="the service center (its slots: GET /portal/centers/{id}/slots)")
    center_name: str = Field(description="the service center's name")
    center_tz: str = Field(description="the service center's time zone (IANA name)")
    can_change: bool = Field(description="it may still be rescheduled (not within the cut-off before it)")


class NextServicePublic(BaseModel):
    """The next physical service: when it is due and the visit booked for it."""

    due: dt.date | None = Field(description="the earliest service or inspection due date of the driver's handsets")
    visit: NextVisitPublic | None = Field(description="the next booked visit (null: none booked)")


class ProgramPublic(BaseModel):
    """The program's end."""

    status: Literal["open", "ending", "ended"] = Field(
        description="ended: the program has ended, billing and reminders stopped; ending: an end date is set; "
                    "open: no end date on file")
    ends_on: dt.date | None = Field(description="the program's end date")
    ended_at: dt.datetime | None = Field(description="when it ended")
    certificate_doc_id: int | None = Field(
        description="the compliance certificate, once ended (GET /portal/documents/{id})")
    report_sent_at: dt.datetime | None = Field(
        description="when the final report was sent to the monitoring authority (null: not sent, e.g. no "
                    "authority on file)")


class DashboardPublic(BaseModel):
    """The driver's dashboard: everything the dashboard page shows."""

    name: str = Field(description="the driver's name")
    next_due: dt.date = Field(description="the next payment's due date")
    amount_due_cents: int = Field(description="the next payment's amount")
    reset_fee_cents: int = Field(description="the violation reset fee of the driver's program")
    allow_codes: bool = Field(description="the driver may request unlock codes")
    unread: int = Field(description="unread notifications")
    cards: list[DeviceCardPublic] = Field(description="one card per device")
    billing: DashboardBillingPublic = Field(description="automatic payments, per device, and the last decline")
    next_service: NextServicePublic = Field(description="the next service due date and the next booked visit")
    program: ProgramPublic | None = Field(description="the program's end (null: no program on file)")


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
