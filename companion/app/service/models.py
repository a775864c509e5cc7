"""Tables of service and records: centers and their slots, appointments, programs (jurisdiction, authority,
end date), documents and notes, disputes, module shipments."""

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from companion.app.models import Base, UTCDateTime, utcnow

SERVICES = ("calibration", "inspection", "installation", "removal", "vehicle-swap")
SELF_BOOKED = ("calibration", "inspection")  # a driver books these in a free slot
REQUESTED = ("installation", "removal", "vehicle-swap")  # staff approve these (installation: a preferred date)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ServiceCenter(Base):
    """A place that installs and services handsets: where it is, its zone, its hours and slot capacity."""

    __tablename__ = "service_centers"
    # the locator's bounding box: active centers by latitude band, then longitude (companion.app.service.centers)
    __table_args__ = (Index("ix_service_centers_place", "active", "lat", "lon"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400))
    zip: Mapped[str] = mapped_column(String(5), index=True)
    lat: Mapped[float] = mapped_column()
    lon: Mapped[float] = mapped_column()
    tz: Mapped[str] = mapped_column(String(64))  # IANA zone, e.g. America/Phoenix
    phone: Mapped[str] = mapped_column(String(32), default="")
    hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # "mon" -> ["08:00", "17:00"] local
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    capacity: Mapped[int] = mapped_column(Integer, default=1)  # appointments per slot
    services: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    changed: Mapped[int] = mapped_column(BigInteger, default=0)  # microseconds of the last change
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CenterSlot(Base):
    """How many appointments one slot of a center holds: booking is one conditional UPDATE of this row
    (booked < capacity), so two drivers after the last place cannot both get it."""

    __tablename__ = "center_slots"
    center_id: Mapped[int] = mapped_column(ForeignKey("service_centers.id"), primary_key=True)
    starts_ts: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # UTC seconds
    booked: Mapped[int] = mapped_column(Integer, default=0)


class Appointment(Base):
    """A visit: self-booked (calibration, inspection) in a slot, or a request staff approve (installation with
    a preferred date, removal, vehicle swap). Times are UTC; pages show them in the center's zone."""

    __tablename__ = "appointments"
    # an account's visits by status in time order: the dashboard's next booked visit is its first entry
    __table_args__ = (Index("ix_appointments_account_start", "account_id", "status", "starts_ts"),
                      Index("ix_appointments_start", "status", "starts_ts"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("account_devices.id"), nullable=True)
    center_id: Mapped[int | None] = mapped_column(ForeignKey("service_centers.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))  # requested | booked | done | cancelled | declined | missed
    starts_ts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # UTC seconds; None while requested
    preferred_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Program(Base):
    """An account's program: the state whose rules apply, its end date and what happened on it."""

    __tablename__ = "programs"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    jurisdiction: Mapped[str] = mapped_column(String(2), default="")  # US state code; "" = not set
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # the program's first day (None: the day of the first uploaded log record); state rules count from it
    starts_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    certificate_doc_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_doc_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    out_of_compliance: Mapped[str] = mapped_column(String(200), default="")  # why, or "" when compliant
    # the state's program locks the vehicle when a module is not returned (through the desired state: the
    # handset's inspection date becomes today, so its INSPECTION DUE lock follows its own policy)
    module_lock: Mapped[bool] = mapped_column(default=False)


class AuthorityAssignment(Base):
    """A monitoring-authority user sees the accounts assigned to it, and no other."""

    __tablename__ = "authority_assignments"
    __table_args__ = (UniqueConstraint("user_id", "account_id", name="uq_authority_account"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Document(Base):
    """An uploaded or produced file: its bytes live on disk under a name the server chose."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # pdf | jpeg | png
    title: Mapped[str] = mapped_column(String(120))  # shown only; never a path
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(16), default="upload")  # upload | certificate | report
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuthorityNote(Base):
    """A note from the driver to their monitoring authority."""

    __tablename__ = "authority_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Dispute(Base):
    """A driver disputes one event of their record; staff resolve it."""

    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("handset_id", "seq", name="uq_dispute_event"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | upheld | rejected
    resolution: Mapped[str] = mapped_column(String(1000), default="")
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Shipment(Base):
    """A replacement module on its way to the driver, and the expired one on its way back."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("handset_id", "for_expiry_day", name="uq_shipment_expiry"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    handset_id: Mapped[int] = mapped_column(ForeignKey("handsets.id"))
    for_expiry_day: Mapped[int] = mapped_column(Integer)  # the expiring module's expiry (device day)
    module_serial: Mapped[int] = mapped_column(BigInteger)  # the replacement's serial (the expected module)
    address: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(12), default="created")  # created|shipped|delivered|returned|lost
    tracking: Mapped[str] = mapped_column(String(40), default="")
    return_label: Mapped[str] = mapped_column(String(40), default="")
    shipped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    returned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    overdue_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)  # the return was late
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OneTimeAddress(Base):
    """Where the driver wants the next module sent instead of the account's address (used once)."""

    __tablename__ = "shipping_addresses"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
