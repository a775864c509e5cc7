"""Portal benchmarks: the signed-in dashboard under 50 concurrent sessions on SQLite and PostgreSQL beside the
trivial health endpoint of the same server in the same run; the cost of a sign-in (Argon2id, parameters
stated) and how many sign-ins per second the box sustains; the dashboard's page weight.

    .venv/bin/python bench/portal.py [--sessions 50] [--seconds 8] [--workers 2]

Results go to bench/results/portal.txt. Targets: dashboard p99 < 50 ms and dashboard/trivial >= 0.3;
page weight < 100 KB.
"""

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "lib"))

from loadgen import run_load  # noqa: E402

import host_sim  # noqa: E402,F401  (firmware on sys.path)
from companion import testing  # noqa: E402
from companion.app.portal.config import PortalSettings  # noqa: E402

PASSWORD = "bench pass 42"


def _status(device_id):
    return {"state": "OFF", "display": ["", ""], "lockout": True, "lockout_id": 40, "lock_cause": 5,
            "violations": 3, "recall_deadline": 0, "temp_lock_until": 0, "payment_due": 1065, "service_due": 0,
            "inspection_due": 0, "policy_version": 0, "desired_version": 1, "module_serial": 1001,
            "module_expiry": 1421, "last_command_seq": 0, "log_next_seq": 41, "log_acked": 40, "wall": 0,
            "device_id": device_id, "provisioned": True, "firmware": "0.1.0"}


def _seed(settings, sessions, ps):
    """`sessions` drivers, each with an account, a handset that has reported, a notification, auto-pay on with a
    card, a program end date and a booked inspection (so every part of the dashboard has something to show)."""
    from sqlalchemy import update

    from companion.app import crud
    from companion.app.accounts import services as accounts
    from companion.app.accounts import staff
    from companion.app.billing.models import DeviceAutopay, PaymentMethod
    from companion.app.core.db import Database
    from companion.app.core.keyring import Keyring
    from companion.app.models import Handset
    from companion.app.notifications import services as notes
    from companion.app.portal.context import PortalContext
    from companion.app.schemas import AccountCreate, HandsetCreate
    from companion.app.service import centers
    from companion.app.service.models import Appointment, Program

    db = Database(settings)
    ctx = PortalContext.build(settings, ps, Keyring(settings))
    emails = []
    week = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    visit = int(time.time()) + 5 * 86400
    with db.sessions() as s:
        center = centers.create_center(s, None, "Bench Center", "1 Main St", "85004", week,
                                       ["calibration", "inspection"], 100, 30, "")
        for i in range(sessions):
            terms = AccountCreate(name="Driver %d" % i, schedule="monthly", installment_cents=9000,
                                  first_due=dt.date.today() + dt.timedelta(days=9))
            account, inv = staff.open_driver_account(s, ctx, None, terms, "bench%d@example.org" % i)
            h, _secret = crud.provision_handset(s, ctx.keyring, HandsetCreate(serial="B-%05d" % i))
            staff.link_device(s, None, account.id, "interlock", h.id, "Car")
            accounts.claim(s, ctx, inv.claim_url.rsplit("/", 1)[1], PASSWORD)
            s.execute(update(Handset).where(Handset.id == h.id).values(
                reported=_status(h.id), last_sync_at=dt.datetime.now(dt.UTC), lockout_id=40))
            notes.notify(s, inv.user, "payment-due", {"amount": "$90.00", "date": "2030-01-01"})
            card = PaymentMethod(account_id=account.id, gateway="sandbox", token="tok_bench_%d" % i, brand="visa",
                                 last4="4242", exp_month=12, exp_year=2031, primary=True)
            s.add(card)
            s.flush()
            s.add(DeviceAutopay(handset_id=h.id, account_id=account.id, autopay=True, method_id=card.id))
            s.add(Program(account_id=account.id, jurisdiction="AZ",
                          ends_on=dt.date.today() + dt.timedelta(days=200)))
            s.add(Appointment(account_id=account.id, center_id=center.id, kind="inspection", status="booked",
                              starts_ts=visit, note=""))
            emails.append(inv.user.email)
        s.commit()
    db.close()
    return emails


