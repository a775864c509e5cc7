"""The companion's domain API on SQLite and PostgreSQL: accounts, payments and due dates, reset fees and
remote clears, unlock codes, technician tokens, commands, desired state, admin authentication."""

import datetime as dt
import struct

import pytest

from companion.app.core import timebase
from interlock import codes, crypto
from tests.companion_doubles import WireHandset
from tests.companion_helpers import new_account as _account
from tests.companion_helpers import new_handset as _handset
from tests.companion_helpers import problem as _problem

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


def test_admin_key_is_required(api, server):
    """Without the admin API key the back-office API answers 401 with a problem body."""
    import httpx

    r = httpx.post(server.url + "/api/v1/accounts", json={})
    _problem(r, 401)
    r = httpx.get(server.url + "/api/v1/handsets/1", headers={"X-API-Key": "wrong"})
    _problem(r, 401)


def test_installment_moves_due_date_and_desired_state(api):
    """Recording a payment moves the account's due date and raises the handset's desired version."""
    acc = _account(api)
    hs = _handset(api, acc["id"])
    assert acc["next_due"] == "2026-12-01"
    assert hs["desired"]["payment_due"] == "2026-12-01"
    r = api.post(f"/api/v1/accounts/{acc['id']}/payments",
                 json={"kind": "installment", "amount_cents": 9000, "reference": "pay-1"})
    assert r.status_code == 201 and r.json()["next_due"] == "2027-01-01"
    view = api.get(f"/api/v1/handsets/{hs['device_id']}").json()
    assert view["desired"]["payment_due"] == "2027-01-01"
    assert view["desired"]["version"] == hs["desired"]["version"] + 1
    assert api.get(f"/api/v1/accounts/{acc['id']}").json()["handsets"] == [hs["device_id"]]


def test_partial_payments_carry_credit(api):
    """Half an installment moves nothing; the second half completes the period."""
    acc = _account(api, schedule="weekly", first_due="2026-12-07", installment_cents=5000)
    pay = f"/api/v1/accounts/{acc['id']}/payments"
    assert api.post(pay, json={"kind": "installment", "amount_cents": 2500, "reference": "a"}).json()[
        "next_due"] == "2026-12-07"
    assert api.post(pay, json={"kind": "installment", "amount_cents": 2500, "reference": "b"}).json()[
        "next_due"] == "2026-12-14"
    assert api.post(pay, json={"kind": "installment", "amount_cents": 10000, "reference": "c"}).json()[
        "next_due"] == "2026-12-28"
    assert api.get(f"/api/v1/accounts/{acc['id']}").json()["credit_cents"] == 0


def test_payment_reference_is_idempotent(api):
    """Repeating a payment's reference returns the first payment; reusing it for another amount conflicts."""
    acc = _account(api)
    pay = f"/api/v1/accounts/{acc['id']}/payments"
    first = api.post(pay, json={"kind": "installment", "amount_cents": 9000, "reference": "same"}).json()
    again = api.post(pay, json={"kind": "installment", "amount_cents": 9000, "reference": "same"}).json()
    assert again["id"] == first["id"]
    assert api.get(f"/api/v1/accounts/{acc['id']}").json()["next_due"] == "2027-01-01"
    _problem(api.post(pay, json={"kind": "installment", "amount_cents": 100, "reference": "same"}), 409)
    assert len(api.get(pay).json()) == 1


def test_schedule_change_moves_handset_due_date(api):
    """Changing an account's schedule recomputes the handsets' payment due date."""
    acc = _account(api, schedule="monthly", first_due="2026-12-01")
    hs = _handset(api, acc["id"])
    api.post(f"/api/v1/accounts/{acc['id']}/payments",
             json={"kind": "installment", "amount_cents": 9000, "reference": "x"})
    r = api.patch(f"/api/v1/accounts/{acc['id']}", json={"schedule": "weekly"})
    assert r.json()["next_due"] == "2026-12-08"
    assert api.get(f"/api/v1/handsets/{hs['device_id']}").json()["desired"]["payment_due"] == "2026-12-08"


