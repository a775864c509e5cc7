"""End to end: a real uvicorn companion on loopback and simulated handsets running the real firmware.

Covers issue 4 part 6: lockout uploaded -> reset fee paid -> clear applied and reported; a payment moves the
handset's PAYMENT DUE date; replayed, forged, expired and other handsets' commands are refused and logged;
a lost response and a retry store nothing twice. (Companion restarts and two companion processes are in
test_e2e_processes.py.)
"""

import datetime as dt

from fsm import authority, records
from host_sim.http_modem import DROP_RESPONSE
from interlock import wire
from sync import client as sc
from tests.companion_doubles import SyncedSim

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


def _statuses(office, device_id):
    return [(c["kind"], c["arg"], c["status"]) for c in office.commands(device_id)]


def _shows(sim, text):
    """Key on and report whether the display shows text at some point in the next seconds."""
    sim.world.key(True)
    sim.wake()
    seen = sim.run_until(lambda s: any(text in line for line in s.fsm.status()["display"]), 5000)
    sim.world.key(False)
    sim.wake()
    sim.run(6000)
    return seen


def test_remote_clear_reaches_the_handset(office):
    """A violation lockout is uploaded, the reset fee is paid, the clear is delivered and applied once."""
    acc = office.account()
    hs = office.handset(acc["id"])
    s = SyncedSim(office, hs, start_wall=None)
    lockout = s.violation_lockout()
    assert s.settle()[-1] == sc.OK
    view = office.handset_view(hs["device_id"])
    assert view["lockout_id"] == lockout and view["reported"]["lockout"] is True
    assert any(r["rtype"] == records.LOCKOUT for r in office.call(
        "GET", f"/handsets/{hs['device_id']}/log", params={"limit": 1000}))
    pay = office.pay(acc["id"], "reset_fee", 7500, device_id=hs["device_id"])
    assert pay["command"]["arg"] == lockout and pay["command"]["status"] == "queued"
    assert s.fsm.vlock  # nothing happens on the handset until it syncs
    assert s.sync() == sc.OK
    assert not s.fsm.vlock
    assert _statuses(office, hs["device_id"]) == [("clear", lockout, "delivered")]
    assert s.settle()[-1] == sc.OK
    assert _statuses(office, hs["device_id"]) == [("clear", lockout, "applied")]
    clears = [r for r in s.records(records.CLEAR) if r[3] == records.LOCK_VIOLATION]
    assert [(r[4], r[5]) for r in clears] == [(records.SRC_REMOTE, lockout)]
    view = office.handset_view(hs["device_id"])
    assert view["reported"]["lockout"] is False and view["lockout_id"] == 0
    assert view["last_command_seq"] == pay["command"]["seq"]


def test_payment_moves_the_payment_due_date(office):
    """With a due date in the past the handset shows PAYMENT DUE; after a payment and a sync it does not."""
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    acc = office.account(first_due=yesterday)
    hs = office.handset(acc["id"])
    s = SyncedSim(office, hs)
    s.settle()
    assert _shows(s.sim, "PAYMENT DUE")
    before = s.fsm.payment_due
    paid = office.pay(acc["id"], "installment", 9000)
    s.client.key_off(s.sim.ticks())
    assert s.settle()[-1] == sc.OK
    after = s.fsm.payment_due
    assert after > before and dt.date(2024, 1, 1) + dt.timedelta(days=after) == dt.date.fromisoformat(
        paid["next_due"])
    assert [r[4] for r in s.records(records.PAYMENT) if r[3] == 3][-1] == after
    assert not _shows(s.sim, "PAYMENT DUE")
    assert office.handset_view(hs["device_id"])["reported"]["payment_due"] == after


