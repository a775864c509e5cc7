"""The companion defects of issue 9 (items 10-19), each on a real server: concurrent payments and desired-state
changes, the admin key, authentication and size limits before the body is read, header digits, replay-safe
settings, log rewrites, what the schema and the columns can hold, and a lost database connection."""

import base64
import concurrent.futures as cf
import os
import socket
import stat
import subprocess
import sys

import httpx
import pytest
from pydantic import ValidationError

from companion import testing
from companion.app.core.config import Settings
from tests.companion_doubles import WireHandset
from tests.companion_helpers import PROBLEM
from tests.companion_helpers import new_account as _account
from tests.companion_helpers import new_handset as _handset
from tests.companion_helpers import problem as _problem

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


# ---- 10. concurrent payments ------------------------------------------------------------------------------
def test_parallel_payments_all_reach_the_balance(fresh_backend):
    """50 payments with distinct references at once, over HTTP against `python -m companion serve` (two
    worker processes on SQLite, as the README documents): every cent is credited."""
    workers = 2 if fresh_backend.is_sqlite else 1
    with testing.ServerProcess(fresh_backend, workers=workers) as srv:
        office = testing.Backoffice(srv.url)
        try:
            acc = office.account(installment_cents=1000)
            amounts = [100 + 7 * i for i in range(50)]

            def pay(i):
                with httpx.Client(base_url=srv.url + "/api/v1",
                                  headers={"X-API-Key": testing.ADMIN_KEY}, timeout=60) as c:
                    return c.post(f"/accounts/{acc['id']}/payments",
                                  json={"kind": "installment", "amount_cents": amounts[i],
                                        "reference": f"par-{i}"}).status_code

            with cf.ThreadPoolExecutor(25) as pool:
                statuses = list(pool.map(pay, range(50)))
            assert statuses == [201] * 50
            view = office.call("GET", f"/accounts/{acc['id']}")
            assert view["periods_paid"] * 1000 + view["credit_cents"] == sum(amounts)
            assert len(office.call("GET", f"/accounts/{acc['id']}/payments")) == 50
        finally:
            office.close()


# ---- 11. desired-state versions -----------------------------------------------------------------------------
def test_concurrent_desired_changes_get_distinct_increasing_versions(api):
    """20 policy changes at once: 20 new versions, all distinct, the last one the handset's; the policy's own
    version counts every change."""
    hs = _handset(api)
    did = hs["device_id"]
    url = str(api.base_url)

    def change(i):
        with httpx.Client(base_url=url, headers={"X-API-Key": testing.ADMIN_KEY}, timeout=60) as c:
            return c.patch(f"/api/v1/handsets/{did}/desired", json={"policy": {"limit": i}}).json()

    with cf.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(change, range(20)))
    versions = sorted(a["desired"]["version"] for a in answers)
    assert versions == list(range(2, 22))
    assert sorted(a["desired"]["policy"]["version"] for a in answers) == list(range(1, 21))
    view = api.get(f"/api/v1/handsets/{did}").json()
    assert view["desired"]["version"] == 21 and view["desired"]["policy"]["version"] == 20
    from sqlalchemy import select

    from companion.app.models import DesiredVersion
    with api.app_state.db.sessions() as s:
        rows = s.scalars(select(DesiredVersion.version).where(DesiredVersion.handset_id == did)).all()
    assert sorted(rows) == list(range(1, 22))


# ---- 12. no default admin key -------------------------------------------------------------------------------
def test_no_published_admin_key_is_accepted(tmp_path):
    for key in ("changethis", "changeme", "short"):
        with pytest.raises(ValidationError):
            Settings(ADMIN_API_KEY=key, CONFIG_DIR=str(tmp_path), _env_file=None)
    with pytest.raises(ValidationError, match="ADMIN_API_KEY must be set"):
        Settings(ENVIRONMENT="production", MASTER_KEYS=testing.test_master_keys(), _env_file=None)
    assert "changethis" not in (testing.ROOT / "companion" / "README.md").read_text()


