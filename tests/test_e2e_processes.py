"""End to end with companion processes: a restart (SIGKILL) in the middle of an upload loses nothing and
stores nothing twice; two companion processes on one PostgreSQL never apply one clear twice."""

import random
import threading

import pytest

from companion import testing
from fsm import authority, records
from host_sim.http_modem import DROP_RESPONSE, http_handler
from interlock import record
from sync import client as sc
from tests.companion_doubles import SyncedSim

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


def _chain(recs):
    h = record.GENESIS
    for r in recs:
        h = record.chain(h, record.encode(h, *r))
    return h.hex()


def test_companion_restart_mid_upload_loses_nothing(fresh_backend, tmp_path):
    """The companion is killed (SIGKILL) and restarted while a long log uploads; every record arrives once,
    in order, and the companion's chain head equals the handset's."""
    srv = testing.ServerProcess(fresh_backend).start()
    try:
        office = testing.Backoffice(srv.url)
        hs = office.handset()
        sim = SyncedSim(srv.url, hs, chunk=8)
        first = sim.fsm.log.next_seq()
        for i in range(300):
            sim.fsm.record(records.HANDSET, i % 2, i)
        forward = http_handler(srv.url)
        count = [0]
        kills = []

        def handler(*req):
            # exchange 6: the companion is killed while it handles the request (a genuine race: it may
            # or may not have committed the chunk); exchanges 7-9 find it down; exchange 10 restarts it
            count[0] += 1
            n = count[0]
            if n == 6:
                killer = threading.Timer(0.002, srv.kill)
                killer.start()
                try:
                    return forward(*req)
                finally:
                    killer.join()
                    kills.append(n)
            if n == 10:
                srv.start()
            return forward(*req)

        sim.modem.handler = handler
        outcomes = []
        for _ in range(200):
            outcomes.append(sim.sync())
            if outcomes[-1] == sc.OK and sim.fsm.log.acked() >= first + 299:
                break
            sim.sim.run(max(sim.client.wait_ms(sim.sim.ticks()), 20))
        assert kills == [6] and sc.FAILED in outcomes and sim.fsm.log.acked() >= first + 299
        uploaded = office.call("GET", f"/handsets/{hs['device_id']}/log", params={"limit": 1000})
        seqs = [r["seq"] for r in uploaded]
        assert seqs == list(range(1, len(seqs) + 1))
        logged = {r[0]: r for r in sim.records()}
        body = [(r["seq"], r["wall"], r["rtype"], r["a"], r["b"], r["c"], r["photo"]) for r in uploaded]
        for r in body:
            assert r == logged[r[0]]
        view = office.handset_view(hs["device_id"])
        assert view["log_seq"] == seqs[-1] and view["log_error"] == ""
        head = sim.client._chain_seq, sim.client._chain.hex()
        assert head == (seqs[-1], _chain([b for b in body]))
        office.close()
    finally:
        srv.stop()


@pytest.mark.postgres
def test_two_companions_on_one_postgres_never_apply_a_clear_twice(tmp_path):
    """Two companion processes share one PostgreSQL database: reset fees paid on both at once queue one clear;
    syncs alternating between them, with lost answers, deliver it (perhaps twice) and it is applied once."""
    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with testing.fresh_pg_database("pytest") as url:
        settings = testing.settings_for(url, testing.test_master_keys())
        with testing.ServerProcess(settings) as a, testing.ServerProcess(settings) as b:
            office_a, office_b = testing.Backoffice(a.url), testing.Backoffice(b.url)
            acc = office_a.account()
            hs = office_a.handset(acc["id"])
            handlers = [http_handler(a.url), http_handler(b.url)]
            rnd = random.Random(7)
            sim = SyncedSim(a.url, hs, handler=lambda *req: rnd.choice(handlers)(*req))
            lockout = sim.violation_lockout()
            sim.settle()
            assert office_b.handset_view(hs["device_id"])["lockout_id"] == lockout

            # both processes take a reset fee payment at the same moment
            results = []
            barrier = threading.Barrier(8)

            def pay(office, i):
                barrier.wait()
                r = office.http.post("/accounts/%d/payments" % acc["id"], json={
                    "kind": "reset_fee", "amount_cents": 7500, "device_id": hs["device_id"],
                    "reference": "fee-" + str(i)})
                results.append((r.status_code, r.json()))

            threads = [threading.Thread(target=pay, args=((office_a, office_b)[i % 2], i)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # one payment takes the fee and queues the clear; the others (other references) are refused
            assert sorted(code for code, _body in results) == [201] + [409] * 7
            assert len(office_b.call("GET", "/accounts/%d/payments" % acc["id"])) == 1
            # deliver through A but lose the answer, then through B: the clear goes out twice
            sim.modem.handler = handlers[0]
            sim.modem.faults = [DROP_RESPONSE]
            sim.client.key_off(sim.sim.ticks())
            assert sim.sync() == sc.FAILED and sim.fsm.vlock
            sim.modem.handler = handlers[1]
            sim.sim.run(sim.client.wait_ms(sim.sim.ticks()) + 1)
            assert sim.sync() == sc.OK and not sim.fsm.vlock
            # the ack is lost too, then everything alternates
            sim.modem.handler = lambda *req: rnd.choice(handlers)(*req)
            sim.modem.faults = [DROP_RESPONSE, DROP_RESPONSE]
            sim.sim.run(300)
            sim.settle()
            cmds = office_b.commands(hs["device_id"])
            assert [(c["kind"], c["arg"], c["status"]) for c in cmds] == [("clear", lockout, "applied")]
            assert cmds[0]["deliveries"] >= 2
            seq = cmds[0]["seq"]
            applied = [r for r in sim.records(records.SYNC)
                       if r[3] == authority.SYNC_COMMAND and r[4] == seq and r[5] == authority.APPLIED]
            remote = [r for r in sim.records(records.CLEAR) if r[4] == records.SRC_REMOTE]
            assert len(applied) == 1 and len(remote) == 1
            for office in (office_a, office_b):
                office.close()