def test_bad_commands_are_refused_and_logged(office):
    """Replayed, forged, expired and other handsets' commands never clear the lockout; each is logged."""
    acc = office.account()
    a_hs = office.handset(acc["id"])
    b_hs = office.handset(acc["id"])
    a = SyncedSim(office, a_hs, seed=11)
    b = SyncedSim(office, b_hs, seed=12)
    lock_a = a.violation_lockout()
    lock_b = b.violation_lockout()
    a.settle()
    b.settle()
    key_a = a.fsm.keys()[0]

    # held back: an answer that arrives after the client's timeout is not used at all
    cmd = office.call("POST", f"/handsets/{a_hs['device_id']}/commands", 201,
                      json={"kind": "clear", "arg": lock_a, "ttl_s": 4})
    req = a.client.build(a.sim.ticks())
    status, headers, body = a.modem.handler(*req)
    a.sim.run(sc.TIMEOUT_MS + 1000)
    assert a.client.handle_response(a.sim.ticks(), status, headers, body) == sc.REFUSED
    assert a.fsm.vlock
    assert a.records(records.SYNC)[-1][3:6] == (authority.SYNC_REFUSED, 0, wire.WHY_LATE)
    # expired: the clear reaches the handset after its expiry (within the timeout); the simulated minute
    # above ran faster than real time, so first put the handset's clock back on the companion's
    from companion.app.core import timebase as ctb

    a.fsm.set_time(a.sim.ticks(), ctb.device_now(), records.SRC_TECH)
    cmd = office.call("POST", f"/handsets/{a_hs['device_id']}/commands", 201,
                      json={"kind": "clear", "arg": lock_a, "ttl_s": 4})
    a.client.key_off(a.sim.ticks())
    req = a.client.build(a.sim.ticks())
    status, headers, body = a.modem.handler(*req)
    assert [c["seq"] for c in wire.decode(body)["commands"]] == [cmd["seq"]]
    a.sim.run(15 * 1000)
    assert a.client.handle_response(a.sim.ticks(), status, headers, body) == sc.OK
    assert a.fsm.vlock
    assert a.records(records.SYNC)[-2][3:6] == (authority.SYNC_REFUSED, cmd["seq"], wire.WHY_EXPIRED)
    a.settle()
    assert office.call("GET", f"/commands/{cmd['id']}")["status"] == "expired"

    # forged on the way: any change to the answer breaks its signature
    office.pay(acc["id"], "reset_fee", 7500, device_id=a_hs["device_id"])
    a.modem.tamper = lambda st, h, bd: (st, h, bd.replace(b'"arg":' + str(lock_a).encode(),
                                                          b'"arg":' + str(lock_a + 1).encode()))
    a.client.key_off(a.sim.ticks())
    assert a.sync() == sc.REFUSED and a.fsm.vlock
    assert a.records(records.SYNC)[-1][3:6] == (authority.SYNC_REFUSED, 0, wire.WHY_SIGNATURE)
    a.modem.tamper = None

    # another handset's command, and a command whose MAC does not verify, inside a correctly signed answer
    office.pay(acc["id"], "reset_fee", 7500, device_id=b_hs["device_id"])
    req = b.client.build(b.sim.ticks())
    b_cmd = b.modem.handler(*req)
    b_clear = wire.decode(b_cmd[2])["commands"][0]
    assert b_clear["arg"] == lock_b
    req = a.client.build(a.sim.ticks())
    status, headers, body = a.modem.handler(*req)
    doc = wire.decode(body)
    genuine = doc["commands"][0]
    mine = dict(b_clear, device_id=a_hs["device_id"], arg=lock_a)
    doc["commands"] = [b_clear, mine]
    body = wire.encode(doc).encode()
    headers = {wire.H_SIG: wire.sign_response(key_a, a_hs["device_id"], req[2][wire.H_NONCE], 200, body)}
    assert a.client.handle_response(a.sim.ticks(), 200, headers, body) == sc.OK
    assert a.fsm.vlock
    why = [r[5] for r in a.records(records.SYNC)[-3:-1]]
    assert why == [wire.WHY_DEVICE, wire.WHY_FORGED]

    # the genuine clear: applied once; delivered again (replayed) it is stale and changes nothing
    a.client.key_off(a.sim.ticks())
    assert a.settle()[-1] == sc.OK and not a.fsm.vlock
    req = a.client.build(a.sim.ticks())
    doc = {"v": 1, "device_id": a_hs["device_id"], "nonce": req[2][wire.H_NONCE], "time": a.fsm.wall,
           "desired": None, "commands": [genuine], "more": False, "log_ack": a.fsm.log.acked(),
           "log_hash": "", "log_error": ""}
    body = wire.encode(doc).encode()
    headers = {wire.H_SIG: wire.sign_response(key_a, a_hs["device_id"], req[2][wire.H_NONCE], 200, body)}
    a.fsm.record(records.HANDSET, 1, 0)  # something new in the log so the stale ack is visible in order
    assert a.client.handle_response(a.sim.ticks(), 200, headers, body) == sc.OK
    stale = [r for r in a.records(records.SYNC) if r[3] == authority.SYNC_COMMAND and r[4] == genuine["seq"]]
    assert [r[5] for r in stale] == [authority.APPLIED, authority.STALE]
    remote = [r for r in a.records(records.CLEAR) if r[4] == records.SRC_REMOTE]
    assert len(remote) == 1
    # and the old answer itself, replayed to a new request, does not even verify
    old = a.modem.exchanges[-1]
    a.client.build(a.sim.ticks())
    assert a.client.handle_response(a.sim.ticks(), old[4], old[5], old[6]) == sc.REFUSED
    # the companion saw the refusals in the uploaded log
    a.client.key_off(a.sim.ticks())
    a.settle()
    uploaded = office.call("GET", f"/handsets/{a_hs['device_id']}/log", params={"limit": 1000})
    refused = [r["c"] for r in uploaded if r["rtype"] == records.SYNC and r["a"] == authority.SYNC_REFUSED]
    assert {wire.WHY_LATE, wire.WHY_EXPIRED, wire.WHY_SIGNATURE, wire.WHY_DEVICE, wire.WHY_FORGED} <= set(refused)
    assert not b.fsm.vlock or b.fsm.lockout_id == lock_b


