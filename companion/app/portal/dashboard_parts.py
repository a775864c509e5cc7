"""The whole driver dashboard from the rows of its one statement (portal/reads.py): the cards and next payment
(portal.services), billing's lines (billing.services), the next service (service.appointments) and the program's
end (service.programs). The page (web/pages.py) and the JSON API (api/routes/portal.py) both build it here, so
they show the same; each part's rule stays in its own package, and nothing here reads the database."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from companion.app.accounts.models import User
from companion.app.billing import services as billing
from companion.app.billing.services import DashboardBilling
from companion.app.portal import reads
from companion.app.portal import services as portal
from companion.app.portal.context import PortalContext
from companion.app.service import appointments, programs


@dataclass
class DashboardParts:
    """Everything the driver's dashboard shows."""

    d: portal.Dashboard  # name, next payment, unread count, one card per device
    billing: DashboardBilling | None  # auto-pay per device, its card, a decline (None: no account)
    ns: appointments.NextService  # the next service due date and the next booked visit
    prog: programs.Status | None  # the program's end (None: no program on file)


def parts_of(ctx: PortalContext, user: User, rows: Sequence[Any], now: dt.datetime | None = None) -> DashboardParts:
    """The dashboard from the rows of reads.BY_SESSION or reads.BY_USER. Drivers only (others: 404)."""
    d = portal.dashboard_of(user, rows)
    return DashboardParts(d, billing.dashboard_billing_of(rows), appointments.next_service_of(ctx, rows, now),
                          programs.status_of(rows[0]))


def parts(session: Session, ctx: PortalContext, user: User) -> DashboardParts:
    """The driver's whole dashboard in one statement (the JSON API's way in; the page asks by session token)."""
    return parts_of(ctx, user, reads.by_user(session.connection(), user.id))
