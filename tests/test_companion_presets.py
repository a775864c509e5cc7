"""The companion gives each handset its account's state preset through the existing policy path (desired
state, synced to the handset), refuses states without a preset, and audits every change of the preset in force."""

import dataclasses

from sqlalchemy import select

import presets
from tests.companion_doubles import SyncedSim
from tests.companion_helpers import new_account, new_handset, problem

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)


def _audits(backend, device_id):
    from companion.app.accounts.models import AuditEntry
    from companion.app.core.db import Database

    db = Database(backend)
    try:
        with db.sessions() as s:
            rows = s.scalars(select(AuditEntry).where(AuditEntry.action == "preset-changed")
                             .order_by(AuditEntry.id)).all()
            return [(e.detail["old"], e.detail["new"]) for e in rows if e.detail["handset_id"] == device_id]
    finally:
        db.close()


def test_a_handset_of_an_arizona_account_runs_the_arizona_preset(api, server, backend):
    """The preset goes into the desired policy with a new companion version; the handset applies it on sync;
    the assignment is audited."""
    acc = new_account(api, jurisdiction="AZ")
    assert acc["jurisdiction"] == "AZ"
    hs = new_handset(api, acc["id"])
    desired = api.get("/api/v1/handsets/%d" % hs["device_id"]).json()["desired"]
    az = presets.load("AZ")
    assert desired["preset"] == az.tag()
    assert {k: desired["policy"][k] for k in az.policy()} == az.policy() and desired["policy"]["version"] == 1
    sim = SyncedSim(server.url, hs)
    sim.settle()
    pol = sim.fsm.policy
    assert pol.version == 1
    for name, value in az.policy().items():
        assert getattr(pol, name) == value, name
    assert _audits(backend, hs["device_id"]) == [("", "AZ@1")]


def test_changing_the_state_or_the_preset_version_pushes_and_audits(api, server, backend, monkeypatch):
    acc = new_account(api)
    hs = new_handset(api, acc["id"])
    view = api.get("/api/v1/handsets/%d" % hs["device_id"]).json()["desired"]
    assert view["preset"] == "" and view["policy"] == {}
    r = api.patch("/api/v1/accounts/%d" % acc["id"], json={"jurisdiction": "CA"})
    assert r.status_code == 200, r.text
    view = api.get("/api/v1/handsets/%d" % hs["device_id"]).json()["desired"]
    assert view["preset"] == "CA@1" and view["policy"]["fail_brac"] == 30 and view["policy"]["version"] == 1
    # a new version of the California preset: `python -m companion presets` (crud.refresh_presets) pushes it
    from companion.app import crud
    from companion.app.core.db import Database

    real = presets.load

    def load(state):
        p = real(state)
        if p.state != "CA":
            return p
        params = dict(p.params, retest_window_s=dataclasses.replace(p.params["retest_window_s"], value=240))
        return dataclasses.replace(p, version=2, params=params)

    monkeypatch.setattr(presets, "load", load)
    db = Database(backend)
    try:
        with db.write_session() as s:
            assert crud.refresh_presets(s) >= 1
            s.commit()
        with db.write_session() as s:
            assert crud.refresh_presets(s) == 0  # nothing left to change
            s.commit()
    finally:
        db.close()
    view = api.get("/api/v1/handsets/%d" % hs["device_id"]).json()["desired"]
    assert view["preset"] == "CA@2" and view["policy"]["retest_window_s"] == 240 and view["policy"]["version"] == 2
    sim = SyncedSim(server.url, hs)
    sim.settle()
    assert sim.fsm.policy.retest_window_s == 240 and sim.fsm.policy.fail_brac == 30
    assert _audits(backend, hs["device_id"]) == [("", "CA@1"), ("CA@1", "CA@2")]
    # detached from the account: the preset in force ends (audited), the handset keeps the values it has
    r = api.patch("/api/v1/handsets/%d" % hs["device_id"], json={"account_id": None})
    assert r.status_code == 200, r.text
    view = api.get("/api/v1/handsets/%d" % hs["device_id"]).json()["desired"]
    assert view["preset"] == "" and view["policy"]["retest_window_s"] == 240
    assert _audits(backend, hs["device_id"])[-1] == ("CA@2", "")


def test_a_state_without_a_preset_is_refused_and_nothing_changes(api):
    acc = new_account(api, jurisdiction="TX")
    for bad in ("ZZ", "az", "ARZ", ""):
        r = api.patch("/api/v1/accounts/%d" % acc["id"], json={"jurisdiction": bad})
        problem(r, 422)
    r = api.post("/api/v1/accounts", json={"name": "d", "schedule": "monthly", "first_due": "2026-12-01",
                                           "installment_cents": 9000, "jurisdiction": "NY"})
    assert "no preset for state NY" in problem(r, 422)["detail"]
    assert api.get("/api/v1/accounts/%d" % acc["id"]).json()["jurisdiction"] == "TX"