def test_lost_response_and_retry_store_nothing_twice(office):
    """Answers lost after the companion stored a chunk and an ack: the retries duplicate nothing."""
    acc = office.account()
    hs = office.handset(acc["id"])
    s = SyncedSim(office, hs, chunk=8)
    lockout = s.violation_lockout()
    for i in range(40):
        s.fsm.record(records.HANDSET, i % 2, 0)
    s.modem.faults = [DROP_RESPONSE, "pass", DROP_RESPONSE, DROP_RESPONSE]
    s.settle()
    office.pay(acc["id"], "reset_fee", 7500, device_id=hs["device_id"], reference="fee-1")
    office.pay(acc["id"], "reset_fee", 7500, device_id=hs["device_id"], reference="fee-1")
    s.modem.faults = [DROP_RESPONSE, DROP_RESPONSE, "pass", DROP_RESPONSE]
    s.client.key_off(s.sim.ticks())
    s.sim.run(1)
    s.settle()
    assert not s.fsm.vlock
    cmds = office.commands(hs["device_id"])
    assert [(c["arg"], c["status"]) for c in cmds] == [(lockout, "applied")] and cmds[0]["deliveries"] >= 1
    assert len(office.call("GET", f"/accounts/{acc['id']}/payments")) == 1
    uploaded = office.call("GET", f"/handsets/{hs['device_id']}/log", params={"limit": 1000})
    logged = {r[0]: r for r in s.records()}  # every record the handset ever logged
    assert [r["seq"] for r in uploaded] == list(range(1, len(uploaded) + 1))
    assert uploaded[-1]["seq"] >= 60
    for r in uploaded:
        assert (r["seq"], r["wall"], r["rtype"], r["a"], r["b"], r["c"]) == logged[r["seq"]][:6]
    remote = [r for r in s.records(records.CLEAR) if r[4] == records.SRC_REMOTE]
    assert len(remote) == 1
