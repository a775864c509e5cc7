"""Service benchmarks: the locator (nearest 10 of 5,000 centers per ZIP query), the record page of a driver
with a year of log (about 37,000 records: first page and a filtered page, over HTTP, signed in), and the
compliance report PDF for that year. SQLite and PostgreSQL.

    .venv/bin/python -m bench.service [--centers 5000] [--records 37000] [--queries 500] [--pages 200]

Results go to bench/results/service.txt. Targets: locator p99 < 20 ms; record page p99 < 100 ms; report
PDF for a year < 2 s.
"""

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import host_sim  # noqa: E402,F401  (firmware on sys.path)
from companion import testing  # noqa: E402

PASSWORD = "bench pass 42"


def _pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


def _year_of_log(handset_id, n, start_wall):
    """n chained records over a year: drives (ignition, start test, result, engine, retests) with now and then a
    violation, a lockout and a clear -- the mix a daily driver's handset logs."""
    from fsm import records as R
    from interlock import record

    prev = record.GENESIS
    rows = []
    step = 365 * 86400 // n
    pattern = [(R.IGNITION, 1, 0, 0), (R.TEST_REQUEST, 1, 0, 0), (R.RESULT, 8, R.PASS, 1), (R.ENGINE, 1, 0, 0),
               (R.RETEST, 0, 1, 0), (R.TEST_REQUEST, 2, 0, 0), (R.RESULT, 5, R.PASS, 2), (R.RETEST, 1, 0, 0),
               (R.ENGINE, 0, 0, 0), (R.IGNITION, 0, 0, 0)]
    for i in range(n):
        seq = i + 1
        wall = start_wall + i * step
        if i % 400 == 399:
            rtype, a, b, c = R.VIOLATION, R.VIO_MISSED_RETEST, 1, wall + 5 * 86400
        elif i % 400 == 100:
            rtype, a, b, c = R.LOCKOUT, R.LOCK_VIOLATION, 0, 1
        elif i % 400 == 101:
            rtype, a, b, c = R.CLEAR, R.LOCK_VIOLATION, R.SRC_REMOTE, 1
        else:
            rtype, a, b, c = pattern[i % len(pattern)]
        raw = record.encode(prev, seq, wall, rtype, a, b, c, 0)
        prev = record.chain(prev, raw)
        rows.append({"handset_id": handset_id, "seq": seq, "wall": wall, "rtype": rtype, "a": a, "b": b, "c": c,
                     "photo": 0, "raw": bytes(raw)})
    return rows


