"""Database tables (SQLAlchemy 2 declarative). The API's Pydantic models live in `schemas.py`."""

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite hands back naive values: they are UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every table."""


class Account(Base):
    """A driver's account: payment schedule, code policy, and the handsets it pays for."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str] = mapped_column(String(16))
    first_due: Mapped[dt.date] = mapped_column(Date)
    installment_cents: Mapped[int] = mapped_column(Integer)
    periods_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_cents: Mapped[int] = mapped_column(Integer, default=0)
    reset_fee_cents: Mapped[int] = mapped_column(Integer)
    allow_codes: Mapped[bool] = mapped_column(Boolean, default=True)
    codes_per_period: Mapped[int] = mapped_column(Integer, default=2)
    # what an unlock code costs the driver, charged by card before the code is issued (0: codes are free)
    code_fee_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    service_period_days: Mapped[int] = mapped_column(Integer, default=30)
    # billing (the ledger keeps these current): installment periods before the current schedule began (a
    # frequency change starts a new schedule at `first_due`), and the next due date derived from the ledger
    period_base: Mapped[int] = mapped_column(BigInteger, default=0)
    next_due: Mapped[dt.date | None] = mapped_column(Date, nullable=True, index=True)
    # the state whose interlock rule the account's handsets run (presets/data/XX.toml); None: the factory policy
    jurisdiction: Mapped[str | None] = mapped_column(String(2), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Handset(Base):
    """One handset: its encrypted secret, desired state, last reported state and sync bookkeeping."""

    __tablename__ = "handsets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the device id
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True, index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    secret_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    secret_ct: Mapped[bytes] = mapped_column(LargeBinary)
    # desired state (version goes up on every change)
    desired_version: Mapped[int] = mapped_column(BigInteger, default=1)
    payment_due_day: Mapped[int] = mapped_column(Integer, default=0)
    service_due_day: Mapped[int] = mapped_column(Integer, default=0)
    inspection_due_day: Mapped[int] = mapped_column(Integer, default=0)
    expected_module: Mapped[int] = mapped_column(BigInteger, default=0)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    preset: Mapped[str] = mapped_column(String(16), default="")  # the state preset in the policy, e.g. "AZ@1"
    # counters the companion allocates
    command_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    code_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    # what the handset last reported
    reported: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reported_version: Mapped[int] = mapped_column(BigInteger, default=0)
    last_command_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    lockout_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # the order of the request whose report the columns above hold: (its status's log_next_seq << 32) + its
    # device timestamp (sync/protocol.py); an older request leaves them alone
    reported_order: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # log upload: highest contiguous stored seq and the chain hash after it (hex; "" = genesis)
    log_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    log_hash: Mapped[str] = mapped_column(String(64), default="")
    log_error: Mapped[str] = mapped_column(String(64), default="")
    syncs: Mapped[int] = mapped_column(BigInteger, default=0)
    last_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Command(Base):
    """A command for one handset: sequence number, expiry, and its status (queued/delivered/applied/...)."""

    __tablename__ = "commands"
    __table_args__ = (
        UniqueConstraint("handset_id", "seq", name="uq_command_seq"),
        UniqueConstraint("handset_id", "dedupe", name="uq_command_dedupe"),
        Index("ix_command_open", "handset_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    arg: Mapped[Any] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    expires: Mapped[int] = mapped_column(BigInteger)  # device seconds
    dedupe: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rc: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LogRecord(Base):
    """One uploaded handset log record, keyed by (handset, seq): a retried upload stores nothing twice."""

    __tablename__ = "log_records"
    # the record page and the authority's counts: a handset's records of some types, in a period
    __table_args__ = (Index("ix_log_records_type", "handset_id", "rtype", "wall"),)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    wall: Mapped[int] = mapped_column(BigInteger)
    rtype: Mapped[int] = mapped_column(Integer)
    a: Mapped[int] = mapped_column(BigInteger)
    b: Mapped[int] = mapped_column(BigInteger)
    c: Mapped[int] = mapped_column(BigInteger)
    photo: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class SyncNonce(Base):
    """A request nonce seen recently: the same (handset, nonce) is a replay."""

    __tablename__ = "sync_nonces"
    handset_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, index=True)


class LedgerEntry(Base):
    """One line of an account's ledger, in integer cents. A charge (side "charge": a program installment, a
    reset fee, an unlock-code fee, another fee) or a payment (side "payment": a card charge, a payment taken
    at a service center or by the back office; a refund is a payment of a negative amount). Balances, what is
    overdue and the next due date are derived from these rows (`companion.app.billing.ledger`).
    An installment charge names its period (unique per account: no due date is charged twice). A payment
    that pays one charge (a reset fee) names it (`charge_id`); other payments pay the oldest charges first.
    A reset fee's payment holds the clear it queued (`command_id`)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("account_id", "reference", name="uq_ledger_reference"),
                      UniqueConstraint("account_id", "period", name="uq_ledger_period"),
                      Index("ix_ledger_account", "account_id", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    side: Mapped[str] = mapped_column(String(8), default="payment")  # charge | payment
    kind: Mapped[str] = mapped_column(String(16))  # installment | reset_fee | code_fee | fee | adjustment
    method: Mapped[str] = mapped_column(String(16), default="")  # card | refund | service_center | backoffice
    amount_cents: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str | None] = mapped_column(String(100), nullable=True)
    handset_id: Mapped[int | None] = mapped_column(ForeignKey("handsets.id"), nullable=True, index=True)
    period: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    due_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    charge_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), nullable=True)
    intent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lockout_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    command_id: Mapped[int | None] = mapped_column(ForeignKey("commands.id"), nullable=True)
    due_after: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# Payments are the ledger's entries on the payment side; the clear paths (a reset fee's payment and the
# command it queued) read them under this name.
Payment = LedgerEntry


class UnlockCode(Base):
    """An issued unlock code (the code itself is recomputable; only its parameters are kept)."""

    __tablename__ = "unlock_codes"
    __table_args__ = (UniqueConstraint("handset_id", "counter", name="uq_code_counter"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"))
    action: Mapped[int] = mapped_column(Integer)
    counter: Mapped[int] = mapped_column(BigInteger)
    issue_hour: Mapped[int] = mapped_column(BigInteger)
    issue_day: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TechToken(Base):
    """An issued technician token (audit trail; the key itself is recomputable and never stored)."""

    __tablename__ = "tech_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"))
    tech_id: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DesiredVersion(Base):
    """Each desired-state version a handset was given, once: versions are unique and increasing per handset."""

    __tablename__ = "desired_versions"
    __table_args__ = (UniqueConstraint("handset_id", "version", name="uq_desired_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"))
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogTamper(Base):
    """A log chunk that tried to rewrite records already accepted: the stored records are kept, the attempt
    is kept here for staff (GET /handsets/{id}/log/tampering)."""

    __tablename__ = "log_tampering"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"), index=True)
    first_seq: Mapped[int] = mapped_column(BigInteger)  # the first stored record the chunk differs from
    records: Mapped[int] = mapped_column(Integer)  # how many stored records it differs from
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # the differing records as received
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# the portal's domain tables live beside their services; importing them here puts them on Base.metadata
from companion.app.accounts import models as _accounts_models  # noqa: E402,F401
from companion.app.billing import models as _billing_models  # noqa: E402,F401
from companion.app.notifications import models as _notification_models  # noqa: E402,F401
from companion.app.service import models as _service_models  # noqa: E402,F401
