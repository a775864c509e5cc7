"""End to end with the companion: it provisions a handset and issues a technician token; the simulated
handset takes the secret over its service port and accepts the token."""

import json
import sys
from pathlib import Path

from companion import testing
from host_sim.pty_port import SimServicePort, flash_sim
from technician.client import device_now
from tests.test_service_pty import run

ROOT = Path(__file__).resolve().parents[1]


def test_companion_token_logs_in_to_a_handset_it_provisioned(tmp_path):
    """Provision over the port with the companion's secret, then log in with a companion-issued token."""
    settings = testing.settings_for("sqlite:///" + str(tmp_path / "c.db"), testing.test_master_keys())
    with testing.ServerThread(settings) as srv:
        office = testing.Backoffice(srv.url)
        try:
            hs = office.handset()
            device_id = hs["device_id"]
            token = office.call("POST", f"/handsets/{device_id}/technician-tokens", 201,
                                json={"tech_id": 12, "lifetime_s": 3600})
        finally:
            office.close()
    (tmp_path / "tech.json").write_text(json.dumps(token))
    sim, log = flash_sim(device_id=device_id, provision=False, start_wall=device_now())
    with SimServicePort(sim, log) as port:
        cli = [sys.executable, "-m", "technician", "--port", port.path]
        r = run(cli + ["status"], ROOT)  # no key yet: nobody can log in
        assert r.returncode == 1
        r = run(cli + ["provision", "--device-id", str(device_id), "--secret", hs["secret"]], ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        r = run(cli + ["--token", str(tmp_path / "tech.json"), "status"], ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "logged in as technician 12" in r.stdout
        r = run(cli + ["provision", "--device-id", "99", "--secret", "00" * 32], ROOT)
        assert r.returncode == 1 and "ACCESSDENIED" in r.stdout
    assert sim.fsm.device_id == device_id
