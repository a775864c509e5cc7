"""The simulated handset's service port on a pseudo-terminal, driven by the real smpmgr and the technician CLI."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import pytest
import serial
from smpclient.requests.os_management import EchoWrite

from fsm import records
from host_sim.pty_port import SimServicePort
from technician import protocol as p
from technician.client import check_log, day_to_date
from technician.token import mint
from tests.service_sim import locked_sim

ROOT = Path(__file__).resolve().parents[1]
SMPMGR = str(ROOT / ".venv" / "bin" / "smpmgr")
PLUGIN = "--plugin-path=" + str(ROOT / "technician" / "smpmgr_plugin")


@pytest.fixture
def handset(tmp_path):
    """A locked-out simulated handset with a few drives in its log, running in real time on a pty."""
    sim, log = locked_sim()
    for i in range(200):
        sim.fsm.record(records.RESULT, i % 30, records.PASS, 1)
    port = SimServicePort(sim, log).start()
    tok = mint(sim.fsm.keys()[2], sim.fsm.device_id, 61, sim.fsm.wall + 3600)
    (tmp_path / "tech.json").write_text(json.dumps(tok.to_json()))
    port.token = tmp_path / "tech.json"
    yield port
    port.stop()
    assert port.port.crashed is None and port.service.faults == 0


def run(args, cwd, stdin=None, timeout=60):
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})


def records_since(port, mark):
    with port.lock:
        return [port.log.read(s) for s in range(mark, port.log.next_seq())]


def test_smpmgr_echo(handset, tmp_path):
    """The unmodified smpmgr CLI gets an echo back."""
    r = run([SMPMGR, "--port", handset.path, "os", "echo", "hello handset"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "r='hello handset'" in r.stdout


def test_smpmgr_downloads_the_log_inside_a_session(handset, tmp_path):
    """smpmgr logs in with the plugin and downloads /log/events.bin with its own file command; it verifies."""
    script = (f"--port {handset.path} interlock --token {handset.token} login\n"
              f"--port {handset.path} file download /log/events.bin {tmp_path / 'events.bin'}\n"
              "exit\n")
    r = run([SMPMGR, PLUGIN, "interactive"], tmp_path, stdin=script)
    assert r.returncode == 0, r.stdout + r.stderr
    data = (tmp_path / "events.bin").read_bytes()
    check = check_log(data)
    assert check.ok, check.reason
    assert check.count >= 200 and len(data) > 2 * 2048  # several buffer-sized answers
    assert (records.SERVICE, records.SVC_DOWNLOAD, 61) in [r[2:5] for r in check.records]


def test_smpmgr_download_without_a_session_is_refused_and_logged(handset, tmp_path):
    """Without a login smpmgr's download gets ACCESSDENIED, and the handset logs the refusal."""
    mark = handset.log.next_seq()
    r = run([SMPMGR, "--port", handset.path, "file", "download", "/log/events.bin", str(tmp_path / "x.bin")],
            tmp_path)
    assert r.returncode != 0
    assert "EACCESSDENIED" in r.stdout + r.stderr
    assert not (tmp_path / "x.bin").exists()
    assert [(x[2], x[3]) for x in records_since(handset, mark)] == [(records.SERVICE, records.SVC_LOGIN_REFUSED)]


