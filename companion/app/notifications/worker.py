"""`python -m companion worker`: notices what the handsets' syncs changed (clears applied, lockouts reported)
and payments coming due, and delivers the email outbox over SMTP with retries (plain text + HTML).

Events the portal itself causes (a code issued, a fee paid, an email changed) write their notification and
email in the same transaction as the event. Events that arrive through a handset's sync are noticed here,
each once (a dedupe key per event), so the sync path stays as it is.
Several workers may run against one database: an email is claimed for a lease (claim_due, FOR UPDATE SKIP
LOCKED on PostgreSQL), recorded as sent the moment the SMTP server takes it, and handed back when its worker
dies and the lease ends. Each email goes out once; only one whose worker died between the server's "250" and
the record can go out twice (at-least-once at that single point, as with any SMTP client).
"""

import contextlib
import datetime as dt
import logging
import smtplib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from email.message import EmailMessage

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from companion.app import i18n
from companion.app.accounts.models import AuthToken, DeviceLink, LoginFailure, User, WebSession
from companion.app.billing import worker as billing_worker
from companion.app.billing.context import BillingContext
from companion.app.core import timebase
from companion.app.core.db import Database
from companion.app.models import Command, LogRecord, Payment, utcnow
from companion.app.notifications import services as notes
from companion.app.notifications.models import OutboxEmail
from companion.app.portal import handset_words
from companion.app.portal.config import PortalSettings

log = logging.getLogger("companion.worker")
Writer = Callable[[], AbstractContextManager[object]]
LEASE_MARGIN_S = 5  # a send started before lease end - SMTP timeout - this margin ends inside the lease
REC_LOCKOUT = 9  # fsm.records.LOCKOUT (tests check these against the firmware)
LOCK_VIOLATION = 3  # fsm.records.LOCK_VIOLATION


def _drivers(session: Session, account_id: int) -> list[User]:
    return list(session.scalars(select(User).where(User.account_id == account_id, User.role == "driver",
                                                   User.active.is_(True))))


def notice_events(session: Session, ps: PortalSettings, now: dt.datetime | None = None) -> int:
    """Notify drivers of clears that finished, lockouts their handsets reported, and payments due soon;
    returns how many notifications were new."""
    now = now or utcnow()
    made = 0
    since = now - dt.timedelta(days=2)
    # clears paid through the portal or the back office that the handset applied, refused or let expire
    rows = session.execute(select(Payment, Command).join(Command, Payment.command_id == Command.id).where(
        Command.status.in_(("applied", "refused", "expired")), Command.acked_at >= since)).all()
    for pay, cmd in rows:
        link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == cmd.handset_id,
                                                       DeviceLink.account_id == pay.account_id))
        label = link.label if link else str(cmd.handset_id)
        kind = "clear-applied" if cmd.status == "applied" else "clear-failed"
        for user in _drivers(session, pay.account_id):
            if notes.notify(session, user, kind, {"device": label, "status": cmd.status},
                            link="/portal/clears/%d" % pay.id, base_url=ps.BASE_URL, dedupe="clear:%d" % cmd.id):
                made += 1
    # violation lockouts, from the uploaded log (each LOCKOUT record once, even if cleared since)
    recent = timebase.device_now() - 2 * 86400
    for link, rec in session.execute(
            select(DeviceLink, LogRecord).join(LogRecord, DeviceLink.handset_id == LogRecord.handset_id)
            .where(LogRecord.rtype == REC_LOCKOUT, LogRecord.a == LOCK_VIOLATION, LogRecord.wall >= recent)).all():
        cause = handset_words.CAUSES.get(int(rec.c), handset_words.CAUSES[5])
        for user in _drivers(session, link.account_id):
            words = i18n.gettext_for(user.language).gettext(cause)
            if notes.notify(session, user, "lockout", {"device": link.label, "cause": words},
                            link="/portal/dashboard", base_url=ps.BASE_URL,
                            dedupe="lockout:%d:%d" % (rec.handset_id, rec.seq)):
                made += 1
    # payments due soon (each account's days ahead; billing's rule)
    made += billing_worker.reminders(session, ps)  # on billing's clock
    session.flush()
    return made


def purge(session: Session, ps: PortalSettings, now: dt.datetime | None = None) -> None:
    """Forget what has run out: expired sessions, spent or expired tokens after a day, old failed attempts."""
    now = now or utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.execute(delete(AuthToken).where(AuthToken.expires_at < now - dt.timedelta(days=1)))
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - dt.timedelta(seconds=2 * ps.THROTTLE_WINDOW_S)))


