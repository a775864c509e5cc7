"""Companion throughput: sync requests per second and p50/p99 latency from a fleet of simulated handsets
(each with its own key and its own hash-chained log) against a real companion on SQLite and on PostgreSQL,
beside the trivial health endpoint of the same server in the same run. Load generator on the same machine.

    .venv/bin/python -m bench.companion [--handsets 200] [--seconds 8] [--concurrency 24] [--workers 2]

Each sync is a full exchange: HMAC-checked request with nonce and timestamp, reported state, 4 new log
records (chain verified, batched insert), open commands, signed answer, one transaction. Requests are signed
before the timed phase (signing is the handset's work, not the companion's). Results go to
bench/results/companion.txt.
"""

import argparse
import base64
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import host_sim  # noqa: E402,F401  (firmware on sys.path)
from companion import testing  # noqa: E402
from companion.app.core import keys as ckeys  # noqa: E402
from companion.app.core import timebase, wire  # noqa: E402

sys.path.insert(0, str(ROOT / "bench" / "lib"))
from loadgen import run_load  # noqa: E402

RECORDS_PER_SYNC = 4


def _status(device_id, seq, wall):
    """A reported state shaped like fsm status()."""
    return {"state": "OFF", "display": ["", ""], "lockout": False, "lockout_id": 0, "lock_cause": 0,
            "violations": 0, "recall_deadline": 0, "temp_lock_until": 0, "payment_due": 1065, "service_due": 0,
            "inspection_due": 0, "policy_version": 0, "desired_version": 1, "module_serial": 1001,
            "module_expiry": 1421, "last_command_seq": 0, "log_next_seq": seq, "log_acked": seq - 1,
            "wall": wall, "device_id": device_id, "provisioned": True, "firmware": "0.1.0"}


def make_requests(fleet, per_handset, host):
    """For each handset, per_handset signed sync requests in order (raw HTTP/1.1 bytes, keep-alive)."""
    from interlock import record

    now = timebase.device_now()
    out = []
    for device_id, secret in fleet:
        key = ckeys.derive(secret, ckeys.LABEL_SYNC)
        h = record.GENESIS
        seq = 1
        reqs = []
        for _ in range(per_handset):
            data = bytearray()
            first = seq
            for _ in range(RECORDS_PER_SYNC):
                enc = record.encode(h, seq, now, 4, seq & 1, 0, 0, 0)
                h = record.chain(h, enc)
                data += enc
                seq += 1
            doc = {"v": 1, "device_id": device_id, "status": _status(device_id, seq, now), "desired_version": 1,
                   "last_command_seq": 0, "acks": [],
                   "log": {"first": first, "data": base64.b64encode(bytes(data)).decode()}}
            body = wire.encode(doc)
            nonce = os.urandom(8).hex()
            d = wire.digest(body)
            sig = wire.request_mac(key, "POST", wire.PATH, device_id, now, nonce, d)
            head = ("POST " + wire.PATH + " HTTP/1.1\r\nhost: " + host + "\r\ncontent-type: application/json\r\n"
                    "content-length: " + str(len(body)) + "\r\nx-device-id: " + str(device_id) +
                    "\r\nx-timestamp: " + str(now) + "\r\nx-nonce: " + nonce + "\r\nx-content-sha256: " + d +
                    "\r\nx-signature: " + sig + "\r\n\r\n")
            reqs.append(head.encode() + body)
        out.append(reqs)
    return out


def bench_backend(name, url, args):
    """Provision the fleet, then measure health and sync on one backend."""
    settings = testing.settings_for(url, testing.test_master_keys(), DB_POOL_SIZE=args.concurrency)
    srv = testing.ServerProcess(settings, workers=args.workers).start()
    try:
        office = testing.Backoffice(srv.url)
        fleet = []
        for _ in range(args.handsets):
            hs = office.handset()
            fleet.append((hs["device_id"], bytes.fromhex(hs["secret"])))
        office.close()
        host = "127.0.0.1:" + str(srv.port)
        health = ("GET /api/v1/utils/health HTTP/1.1\r\nhost: " + host + "\r\n\r\n").encode()
        # warm-up (connections, caches, key derivation per handset)
        run_load(srv.port, make_requests(fleet, 2, host), 2, args.concurrency)
        trivial = run_load(srv.port, [[health] * 100000], args.seconds, 1)
        trivial_c = run_load(srv.port, [[health] * 20000 for _ in range(args.concurrency)], args.seconds,
                             args.concurrency)
        per = int(args.seconds * 4000 / len(fleet)) + 4
        reqs = make_requests(fleet, per, host)
        sync = run_load(srv.port, reqs, args.seconds, args.concurrency)
        return {"backend": name, "health_1conn": trivial, "health": trivial_c, "sync": sync}
    finally:
        srv.stop()


def main():
    """Run the bench on SQLite and (if reachable) PostgreSQL; print and write the results."""
    p = argparse.ArgumentParser()
    p.add_argument("--handsets", type=int, default=200)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--concurrency", type=int, default=24)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", choices=("sqlite", "postgres"))
    args = p.parse_args()
    import tempfile

    results = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "postgres":
            results.append(bench_backend("sqlite", "sqlite:///" + tmp + "/bench.db", args))
    reason = testing.pg_unavailable_reason()
    if args.only != "sqlite":
        if reason:
            results.append({"backend": "postgres", "skipped": reason})
        else:
            with testing.fresh_pg_database("bench") as url:
                results.append(bench_backend("postgres", url, args))
    cmd = ".venv/bin/python -m bench.companion " + " ".join(sys.argv[1:])
    load = os.getloadavg()
    lines = ["# companion sync throughput (bench/companion.py)", "command: " + cmd.strip(),
             f"machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before / {load[0]:.1f} after "
             "the run (other work on the box counts against these numbers)",
             f"setup: companion `python -m companion serve --workers {args.workers}`; load generator on the same "
             f"box (1 process, {args.concurrency} keep-alive connections); fleet of {args.handsets} handsets, "
             f"each its own key and chained log; {RECORDS_PER_SYNC} log records per sync; "
             f"{args.seconds:.0f} s per phase", ""]
    for r in results:
        name = r["backend"]
        if "skipped" in r:
            lines.append(name + ": skipped (" + r["skipped"] + ")")
            continue
        s, h = r["sync"], r["health"]
        lines.append(f"{name:<8} sync   {s['rps']:7.0f} req/s  p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms"
                     f"  ({s['requests']} requests, statuses {json.dumps(s['statuses'])})")
        lines.append(f"{name:<8} health {h['rps']:7.0f} req/s  p50 {h['p50_ms']:6.1f} ms  p99 {h['p99_ms']:6.1f} ms"
                     "  (same connections, same server)")
        lines.append(f"{name:<8} health {r['health_1conn']['rps']:7.0f} req/s on one connection")
        lines.append(f"{name:<8} sync / trivial endpoint = {s['rps'] / h['rps']:.2f}")
        if name == "postgres":
            ok = s["rps"] >= 1500 and s["p99_ms"] < 100
            lines.append("postgres target (>= 1500 syncs/s, p99 < 100 ms): " + ("met" if ok else "NOT met"))
        lines.append("")
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    (ROOT / "bench" / "results" / "companion.txt").write_text(text)


if __name__ == "__main__":
    main()
