"""Several outbox workers on one database: two `python -m companion worker` processes on one PostgreSQL
deliver each email exactly once (a real aiosmtpd server counts what it receives); an email claimed by a worker
that dies is not sent by another while the claim's lease holds, and is sent once after it ends; a worker sends
nothing once its lease is too short for a send, and records nothing for an email claimed again."""

import contextlib
import datetime as dt
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from companion import testing
from companion.app.core import migrate
from companion.app.core.db import Database
from companion.app.notifications import worker
from companion.app.notifications.models import OutboxEmail
from companion.app.portal.config import PortalSettings

pytest_plugins = ["tests.portal_support"]  # the `mail` fixture: a real SMTP server (aiosmtpd)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def fast_portal_settings(smtp_port, **extra):
    """The worker's settings for these tests: mail to the test SMTP server, retries after 1 s."""
    return PortalSettings(_env_file=None, SMTP_PORT=smtp_port, MAIL_RETRY_BASE_S=1, **extra)


@pytest.fixture(params=BACKENDS)
def outbox_db(request, tmp_path):
    """A fresh, migrated database of each backend, and whether it is PostgreSQL."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = "sqlite:///" + str(tmp_path / "outbox.db")
        else:
            reason = testing.pg_unavailable_reason()
            if reason:
                pytest.skip(reason)
            url = stack.enter_context(testing.fresh_pg_database("pytest_outbox"))
        settings = testing.settings_for(url, testing.test_master_keys())
        migrate.upgrade(settings)
        db = Database(settings)
        stack.callback(db.close)
        yield db, request.param == "postgres"


def _queue(db, n, tag):
    """n emails in the outbox, due now, to addresses unique to this test (tag); their ids."""
    with db.sessions() as s:
        tag = "%s-%d" % (tag, time.time_ns())
        rows = [OutboxEmail(to_addr="%s-%d@example.org" % (tag, i), subject="s", text_body="t", html_body="<p>h</p>",
                            attempts=0, next_try_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
                for i in range(n)]
        s.add_all(rows)
        s.commit()
        ids = [r.id for r in rows]
        _ADDRESSES.update({r.id: r.to_addr for r in rows})
        return ids


_ADDRESSES: dict[int, str] = {}


def _received(mail, ids):
    """How many times the SMTP server received each of the outbox emails ids (by their unique address)."""
    wanted = {_ADDRESSES[i] for i in ids}
    with mail.lock:
        return Counter(str(m["To"]) for m in mail.messages if str(m["To"]) in wanted)


@pytest.mark.postgres
def test_two_worker_processes_on_postgresql_send_each_email_once(mail, tmp_path):
    """120 due emails, two `python -m companion worker` processes on one PostgreSQL database: every email
    arrives exactly once, and the outbox records each as sent once."""
    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with testing.fresh_pg_database("pytest_outbox2") as url:
        settings = testing.settings_for(url, testing.test_master_keys())
        migrate.upgrade(settings)
        db = Database(settings)
        try:
            ids = _queue(db, 120, "two")
            env = testing.env_for(settings)
            env.update(PORTAL_SMTP_PORT=str(mail.port), PORTAL_WORKER_POLL_S="0.05")
            procs = [subprocess.Popen([sys.executable, "-m", "companion", "worker"], env=env, cwd=tmp_path)
                     for _ in range(2)]
            try:
                deadline = time.monotonic() + 90
                while sum(_received(mail, ids).values()) < len(ids) and time.monotonic() < deadline:
                    assert all(p.poll() is None for p in procs), "a worker exited"
                    time.sleep(0.2)
                time.sleep(1.0)  # a second sending of anything would show by now
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(timeout=30)
            got = _received(mail, ids)
            assert set(got) == {_ADDRESSES[i] for i in ids}
            assert max(got.values()) == 1, [k for k, v in got.items() if v > 1]
            with db.sessions() as s:
                assert s.scalar(select(func.count()).select_from(OutboxEmail)
                                .where(OutboxEmail.id.in_(ids), OutboxEmail.sent_at.is_not(None))) == len(ids)
                assert set(s.scalars(select(OutboxEmail.attempts).where(OutboxEmail.id.in_(ids)))) == {1}
        finally:
            db.close()


def test_a_claim_whose_worker_died_waits_for_its_lease_then_goes_once(outbox_db, mail):
    """Worker A claims the due emails and dies before sending; worker B sends none of them while A's lease
    holds, all of them once after it ends, and nothing more on the next round."""
    db, postgres = outbox_db
    ps = fast_portal_settings(mail.port, MAIL_LEASE_S=120)
    ids = _queue(db, 5, "died")
    t0 = dt.datetime.now(dt.UTC)
    with db.sessions() as a:
        claimed, lease_until = worker.claim_due(a, ps, postgres, now=t0)
        assert [m.id for m in claimed] == ids and lease_until == t0 + dt.timedelta(seconds=120)
    # A is gone: its session closed without sending anything
    with db.sessions() as b:
        assert worker.send_due(b, ps, postgres, now=t0 + dt.timedelta(seconds=60)) == 0
        assert worker.send_due(b, ps, postgres, now=t0 + dt.timedelta(seconds=119)) == 0
        assert sum(_received(mail, ids).values()) == 0
        assert worker.send_due(b, ps, postgres, now=t0 + dt.timedelta(seconds=121)) == len(ids)
        assert worker.send_due(b, ps, postgres, now=t0 + dt.timedelta(seconds=600)) == 0
    got = _received(mail, ids)
    assert len(got) == len(ids) and set(got.values()) == {1}
    with db.sessions() as s:
        rows = s.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(ids))).all()
        assert all(r.sent_at is not None and r.attempts == 2 for r in rows)  # A's claim counted as a try


def test_no_email_is_handed_over_once_the_lease_is_too_short_for_a_send(outbox_db, mail):
    """With less of the lease left than a send may take (SMTP timeout + margin), the worker sends nothing and
    the emails stay claimed until the lease ends: never two workers sending one email."""
    db, postgres = outbox_db
    ps = fast_portal_settings(mail.port, MAIL_LEASE_S=10, SMTP_TIMEOUT_S=6)  # 10 - 6 - 5 < 0: no time to send
    ids = _queue(db, 3, "short")
    t0 = dt.datetime.now(dt.UTC)
    with db.sessions() as s:
        assert worker.send_due(s, ps, postgres, now=t0) == 0
        rows = s.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(ids))).all()
        assert all(r.sent_at is None and r.attempts == 1 for r in rows)
        assert all(_utc(r.next_try_at) == t0 + dt.timedelta(seconds=10) for r in rows)
    assert sum(_received(mail, ids).values()) == 0


def test_a_worker_records_nothing_for_an_email_claimed_again(outbox_db, mail):
    """A worker whose lease ran out and whose email another worker claimed cannot mark it sent or failed."""
    db, postgres = outbox_db
    ps = fast_portal_settings(mail.port, MAIL_LEASE_S=60)
    (mail_id,) = _queue(db, 1, "again")
    t0 = dt.datetime.now(dt.UTC)
    with db.sessions() as a, db.sessions() as b:
        (mine,), lease_a = worker.claim_due(a, ps, postgres, now=t0)
        (theirs,), lease_b = worker.claim_due(b, ps, postgres, now=t0 + dt.timedelta(seconds=61))
        assert mine.id == theirs.id == mail_id and lease_b > lease_a
        assert not worker._settle(a, worker.contextlib.nullcontext, mine, lease_a, sent_at=dt.datetime.now(dt.UTC))
        assert worker._settle(b, worker.contextlib.nullcontext, theirs, lease_b, sent_at=dt.datetime.now(dt.UTC))
    with db.sessions() as s:
        row = s.get(OutboxEmail, mail_id)
        assert row.sent_at is not None and row.attempts == 2


def _utc(t):
    """t as an aware UTC time (SQLite hands back naive ones)."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def test_concurrent_claims_never_share_an_email(outbox_db):
    """Eight claimers racing over 400 due emails: every email is claimed by exactly one (on PostgreSQL through
    FOR UPDATE SKIP LOCKED; on SQLite each claim is one statement under the write lock)."""
    import threading

    db, postgres = outbox_db
    ps = PortalSettings(_env_file=None, MAIL_LEASE_S=600)
    ids = _queue(db, 400, "race")
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer():
        start.wait()
        with db.sessions() as s:
            while True:
                got, _lease = worker.claim_due(s, ps, postgres)
                if not got:
                    return
                with lock:
                    claimed.extend(m.id for m in got)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(claimed)
    assert sorted(counts) == ids and set(counts.values()) == {1}