def test_session_ends_when_the_client_disconnects(handset, tmp_path):
    """A login in one smpmgr run does not carry over to the next run (the port was closed in between)."""
    r = run([SMPMGR, PLUGIN, "--port", handset.path, "interlock", "--token", str(handset.token), "login"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    time.sleep(0.7)
    r = run([SMPMGR, "--port", handset.path, "file", "download", "/log/events.bin", str(tmp_path / "x.bin")],
            tmp_path)
    assert "EACCESSDENIED" in r.stdout + r.stderr


def tech(handset, cwd, *args, token=None):
    return run([sys.executable, "-m", "technician", "--port", handset.path, "--token",
                str(token or handset.token), *args], cwd=ROOT)


def test_technician_cli_full_service_visit(handset, tmp_path):
    """Authenticate, download and verify the log, calibrate, record service, clear the lockout."""
    fsm = handset.sim.fsm
    mark = handset.log.next_seq()
    r = tech(handset, tmp_path, "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "logged in as technician 61" in r.stdout and re.search(r"lockout\s+True", r.stdout)

    out = tmp_path / "events.bin"
    r = tech(handset, tmp_path, "log", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "chain verified" in r.stdout
    assert check_log(out.read_bytes()).ok

    r = tech(handset, tmp_path, "calibrate", "--zero", "150", "--ref", "2300", "--brac", "80")
    assert r.returncode == 0, r.stdout + r.stderr
    r = tech(handset, tmp_path, "service")
    assert r.returncode == 0, r.stdout + r.stderr
    with handset.lock:
        lockout_id = fsm.status()["lockout_id"]
    r = tech(handset, tmp_path, "clear", "--lockout-id", str(lockout_id + 1))  # not the one it shows
    assert r.returncode == 1 and "REFUSED" in r.stdout, r.stdout + r.stderr
    r = tech(handset, tmp_path, "clear", "--lockout-id", str(lockout_id))
    assert r.returncode == 0, r.stdout + r.stderr

    with handset.lock:
        st = fsm.status()
        due = fsm.wall // 86400 + fsm.policy.service_days
    assert st["lockout"] is False and st["service_due"] == due and st["violations"] == 0
    got = [r[2:5] for r in records_since(handset, mark)]
    for action in (records.SVC_LOGIN, records.SVC_DOWNLOAD, records.SVC_CALIBRATE, records.SVC_RECORD):
        assert (records.SERVICE, action, 61) in got
    assert (records.CLEAR, records.LOCK_VIOLATION, records.SRC_TECH) in got


def test_cli_refuses_expired_and_foreign_tokens(handset, tmp_path):
    """The CLI reports an expired token and a token for another handset, and the handset stays locked."""
    fsm = handset.sim.fsm
    expired = mint(fsm.keys()[2], fsm.device_id, 61, fsm.wall - 10)
    foreign = mint(fsm.keys()[2], fsm.device_id + 1, 61, fsm.wall + 3600)
    for tok, word in ((expired, "EXPIRED"), (foreign, "BAD_TOKEN")):
        path = tmp_path / f"{word}.json"
        path.write_text(json.dumps(tok.to_json()))
        r = tech(handset, tmp_path, "clear", "--lockout-id", "1", token=path)
        assert r.returncode == 1 and word in r.stdout, r.stdout + r.stderr
    with handset.lock:
        assert fsm.status()["lockout"] is True


def test_garbage_on_the_wire_changes_nothing(handset, tmp_path):
    """Noise, broken frames and an oversize frame over the pty leave the handset as it was and answering."""
    with handset.lock:
        before = {k: v for k, v in handset.sim.fsm.status().items() if k not in ("wall", "log_next_seq",
                                                                               "display", "state")}
    rng = __import__("random").Random(5)
    with serial.Serial(handset.path, 115200, timeout=0.5) as s:
        s.write(bytes(rng.randrange(256) for _ in range(5000)))
        s.write(b"\x06\x09" + b"Zm9v" * 60 + b"\n")  # overlong line
        s.write(b"\x06\x09AAAA!!!!\n\x04\x14AAAA\n")  # bad base64, stray continuation
        big = EchoWrite(d="x" * 5000).BYTES
        from service import cbor, frame
        s.write(b"".join(frame.encode(big)))
        time.sleep(0.5)
        s.reset_input_buffer()
        echo = EchoWrite(d="still here")
        s.write(b"\n" + b"".join(frame.encode(echo.BYTES)))
        deadline = time.time() + 5
        decoder = frame.Decoder(4096)
        out = []
        while time.time() < deadline and not any(kind == 0 and pkt[6] == echo.header.sequence for kind, pkt in out):
            decoder.feed(s.read(256), out)  # the answer is base64 on the wire: decode it as it comes
    answers = [cbor.decode(pkt[8:]) for kind, pkt in out if kind == 0 and pkt[6] == echo.header.sequence]
    assert answers == [{"r": "still here"}]
    with handset.lock:
        after = {k: v for k, v in handset.sim.fsm.status().items() if k not in ("wall", "log_next_seq",
                                                                              "display", "state")}
    assert after == before


def test_smpmgr_reset_power_cycles_the_handset_and_ends_the_session(handset, tmp_path):
    """An OS reset inside a session is answered, then the simulated handset reboots; the lockout survives."""
    boots = handset.sim.boots
    script = (f"--port {handset.path} interlock --token {handset.token} login\n"
              f"--port {handset.path} os reset\n"
              "exit\n")
    r = run([SMPMGR, PLUGIN, "interactive"], tmp_path, stdin=script)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ResetWriteResponse" in r.stdout
    deadline = time.time() + 3
    while handset.sim.boots == boots and time.time() < deadline:
        time.sleep(0.05)
    assert handset.sim.boots == boots + 1
    with handset.lock:
        assert handset.sim.fsm.status()["lockout"] is True
        assert handset.service.session_for() is None  # the reset freed every session


def test_technician_cli_policy_clock_and_module(handset, tmp_path):
    """The CLI applies a policy, sets the clock and records a module; the handset logs each with the tech id."""
    fsm = handset.sim.fsm
    mark = handset.log.next_seq()
    with handset.lock:
        version = fsm.policy.version
        local = fsm.policy.local
        wall = fsm.wall + 120
        expiry = fsm.wall // 86400 + 365
    r = tech(handset, tmp_path, "policy", "fail_brac=30", "warn_brac=15")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"policy version {version} in force, technician change {local + 1} on top" in r.stdout
    r = tech(handset, tmp_path, "clock", "--wall", str(wall))
    assert r.returncode == 0, r.stdout + r.stderr
    r = tech(handset, tmp_path, "module", "--serial", "5150", "--expiry", day_to_date(expiry).isoformat())
    assert r.returncode == 0, r.stdout + r.stderr
    r = tech(handset, tmp_path, "policy", f"version={version + 1}", "fail_brac=30")  # not the one in force
    assert r.returncode == 1 and "REFUSED" in r.stdout
    with handset.lock:
        assert (fsm.policy.version, fsm.policy.fail_brac, fsm.policy.warn_brac) == (version, 30, 15)
        assert wall <= fsm.wall < wall + 30
    got = [r[2:5] for r in records_since(handset, mark)]
    from service import ilgroup
    for action in (ilgroup.SVC_POLICY, ilgroup.SVC_CLOCK, records.SVC_MODULE):
        assert (records.SERVICE, action, 61) in got


def test_smpmgr_plugin_commands(handset, tmp_path):
    """The smpmgr plugin shows the status and downloads and verifies the log, each in its own session."""
    base = [SMPMGR, PLUGIN, "--port", handset.path, "interlock", "--token", str(handset.token)]
    r = run(base + ["status"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "'lockout': True" in r.stdout
    r = run(base + ["log", str(tmp_path / "plugin.bin")], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "chain verified" in r.stdout and check_log((tmp_path / "plugin.bin").read_bytes()).ok


def test_technician_cli_over_udp(tmp_path):
    """The CLI's UDP transport reaches the same server (SMP packets without serial framing)."""
    from host_sim.pty_port import UdpService

    sim, log = locked_sim()
    tok = mint(sim.fsm.keys()[2], sim.fsm.device_id, 62, sim.fsm.wall + 3600)
    (tmp_path / "tech.json").write_text(json.dumps(tok.to_json()))
    server = UdpService(sim.fsm, log, clock=sim.ticks, port=0)  # a free port: 1337 may be taken on a shared machine
    with server:
        r = run([sys.executable, "-m", "technician", "--udp", "127.0.0.1:%d" % server.address[1], "--token",
                 str(tmp_path / "tech.json"), "clear", "--lockout-id", str(sim.fsm.lockout_id)], ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sim.fsm.status()["lockout"] is False


def test_simulated_reset_starts_the_server_over_as_the_board_does():
    """After an OS reset the simulator serves the port with a server started over, as the board's task builds
    one after boot: the sessions are gone, and what the handset saved comes back as on the board: the login
    wait of the network peers (the cable's was never raised) and the token clock a technician set back."""
    from host_sim.pty_port import flash_sim

    sim, log = flash_sim()
    port = SimServicePort(sim, log)
    try:
        svc = port.service
        now = sim.ticks()
        nonce = cbor2.loads(svc.handle(now, p.Challenge().BYTES, "peer")[8:])["nonce"]
        bad = p.Login(tech_id=3, expires=sim.fsm.wall + 600, mac=bytes(32))
        svc.handle(now, bad.BYTES, "peer")
        assert nonce and svc.login_held(now, "peer") and not svc.login_held(now)
        sim.fsm.set_time(now, sim.fsm.wall - 3600, records.SRC_TECH)
        token_clock = svc.token_wall(now)
        port._reset()  # what the pump does once the reset's answer is out
        assert port.service is svc and svc.handset is sim.fsm
        now = sim.ticks()
        svc.poll(now)
        assert svc.login_held(now, "peer") and not svc.login_held(now)
        assert svc.token_wall(now) >= token_clock > sim.fsm.wall
        assert svc.session_for("peer") is None
    finally:
        port.port.port.close()


def test_udp_service_on_a_taken_port_leaves_no_socket_open():
    """A UDP port already bound by another process is an OSError, and the service's own socket is closed
    behind it (left open, the leak surfaced as a ResourceWarning in whichever test ran next)."""
    import gc
    import socket
    import warnings

    from host_sim.pty_port import UdpService

    sim, log = locked_sim()
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(OSError):
                UdpService(sim.fsm, log, clock=sim.ticks, port=taken.getsockname()[1])
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    finally:
        taken.close()