def test_first_local_start_generates_the_admin_key_once(tmp_path):
    """A local companion without ADMIN_API_KEY makes a random key in its config dir (0600, printed once),
    beside the master key file, neither beside the database; the key works and `changethis` does not."""
    conf = tmp_path / "conf"
    db = tmp_path / "data" / "companion.db"
    db.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_API_KEY", "MASTER_KEYS", "MASTER_KEY_ID")}
    env.update(DATABASE_URL="sqlite:///" + str(db), CONFIG_DIR=str(conf),
               PYTHONPATH=str(testing.ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    port = testing.free_port()
    url = "http://127.0.0.1:" + str(port)
    outs = []
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "companion", "serve", "--port", str(port)], env=env,
                                cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            testing.wait_ready(url)
            key = (conf / "admin.key").read_text().strip()
            assert len(key) >= 32
            assert httpx.get(url + "/api/v1/handsets", headers={"X-API-Key": key}).status_code == 200
            assert httpx.get(url + "/api/v1/handsets", headers={"X-API-Key": "changethis"}).status_code == 401
        finally:
            proc.terminate()
            outs.append(proc.communicate(timeout=20)[0].decode())
    assert key in outs[0] and key not in outs[1]
    for name in ("admin.key", "master.key"):
        assert stat.S_IMODE((conf / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in db.parent.iterdir() if "key" in p.name) == []
    assert not any("key" in p.name for p in tmp_path.iterdir())


def test_production_without_admin_key_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_API_KEY",)}
    env.update(ENVIRONMENT="production", MASTER_KEYS=testing.test_master_keys(), CONFIG_DIR=str(tmp_path),
               DATABASE_URL="sqlite:///" + str(tmp_path / "x.db"),
               PYTHONPATH=str(testing.ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "companion", "serve", "--port", str(testing.free_port())], env=env,
                       cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "ADMIN_API_KEY must be set" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "admin.key").exists()


# ---- 13. authenticate before reading; body limits ---------------------------------------------------------
def _raw(server, head: bytes, body: bytes) -> bytes:
    """Send head and part of a body that the head says is far larger; the answer read before the rest."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head + body)
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_unauthenticated_admin_body_is_refused_unread(server):
    """A 100 MB body without the key: 401 as soon as the headers are in, with 4 kB of the body sent (a server
    that read the body first would wait for the rest and never answer)."""
    head = (b"POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000\r\n\r\n")
    got = _raw(server, head, b"[" * 4096)
    assert got.startswith(b"HTTP/1.1 401"), got[:200]
    assert PROBLEM.encode() in got


def test_every_route_bounds_its_body(server, api):
    head = (b"POST /api/v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: "
            + testing.ADMIN_KEY.encode() + b"\r\nContent-Length: 100000000\r\n\r\n")
    got = _raw(server, head, b"[" * 4096)
    assert got.startswith(b"HTTP/1.1 413"), got[:200]

    def chunks():
        for _ in range(200):
            yield b" " * 1024

    # no Content-Length (chunked): cut off while it streams
    r = api.post("/api/v1/accounts", content=chunks(), headers={"content-type": "application/json"})
    _problem(r, 413)
    r = api.patch("/api/v1/handsets/1/desired", content=chunks(), headers={"content-type": "application/json"})
    _problem(r, 413)
    r = httpx.post(server.url + "/api/v1/sync", content=chunks())
    _problem(r, 413)


# ---- 14. header digits ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("header", ["x-device-id", "x-timestamp"])
def test_non_ascii_digits_in_sync_headers_are_401(api, server, header):
    hs = _handset(api)
    w = WireHandset(hs["device_id"], hs["secret"])
    headers, body = w.request()
    headers[header] = "1\u00b2"  # superscript two (Latin-1 0xB2): str.isdigit() says yes, int() says no

    got = _raw(server, ("POST /api/v1/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        + "".join(k + ": " + v + "\r\n" for k, v in headers.items())
                        + "Content-Length: " + str(len(body)) + "\r\n\r\n").encode("latin-1"), body)
    assert got.startswith(b"HTTP/1.1 401"), got[:300]
    got = _raw(server, ("POST /api/v1/sync HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Content-Length: 1\u00b2\r\n\r\n").encode("latin-1"), b"")
    assert got[9:10] == b"4", got[:300]


# ---- 15. replay-safe settings ---------------------------------------------------------------------------------
def test_sync_window_longer_than_nonce_retention_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="NONCE_KEEP_S"):
        testing.settings_for("sqlite:///" + str(tmp_path / "x.db"), testing.test_master_keys(),
                             SYNC_WINDOW_S=1000, NONCE_KEEP_S=900)
    testing.settings_for("sqlite:///x.db", testing.test_master_keys(), SYNC_WINDOW_S=900, NONCE_KEEP_S=900)
    env = dict(os.environ, SYNC_WINDOW_S="1000", NONCE_KEEP_S="900", ADMIN_API_KEY=testing.ADMIN_KEY,
               MASTER_KEYS=testing.test_master_keys(), DATABASE_URL="sqlite:///" + str(tmp_path / "x.db"),
               PYTHONPATH=str(testing.ROOT))
    r = subprocess.run([sys.executable, "-m", "companion", "migrate"], env=env, cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "NONCE_KEEP_S" in r.stderr and "Traceback" not in r.stderr


# ---- 16. log rewrites ----------------------------------------------------------------------------------------
def test_chunk_rewriting_accepted_records_is_kept_as_tampering(api):
    hs = _handset(api)
    w = WireHandset(hs["device_id"], hs["secret"])
    w.append(6)
    w.sync(api, log=w.chunk(1, 4))
    w.sync(api, log=w.chunk(1, 4))  # an honest retry: no trace
    did = w.device_id
    assert api.get(f"/api/v1/handsets/{did}/log/tampering").json() == []
    forged = bytearray(w.encoded[3])  # encoded[seq]
    forged[12] ^= 1
    data = b"".join([w.encoded[2], bytes(forged), w.encoded[4], w.encoded[5], w.encoded[6]])
    _, doc = w.sync(api, log={"first": 2, "data": base64.b64encode(data).decode()})
    assert doc["log_error"] == "rewrite" and doc["log_ack"] == 6  # the new record 6 still chains on
    trace = api.get(f"/api/v1/handsets/{did}/log/tampering").json()
    assert [(t["first_seq"], t["records"]) for t in trace] == [(3, 1)]
    rows = api.get(f"/api/v1/handsets/{did}/log").json()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    from sqlalchemy import select

    from companion.app.models import LogRecord
    with api.app_state.db.sessions() as s:
        raw = s.scalar(select(LogRecord.raw).where(LogRecord.handset_id == did, LogRecord.seq == 3))
    assert bytes(raw) == w.encoded[3]


# ---- 17. what the schema and the columns hold -----------------------------------------------------------------
def test_due_date_past_year_9999_is_422_and_changes_nothing(api):
    acc = _account(api, schedule="weekly", first_due="2150-01-01", installment_cents=1)
    r = api.post(f"/api/v1/accounts/{acc['id']}/payments",
                 json={"kind": "installment", "amount_cents": 10**9, "reference": "huge"})
    _problem(r, 422)
    view = api.get(f"/api/v1/accounts/{acc['id']}").json()
    assert view["periods_paid"] == 0 and api.get(f"/api/v1/accounts/{acc['id']}/payments").json() == []


@pytest.mark.parametrize("name", ["a\u0000b", "tab\there", "bell\u0007", "del\u007f"])
def test_control_characters_in_names_are_422(api, name):
    r = api.post("/api/v1/accounts", json={"name": name, "schedule": "monthly", "first_due": "2026-12-01",
                                           "installment_cents": 9000})
    _problem(r, 422)


def test_booleans_are_not_integers(api):
    acc = _account(api)
    r = api.post(f"/api/v1/accounts/{acc['id']}/payments",
                 json={"kind": "installment", "amount_cents": True, "reference": "bool"})
    _problem(r, 422)
    r = api.post("/api/v1/accounts", json={"name": "x", "schedule": "monthly", "first_due": "2026-12-01",
                                           "installment_cents": True})
    _problem(r, 422)


def test_reference_reused_for_another_kind_or_handset_is_409(api):
    acc = _account(api, reset_fee_cents=100)
    ids = [_handset(api, acc["id"])["device_id"] for _ in range(2)]
    # both handsets report a lockout
    from sqlalchemy import update

    from companion.app.models import Handset
    with api.app_state.db.sessions() as s:
        s.execute(update(Handset).where(Handset.id.in_(ids)).values(lockout_id=7))
        s.commit()
    url = f"/api/v1/accounts/{acc['id']}/payments"
    first = api.post(url, json={"kind": "reset_fee", "amount_cents": 100, "reference": "r1", "device_id": ids[0]})
    assert first.status_code == 201, first.text
    again = api.post(url, json={"kind": "reset_fee", "amount_cents": 100, "reference": "r1", "device_id": ids[0]})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    _problem(api.post(url, json={"kind": "reset_fee", "amount_cents": 100, "reference": "r1",
                                 "device_id": ids[1]}), 409)
    _problem(api.post(url, json={"kind": "installment", "amount_cents": 100, "reference": "r1"}), 409)
    assert len([c for c in api.get(f"/api/v1/handsets/{ids[1]}/commands").json()]) == 0


def test_technician_ids_past_2_31_are_refused(api):
    hs = _handset(api)
    r = api.post(f"/api/v1/handsets/{hs['device_id']}/technician-tokens", json={"tech_id": 2**31})
    _problem(r, 422)
    r = api.post(f"/api/v1/handsets/{hs['device_id']}/technician-tokens", json={"tech_id": 2**31 - 1})
    assert r.status_code == 201, r.text


def test_handset_u32_numbers_are_stored(api):
    """desired_version and last_command_seq are u32 on the handset: 2^32-1 is stored and shown."""
    hs = _handset(api)
    w = WireHandset(hs["device_id"], hs["secret"])
    w.sync(api, desired_version=2**32 - 1, last_command_seq=2**32 - 1)
    view = api.get(f"/api/v1/handsets/{w.device_id}").json()
    assert view["reported_version"] == 2**32 - 1 and view["last_command_seq"] == 2**32 - 1


# ---- 18. a dropped database connection -------------------------------------------------------------------------
@pytest.mark.postgres
def test_dropped_database_connection_is_503_then_recovers(tmp_path):
    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    with testing.fresh_pg_database("pytest") as url:
        settings = testing.settings_for(url, testing.test_master_keys())
        with testing.ServerThread(settings) as srv, srv.client() as c:
            hs = c.post("/api/v1/handsets", json={"serial": "DROP-1"}).json()
            w = WireHandset(hs["device_id"], hs["secret"])
            w.sync(c)
            assert c.get("/api/v1/handsets/" + str(w.device_id)).status_code == 200
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(testing.PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                              "AND pid <> pg_backend_pid()", (name,))
            r = c.get("/api/v1/handsets/" + str(w.device_id))
            _problem(r, 503)
            assert r.headers["retry-after"] == "1"
            headers, body = w.request()
            r = c.post("/api/v1/sync", content=body, headers=headers)
            _problem(r, 503)
            assert r.headers["retry-after"] == "1"
            # the next requests reconnect
            assert c.get("/api/v1/handsets/" + str(w.device_id)).status_code == 200
            w.sync(c)


# ---- 19. the schema documents what the routes answer --------------------------------------------------------------
def test_openapi_documents_problem_statuses(api):
    spec = api.get("/api/v1/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for code in ("400", "401", "404", "409", "413", "422", "503"):
                assert code in op["responses"], (method, path, code)
                assert PROBLEM in op["responses"][code]["content"], (method, path, code)
    codes = spec["paths"]["/api/v1/handsets/{device_id}/unlock-codes"]["post"]["responses"]
    assert "403" in codes and "429" in codes


def test_sqlite_exchange_does_not_write_a_log_head_another_worker_moved(tmp_path):
    """SQLite with two workers: exchange B reads the handset, exchange A (another process) stores other records
    for the same seqs and commits, then B writes. B must not set a log head that is not the stored records'
    (it is refused as busy, nothing of it stored)."""
    from sqlalchemy import select

    from companion.app.core import migrate
    from companion.app.core.db import Database
    from companion.app.core.keyring import Keyring
    from companion.app.core.problems import Problem
    from companion.app.models import Handset
    from companion.app.sync.dbapi_store import DbApiStore
    from companion.app.sync.protocol import SyncService

    settings = testing.settings_for("sqlite:///" + str(tmp_path / "c.db"), testing.test_master_keys())
    migrate.upgrade(settings)
    db = Database(settings)
    keyring = Keyring(settings)
    from companion.app import crud
    from companion.app.schemas import HandsetCreate
    with db.write_session() as s:
        h, secret = crud.provision_handset(s, keyring, HandsetCreate(serial="RACE-1"))
        s.commit()
    a = WireHandset(h.id, secret.hex())
    b = WireHandset(h.id, secret.hex())
    a.append(4)
    b.append(4, wall=92000000)  # the same seqs, another chain
    req_a = a.request(log=a.chunk(1, 4))
    req_b = b.request(log=b.chunk(1, 4))
    service = SyncService(settings, keyring)
    plan = service.plan

    def plan_then_other_worker(*args):
        out = plan(*args)
        if service.plan is not plan:  # once: A runs to commit between B's read and B's writes
            service.plan = plan
            with db.sessions() as other:
                DbApiStore(SyncService(settings, keyring)).handle(other, *req_a)
        return out

    service.plan = plan_then_other_worker
    with db.sessions() as session:
        try:
            DbApiStore(service).handle(session, *req_b)
            refused = None
        except Problem as exc:
            refused = exc.status
    with db.sessions() as s:
        row = s.scalar(select(Handset).where(Handset.id == h.id))
        assert (row.log_seq, row.log_hash) == (4, a.hashes[4].hex())
    db.close()
    assert refused == 409


def test_migration_0002_keeps_data_and_records_current_versions(backend):
    """A database at 0001 with a handset and a command upgrades to head: the rows stay, the handset's current
    desired version is recorded, and the widened columns take 2^32-1."""
    import contextlib

    from alembic import command
    from sqlalchemy import create_engine, text

    from companion.app.core import migrate

    with contextlib.ExitStack() as stack:
        if backend.is_sqlite:
            url = backend.DATABASE_URL.replace("companion.db", "migrate.db")
        else:
            url = stack.enter_context(testing.fresh_pg_database("pytest"))
        settings = testing.settings_for(url, testing.test_master_keys())
        cfg = migrate.alembic_config(settings)
        command.upgrade(cfg, "0001")
        engine = create_engine(settings.sync_database_url)
        with engine.begin() as c:
            c.execute(text("INSERT INTO handsets (id, serial, key_id, secret_nonce, secret_ct, desired_version, "
                           "payment_due_day, service_due_day, inspection_due_day, expected_module, policy, "
                           "command_seq, code_counter, reported_version, last_command_seq, lockout_id, log_seq, "
                           "log_hash, log_error, syncs, created_at) VALUES (1, 'M-1', 'k1', :b, :b, 5, 0, 0, 0, 0, "
                           "'{}', 1, 0, 0, 0, 0, 0, '', '', 0, CURRENT_TIMESTAMP)"), {"b": b"x"})
        command.upgrade(cfg, "head")
        with engine.begin() as c:
            assert c.execute(text("SELECT handset_id, version FROM desired_versions")).all() == [(1, 5)]
            c.execute(text("UPDATE handsets SET reported_version = 4294967295, last_command_seq = 4294967295"))
            assert c.execute(text("SELECT reported_version FROM handsets")).scalar() == 2**32 - 1
        engine.dispose()


@pytest.mark.parametrize("name", ["ConnectionDoesNotExistError", "InterfaceError", "AdminShutdownError",
                                  "InternalClientError"])
def test_every_way_asyncpg_reports_a_lost_connection_is_503(name):
    """A backend terminated under the sync fast path surfaces as one of several asyncpg errors, depending on
    where the protocol was (seen: InternalClientError "cannot switch to state 12" mid-statement); each is a
    503 with Retry-After, never a 500."""
    import asyncio

    import asyncpg
    import httpx
    from fastapi import FastAPI

    from companion.app.core import problems

    app = FastAPI()
    problems.install(app)
    cls = getattr(asyncpg.exceptions, name)

    @app.get("/boom")
    def boom():
        raise cls("connection lost")

    async def get():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/boom")

    r = asyncio.run(get())
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
