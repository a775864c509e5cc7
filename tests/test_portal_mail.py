"""The outbox and the worker: emails are written in the event's transaction (a rolled-back event sends
nothing), delivered over real SMTP (aiosmtpd) as plain text + HTML, retried with a growing wait while the
server is down, in the user's language; reminders go out once; `python -m companion worker --once` works."""

import datetime as dt
import subprocess
import sys

from sqlalchemy import select, update

from companion import testing
from companion.app.notifications.models import Notification, OutboxEmail

pytest_plugins = ["tests.portal_support"]


def _utc(t):
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def test_rolled_back_event_leaves_no_email(world):
    """An email change refused half-way (the transaction rolls back) leaves nothing in the outbox."""
    from companion.app.accounts import services as accounts
    from companion.app.accounts.models import User

    d = world.driver()
    with world.session() as s:
        before = len(s.scalars(select(OutboxEmail.id)).all())
        user = s.get(User, d["user_id"])
        accounts.request_email_change(s, world.ctx, user, "moved-%d@example.org" % d["user_id"], "correct horse 42")
        assert len(s.scalars(select(OutboxEmail.id)).all()) == before + 1
        s.rollback()
        assert len(s.scalars(select(OutboxEmail.id)).all()) == before


def test_smtp_down_is_retried_then_delivered(world, mail):
    """With the SMTP server unreachable the email waits with a growing delay; once it answers, it is sent."""
    from companion.app.notifications import worker

    d = world.driver(claim=False)
    down = world.ctx.ps.model_copy(update={"SMTP_PORT": testing.free_port()})
    db = world.app.state.db
    with db.sessions() as s:
        mail_id = s.scalar(select(OutboxEmail.id).where(OutboxEmail.to_addr == d["email"]))
        # only this email is due: earlier tests' mail is out of the way
        s.execute(update(OutboxEmail).where(OutboxEmail.id != mail_id, OutboxEmail.sent_at.is_(None))
                  .values(sent_at=dt.datetime.now(dt.UTC)))
        s.commit()
    t0 = dt.datetime.now(dt.UTC)
    for attempt, wait_s in ((1, 1), (2, 2), (3, 4)):  # MAIL_RETRY_BASE_S = 1, doubling
        with db.sessions() as s:
            assert worker.send_due(s, down, not db.settings.is_sqlite, now=t0) == 0
            s.commit()
            row = s.get(OutboxEmail, mail_id)
            assert row.sent_at is None and row.attempts == attempt and row.last_error.startswith("connect")
            assert _utc(row.next_try_at) == t0 + dt.timedelta(seconds=wait_s)
            # not due before its time
            assert worker.send_due(s, down, not db.settings.is_sqlite, now=t0) == 0
            assert s.get(OutboxEmail, mail_id).attempts == attempt
            t0 = t0 + dt.timedelta(seconds=wait_s)
    with db.sessions() as s:
        s.execute(update(OutboxEmail).where(OutboxEmail.id == mail_id).values(
            next_try_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        s.commit()
    assert mail.to(d["email"]) == []
    world.deliver()
    got = mail.to(d["email"])
    assert len(got) == 1
    msg = got[0]
    assert msg.is_multipart() and mail.text(msg) and mail.html(msg).lstrip().startswith("<!doctype html>")
    assert d["claim_url"] in mail.text(msg) and d["claim_url"] in mail.html(msg)
    world.deliver()
    assert len(mail.to(d["email"])) == 1  # sent once


def test_emails_are_in_the_users_language(world, mail):
    """A Spanish-speaking driver's claim email is in Spanish."""
    d = world.driver(claim=False, language="es")
    world.deliver()
    msg = mail.to(d["email"])[-1]
    assert "Su cuenta del portal" in str(msg["Subject"]) and "Siga el enlace" in mail.text(msg)


def test_payment_reminder_once_and_per_preference(world, mail):
    """A payment due within the reminder window is notified once; with the preference off, no email."""
    soon = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    on = world.driver(first_due=soon)
    off = world.driver(first_due=soon)
    from companion.app.accounts.models import User
    from companion.app.portal import services as portal

    with world.session() as s:
        portal.update_profile(s, s.get(User, off["user_id"]), {"email_prefs": {"payment-due": False}})
        s.commit()
    world.deliver()
    world.deliver()
    with world.session() as s:
        for d in (on, off):
            kinds = s.scalars(select(Notification.kind).where(Notification.user_id == d["user_id"])).all()
            assert kinds.count("payment-due") == 1
    assert sum("Payment due soon" in str(m["Subject"]) for m in mail.to(on["email"])) == 1
    assert not any("Payment due soon" in str(m["Subject"]) for m in mail.to(off["email"]))


def test_worker_command_line_delivers(world, mail, portal_backend):
    """`python -m companion worker --once` delivers the outbox to the configured SMTP server."""
    d = world.driver(claim=False)
    env = testing.env_for(portal_backend)
    env.update(PORTAL_SMTP_PORT=str(mail.port), PORTAL_ARGON2_MEMORY_KIB="1024", PORTAL_ARGON2_TIME_COST="1",
               PORTAL_ARGON2_PARALLELISM="1")
    out = subprocess.run([sys.executable, "-m", "companion", "worker", "--once"], env=env, cwd=str(testing.ROOT),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "emails sent" in out.stdout
    assert mail.to(d["email"])


def test_worker_purges_expired_sessions_tokens_and_old_attempts(world):
    """Expired sessions, long-expired tokens and attempts older than two windows are deleted; live ones stay."""
    from companion.app.accounts.models import AuthToken, LoginFailure, WebSession

    d = world.driver()
    live = world.browser(d["email"])
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with world.session() as s:
        s.add(WebSession(token_hash="e" * 64, user_id=d["user_id"], csrf="c", expires_at=old))
        s.add(AuthToken(token_hash="f" * 64, kind="reset", user_id=d["user_id"], expires_at=old))
        s.add(LoginFailure(scope="login:id:old", at=old))
        s.commit()
    world.deliver()
    with world.session() as s:
        assert s.scalar(select(WebSession).where(WebSession.token_hash == "e" * 64)) is None
        assert s.scalar(select(AuthToken).where(AuthToken.token_hash == "f" * 64)) is None
        assert s.scalar(select(LoginFailure).where(LoginFailure.scope == "login:id:old")) is None
    assert live.get("/portal/dashboard").status_code == 200
    live.close()
