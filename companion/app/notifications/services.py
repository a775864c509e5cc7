"""Notify a user: a stored notification and, unless turned off, an email in the outbox (same transaction)."""

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from companion.app import i18n
from companion.app.accounts.models import User
from companion.app.core.problems import Problem
from companion.app.models import utcnow
from companion.app.notifications.messages import MESSAGES, OPTIONAL_EMAIL
from companion.app.notifications.models import Notification, OutboxEmail

TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def render(kind: str, params: dict[str, Any], lang: str) -> tuple[str, str]:
    """(title, text) of a notification kind in lang."""
    title, body = MESSAGES[kind]
    tr = i18n.gettext_for(lang)
    return tr.gettext(title), tr.gettext(body) % params if params else tr.gettext(body)


def enqueue_email(session: Session, to_addr: str, kind: str, params: dict[str, Any], lang: str,
                  link: str = "", flush: bool = True) -> OutboxEmail:
    """Write an email (plain text and HTML) to the outbox; it is sent by the worker after commit."""
    title, text = render(kind, params, lang)
    env = i18n.environment(TEMPLATES, lang)
    ctx = {"title": title, "text": text, "link": link}
    mail = OutboxEmail(to_addr=to_addr, subject=title, text_body=env.get_template("email.txt").render(ctx),
                       html_body=env.get_template("email.html").render(ctx), attempts=0, next_try_at=utcnow())
    session.add(mail)
    if flush:  # a batch adds many and flushes once
        session.flush()
    return mail


def notify(session: Session, user: User, kind: str, params: dict[str, Any], link: str = "",
           base_url: str = "", dedupe: str | None = None, email: bool = True) -> Notification | None:
    """Store a notification for user and queue its email (per the user's preferences); with a dedupe key,
    an event already notified is not notified again (None)."""
    n = Notification(user_id=user.id, kind=kind, params=params, link=link, dedupe=dedupe, read=False)
    try:
        with session.begin_nested():
            session.add(n)
            session.flush()
    except IntegrityError:
        return None
    if email and (kind not in OPTIONAL_EMAIL or (user.email_prefs or {}).get(kind, True)):
        enqueue_email(session, user.email, kind, params, user.language, base_url + link if link else "")
    return n


def list_for(session: Session, user: User, limit: int = 100) -> list[Notification]:
    """The user's notifications, newest first."""
    return list(session.scalars(select(Notification).where(Notification.user_id == user.id)
                                .order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: Session, user: User) -> int:
    """How many of the user's notifications are unread."""
    return int(session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read.is_(False))) or 0)


def mark_read(session: Session, user: User, notification_id: int) -> Notification:
    """Mark one of the user's notifications read (another user's id: 404)."""
    n = session.get(Notification, notification_id)
    if n is None or n.user_id != user.id:
        raise Problem(404, "not-found", "no such notification")
    n.read = True
    session.flush()
    return n


def mark_all_read(session: Session, user: User) -> None:
    """Mark all of the user's notifications read."""
    session.execute(update(Notification).where(Notification.user_id == user.id).values(read=True))


def due_emails(session: Session, now: dt.datetime, limit: int = 20) -> list[OutboxEmail]:
    """Unsent emails whose next try is due."""
    return list(session.scalars(select(OutboxEmail).where(OutboxEmail.sent_at.is_(None),
                                                          OutboxEmail.next_try_at <= now)
                                .order_by(OutboxEmail.id).limit(limit)))