def bench_backend(name, url, args):
    import httpx
    from sqlalchemy import insert

    from companion.app.core import timebase
    from companion.app.core.db import Database
    from companion.app.models import LogRecord
    from companion.app.records import authority, report
    from companion.app.service import centers
    from companion.app.service.locator import _table
    from companion.app.service.models import ServiceCenter
    from tests.portal_support import World, fast_portal_settings
    from tests.service_support import set_program

    settings = testing.settings_for(url, testing.test_master_keys())
    ps = fast_portal_settings(1, DOCUMENTS_DIR=str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-docs"))
    out = {"backend": name}
    with testing.ServerThread(settings, portal_settings=ps) as srv:
        world = World(srv, None)
        rnd = random.Random(7)
        zips = sorted(_table())
        db: Database = srv.app.state.db
        hours = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
        rows = []
        for i in range(args.centers):
            p = _table()[rnd.choice(zips)]
            rows.append({"name": "Center %d" % i, "address": "%d Main St" % i, "zip": p.zip, "lat": p.lat,
                         "lon": p.lon, "tz": p.tz or "America/Chicago", "phone": "", "hours": hours,
                         "slot_minutes": 30, "capacity": 2, "services": ["calibration", "inspection"],
                         "active": True, "changed": 0, "created_at": dt.datetime.now(dt.UTC)})
        with db.write_session() as s:
            s.execute(insert(ServiceCenter), rows)
            s.commit()
        times = []
        with db.sessions() as s:
            centers.find(s, "85004", 10)  # warm
            cpu = time.process_time()
            for _ in range(args.queries):
                z = rnd.choice(zips)
                t0 = time.perf_counter()
                centers.find(s, z, 10)
                times.append(time.perf_counter() - t0)
            cpu = (time.process_time() - cpu) / len(times) * 1000
        out["locator"] = {"p50": _pct(times, 0.5), "p99": _pct(times, 0.99), "n": len(times), "cpu": cpu}
        # the same searches over HTTP (the locator page, signed out), each beside a request to the trivial health
        # endpoint of the same server, so both see the same load
        page_t, health_t = [], []
        with httpx.Client(base_url=srv.url) as hc:
            hc.get("/portal/centers", params={"zip": "85004"})
            cpu = time.process_time()
            for _ in range(args.queries):
                t0 = time.perf_counter()
                assert hc.get("/api/v1/utils/health").status_code == 200
                t1 = time.perf_counter()
                r = hc.get("/portal/centers", params={"zip": rnd.choice(zips)})
                page_t.append(time.perf_counter() - t1)
                health_t.append(t1 - t0)
                assert r.status_code == 200 and "miles" in r.text
            cpu = (time.process_time() - cpu) / args.queries * 1000
        out["locator_http"] = {"p50": _pct(page_t, 0.5), "p99": _pct(page_t, 0.99), "n": len(page_t),
                               "health_p50": _pct(health_t, 0.5), "health_p99": _pct(health_t, 0.99), "cpu": cpu,
                               "bytes": len(r.content)}
        # a driver with a year of log
        d = world.driver()
        set_program(world, d["account_id"], "IN")
        hid = d["handsets"][0]["device_id"]
        start = timebase.device_now() - 365 * 86400
        log = _year_of_log(hid, args.records, start)
        with db.write_session() as s:
            for i in range(0, len(log), 5000):
                s.execute(insert(LogRecord), log[i:i + 5000])
            s.commit()
        with db.engine.connect() as conn:  # the statistics a long-running database has (autovacuum / ANALYZE)
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        with world.browser(d["email"]) as c:
            link = d["devices"][0]
            variants = {"first page": {}, "violations only": {"kind": "violations"},
                        "a month": {"since": (dt.date.today() - dt.timedelta(days=60)).isoformat(),
                                    "until": (dt.date.today() - dt.timedelta(days=30)).isoformat()}}
            out["record"] = {}
            for label, params in variants.items():
                c.get("/portal/record/%d" % link, params=params)
                times, health = [], []
                cpu = 0.0
                for _ in range(args.pages):
                    t0 = time.perf_counter()
                    assert c.get("/api/v1/utils/health").status_code == 200  # beside it: the trivial endpoint
                    t1 = time.perf_counter()
                    c0 = time.process_time()
                    r = c.get("/portal/record/%d" % link, params=params)
                    cpu += time.process_time() - c0
                    times.append(time.perf_counter() - t1)
                    health.append(t1 - t0)
                    assert r.status_code == 200
                cpu = cpu / len(times) * 1000  # server and client: one process
                out["record"][label] = {"p50": _pct(times, 0.5), "p99": _pct(times, 0.99), "n": len(times),
                                        "bytes": len(r.content), "cpu": cpu, "health_p50": _pct(health, 0.5),
                                        "health_p99": _pct(health, 0.99)}
            # the first view of a period: its counts are taken then (later views add only new records)
            times = []
            for i in range(args.cold):
                day = dt.date.today() - dt.timedelta(days=300 - i)
                t0 = time.perf_counter()
                r = c.get("/portal/record/%d" % link, params={"since": day.isoformat()})
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200
            out["record_cold"] = {"p50": _pct(times, 0.5), "p99": _pct(times, 0.99), "n": len(times)}
        with db.sessions() as s:
            from companion.app.models import Account

            account = s.get(Account, d["account_id"])
            times, size = [], 0
            for _ in range(3):
                t0 = time.perf_counter()
                pdf = report.compliance_pdf(s, account, dt.date.today() - dt.timedelta(days=366), dt.date.today())
                times.append(time.perf_counter() - t0)
                size = len(pdf)
            c = authority.compliance(s, account)
        out["report"] = {"best_s": min(times), "worst_s": max(times), "bytes": size, "violations": c.violations}
        httpx.Client().close()
    return out


def main():
    """Run everything; print and write bench/results/service.txt."""
    p = argparse.ArgumentParser()
    p.add_argument("--centers", type=int, default=5000)
    p.add_argument("--records", type=int, default=37000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--cold", type=int, default=30, help="record pages each of a period not viewed before")
    p.add_argument("--only", choices=("sqlite", "postgres"))
    args = p.parse_args()
    import tempfile

    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "postgres":
            results.append(bench_backend("sqlite", "sqlite:///" + tmp + "/bench.db", args))
    if args.only != "sqlite":
        reason = testing.pg_unavailable_reason()
        if reason:
            results.append({"backend": "postgres", "skipped": reason})
        else:
            with testing.fresh_pg_database("bench_service") as url:
                results.append(bench_backend("postgres", url, args))
    load = os.getloadavg()
    lines = ["# service centers, the record, the report (bench/service.py)",
             "command: .venv/bin/python -m bench.service " + " ".join(sys.argv[1:]),
             f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before / {load[0]:.1f} after",
             f"setup: {args.centers} centers at random ZIP codes; one driver with {args.records} log records over a "
             "year (drives, retests, a violation, lockout and clear every 400 records); the record page over HTTP, "
             "signed in, one connection (in-process server; cpu = this process's CPU time per request, server and "
             "client together, which the machine's load does not inflate); the locator in-process (centers.find) "
             "and as the page over HTTP, each page beside a health request", ""]
    for r in results:
        name = r["backend"]
        if "skipped" in r:
            lines.append(name + ": skipped (" + r["skipped"] + ")")
            continue
        loc = r["locator"]
        lines.append(f"{name:<8} locator nearest 10 of {args.centers}: p50 {loc['p50']:6.2f} ms  p99 {loc['p99']:6.2f} ms"
                     f"  cpu {loc['cpu']:5.2f} ms/query  ({loc['n']} queries) target p99 < 20 ms: " + ("met" if loc["p99"] < 20 else "NOT met"))
        h = r["locator_http"]
        lines.append(f"{name:<8} locator page over HTTP (signed out): p50 {h['p50']:6.2f} ms  p99 {h['p99']:6.2f} ms"
                     f"  cpu {h['cpu']:5.2f} ms/page+health  ({h['n']} pages, {h['bytes']} bytes); trivial health "
                     f"beside it: p50 {h['health_p50']:5.2f} ms  p99 {h['health_p99']:5.2f} ms; page/health p50 "
                     f"{h['p50'] / h['health_p50']:.1f}x")
        for label, v in r["record"].items():
            lines.append(f"{name:<8} record page ({label}): p50 {v['p50']:6.1f} ms  p99 {v['p99']:6.1f} ms  "
                         f"cpu {v['cpu']:5.1f} ms/page  ({v['n']} pages, {v['bytes']} bytes) target p99 < 100 ms: "
                         + ("met" if v["p99"] < 100 else "NOT met")
                         + f"; health beside it p50 {v['health_p50']:5.2f} ms p99 {v['health_p99']:5.1f} ms, "
                         f"page/health p50 {v['p50'] / v['health_p50']:.1f}x")
        v = r["record_cold"]
        lines.append(f"{name:<8} record page (first view of a period, counts taken): p50 {v['p50']:6.1f} ms  "
                     f"p99 {v['p99']:6.1f} ms  ({v['n']} periods)")
        rep = r["report"]
        lines.append(f"{name:<8} report PDF for the year: {rep['best_s']:.2f} s best, {rep['worst_s']:.2f} s worst "
                     f"({rep['bytes']} bytes, {rep['violations']} violations) target < 2 s: "
                     + ("met" if rep["worst_s"] < 2 else "NOT met"))
        lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "service.txt"
    out.write_text(text)


if __name__ == "__main__":
    main()
