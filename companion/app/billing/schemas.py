"""The billing JSON API's bodies and answers (the driver's, under /api/v1/portal/billing)."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{8,80}$")]
Cents = Annotated[int, Field(strict=True)]


class MethodAdd(BaseModel):
    """Save a card by the token the gateway's tokenization endpoint gave (never the number)."""

    token: Annotated[str, StringConstraints(min_length=8, max_length=300)]


class MethodPublic(BaseModel):
    """A saved card."""

    id: int
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    primary: bool
    expired: bool


class PrimaryResult(BaseModel):
    """The new primary card and the warning when a due date is near."""

    method: MethodPublic
    warning: str


class Upcoming(BaseModel):
    """A payment still to come."""

    due: dt.date
    amount_cents: int
    owed_cents: int


class BillingPublic(BaseModel):
    """Balance, overdue, next payment, schedule, auto-pay."""

    balance_cents: int
    overdue_cents: int
    current_cents: int
    credit_cents: int
    next_due: dt.date
    next_amount_cents: int
    schedule: str
    installment_cents: int
    autopay: bool
    autopay_method_id: int | None
    last_decline: str
    upcoming: list[Upcoming]
    remind_days: int
    reminders: bool


class PayNow(BaseModel):
    """Pay the overdue balance, the current balance, or another amount (cents), with a saved card."""

    choice: Literal["overdue", "current", "other"]
    amount_cents: Cents | None = None
    # the overdue or current balance the client showed (required for those choices): a balance that moved
    # since is refused with 409 balance-moved, nothing charged
    shown_cents: Annotated[int, Field(ge=0, le=10**9, strict=True)] | None = None
    # the current balance shown was the next installment paid ahead (nothing was owed)
    shown_ahead: Annotated[bool, Field(strict=True)] = False
    method_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    idempotency_key: Key


class ResetFeeCard(BaseModel):
    """Pay a device's reset fee with a saved card."""

    method_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    idempotency_key: Key


class AttemptPublic(BaseModel):
    """A payment attempt: its status (succeeded, failed, requires_action, unknown), decline, next step."""

    id: int
    purpose: str
    amount_cents: int
    status: str
    decline_code: str
    next_action_url: str
    entry_id: int | None
    clear_payment_id: int | None = None


class FrequencyRequest(BaseModel):
    """A frequency to preview or change to."""

    schedule: Literal["weekly", "biweekly", "monthly", "semimonthly"]


class FrequencyPublic(BaseModel):
    """What a frequency change does."""

    schedule: str
    effective: dt.date
    installment_cents: int
    payments: list[Upcoming]
    rule: str


class AutopayRequest(BaseModel):
    """Auto-pay on (with a card, the primary by default) or off."""

    on: bool
    method_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)] | None = None
    # one of the driver's devices (account_devices.id); none: every handset of the account
    device_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)] | None = None


class RemindersRequest(BaseModel):
    """Reminders on or off and how many days ahead."""

    on: bool
    days: Annotated[int, Field(ge=0, le=14, strict=True)] = 3


class LinePublic(BaseModel):
    """A history line (charges positive, payments as paid; refunds negative payments)."""

    id: int
    date: dt.date
    side: str
    kind: str
    method: str
    amount_cents: int
    device: str
    note: str
