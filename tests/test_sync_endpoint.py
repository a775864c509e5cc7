"""The sync endpoint: authentication, replay and clock checks, log upload (order, bounds, idempotence,
chain), commands with MACs and acknowledgements; every refusal is a 4xx problem that changes nothing."""

import base64
import os
import uuid

import pytest

from companion.app.core import timebase
from interlock import record, wire
from tests.companion_doubles import WireHandset

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


@pytest.fixture
def handset(api):
    """A provisioned handset and its wire-level double."""
    r = api.post("/api/v1/handsets", json={"serial": "S-" + uuid.uuid4().hex[:12]})
    hs = r.json()
    return WireHandset(hs["device_id"], hs["secret"])


def _view(api, w):
    return api.get(f"/api/v1/handsets/{w.device_id}").json()


def _problem(r, status, kind=None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if kind:
        assert r.json()["type"].endswith("/" + kind)
    return r.json()


def test_signed_request_gets_signed_answer(api, handset):
    """A good request is answered with the server time, the desired state and a signature over our nonce."""
    r, doc = handset.sync(api)
    assert doc["device_id"] == handset.device_id and abs(doc["time"] - timebase.device_now()) <= 2
    assert doc["desired"]["version"] == 1 and doc["commands"] == [] and doc["log_ack"] == 0
    v = _view(api, handset)
    assert v["syncs"] == 1 and v["reported"]["state"] == "OFF" and v["reported_version"] == 0


def test_refusals_change_nothing(api, handset):
    """Bad signature, unknown device, missing headers, digest mismatch, skew, replay: 4xx, no state change."""
    handset.sync(api)
    before = _view(api, handset)
    headers, body = handset.request(status={"state": "HACKED"})
    bad = dict(headers)
    bad[wire.H_SIG] = "0" * 64
    _problem(api.post("/api/v1/sync", content=body, headers=bad), 401, "unauthenticated")
    other = dict(headers)
    other[wire.H_DEVICE] = "2147483000"
    _problem(api.post("/api/v1/sync", content=body, headers=other), 401)
    _problem(api.post("/api/v1/sync", content=body), 401)
    _problem(api.post("/api/v1/sync", content=body + b" ", headers=headers), 401)
    for h in (wire.H_NONCE, wire.H_TIME):
        broken = dict(headers)
        broken[h] = "zz"
        _problem(api.post("/api/v1/sync", content=body, headers=broken), 401)
    old_h, old_b = handset.request(ts=timebase.device_now() - 3600)
    p = _problem(api.post("/api/v1/sync", content=old_b, headers=old_h), 401, "clock-skew")
    assert abs(p["server_time"] - timebase.device_now()) <= 2
    assert _view(api, handset) == before
    # the good one once, then its replay
    assert api.post("/api/v1/sync", content=body, headers=headers).status_code == 200
    after = _view(api, handset)
    _problem(api.post("/api/v1/sync", content=body, headers=headers), 409, "replay")
    assert _view(api, handset) == after and after["reported"]["state"] == "HACKED"


def test_oversized_and_malformed_bodies(api, handset):
    """Too large: 413; signed but not the schema, or bad log data: 422; nothing stored."""
    headers, body = handset.request(body=b"x" * 70000)
    _problem(api.post("/api/v1/sync", content=body, headers=headers), 413)
    for raw in (b"{", b"[]", b'{"v":2}', wire.encode({"v": 1, "device_id": handset.device_id + 1, "status": {},
                                                       "desired_version": 0, "last_command_seq": 0}).encode()):
        headers, body = handset.request(body=raw)
        _problem(api.post("/api/v1/sync", content=body, headers=headers), 422)
    handset.append(70)
    headers, body = handset.request(log=handset.chunk(1, 70))
    _problem(api.post("/api/v1/sync", content=body, headers=headers), 413)
    headers, body = handset.request(log={"first": 1, "data": "!!!not base64"})
    _problem(api.post("/api/v1/sync", content=body, headers=headers), 422)
    headers, body = handset.request(log={"first": 1, "data": base64.b64encode(b"x" * 41).decode()})
    _problem(api.post("/api/v1/sync", content=body, headers=headers), 422)
    assert _view(api, handset)["syncs"] == 0 and _view(api, handset)["log_seq"] == 0


def test_log_upload_is_idempotent_ordered_and_chained(api, handset):
    """Retries store nothing twice, overlaps add only new records, gaps are not stored, the ack is the
    highest contiguous seq and the chain hash matches the handset's."""
    handset.append(40)
    _, doc = handset.sync(api, log=handset.chunk(1, 10))
    assert doc["log_ack"] == 10 and doc["log_hash"] == handset.hashes[10].hex()
    _, doc = handset.sync(api, log=handset.chunk(1, 10))  # a retry after a lost answer
    assert doc["log_ack"] == 10 and doc["log_error"] == ""
    _, doc = handset.sync(api, log=handset.chunk(5, 20))
    assert doc["log_ack"] == 20
    _, doc = handset.sync(api, log=handset.chunk(30, 40))  # out of order
    assert doc["log_ack"] == 20 and doc["log_error"] == "gap"
    _, doc = handset.sync(api, log=handset.chunk(21, 40))
    assert doc["log_ack"] == 40 and doc["log_hash"] == handset.hashes[40].hex()
    rows = api.get(f"/api/v1/handsets/{handset.device_id}/log", params={"limit": 1000}).json()
    assert [r["seq"] for r in rows] == list(range(1, 41))
    assert rows[4] == {"seq": 5, "wall": 91000005, "rtype": 4, "a": 5, "b": -5, "c": 7, "photo": 0}


def test_rewritten_log_breaks_the_chain(api, handset):
    """A record re-encoded with other values (valid CRC, wrong link) is refused with the chain error; the
    records before it are kept and the ack stops there."""
    handset.append(10)
    handset.sync(api, log=handset.chunk(1, 5))
    forged = list(handset.encoded)
    forged[8] = record.encode(os.urandom(32), 8, 1, 4, 0, 0, 0, 0)
    data = b"".join(forged[6:11])
    _, doc = handset.sync(api, log={"first": 6, "data": base64.b64encode(data).decode()})
    assert doc["log_ack"] == 7 and doc["log_error"] == "hash chain broken"
    edited = bytearray(handset.encoded[8])
    edited[12] ^= 1  # a changed value without a fixed-up CRC
    data = b"".join([handset.encoded[8], bytes(edited)])
    _, doc = handset.sync(api, log={"first": 8, "data": base64.b64encode(data).decode()})
    assert doc["log_ack"] == 8 and doc["log_error"] == "CRC mismatch"
    _, doc = handset.sync(api, log=handset.chunk(9, 10))
    assert doc["log_ack"] == 10 and doc["log_error"] == ""


def test_commands_carry_macs_and_follow_acks(api, handset):
    """Open commands come with MACs the firmware verifies; acks move them to applied/refused; applied
    ones are not sent again; expired ones are not sent and show as expired."""
    url = f"/api/v1/handsets/{handset.device_id}/commands"
    a = api.post(url, json={"kind": "service_extend", "arg": 7}).json()
    b = api.post(url, json={"kind": "time_set", "arg": 91000000}).json()
    c = api.post(url, json={"kind": "service_extend", "arg": 3, "ttl_s": 1}).json()
    import time

    time.sleep(1.5)
    _, doc = handset.sync(api)
    assert [x["seq"] for x in doc["commands"]] == [a["seq"], b["seq"]]
    for x in doc["commands"]:
        assert wire.check_command(handset.key, handset.device_id, x)
        assert not wire.check_command(handset.key, handset.device_id + 1, x)
    status = {x["seq"]: x["status"] for x in api.get(url).json()}
    assert status == {a["seq"]: "delivered", b["seq"]: "delivered", c["seq"]: "expired"}
    _, doc = handset.sync(api, acks=[(a["seq"], wire.RC_APPLIED), (b["seq"], wire.RC_REFUSED)],
                          last_command_seq=b["seq"])
    assert doc["commands"] == []
    got = {x["seq"]: (x["status"], x["rc"]) for x in api.get(url).json()}
    assert got[a["seq"]] == ("applied", 1) and got[b["seq"]] == ("refused", 3)
    # a repeated ack (answer lost, request retried) changes nothing
    handset.sync(api, acks=[(a["seq"], wire.RC_STALE)], last_command_seq=b["seq"])
    assert api.get(url).json()[0]["status"] == "applied"


def test_desired_state_sent_until_applied(api, handset):
    """The desired document is sent while the handset's version is older, then no longer."""
    api.patch(f"/api/v1/handsets/{handset.device_id}/desired", json={"service_due": "2027-02-01"})
    _, doc = handset.sync(api, desired_version=0)
    assert doc["desired"]["version"] == 2 and doc["desired"]["service_due_day"] == timebase.day_of(
        __import__("datetime").date(2027, 2, 1))
    _, doc = handset.sync(api, desired_version=2)
    assert doc["desired"] is None
    assert _view(api, handset)["reported_version"] == 2


@pytest.mark.postgres
def test_psycopg_store_on_postgres_behaves_the_same():
    """With SYNC_ASYNCPG off, PostgreSQL syncs go through the blocking psycopg store with the same results."""
    from companion import testing

    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    checks = (test_signed_request_gets_signed_answer, test_refusals_change_nothing,
              test_log_upload_is_idempotent_ordered_and_chained, test_rewritten_log_breaks_the_chain,
              test_commands_carry_macs_and_follow_acks, test_desired_state_sent_until_applied)
    with testing.fresh_pg_database("pytest") as url:
        settings = testing.settings_for(url, testing.test_master_keys(), SYNC_ASYNCPG=False)
        with testing.ServerThread(settings) as srv, srv.client() as api:
            assert srv.app.state.pg_sync is None
            for check in checks:
                hs = api.post("/api/v1/handsets", json={"serial": "P-" + uuid.uuid4().hex[:12]}).json()
                check(api, WireHandset(hs["device_id"], hs["secret"]))


def _all_routes(routes):
    for r in routes:
        yield r
        inner = getattr(r, "original_router", None)  # an included router
        if inner is not None:
            yield from _all_routes(inner.routes)


def test_sync_is_registered_once_served_plain_and_documented(tmp_path):
    """One route serves POST /sync: a PlainRoute (the endpoint takes the Request, no FastAPI request handling),
    and the OpenAPI document describes it with its authentication headers."""
    from companion import testing
    from companion.app.api.routes.sync import PlainRoute
    from companion.main import create_app

    app = create_app(testing.settings_for("sqlite:///" + str(tmp_path / "c.db"), testing.test_master_keys()))
    found = [r for r in _all_routes(app.routes) if getattr(r, "path", "").endswith("/sync")]
    assert len(found) == 1 and isinstance(found[0], PlainRoute)
    assert found[0].get_route_handler() is found[0].endpoint
    post = app.openapi()["paths"]["/api/v1/sync"]["post"]
    assert {p["name"] for p in post["parameters"]} == {wire.H_DEVICE, wire.H_TIME, wire.H_NONCE, wire.H_DIGEST,
                                                       wire.H_SIG}
    assert "requestBody" in post