def test_reset_fee_queues_one_clear_for_the_reported_lockout(api):
    """A reset fee queues a remote clear bound to the lockout the handset reported; a second fee for the same
    lockout under another reference is refused (it would take the money twice for the one clear), and the same
    reference again is the same payment."""
    acc = _account(api)
    hs = _handset(api, acc["id"])
    pay = f"/api/v1/accounts/{acc['id']}/payments"
    body = {"kind": "reset_fee", "amount_cents": 7500, "reference": "fee-0", "device_id": hs["device_id"]}
    _problem(api.post(pay, json=body), 409)  # nothing reported yet
    w = WireHandset(hs["device_id"], hs["secret"])
    w.sync(api, status={"state": "VIOLATION", "lockout": True, "lockout_id": 57})
    too_little = dict(body, reference="fee-1", amount_cents=100)
    _problem(api.post(pay, json=too_little), 422)
    wrong = dict(body, reference="fee-2", lockout_id=56)
    assert _problem(api.post(pay, json=wrong), 409)["current_lockout_id"] == 57
    p1 = api.post(pay, json=dict(body, reference="fee-3")).json()
    again = _problem(api.post(pay, json=dict(body, reference="fee-4", lockout_id=57)), 409)
    assert again["payment_id"] == p1["id"]
    p2 = api.post(pay, json=dict(body, reference="fee-3")).json()  # the same reference: the same payment
    assert p1["lockout_id"] == 57 and p1["command"]["kind"] == "clear" and p1["command"]["arg"] == 57
    assert p2["id"] == p1["id"] and p2["command"]["id"] == p1["command"]["id"]
    cmds = api.get(f"/api/v1/handsets/{hs['device_id']}/commands").json()
    assert [(c["kind"], c["arg"], c["status"]) for c in cmds] == [("clear", 57, "queued")]
    assert api.get(f"/api/v1/commands/{p1['command']['id']}").json()["status"] == "queued"


