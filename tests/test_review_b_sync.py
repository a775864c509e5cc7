"""Adversarial review of the sync exchange: a man in the middle holding a handset's request back and
delivering it after a newer one (each request is signed and its nonce is new, so neither is a replay).

A store writes a request's report only when it is newer than the stored one (protocol.report_order: the
status's log_next_seq, then the device timestamp); an older request still gets its log records stored and a
normal answer. The same checks run on SQLite, on PostgreSQL through the asyncpg store, and on PostgreSQL
through the psycopg store (SYNC_ASYNCPG off)."""

import contextlib
import threading

import httpx
import pytest

from tests.companion_doubles import WireHandset
from tests.companion_helpers import new_account as _account
from tests.companion_helpers import new_handset as _handset

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)

LOCKED = {"state": "VIOLATION", "lockout": True, "lockout_id": 57}
OVER = {"state": "OFF", "lockout": False}


def _wire(api, **account):
    acc = _account(api, reset_fee_cents=100, **account)
    hs = _handset(api, acc["id"])
    return WireHandset(hs["device_id"], hs["secret"])


def _view(api, w):
    r = api.get(f"/api/v1/handsets/{w.device_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _post(api, w, headers, body):
    """Deliver a request built earlier; its answer checked like WireHandset.sync does."""
    from interlock import wire

    r = api.post("/api/v1/sync", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert wire.verify_response(w.key, w.device_id, headers[wire.H_NONCE], 200,
                                {k.lower(): v for k, v in r.headers.items()}, r.content)
    return r.json()


def _now():
    from companion.app.core import timebase

    return timebase.device_now()


def check_held_back_request_does_not_roll_the_report_back(api):
    """The handset reports lockout 57 (request A); a man in the middle holds A back, the handset retries with
    a newer report (request B: the lockout is over). Delivered B then A, the companion must keep B's state:
    otherwise it shows a lockout that is over and takes a reset fee for it."""
    w = _wire(api)
    now = _now()
    headers, body = w.request(status=LOCKED, ts=now - 60)
    w.sync(api, status=OVER, ts=now)
    _post(api, w, headers, body)
    view = _view(api, w)
    assert view["lockout_id"] == 0 and view["reported"]["lockout"] is False
    # two held back, delivered oldest first: the first must not lower the bar for the second
    oldest = w.request(status={**LOCKED, "lockout_id": 58}, ts=now + 1)
    middle = w.request(status={**LOCKED, "lockout_id": 59}, ts=now + 2)
    w.sync(api, status=OVER, ts=now + 3)
    _post(api, w, *oldest)
    _post(api, w, *middle)
    view = _view(api, w)
    assert view["lockout_id"] == 0 and view["reported"] == OVER


def test_a_request_held_back_and_delivered_after_a_newer_one_does_not_roll_the_report_back(api):
    check_held_back_request_does_not_roll_the_report_back(api)


def check_late_request_keeps_its_records_and_gets_a_normal_answer(api):
    """Requests that crossed in flight: the older one (lockout 57, records 1-3, desired version 0) arrives
    after the newer one (no records, desired version applied). Its records are stored, the chain goes on
    verifying from them, its answer carries the desired state; the report (and reported_version) stay B's."""
    w = _wire(api)
    w.append(6)
    now = _now()
    version = _view(api, w)["desired"]["version"]
    headers, body = w.request(status=LOCKED, log=w.chunk(1, 3), desired_version=0, ts=now - 30)
    w.sync(api, status=OVER, desired_version=version, ts=now - 10)
    doc = _post(api, w, headers, body)
    assert doc["log_ack"] == 3 and doc["log_error"] == "" and doc["log_hash"]
    assert doc["desired"] is not None and doc["desired"]["version"] == version
    view = _view(api, w)
    assert view["log_seq"] == 3 and view["log_error"] == ""
    assert view["lockout_id"] == 0 and view["reported"] == OVER and view["reported_version"] == version
    # the chain goes on from the late request's records
    _, doc = w.sync(api, status=OVER, desired_version=version, log=w.chunk(4, 6), ts=now)
    assert doc["log_ack"] == 6 and doc["log_error"] == ""
    view = _view(api, w)
    assert view["log_seq"] == 6 and view["log_error"] == "" and view["reported"] == OVER


def test_a_late_request_keeps_its_log_records_and_the_chain_verifies(api):
    check_late_request_keeps_its_records_and_gets_a_normal_answer(api)


def check_equal_timestamps(api):
    """Reports in the same device second: the handset took an answer (a clear, say) and reported again within
    the second; its log_next_seq went up (it logs every answer), so the later report is applied and the one
    held back from before it is not. The same second and the same log_next_seq (nothing logged in between):
    the later arrival is applied; without log_next_seq the timestamp alone orders, equal is applied too."""
    w = _wire(api)
    now = _now()
    held = w.request(status={**LOCKED, "log_next_seq": 9}, ts=now)
    w.sync(api, status={**LOCKED, "log_next_seq": 9}, ts=now)
    assert _view(api, w)["lockout_id"] == 57
    w.sync(api, status={**OVER, "log_next_seq": 10}, ts=now)
    assert _view(api, w)["lockout_id"] == 0
    doc = _post(api, w, *held)
    assert doc["log_error"] == ""
    view = _view(api, w)
    assert view["lockout_id"] == 0 and view["reported"]["log_next_seq"] == 10
    w.sync(api, status={**OVER, "log_next_seq": 10, "display": ["ready"]}, ts=now)
    assert _view(api, w)["reported"]["display"] == ["ready"]
    # no log_next_seq at all: the timestamp alone
    w2 = _wire(api)
    held = w2.request(status=LOCKED, ts=now - 1)
    w2.sync(api, status=LOCKED, ts=now)
    w2.sync(api, status=OVER, ts=now)
    assert _view(api, w2)["lockout_id"] == 0
    _post(api, w2, *held)
    assert _view(api, w2)["lockout_id"] == 0


def test_equal_timestamps_a_higher_log_seq_is_newer_and_a_tie_takes_the_later_arrival(api):
    check_equal_timestamps(api)


def check_clock_set_back(api):
    """The handset's clock was set back (the companion corrects a clock more than a minute off): its later
    reports carry older timestamps but a higher log_next_seq (it logs the change), and are applied; a request
    held back from before the change is not."""
    w = _wire(api)
    now = _now()
    held, held_body = w.request(status={**LOCKED, "log_next_seq": 11}, ts=now + 100)
    w.sync(api, status={**LOCKED, "log_next_seq": 10}, ts=now + 90)
    w.sync(api, status={**OVER, "log_next_seq": 14}, ts=now - 20)
    assert _view(api, w)["lockout_id"] == 0
    _post(api, w, held, held_body)
    view = _view(api, w)
    assert view["lockout_id"] == 0 and view["reported"]["log_next_seq"] == 14


def test_a_clock_set_back_does_not_hold_the_reports_back(api):
    check_clock_set_back(api)


def check_two_at_once(api):
    """Two requests of one handset at once, in either order: the newer report wins every time."""
    w = _wire(api)
    now = _now()
    with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=30) as other:
        for i in range(8):
            older = w.request(status={**LOCKED, "lockout_id": 100 + i, "log_next_seq": 10 * i + 1}, ts=now)
            newer = w.request(status={**LOCKED, "lockout_id": 200 + i, "log_next_seq": 10 * i + 2}, ts=now)
            pair = [older, newer] if i % 2 else [newer, older]
            gate = threading.Barrier(2)
            codes: list[int] = []

            def send(client, req, gate=gate, codes=codes):
                gate.wait()
                codes.append(client.post("/api/v1/sync", content=req[1], headers=req[0]).status_code)

            threads = [threading.Thread(target=send, args=(c, r)) for c, r in zip((api, other), pair, strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert codes == [200, 200]
            assert _view(api, w)["lockout_id"] == 200 + i


def test_two_requests_at_once_the_newer_report_wins(api):
    check_two_at_once(api)


class _Counting:
    """An asyncpg connection that counts the statements sent through it (each is one round trip)."""

    def __init__(self, conn, calls):
        self._conn = conn
        self._calls = calls

    def __getattr__(self, name):
        attr = getattr(self._conn, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute", "executemany", "transaction"):
            def counted(*args, **kw):
                self._calls.append(name)
                return attr(*args, **kw)
            return counted
        return attr


def test_a_late_request_stays_one_round_trip_on_asyncpg(api, monkeypatch):
    """The fast path (no acknowledgements, keys and log head known) answers a held-back request with one
    statement, as it answers the newer one: the order is decided inside its UPDATE."""
    store = api.app_state.pg_sync
    if store is None:
        pytest.skip("the asyncpg store runs on PostgreSQL only")
    w = _wire(api)
    now = _now()
    w.sync(api, status=OVER, ts=now - 90)  # this process now knows the handset's keys and log head
    late = w.request(status=LOCKED, ts=now - 60)
    calls: list[str] = []
    original = store.connection

    @contextlib.asynccontextmanager
    async def counting():
        async with original() as conn:
            yield _Counting(conn, calls)

    monkeypatch.setattr(store, "connection", counting)
    w.sync(api, status=OVER, ts=now)
    assert calls == ["fetch"]
    _post(api, w, *late)
    assert calls == ["fetch", "fetch"]
    assert _view(api, w)["lockout_id"] == 0


def test_the_order_of_a_report():
    """log_next_seq first, then the timestamp; a missing, boolean or negative log_next_seq counts as 0; the
    order fits a signed 64-bit column."""
    from companion.app.sync.protocol import report_order

    assert report_order({}, 5) == 5
    assert report_order({"log_next_seq": True}, 5) == 5
    assert report_order({"log_next_seq": -3}, 5) == 5
    assert report_order({"log_next_seq": "9"}, 5) == 5
    assert report_order({"log_next_seq": 2}, 0) > report_order({"log_next_seq": 1}, 2**32 - 1)
    assert report_order({"log_next_seq": 2**62}, 2**32 - 1) < 2**63


@pytest.mark.postgres
def test_the_psycopg_store_on_postgres_keeps_the_newer_report():
    """With SYNC_ASYNCPG off, PostgreSQL syncs go through the blocking psycopg store: the same checks."""
    from companion import testing

    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    checks = (check_held_back_request_does_not_roll_the_report_back,
              check_late_request_keeps_its_records_and_gets_a_normal_answer, check_equal_timestamps,
              check_clock_set_back, check_two_at_once)
    with testing.fresh_pg_database("pytest") as url:
        settings = testing.settings_for(url, testing.test_master_keys(), SYNC_ASYNCPG=False)
        with testing.ServerThread(settings) as srv, srv.client() as api:
            assert srv.app.state.pg_sync is None
            for check in checks:
                check(api)
