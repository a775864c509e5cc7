"""Tables of the billing domain. The ledger itself (`LedgerEntry`) is in `companion.app.models`, where the
payments it replaced were, because the sync and clear paths read it."""

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from companion.app.models import Base, UTCDateTime, utcnow


class PaymentMethod(Base):
    """A card saved by a driver: the gateway's token and what may be shown (brand, last four, expiry)."""

    __tablename__ = "payment_methods"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(200))
    brand: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BillingPlan(Base):
    """An account's billing choices: reminders. (Auto-pay is per device, `DeviceAutopay`; the auto-pay columns
    here are what migration 0008 copied to each device and are no longer read.)"""

    __tablename__ = "billing_plans"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    autopay: Mapped[bool] = mapped_column(Boolean, default=False)
    method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"), nullable=True)
    remind_days: Mapped[int] = mapped_column(Integer, default=3)
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    # the installment period auto-pay is collecting, its failed attempts and when it tries next
    retry_period: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_decline: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeviceAutopay(Base):
    """Auto-pay of one device (handset): on or off, its card, the retry state of its collection, and the
    lease a worker holds on it while collecting (claimed in batches, FOR UPDATE SKIP LOCKED)."""

    __tablename__ = "device_autopay"
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    autopay: Mapped[bool] = mapped_column(Boolean, default=False)
    method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"), nullable=True)
    # the installment period auto-pay is collecting, its failed attempts and when it tries next
    retry_period: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_decline: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChargeAttempt(Base):
    """One payment intent we asked the gateway for, keyed by our idempotency key: a repeated request (a second
    click, a second worker, a retry after a timeout) finds it and never charges again."""

    __tablename__ = "charge_attempts"
    __table_args__ = (UniqueConstraint("idempotency_key", name="uq_charge_idempotency"),
                      Index("ix_charge_intent", "intent_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    intent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    purpose: Mapped[str] = mapped_column(String(16))  # installment | pay_now | reset_fee | code_fee
    amount_cents: Mapped[int] = mapped_column(Integer)
    method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"), nullable=True)
    handset_id: Mapped[int | None] = mapped_column(ForeignKey("handsets.id"), nullable=True)
    lockout_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    period: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # created | requires_action | succeeded | failed | unknown (the gateway did not answer) | refunded
    status: Mapped[str] = mapped_column(String(20), default="created")
    decline_code: Mapped[str] = mapped_column(String(40), default="")
    next_action_url: Mapped[str] = mapped_column(String(300), default="")
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"), nullable=True)
    # a code fee's paid code: the action it was bought for, and the code issued once the payment succeeded
    code_action: Mapped[str] = mapped_column(String(8), default="", server_default="")
    code_id: Mapped[int | None] = mapped_column(ForeignKey("unlock_codes.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Base):
    """A gateway event we accepted, once by its id (a second delivery is acknowledged and ignored)."""

    __tablename__ = "webhook_events"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    intent_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invoice(Base):
    """An invoice for one billing period, numbered in sequence; its lines are frozen when it is issued."""

    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("account_id", "period_start", name="uq_invoice_period"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    lines: Mapped[list[Any]] = mapped_column(JSON, default=list)
    charges_cents: Mapped[int] = mapped_column(Integer)
    payments_cents: Mapped[int] = mapped_column(Integer)
    balance_cents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Agreement(Base):
    """The program agreement (lease) a driver accepted: its terms as they were, and when."""

    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    version: Mapped[str] = mapped_column(String(16))
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    accepted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
