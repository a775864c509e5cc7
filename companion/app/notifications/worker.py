"""`python -m companion worker`: notices what the handsets' syncs changed (clears applied, lockouts reported)
and payments coming due, and delivers the email outbox over SMTP with retries (plain text + HTML).

Events the portal itself causes (a code issued, a fee paid, an email changed) write their notification and
email in the same transaction as the event. Events that arrive through a handset's sync are noticed here,
each once (a dedupe key per event), so the sync path stays as it is.
On PostgreSQL several workers may run: outbox rows are claimed with FOR UPDATE SKIP LOCKED. On SQLite, one.
"""

import datetime as dt
import logging
import smtplib
import time
from email.message import EmailMessage

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from companion.app import crud, i18n
from companion.app.accounts.models import AuthToken, DeviceLink, LoginFailure, User, WebSession
from companion.app.core import timebase
from companion.app.core.db import Database
from companion.app.models import Account, Command, LogRecord, Payment, utcnow
from companion.app.notifications import services as notes
from companion.app.notifications.models import OutboxEmail
from companion.app.portal import handset_words
from companion.app.portal.config import PortalSettings

log = logging.getLogger("companion.worker")
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
        link = session.scalar(select(DeviceLink).where(DeviceLink.handset_id == cmd.handset_id))
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
    # payments due within REMIND_DAYS (none after the program's end)
    from companion.app.service.programs import ended_ids

    ended = ended_ids(session)
    for account in session.scalars(select(Account)):
        if account.id in ended:
            continue
        due = crud.account_next_due(account)
        if 0 <= (due - now.date()).days <= ps.REMIND_DAYS:
            amount = max(account.installment_cents - account.credit_cents, 0)
            for user in _drivers(session, account.id):
                if notes.notify(session, user, "payment-due",
                                {"amount": "$%d.%02d" % (amount // 100, amount % 100), "date": due.isoformat()},
                                link="/portal/dashboard", base_url=ps.BASE_URL,
                                dedupe="payment-due:%s" % due.isoformat()):
                    made += 1
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


def send_due(session: Session, ps: PortalSettings, postgres: bool, now: dt.datetime | None = None) -> int:
    """Send the outbox's due emails over one SMTP connection; a failure is retried later with a growing wait,
    up to MAIL_MAX_ATTEMPTS. Returns how many were sent. The caller commits."""
    now = now or utcnow()
    q = (select(OutboxEmail).where(OutboxEmail.sent_at.is_(None), OutboxEmail.next_try_at <= now,
                                   OutboxEmail.attempts < ps.MAIL_MAX_ATTEMPTS)
         .order_by(OutboxEmail.id).limit(20))
    if postgres:
        q = q.with_for_update(skip_locked=True)
    due = list(session.scalars(q))
    if not due:
        return 0
    sent = 0
    smtp: smtplib.SMTP | None = None
    try:
        smtp = smtplib.SMTP(ps.SMTP_HOST, ps.SMTP_PORT, timeout=30)
        if ps.SMTP_STARTTLS:
            smtp.starttls()
        if ps.SMTP_USER:
            smtp.login(ps.SMTP_USER, ps.SMTP_PASSWORD)
    except (OSError, smtplib.SMTPException) as exc:
        for mail in due:
            _failed(ps, mail, now, "connect: " + str(exc))
        return 0
    try:
        for mail in due:
            try:
                smtp.send_message(_message(ps, mail))
                mail.sent_at = utcnow()
                mail.attempts += 1
                sent += 1
            except (OSError, smtplib.SMTPException) as exc:
                _failed(ps, mail, now, str(exc))
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return sent


def _failed(ps: PortalSettings, mail: OutboxEmail, now: dt.datetime, error: str) -> None:
    mail.attempts += 1
    mail.last_error = error[:300]
    mail.next_try_at = now + dt.timedelta(seconds=ps.MAIL_RETRY_BASE_S * 2 ** min(mail.attempts - 1, 12))
    log.warning("email %d to %s failed (attempt %d): %s", mail.id, mail.to_addr, mail.attempts, error)


def run_once(db: Database, ps: PortalSettings) -> tuple[int, int]:
    """One round: (new notifications, emails sent)."""
    from companion.app.service import worker as service_worker

    with db.write_session() as session:
        made = notice_events(session, ps)
        purge(session, ps)
        session.commit()
    made += service_worker.run_once(db, ps)
    with db.write_session() as session:
        sent = send_due(session, ps, not db.settings.is_sqlite)
        session.commit()
    return made, sent


def run(db: Database, ps: PortalSettings, stop: "object | None" = None) -> None:
    """Loop until stop (a threading.Event) is set, or forever."""
    while stop is None or not stop.is_set():  # type: ignore[attr-defined]
        try:
            run_once(db, ps)
        except Exception:  # noqa: BLE001 -- a bad round is logged and the next one tried
            log.exception("worker round failed")
        if stop is not None:
            stop.wait(ps.WORKER_POLL_S)  # type: ignore[attr-defined]
        else:
            time.sleep(ps.WORKER_POLL_S)
