"""The service part of `python -m companion worker`: appointment reminders (and, with them, whatever else of
the service domain runs on a clock). Each job notifies once per event (a dedupe key), so two workers on
PostgreSQL or a repeated round do nothing twice."""

from companion.app.core.db import Database
from companion.app.portal.config import PortalSettings
from companion.app.service import appointments, programs, shipments


def run_once(db: Database, ps: PortalSettings) -> int:
    """One round: reminders, shipments planned, late deliveries warned, unreturned modules, programs that end
    today. Returns how many notifications or shipments were new."""
    with db.write_session() as session:
        made = appointments.remind(session, ps)
        made += shipments.plan(session, ps)
        made += shipments.warn_late(session, ps)
        made += shipments.overdue(session, ps)
        session.commit()
    with db.write_session() as session:
        made += programs.end_due(session, ps)
        session.commit()
    return made