def _tree_cpu(pid):
    """CPU seconds (user + system) used so far by process pid and all its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents = {}
    cpu = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(cpu.get(p, 0.0) for p in tree)


def _postgres_cpu():
    """CPU seconds used so far by this machine's PostgreSQL processes (Linux /proc; 0 when none runs here)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as f:
                if f.read().strip() != "postgres":
                    continue
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _transactions(url):
    """The database's committed transactions so far (PostgreSQL's statistics; None on SQLite). Each statement the
    server sends outside a transaction block is one. Statistics reach the view within a second."""
    if not url.startswith("postgresql"):
        return None
    import psycopg

    time.sleep(1.2)
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def _phase(srv, port, queues, seconds, concurrency, url):
    """One measured phase: the load generator's numbers plus the server's and the local PostgreSQL's CPU per
    request, and on PostgreSQL the statements per request."""
    tx0 = _transactions(url)
    cpu0, db0 = _tree_cpu(srv.proc.pid), _postgres_cpu()
    out = run_load(port, queues, seconds, concurrency)
    out["server_cpu_ms"] = 1000 * (_tree_cpu(srv.proc.pid) - cpu0) / max(out["requests"], 1)
    out["db_cpu_ms"] = 1000 * (_postgres_cpu() - db0) / max(out["requests"], 1)
    if tx0 is not None:
        out["statements"] = (_transactions(url) - tx0 - 1) / max(out["requests"], 1)  # less the count's own
    return out


