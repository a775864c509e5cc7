"""The JSON API's models of service centers, appointments, records, documents and the authority's view."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Kind = Literal["calibration", "inspection", "installation", "removal", "vehicle-swap"]


class CenterPublic(BaseModel):
    """A service center."""

    id: int
    name: str
    address: str
    zip: str
    tz: str
    phone: str
    hours: dict[str, list[str]]
    services: list[str]
    capacity: int
    slot_minutes: int


class CenterFound(BaseModel):
    """A center the locator found, with its distance in miles."""

    center: CenterPublic
    miles: float


class SlotPublic(BaseModel):
    """A free slot: its instant (UTC), the center's local time (ISO with offset) and places left."""

    start: dt.datetime
    local: str
    free: int


class AppointmentPublic(BaseModel):
    """An appointment; `local` is the start in the center's zone (ISO with offset)."""

    id: int
    kind: str
    status: str
    center_id: int | None
    device_id: int | None
    start: dt.datetime | None
    local: str | None
    preferred_date: dt.date | None
    note: str
    can_change: bool


class Booking(BaseModel):
    """Book a calibration or inspection in a slot (start: the slot's instant, with its offset)."""

    model_config = ConfigDict(extra="forbid")
    center_id: Id
    kind: Kind
    start: AwareDatetime
    device_id: Id | None = None


class Move(BaseModel):
    """Move a booked visit to another slot (maybe at another center)."""

    model_config = ConfigDict(extra="forbid")
    center_id: Id
    start: AwareDatetime


class VisitRequest(BaseModel):
    """Ask for an installation (with a preferred date), a removal or a vehicle swap."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["installation", "removal", "vehicle-swap"]
    preferred_date: dt.date | None = None
    note: Annotated[str, StringConstraints(max_length=500)] = ""
    device_id: Id | None = None


class RulePublic(BaseModel):
    """The rule of the driver's state that makes a violation one (citation empty: none found)."""

    state: str
    citation: str
    says: str


class EventPublic(BaseModel):
    """One event of the record."""

    seq: int
    at: dt.datetime
    kind: str
    text: str
    rule: RulePublic | None
    dispute: str | None


class RecordPublic(BaseModel):
    """A page of a device's record, newest first; `before` continues to older events."""

    device_id: int
    state: str
    counts: dict[str, int]
    events: list[EventPublic]
    before: int | None


class DisputeCreate(BaseModel):
    """Dispute one event of the record."""

    model_config = ConfigDict(extra="forbid")
    seq: Annotated[int, Field(ge=0, le=2**62)]
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class DisputePublic(BaseModel):
    """A dispute and its resolution."""

    id: int
    seq: int
    status: str
    note: str
    resolution: str


class DocumentPublic(BaseModel):
    """A stored document (download at /documents/{id})."""

    id: int
    kind: str
    title: str
    size: int
    sha256: str
    created_at: dt.datetime


class NoteCreate(BaseModel):
    """A note to the monitoring authority."""

    model_config = ConfigDict(extra="forbid")
    body: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class NotePublic(BaseModel):
    """A note to the monitoring authority."""

    id: int
    body: str
    created_at: dt.datetime


class CompliancePublic(BaseModel):
    """A driver at a glance, for their monitoring authority."""

    account_id: int
    name: str
    state: str
    device_ids: list[int]
    violations: int
    lockouts: int
    missed_services: int
    module_returns_late: int
    out_of_compliance: str
    ends_on: dt.date | None


class ShipmentPublic(BaseModel):
    """A module shipment: for the module expiring on `expires`; tracking and return label once shipped."""

    id: int
    status: str
    expires: dt.date | None
    tracking: str
    return_label: str
    address: str
    overdue: bool


class AddressOnce(BaseModel):
    """Where the next module goes instead of the account's address."""

    model_config = ConfigDict(extra="forbid")
    address: Annotated[str, StringConstraints(min_length=1, max_length=400)]
