"""The service part of `python -m companion worker`: appointment reminders (and, with them, whatever else of
the service domain runs on a clock). Each job notifies once per event (a dedupe key), so two workers on
PostgreSQL or a repeated round do nothing twice."""

from companion.app.core.db import Database
from companion.app.portal.config import PortalSettings
from companion.app.service import appointments


def run_once(db: Database, ps: PortalSettings) -> int:
    """One round; returns how many notifications were new."""
    with db.write_session() as session:
        made = appointments.remind(session, ps)
        session.commit()
    return made
