"""The API's Pydantic models, one family per resource (Base / Create / Update / Public)."""

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from interlock import wire

# integers are strict: a JSON true is not 1
I32 = Annotated[int, Field(ge=0, le=2**31 - 1, strict=True)]
U32 = Annotated[int, Field(ge=0, le=2**32 - 1, strict=True)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
# a person's or company's name: no control characters (U+0000 cannot be stored in PostgreSQL text)
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
Schedule = Literal["weekly", "biweekly", "monthly", "bimonthly", "semimonthly"]
PolicyValues = Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=32,
                                                                pattern=r"^[a-z][a-z0-9_]*$")],
                              Annotated[int, Field(ge=-(2**31), le=2**31 - 1, strict=True)]],
                         Field(max_length=64)]
# a US state code with a preset (presets.states()); checked against the presets in crud
Jurisdiction = Annotated[str, StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")]
Day = Annotated[dt.date, Field(ge=dt.date(2024, 1, 2), le=dt.date(2150, 1, 1))]


# accounts
class AccountBase(BaseModel):
    """What an account is."""

    name: Name
    schedule: Schedule
    first_due: Day
    installment_cents: Annotated[int, Field(ge=1, le=10**9, strict=True)]
    reset_fee_cents: Annotated[int, Field(ge=0, le=10**9, strict=True)] = 7500
    allow_codes: bool = True
    codes_per_period: Annotated[int, Field(ge=0, le=100, strict=True)] = 2
    code_fee_cents: Annotated[int, Field(ge=0, le=10**6, strict=True)] = 0  # per unlock code; 0: free
    service_period_days: Annotated[int, Field(ge=1, le=365, strict=True)] = 30
    jurisdiction: Jurisdiction | None = None  # the state whose preset the handsets run


class AccountCreate(AccountBase):
    """Fields to open an account."""


class AccountUpdate(BaseModel):
    """Fields an update may change (all optional)."""

    name: Name | None = None
    schedule: Schedule | None = None
    installment_cents: Annotated[int, Field(ge=1, le=10**9, strict=True)] | None = None
    reset_fee_cents: Annotated[int, Field(ge=0, le=10**9, strict=True)] | None = None
    allow_codes: bool | None = None
    codes_per_period: Annotated[int, Field(ge=0, le=100, strict=True)] | None = None
    code_fee_cents: Annotated[int, Field(ge=0, le=10**6, strict=True)] | None = None
    jurisdiction: Jurisdiction | None = None
    service_period_days: Annotated[int, Field(ge=1, le=365, strict=True)] | None = None


class AccountPublic(AccountBase):
    """An account as the API shows it."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    periods_paid: int
    credit_cents: int
    next_due: dt.date
    handsets: list[int] = []


# handsets
class HandsetBase(BaseModel):
    """What identifies a handset."""

    serial: Text
    account_id: Id | None = None


class HandsetCreate(HandsetBase):
    """Fields to provision a handset (the companion creates its secret)."""


class HandsetUpdate(BaseModel):
    """Attach a handset to an account."""

    account_id: Id | None = None


class DesiredPublic(BaseModel):
    """The versioned desired state the handset receives on sync."""

    version: int
    payment_due: dt.date | None
    service_due: dt.date | None
    inspection_due: dt.date | None
    expected_module: int
    policy: dict[str, int]
    preset: str = ""  # the state preset the policy carries ("AZ@1"), "" none (presets/, docs/RULES.md)


class DesiredUpdate(BaseModel):
    """Desired-state fields to change; any change raises the version (a policy change raises its own)."""

    service_due: Day | None = None
    inspection_due: Day | None = None
    expected_module: U32 | None = None
    policy: PolicyValues | None = None


class HandsetPublic(HandsetBase):
    """A handset as the API shows it (never its secret)."""

    device_id: int
    key_id: str
    desired: DesiredPublic
    reported: dict[str, Any] | None
    reported_version: int
    last_command_seq: int
    lockout_id: int
    log_seq: int
    log_error: str
    syncs: int
    last_sync_at: dt.datetime | None


class HandsetProvisioned(HandsetPublic):
    """The answer to provisioning: the only time the secret leaves the companion (for the service port)."""

    secret: str


# commands
class CommandKind(StrEnum):
    """What a command does, as it travels to the handset (interlock.wire.KIND_*)."""

    CLEAR = wire.KIND_CLEAR
    SERVICE_EXTEND = wire.KIND_SERVICE
    TIME_SET = wire.KIND_TIME
    POLICY = wire.KIND_POLICY


CommandStatus = Literal["queued", "delivered", "applied", "refused", "expired"]


class CommandBase(BaseModel):
    """What a command asks the handset to do."""

    kind: CommandKind
    arg: U32 | PolicyValues


class CommandCreate(CommandBase):
    """Queue a command; it expires after ttl_s seconds if the handset has not acknowledged it."""

    ttl_s: Annotated[int, Field(ge=1, le=30 * 86400, strict=True)] | None = None


class CommandPublic(CommandBase):
    """A command and where it is: queued, delivered (sent in a signed response), applied, refused, expired."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    device_id: int
    seq: int
    status: CommandStatus
    expires: int
    rc: int | None
    deliveries: int
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    acked_at: dt.datetime | None


# payments
class PaymentBase(BaseModel):
    """A payment as the back office records it."""

    kind: Literal["installment", "reset_fee"]
    amount_cents: Annotated[int, Field(ge=1, le=10**9, strict=True)]
    reference: Text
    device_id: Id | None = None
    lockout_id: U32 | None = None


class PaymentCreate(PaymentBase):
    """Record a payment; the reference makes a retried request idempotent."""

    # where the money was taken: by the back office, or at a service center
    method: Literal["backoffice", "service_center"] = "backoffice"


class PaymentPublic(PaymentBase):
    """A recorded payment with its effect: the new due date or the queued clear."""

    id: int
    account_id: int
    method: str  # backoffice | service_center | card (through the gateway) | portal (before the gateway)
    next_due: dt.date | None
    command: CommandPublic | None
    created_at: dt.datetime


# unlock codes
class CodeCreate(BaseModel):
    """Which action the code unlocks."""

    action: Literal["clear", "service"]


class CodePublic(BaseModel):
    """An issued unlock code, zero-padded to 8 digits."""

    device_id: int
    action: Literal["clear", "service"]
    counter: int
    issue_hour: int
    valid_hours: int
    code: str


# technician tokens
class TechTokenCreate(BaseModel):
    """A short-lived token for one technician on one handset."""

    # the handset takes technician ids up to 2^31-1 only
    tech_id: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    lifetime_s: Annotated[int, Field(ge=60, le=24 * 3600, strict=True)] | None = None


class TechTokenPublic(BaseModel):
    """The token: the handset verifies HMAC(token_key, "TA" | nonce) against its own derivation."""

    device_id: int
    tech_id: int
    expires: int
    token_key: str


# log
class LogTamperPublic(BaseModel):
    """A log chunk that differed from records already accepted (the stored records were kept)."""

    model_config = ConfigDict(from_attributes=True)
    first_seq: int
    records: int
    created_at: dt.datetime


class Problem(BaseModel):
    """An error (RFC 9457 problem details); some problems add members (errors, server_time, ...)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str


class LogRecordPublic(BaseModel):
    """One uploaded log record."""

    model_config = ConfigDict(from_attributes=True)
    seq: int
    wall: int
    rtype: int
    a: int
    b: int
    c: int
    photo: int


# sync (documentation of the body; the route verifies the signature on the raw bytes first)
class LogChunk(BaseModel):
    """Encoded records (storage/record.py, 40 bytes each) back to back, base64, starting at `first`."""

    first: Annotated[int, Field(ge=1, le=2**32 - 1)]
    data: Annotated[str, StringConstraints(max_length=65536)]


ShortStr = Annotated[str, StringConstraints(max_length=64)]
StatusValue = (bool | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | ShortStr
               | Annotated[list[ShortStr], Field(max_length=8)] | None)


class SyncRequest(BaseModel):
    """The handset's sync body."""

    v: Literal[1]
    device_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    status: Annotated[dict[Annotated[str, StringConstraints(max_length=32)], StatusValue], Field(max_length=64)]
    desired_version: U32
    last_command_seq: U32
    acks: Annotated[list[tuple[U32, Annotated[int, Field(ge=0, le=255, strict=True)]]], Field(max_length=64)] = []
    log: LogChunk | None = None


class ServerTime(BaseModel):
    """The companion's clock in device seconds."""

    time: int


class Health(BaseModel):
    """Liveness."""

    status: str