def test_unlock_codes_follow_policy_and_limit(api):
    """Codes are the firmware's code_for with counters 1, 2, ...; at most N per period; none where disallowed."""
    acc = _account(api, codes_per_period=2)
    hs = _handset(api, acc["id"])
    unlock = crypto.derive(bytes.fromhex(hs["secret"]), crypto.LABEL_UNLOCK)
    url = f"/api/v1/handsets/{hs['device_id']}/unlock-codes"
    got = []
    for action, act in (("clear", codes.ACTION_CLEAR), ("service", codes.ACTION_SERVICE)):
        r = api.post(url, json={"action": action})
        assert r.status_code == 201, r.text
        c = r.json()
        assert len(c["code"]) == 8 and c["code"].isdigit()
        assert abs(c["issue_hour"] - timebase.device_now() // 3600) <= 1
        assert int(c["code"]) == codes.code_for(unlock, hs["device_id"], act, c["counter"], c["issue_hour"])
        got.append(c["counter"])
    assert got == [1, 2]
    _problem(api.post(url, json={"action": "clear"}), 429)
    none = _account(api, allow_codes=False)
    hs2 = _handset(api, none["id"])
    _problem(api.post(f"/api/v1/handsets/{hs2['device_id']}/unlock-codes", json={"action": "clear"}), 403)
    lone = _handset(api)
    _problem(api.post(f"/api/v1/handsets/{lone['device_id']}/unlock-codes", json={"action": "clear"}), 409)
    _problem(api.post(url, json={"action": "open-sesame"}), 422)


def test_technician_token_for_one_handset_and_one_technician(api):
    """The token key is HMAC(tech key, "TT"|device|tech|expires); 8 h by default, at most 24 h."""
    hs = _handset(api)
    url = f"/api/v1/handsets/{hs['device_id']}/technician-tokens"
    r = api.post(url, json={"tech_id": 31})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["device_id"] == hs["device_id"] and t["tech_id"] == 31
    assert abs(t["expires"] - (timebase.device_now() + 8 * 3600)) <= 5
    tech = crypto.derive(bytes.fromhex(hs["secret"]), crypto.LABEL_TECH)
    want = crypto.hmac_sha256(tech, b"TT" + struct.pack(">III", hs["device_id"], 31, t["expires"]))
    assert t["token_key"] == want.hex()
    # the handset's challenge response with this token
    nonce = b"\x01" * 16
    assert crypto.hmac_sha256(bytes.fromhex(t["token_key"]), b"TA" + nonce) == crypto.hmac_sha256(want, b"TA" + nonce)
    short = api.post(url, json={"tech_id": 31, "lifetime_s": 600}).json()
    assert abs(short["expires"] - (timebase.device_now() + 600)) <= 5
    _problem(api.post(url, json={"tech_id": 31, "lifetime_s": 25 * 3600}), 422)
    _problem(api.post(url, json={"tech_id": 0}), 422)
    _problem(api.post("/api/v1/handsets/999999/technician-tokens", json={"tech_id": 1}), 404)


def test_commands_are_queued_listed_and_validated(api):
    """Commands get sequence numbers in order and show their status; malformed ones are refused."""
    hs = _handset(api)
    url = f"/api/v1/handsets/{hs['device_id']}/commands"
    a = api.post(url, json={"kind": "service_extend", "arg": 7}).json()
    b = api.post(url, json={"kind": "policy", "arg": {"version": 3, "fail_brac": 25}}).json()
    assert (a["seq"], b["seq"]) == (1, 2) and a["status"] == "queued"
    assert a["expires"] > timebase.device_now()
    _problem(api.post(url, json={"kind": "policy", "arg": {"fail_brac": 25}}), 422)
    _problem(api.post(url, json={"kind": "service_extend", "arg": {"x": 1}}), 422)
    _problem(api.post(url, json={"kind": "launch", "arg": 1}), 422)
    assert [c["seq"] for c in api.get(url).json()] == [1, 2]
    _problem(api.get("/api/v1/commands/987654"), 404)


def test_desired_state_changes_raise_the_version(api):
    """Service, inspection, module and policy changes raise the desired version; no change keeps it."""
    hs = _handset(api)
    url = f"/api/v1/handsets/{hs['device_id']}/desired"
    v0 = hs["desired"]["version"]
    d = api.patch(url, json={"service_due": "2027-01-05", "expected_module": 4242}).json()["desired"]
    assert d["version"] == v0 + 1 and d["service_due"] == "2027-01-05" and d["expected_module"] == 4242
    d = api.patch(url, json={"service_due": "2027-01-05"}).json()["desired"]
    assert d["version"] == v0 + 1
    d = api.patch(url, json={"policy": {"fail_brac": 25}}).json()["desired"]
    assert d["policy"] == {"fail_brac": 25, "version": 1} and d["version"] == v0 + 2
    d = api.patch(url, json={"policy": {"fail_brac": 30}}).json()["desired"]
    assert d["policy"]["version"] == 2
    _problem(api.patch(url, json={"service_due": "1999-01-01"}), 422)


def test_bad_input_gets_problem_bodies(api):
    """Unknown ids, duplicate serials, bad types and out-of-range numbers answer 4xx problems, never 500."""
    _problem(api.get("/api/v1/handsets/2147483647"), 404)
    _problem(api.get("/api/v1/handsets/0"), 422)
    _problem(api.get("/api/v1/handsets/99999999999999999999"), 422)
    _problem(api.get("/api/v1/accounts/abc"), 422)
    hs = _handset(api)
    _problem(api.post("/api/v1/handsets", json={"serial": hs["serial"]}), 409)
    _problem(api.post("/api/v1/handsets", json={"serial": "x", "account_id": 2147483000}), 404)
    _problem(api.post("/api/v1/accounts", content=b"{not json", headers={"content-type": "application/json"}), 422)
    _problem(api.post("/api/v1/accounts", json={"name": "a", "schedule": "monthly", "first_due": "2026-12-01",
                                                "installment_cents": 10**12}), 422)


def test_openapi_docs_are_served(api):
    """The OpenAPI schema and the docs page are served."""
    spec = api.get("/api/v1/openapi.json").json()
    assert "/api/v1/sync" in spec["paths"] and "/api/v1/handsets/{device_id}/unlock-codes" in spec["paths"]
    assert api.get("/docs").status_code == 200


def test_device_day_conversion():
    """Day numbers count from 2024-01-01 and round-trip to dates."""
    assert timebase.day_of(dt.date(2024, 1, 2)) == 1
    assert timebase.date_of(timebase.day_of(dt.date(2027, 3, 4))) == dt.date(2027, 3, 4)
    assert timebase.date_of(0) is None


@pytest.mark.parametrize("body", [{"kind": "installment", "amount_cents": 0, "reference": "z"},
                                  {"kind": "refund", "amount_cents": 5, "reference": "z"},
                                  {"kind": "installment", "amount_cents": 5, "reference": ""}])
def test_payment_validation(api, body):
    """Zero amounts, unknown kinds and empty references are refused with 422."""
    acc = _account(api)
    _problem(api.post(f"/api/v1/accounts/{acc['id']}/payments", json=body), 422)