def _sign_in(base, email):
    import httpx

    with httpx.Client(base_url=base, timeout=60) as c:
        page = c.get("/portal/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        t0 = time.perf_counter()
        r = c.post("/portal/sign-in", data={"identity": email, "password": PASSWORD, "csrf": csrf})
        elapsed = time.perf_counter() - t0
        assert r.status_code == 303, r.text[:300]
        return c.cookies["portal_session"], elapsed


def bench_backend(name, url, args, ps_env):
    """Seed, start the server, sign in, then measure the trivial endpoint and the dashboard."""
    settings = testing.settings_for(url, testing.test_master_keys(), DB_POOL_SIZE=args.pool,
                                    DASHBOARD_CONNECTIONS=args.dashboard_connections)
    from companion.app.core import migrate

    migrate.upgrade(settings)
    emails = _seed(settings, args.sessions, PortalSettings(_env_file=None, **ps_env))
    os.environ.update({"PORTAL_" + k: str(v) for k, v in ps_env.items()})
    srv = testing.ServerProcess(settings, workers=args.workers).start()
    try:
        base = srv.url
        host = "127.0.0.1:" + str(srv.port)
        with ThreadPoolExecutor(8) as pool:
            signed = list(pool.map(lambda e: _sign_in(base, e), emails))
        cookies = [c for c, _ in signed]
        dash = [("GET /portal/dashboard HTTP/1.1\r\nhost: " + host + "\r\ncookie: portal_session=" + c +
                 "\r\n\r\n").encode() for c in cookies]
        health = ("GET /api/v1/utils/health HTTP/1.1\r\nhost: " + host + "\r\n\r\n").encode()
        run_load(srv.port, [[d] * 50 for d in dash], 2, args.sessions)  # warm-up
        trivial = _phase(srv, srv.port, [[health] * 100000 for _ in range(args.sessions)], args.seconds,
                         args.sessions, url)
        board = _phase(srv, srv.port, [[d] * 100000 for d in dash], args.seconds, args.sessions, url)
        return {"backend": name, "health": trivial, "dashboard": board}
    finally:
        srv.stop()


def where_time_goes(url, ps_env, n=1000):
    """In one process, no HTTP: CPU per request of the health endpoint and of the dashboard through the app
    (ASGI), the dashboard's parts (through the route's own functions, so the bench cannot drift from the page),
    and its SQL statements per request. tests/test_portal_bench.py runs it with n=1."""
    import asyncio

    from companion.app.core import migrate
    from companion.app.portal import reads
    from companion.app.web import pages
    from companion.app.web import session as web
    from companion.main import create_app

    settings = testing.settings_for(url, testing.test_master_keys())
    migrate.upgrade(settings)
    ps = PortalSettings(_env_file=None, **{**ps_env, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024,
                                           "ARGON2_PARALLELISM": 1})
    _seed(settings, 1, ps)
    app = create_app(settings, ps)
    from starlette.requests import Request

    def scope(path, cookie=None):
        headers = [(b"host", b"127.0.0.1")] + ([(b"cookie", b"portal_session=" + cookie.encode())] if cookie else [])
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "app": app}

    async def call(path, cookie=None):
        status = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(m):
            if m["type"] == "http.response.start":
                status.append(m["status"])

        await app(scope(path, cookie), receive, send)
        return status[0]

    def cpu_ms(f):
        for _ in range(min(100, n)):
            f()
        t0 = time.process_time()
        for _ in range(n):
            f()
        return 1000 * (time.process_time() - t0) / n

    async def acpu_ms(path, cookie=None):
        for _ in range(min(100, n)):
            assert await call(path, cookie) == 200, path
        t0 = time.process_time()
        for _ in range(n):
            await call(path, cookie)
        return 1000 * (time.process_time() - t0) / n

    async def run():
        out = {}
        async with app.router.lifespan_context(app):
            from sqlalchemy import select

            from companion.app.accounts import services as accounts
            from companion.app.accounts.models import User

            with app.state.db.sessions() as s:
                user = s.scalar(select(User).where(User.role == "driver"))
                token, _ = accounts.start_session(s, app.state.portal, user)
                s.commit()
            assert await call("/portal/dashboard", token) == 200
            with testing.statements_of(app) as statements:
                assert await call("/portal/dashboard", token) == 200
            out["statements"] = len(statements)
            out["health"] = await acpu_ms("/api/v1/utils/health")
            out["dashboard"] = await acpu_ms("/portal/dashboard", token)
            if settings.is_sqlite:
                req = Request(scope("/portal/dashboard", token))
                th = web.session_token_hash(req)

                def query():
                    with web.read_connection(req) as conn:
                        return reads.by_session(conn, th)

                found = query()
                # the route's own functions: the page from the statement's rows, and its parts
                v = web.signed_in(req, app.state.portal, found.user, None, found.csrf)
                values = pages.dashboard_values(v, found.rows)
                assert pages._dashboard_page(req, found).status_code == 200
                out["query"] = cpu_ms(query)
                out["build"] = cpu_ms(lambda: pages.dashboard_values(v, found.rows))
                out["render"] = cpu_ms(lambda: web.render(v, "dashboard.html", **values))
                out["page"] = cpu_ms(lambda: pages._dashboard_page(req, found))
        return out

    return asyncio.run(run())