def _message(ps: PortalSettings, mail: OutboxEmail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = ps.MAIL_FROM
    msg["To"] = mail.to_addr
    msg["Subject"] = mail.subject
    msg["Message-ID"] = "<outbox-%d@interlock.example>" % mail.id
    msg.set_content(mail.text_body)
    msg.add_alternative(mail.html_body, subtype="html")
    return msg


def claim_due(session: Session, ps: PortalSettings, postgres: bool, now: dt.datetime | None = None,
              writer: Writer = contextlib.nullcontext) -> tuple[list[OutboxEmail], dt.datetime]:
    """Claim up to 20 due emails in one statement and commit: each one's next try moves to the end of a lease
    (now + MAIL_LEASE_S), so no other worker takes it while this one sends, and a worker that dies holding
    it gives it back when the lease ends. The claim counts as an attempt (an email that kills its worker
    every time is tried MAIL_MAX_ATTEMPTS times, not for ever). On PostgreSQL rows another worker is
    claiming are skipped (FOR UPDATE SKIP LOCKED); on SQLite the statement holds the write lock.
    Returns (claimed emails in id order, end of the lease)."""
    now = now or utcnow()
    lease_until = now + dt.timedelta(seconds=ps.MAIL_LEASE_S)
    ids = (select(OutboxEmail.id).where(OutboxEmail.sent_at.is_(None), OutboxEmail.next_try_at <= now,
                                        OutboxEmail.attempts < ps.MAIL_MAX_ATTEMPTS)
           .order_by(OutboxEmail.id).limit(20))
    if postgres:
        ids = ids.with_for_update(skip_locked=True)
    claim = (update(OutboxEmail).where(OutboxEmail.id.in_(ids.scalar_subquery()))
             .values(next_try_at=lease_until, attempts=OutboxEmail.attempts + 1).returning(OutboxEmail)
             .execution_options(populate_existing=True))
    with writer():
        due = sorted(session.scalars(claim).all(), key=lambda m: m.id)
        session.commit()
    return due, lease_until


def _settle(session: Session, writer: Writer, mail: OutboxEmail, lease_until: dt.datetime,
            **values: object) -> bool:
    """Record how a claimed email went, if this worker still holds its claim (its next try is still the end of
    this lease: nobody claimed it again); commits at once, so a crash later loses nothing recorded."""
    with writer():
        done = session.execute(update(OutboxEmail).where(
            OutboxEmail.id == mail.id, OutboxEmail.sent_at.is_(None), OutboxEmail.next_try_at == lease_until)
            .values(**values).execution_options(synchronize_session="fetch"))
        session.commit()
    return bool(done.rowcount)  # type: ignore[attr-defined]


def send_due(session: Session, ps: PortalSettings, postgres: bool, now: dt.datetime | None = None,
             writer: Writer = contextlib.nullcontext) -> int:
    """Claim the outbox's due emails (claim_due) and send them over one SMTP connection, each recorded as sent
    as soon as the server took it. A failure is retried later with a growing wait, up to MAIL_MAX_ATTEMPTS.
    No email is handed to the server once the lease is too close to its end for a send to finish inside it
    (the SMTP timeout and a margin): those go out after the lease. Returns how many were sent. Commits;
    writer guards each write (the database's single-writer lock on SQLite)."""
    now = now or utcnow()
    due, lease_until = claim_due(session, ps, postgres, now, writer)
    if not due:
        return 0
    deadline = time.monotonic() + ps.MAIL_LEASE_S - ps.SMTP_TIMEOUT_S - LEASE_MARGIN_S
    sent = 0
    smtp: smtplib.SMTP | None = None
    try:
        smtp = smtplib.SMTP(ps.SMTP_HOST, ps.SMTP_PORT, timeout=ps.SMTP_TIMEOUT_S)
        if ps.SMTP_STARTTLS:
            smtp.starttls()
        if ps.SMTP_USER:
            smtp.login(ps.SMTP_USER, ps.SMTP_PASSWORD)
    except (OSError, smtplib.SMTPException) as exc:
        for mail in due:
            _failed(session, writer, ps, mail, now, lease_until, "connect: " + str(exc))
        return 0
    try:
        for mail in due:
            if time.monotonic() >= deadline:
                log.warning("the lease is ending: %d emails go out after it", len(due) - sent)
                break
            try:
                smtp.send_message(_message(ps, mail))
            except (OSError, smtplib.SMTPException) as exc:
                _failed(session, writer, ps, mail, now, lease_until, str(exc))
                continue
            if _settle(session, writer, mail, lease_until, sent_at=utcnow()):
                sent += 1
            else:  # nothing is sent past the deadline, so only a lease shorter than a send gets here
                log.error("email %d was claimed again while this worker sent it", mail.id)
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return sent


def _failed(session: Session, writer: Writer, ps: PortalSettings, mail: OutboxEmail, now: dt.datetime,
            lease_until: dt.datetime, error: str) -> None:
    wait = dt.timedelta(seconds=ps.MAIL_RETRY_BASE_S * 2 ** min(mail.attempts - 1, 12))
    _settle(session, writer, mail, lease_until, last_error=error[:300], next_try_at=now + wait)
    log.warning("email %d to %s failed (attempt %d): %s", mail.id, mail.to_addr, mail.attempts, error)


def run_once(db: Database, ps: PortalSettings, billing: BillingContext | None = None) -> tuple[int, int]:
    """One round: (new notifications, emails sent); with a billing context, billing's round first (auto-pay,
    unsettled attempts, the sandbox's webhooks)."""
    if billing is not None:
        billing_worker.run_once(db, billing)
    from companion.app.service import worker as service_worker

    with db.write_session() as session:
        made = notice_events(session, ps)
        purge(session, ps)
        session.commit()
    made += service_worker.run_once(db, ps)
    with db.sessions() as session:  # short write transactions: the claim, then one per email sent
        sent = send_due(session, ps, not db.settings.is_sqlite, writer=db.writer)
    return made, sent


def run(db: Database, ps: PortalSettings, stop: "object | None" = None,
        billing: BillingContext | None = None) -> None:
    """Loop until stop (a threading.Event) is set, or forever."""
    while stop is None or not stop.is_set():  # type: ignore[attr-defined]
        try:
            run_once(db, ps, billing)
        except Exception:  # noqa: BLE001 -- a bad round is logged and the next one tried
            log.exception("worker round failed")
        if stop is not None:
            stop.wait(ps.WORKER_POLL_S)  # type: ignore[attr-defined]
        else:
            time.sleep(ps.WORKER_POLL_S)
