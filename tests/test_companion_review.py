"""What a second attack review of the companion found (issue 9's follow-up), each on a real server process on
loopback: an unauthenticated 500 from a long Content-Length, deadlocks and stale due dates between payments and
handset changes, a reset fee charged twice for one lockout, a reused reference for another lockout, a boolean
lockout id, credit left unapplied when the installment drops, and configuration mistakes taken at start."""

import collections
import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import uuid

import httpx
import pytest

from companion import testing
from tests.companion_doubles import WireHandset
from tests.companion_helpers import PROBLEM
from tests.companion_helpers import new_account as _account
from tests.companion_helpers import new_handset as _handset
from tests.companion_helpers import problem as _problem

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


def _raw(port, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


# ---- 1. a Content-Length of thousands of digits on /sync ---------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/sync", "/api/v1/accounts"])
def test_content_length_of_thousands_of_digits_is_a_problem_not_500(server, path):
    """Leading zeros make a small length thousands of digits long; int() refuses past 4300 digits."""
    length = "0" * 5000 + "2"
    got = _raw(server.port, (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: "
                             f"{testing.ADMIN_KEY}\r\nContent-Length: {length}\r\n\r\n{{}}").encode())
    status = got[9:12]
    assert status in (b"400", b"413"), got[:300]
    assert PROBLEM.encode() in got


# ---- 2. payments against handset changes (PostgreSQL deadlocks, stale due dates) ---------------------------------
def test_payments_beside_handset_moves_neither_deadlock_nor_leave_stale_due_dates(fresh_backend):
    """Installments, schedule changes, handsets moved between accounts, new handsets and policy changes, all at
    once: every request succeeds (no deadlock answered 503), every cent reaches the balance, and every handset
    ends with its account's due date."""
    with testing.ServerProcess(fresh_backend) as srv:
        office = testing.Backoffice(srv.url)
        try:
            a = office.account(installment_cents=1000)["id"]
            b = office.account(installment_cents=500, first_due="2027-03-01")["id"]
            moving = [office.handset(a)["device_id"] for _ in range(4)]

            def one(i):
                with httpx.Client(base_url=srv.url + "/api/v1", headers={"X-API-Key": testing.ADMIN_KEY},
                                  timeout=120) as c:
                    k = i % 5
                    if k == 0:
                        r = c.post(f"/accounts/{a}/payments",
                                   json={"kind": "installment", "amount_cents": 1000, "reference": f"p{i}"})
                    elif k == 1:
                        r = c.patch(f"/handsets/{moving[(i // 5) % 4]}", json={"account_id": b if i % 10 < 5 else a})
                    elif k == 2:
                        r = c.patch(f"/handsets/{moving[(i // 5) % 4]}/desired", json={"policy": {"n": i}})
                    elif k == 3:
                        r = c.patch(f"/accounts/{a}", json={"schedule": "weekly" if i % 10 < 5 else "monthly"})
                    else:
                        r = c.post("/handsets", json={"serial": f"N-{i}-" + uuid.uuid4().hex[:6],
                                                      "account_id": a})
                    return r.status_code

            with cf.ThreadPoolExecutor(20) as pool:
                statuses = collections.Counter(pool.map(one, range(60)))
            assert set(statuses) <= {200, 201}, statuses
            acc = office.call("GET", f"/accounts/{a}")
            assert acc["periods_paid"] * 1000 + acc["credit_cents"] == 12 * 1000
            for account_id in (a, b):
                due = office.call("GET", f"/accounts/{account_id}")["next_due"]
                for did in office.call("GET", f"/accounts/{account_id}")["handsets"]:
                    assert office.handset_view(did)["desired"]["payment_due"] == due, (account_id, did)
        finally:
            office.close()


@pytest.mark.parametrize("how", ["attach", "provision"])
def test_handset_joining_an_account_during_a_payment_gets_the_moved_due_date(fresh_backend, how):
    """A payment is in progress (account locked, its handsets moved, not yet committed) when a handset joins
    the account: the join waits for the payment and takes the due date it set, not the one before it."""
    import threading

    from companion.app import crud
    from companion.app.core.db import Database

    with testing.ServerThread(fresh_backend) as srv, srv.client() as c:
        a = _account(c, installment_cents=1000)["id"]
        lone = _handset(c)["device_id"]
        db = Database(fresh_backend)
        answers = []

        def join():
            if how == "attach":
                answers.append(c.patch(f"/api/v1/handsets/{lone}", json={"account_id": a}))
            else:
                answers.append(c.post("/api/v1/handsets", json={"serial": "JOIN-" + uuid.uuid4().hex[:6],
                                                                "account_id": a}))

        try:
            with db.write_session() as s:
                account = crud.lock_account(s, a)
                crud.record_payment(s, fresh_backend, account, "installment", 1000, "held", None, None)
                t = threading.Thread(target=join)
                t.start()
                t.join(timeout=2)  # the join runs now (it must wait for the payment's lock)
                s.commit()
            t.join(timeout=60)
        finally:
            db.close()
        assert answers and answers[0].status_code in (200, 201), answers
        did = answers[0].json()["device_id"]
        due = c.get(f"/api/v1/accounts/{a}").json()["next_due"]
        assert due == "2027-01-01"
        assert c.get(f"/api/v1/handsets/{did}").json()["desired"]["payment_due"] == due


# ---- 3. a reference reused for another lockout -----------------------------------------------------------------
def test_reference_reused_for_another_lockout_is_409(api):
    """A reset fee's reference sent again naming the handset's next lockout is another payment, not a retry of
    the first: 409, and the first payment (for the earlier lockout) is not handed back as if it were this one."""
    acc = _account(api, reset_fee_cents=100)
    hs = _handset(api, acc["id"])
    w = WireHandset(hs["device_id"], hs["secret"])
    url = f"/api/v1/accounts/{acc['id']}/payments"
    w.sync(api, status={"state": "VIOLATION", "lockout": True, "lockout_id": 57})
    body = {"kind": "reset_fee", "amount_cents": 100, "reference": "fee-57", "device_id": w.device_id}
    first = api.post(url, json=dict(body, lockout_id=57))
    assert first.status_code == 201, first.text
    assert api.post(url, json=dict(body, lockout_id=57)).json()["id"] == first.json()["id"]  # a retry
    assert api.post(url, json=body).json()["id"] == first.json()["id"]  # a retry naming no lockout
    w.sync(api, status={"state": "VIOLATION", "lockout": True, "lockout_id": 58})
    _problem(api.post(url, json=dict(body, lockout_id=58)), 409)
    assert len(api.get(url).json()) == 1


# ---- 4. a boolean lockout id in the handset's report --------------------------------------------------------------
def test_boolean_lockout_id_in_a_report_is_no_lockout(api):
    """JSON true is not a lockout id (Python's bool is an int): the handset shows no lockout, and no reset fee
    can be taken for lockout 1."""
    acc = _account(api, reset_fee_cents=100)
    hs = _handset(api, acc["id"])
    w = WireHandset(hs["device_id"], hs["secret"])
    w.sync(api, status={"state": "VIOLATION", "lockout": True, "lockout_id": True})
    assert api.get(f"/api/v1/handsets/{w.device_id}").json()["lockout_id"] == 0
    _problem(api.post(f"/api/v1/accounts/{acc['id']}/payments",
                      json={"kind": "reset_fee", "amount_cents": 100, "reference": "b1", "device_id": w.device_id}),
             409)


# ---- 5. credit left over when the installment drops ----------------------------------------------------------------
def test_lowering_the_installment_applies_the_credit_held(api):
    """900 cents of credit at 1000 a period; the installment drops to 300: that is three periods paid, and the
    due date (on the account and on its handset) moves three months at once, not at the next payment."""
    acc = _account(api, installment_cents=1000, first_due="2026-12-01")
    hs = _handset(api, acc["id"])
    r = api.post(f"/api/v1/accounts/{acc['id']}/payments",
                 json={"kind": "installment", "amount_cents": 900, "reference": "part"})
    assert r.status_code == 201, r.text
    assert api.get(f"/api/v1/accounts/{acc['id']}").json()["credit_cents"] == 900
    r = api.patch(f"/api/v1/accounts/{acc['id']}", json={"installment_cents": 300})
    assert r.status_code == 200, r.text
    view = r.json()
    assert (view["periods_paid"], view["credit_cents"], view["next_due"]) == (3, 0, "2027-03-01")
    assert api.get(f"/api/v1/handsets/{hs['device_id']}").json()["desired"]["payment_due"] == "2027-03-01"


# ---- 6. configuration mistakes refused at start -----------------------------------------------------------------
def test_master_keys_without_a_key_the_stored_secrets_use_are_refused_at_start(fresh_backend):
    """The operator drops key k1 from MASTER_KEYS before every secret was re-encrypted under k2: a companion
    that started would answer every sync of those handsets 401 and issue no codes or tokens for them. It must
    refuse to start and say which key is missing."""
    with testing.ServerThread(fresh_backend) as srv, srv.client() as c:
        assert _handset(c)["key_id"] == "k1"
    only_k2 = testing.settings_for(fresh_backend.DATABASE_URL, testing.test_master_keys(("k2",)))
    env = testing.env_for(only_k2)
    port = testing.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "companion", "serve", "--port", str(port)], env=env,
                            cwd=str(testing.ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = False
        while proc.poll() is None and not started:
            try:
                started = httpx.get(f"http://127.0.0.1:{port}/api/v1/utils/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                pass
        assert not started, "the companion started without the key its stored secrets need"
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode != 0 and "k1" in err and "MASTER_KEYS" in err, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


@pytest.mark.parametrize("extra", [{"TECH_TOKEN_DEFAULT_S": 0}, {"TECH_TOKEN_DEFAULT_S": -5},
                                   {"TECH_TOKEN_MAX_S": 0},
                                   {"TECH_TOKEN_DEFAULT_S": 7200, "TECH_TOKEN_MAX_S": 3600},
                                   {"TECH_TOKEN_MAX_S": 7 * 86400}])
def test_technician_token_lifetimes_that_make_no_sense_are_refused(tmp_path, extra):
    """A default lifetime of 0 gives tokens that expire as they are issued; a default past the maximum makes
    every request without lifetime_s a 422; a maximum past a day is more than the API documents."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="TECH_TOKEN"):
        testing.settings_for("sqlite:///" + str(tmp_path / "x.db"), testing.test_master_keys(), **extra)
    env = dict(os.environ, ADMIN_API_KEY=testing.ADMIN_KEY, MASTER_KEYS=testing.test_master_keys(),
               DATABASE_URL="sqlite:///" + str(tmp_path / "x.db"), PYTHONPATH=str(testing.ROOT),
               **{k: str(v) for k, v in extra.items()})
    r = subprocess.run([sys.executable, "-m", "companion", "migrate"], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "TECH_TOKEN" in r.stderr and "Traceback" not in r.stderr, r.stderr


# ---- 7. a request head that never ends ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/sync", "/api/v1/accounts"])
def test_endless_request_head_is_cut_off(tmp_path, path):
    """`python -m companion serve`: a header line that never ends (no key, no signature) is answered 431 and
    the connection closed once the head passes 64 kB, where the server used to buffer every byte of it."""
    settings = testing.settings_for("sqlite:///" + str(tmp_path / "c.db"), testing.test_master_keys())
    with testing.ServerProcess(settings) as srv, \
            socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Junk: ".encode())
        sent = 0
        try:
            while sent < 64:  # up to 64 MB, a megabyte at a time
                s.sendall(b"a" * (1 << 20))
                sent += 1
        except OSError:
            pass  # the server closed the connection
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        assert sent < 64 and got.startswith(b"HTTP/1.1 431"), (sent, got[:200])
        assert httpx.get(srv.url + "/api/v1/utils/health").status_code == 200  # and it still serves