def sign_in_cost(args, ps_env):
    """Argon2id hash time on one core, and sign-ins per second over HTTP with `workers` server processes."""
    from companion.app.accounts.secrets import Passwords

    pw = Passwords(PortalSettings(_env_file=None, **ps_env))
    h = pw.hash(PASSWORD)
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        pw.verify(PASSWORD, h)
        times.append(time.perf_counter() - t0)
    times.sort()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        settings = testing.settings_for("sqlite:///" + tmp + "/signin.db", testing.test_master_keys())
        from companion.app.core import migrate

        migrate.upgrade(settings)
        emails = _seed(settings, 8, PortalSettings(_env_file=None, **ps_env))
        os.environ.update({"PORTAL_" + k: str(v) for k, v in ps_env.items()})
        srv = testing.ServerProcess(settings, workers=args.workers).start()
        try:
            _sign_in(srv.url, emails[0])  # warm-up
            n = 0
            t0 = time.perf_counter()
            deadline = t0 + args.seconds
            lat = []

            def loop(email):
                out = []
                while time.perf_counter() < deadline:
                    out.append(_sign_in(srv.url, email)[1])
                return out

            with ThreadPoolExecutor(8) as pool:
                for part in pool.map(loop, emails):
                    lat.extend(part)
            elapsed = time.perf_counter() - t0
            n = len(lat)
        finally:
            srv.stop()
    lat.sort()
    return {"hash_median_ms": 1000 * times[len(times) // 2], "signins_per_s": n / elapsed,
            "signin_p50_ms": 1000 * lat[n // 2], "signin_p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))],
            "signins": n}


def page_weight(ps_env):
    """Bytes of the dashboard's HTML plus every stylesheet and script it loads (uncompressed)."""
    import tempfile

    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        settings = testing.settings_for("sqlite:///" + tmp + "/w.db", testing.test_master_keys())
        with testing.ServerThread(settings, portal_settings=PortalSettings(_env_file=None, **ps_env)) as srv:
            emails = _seed(settings, 1, PortalSettings(_env_file=None, **ps_env))
            cookie, _ = _sign_in(srv.url, emails[0])
            with httpx.Client(base_url=srv.url, cookies={"portal_session": cookie}) as c:
                html = c.get("/portal/dashboard").content
                assets = re.findall(rb'(?:href|src)="(/portal/static/[^"]+)"', html)
                sizes = {a.decode(): len(c.get(a.decode()).content) for a in assets}
    return {"html": len(html), "assets": sizes, "total": len(html) + sum(sizes.values())}


def main():
    """Run everything; print and write bench/results/portal.txt."""
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pool", type=int, default=4, help="database connections per server process")
    p.add_argument("--dashboard-connections", type=int, default=2,
                   help="PostgreSQL: the dashboard's own connections per server process")
    p.add_argument("--only", choices=("sqlite", "postgres"))
    args = p.parse_args()
    import tempfile

    # on a busy machine two server processes take longer than the tests' 30 s to answer
    wait_ready = testing.wait_ready
    testing.wait_ready = lambda url, timeout_s=180.0: wait_ready(url, timeout_s)

    defaults = PortalSettings(_env_file=None)
    ps_env = {"ARGON2_TIME_COST": defaults.ARGON2_TIME_COST, "ARGON2_MEMORY_KIB": defaults.ARGON2_MEMORY_KIB,
              "ARGON2_PARALLELISM": defaults.ARGON2_PARALLELISM, "THROTTLE_PER_ADDRESS": 100000}
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "postgres":
            results.append(bench_backend("sqlite", "sqlite:///" + tmp + "/bench.db", args, ps_env))
    if args.only != "sqlite":
        reason = testing.pg_unavailable_reason()
        if reason:
            results.append({"backend": "postgres", "skipped": reason})
        else:
            with testing.fresh_pg_database("bench_portal") as url:
                results.append(bench_backend("postgres", url, args, ps_env))
    profiles = []
    with tempfile.TemporaryDirectory() as tmp:
        profiles.append(("sqlite", where_time_goes("sqlite:///" + tmp + "/prof.db", ps_env)))
    if args.only != "sqlite" and not testing.pg_unavailable_reason():
        with testing.fresh_pg_database("bench_portal_prof") as url:
            profiles.append(("postgres", where_time_goes(url, ps_env)))
    cost = sign_in_cost(args, ps_env)
    weight = page_weight(ps_env)
    load = os.getloadavg()
    lines = ["# client portal (bench/portal.py)", "command: .venv/bin/python bench/portal.py " + " ".join(sys.argv[1:]),
             f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before / {load[0]:.1f} after",
             f"setup: `python -m companion serve --workers {args.workers}`; load generator on the same box; "
             f"{args.pool} database connections per process (on PostgreSQL the dashboard reads on "
             f"{args.dashboard_connections} of its own: DASHBOARD_CONNECTIONS); {args.sessions} signed-in drivers, "
             "one keep-alive connection each, every request a full dashboard "
             "(session, account, device card from the handset's report, unread count, Jinja2 page); "
             f"{args.seconds:.0f} s per phase", ""]
    for r in results:
        name = r["backend"]
        if "skipped" in r:
            lines.append(name + ": skipped (" + r["skipped"] + ")")
            continue
        b, h = r["dashboard"], r["health"]
        ratio = b["rps"] / h["rps"]
        lines.append(f"{name:<8} dashboard {b['rps']:7.0f} req/s  p50 {b['p50_ms']:6.1f} ms  p99 {b['p99_ms']:6.1f} ms"
                     f"  ({b['requests']} requests, statuses {json.dumps(b['statuses'])})")
        lines.append(f"{name:<8} health    {h['rps']:7.0f} req/s  p50 {h['p50_ms']:6.1f} ms  p99 {h['p99_ms']:6.1f} ms")
        lines.append(f"{name:<8} dashboard / trivial endpoint = {ratio:.2f}")
        lines.append(f"{name:<8} server CPU per request (both processes): dashboard {b['server_cpu_ms']:.2f} ms, "
                     f"health {h['server_cpu_ms']:.2f} ms (CPU ratio {h['server_cpu_ms'] / b['server_cpu_ms']:.2f}); "
                     f"load generator used {b['loadgen_cpu_s'] / b['elapsed_s']:.2f} / "
                     f"{h['loadgen_cpu_s'] / h['elapsed_s']:.2f} cores")
        if name == "postgres":
            lines.append(f"{name:<8} PostgreSQL's own CPU per request (its processes on this machine): dashboard "
                         f"{b['db_cpu_ms']:.2f} ms, health {h['db_cpu_ms']:.2f} ms (the same two cores)")
            lines.append(f"{name:<8} statements per dashboard under load: {b['statements']:.2f} (the dashboards "
                         "waiting for a connection are read together: portal/batched.py; 1.00 would be one each)")
        lines.append(f"{name:<8} target p99 < 50 ms: " + ("met" if b["p99_ms"] < 50 else "NOT met") +
                     "; ratio >= 0.3: " + ("met" if ratio >= 0.3 else "NOT met"))
        lines.append("")
    lines.append("where the time goes (one process, no HTTP, CPU per request, mean of 1000; bench/portal.py "
                 "where_time_goes):")
    for name, pr in profiles:
        line = (f"  {name:<8} health {pr['health']:.3f} ms, dashboard {pr['dashboard']:.3f} ms through the app "
                f"(ratio {pr['health'] / pr['dashboard']:.2f})")
        if "query" in pr:
            rest = pr["dashboard"] - pr["query"] - pr["page"]
            line += (f"; of it: the statement {pr['query']:.3f} ms ({pr['statements']} SQL statement(s) per page), "
                     f"the page from its rows {pr['page']:.3f} ms (building the values {pr['build']:.3f} ms, "
                     f"Jinja2 {pr['render']:.3f} ms), the rest (~{max(rest, 0):.2f} ms) ASGI: middleware, "
                     "routing, cookies, response")
        else:
            line += f"; {pr['statements']} asyncpg statement(s) per page (prepared)"
        lines.append(line)
    lines.append("")
    lines.append(f"sign-in: Argon2id t={ps_env['ARGON2_TIME_COST']} m={ps_env['ARGON2_MEMORY_KIB']} KiB "
                 f"p={ps_env['ARGON2_PARALLELISM']} (pwdlib); one verify {cost['hash_median_ms']:.0f} ms (median of 10, "
                 "one core)")
    lines.append(f"sign-in over HTTP, {args.workers} server processes, 8 clients: {cost['signins_per_s']:.1f} sign-ins/s, "
                 f"p50 {cost['signin_p50_ms']:.0f} ms, p99 {cost['signin_p99_ms']:.0f} ms ({cost['signins']} sign-ins)")
    lines.append("")
    lines.append(f"dashboard page weight: {weight['total']} bytes = HTML {weight['html']} + " +
                 " + ".join(f"{k.rsplit('/', 1)[1]} {v}" for k, v in weight["assets"].items()) +
                 " (uncompressed); target < 100 KB: " + ("met" if weight["total"] < 100 * 1024 else "NOT met"))
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    (ROOT / "bench" / "results" / "portal.txt").write_text(text)


if __name__ == "__main__":
    main()
