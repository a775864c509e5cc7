"""The technician CLI as a technician meets it: one-line errors for ports it cannot use, a logout after every
command (refused ones too), dates instead of device days, and the simulator's UDP mode."""

import datetime
import json
import os
import pty
import re
import signal
import subprocess
import sys
import tty
from pathlib import Path

import pytest
import serial

from host_sim.pty_port import SimServicePort, UdpService
from technician.client import EPOCH_DATE, date_to_day, day_to_date, split_udp, text_to_wall, wall_to_text
from technician.token import mint
from tests.service_sim import locked_sim
from tests.test_service_pty import run

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, token=None, cwd=ROOT):
    extra = ["--token", str(token)] if token else []
    return run([sys.executable, "-m", "technician", *extra, *args], cwd)


def one_line_error(r, *words):
    """The CLI failed with exactly one line on stdout, starting "error:" and naming words; nothing on stderr."""
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stdout
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def token(tmp_path):
    """A token file (the CLI reads it before it opens any port)."""
    path = tmp_path / "tech.json"
    path.write_text(json.dumps(mint(bytes(32), 1, 1, 10**6).to_json()))
    return path


def test_missing_port_is_one_line(token):
    """A serial port that does not exist: one line saying so, no transport log."""
    one_line_error(cli("--port", "/dev/ttyNOSUCH0", "status", token=token), "no serial port /dev/ttyNOSUCH0")


def test_busy_port_is_one_line(token):
    """A port another program holds exclusively: one line saying it is busy, at once."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        with serial.Serial(path, exclusive=True):
            one_line_error(cli("--port", path, "status", token=token), path, "busy")
    finally:
        os.close(slave)
        os.close(master)


def test_dead_port_is_one_line_without_packet_dumps(token):
    """A port where nothing answers: one line, no timeout dumps of SMP headers or packet bytes."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        r = cli("--port", path, "--timeout", "0.5", "status", token=token)
    finally:
        os.close(slave)
        os.close(master)
    one_line_error(r, "no answer from the handset")
    assert "Header" not in r.stdout and "smp_data" not in r.stdout


@pytest.fixture
def udp_handset(tmp_path):
    """A locked-out simulated handset answering on a free UDP port, and a token file for it."""
    sim, log = locked_sim()
    tok = mint(sim.fsm.keys()[2], sim.fsm.device_id, 63, sim.fsm.wall + 3600)
    (tmp_path / "tech.json").write_text(json.dumps(tok.to_json()))
    with UdpService(sim.fsm, log, clock=sim.ticks, port=0) as server:
        server.token = tmp_path / "tech.json"
        server.where = "127.0.0.1:%d" % server.address[1]
        server.sim = sim
        yield server
    assert server.crashed is None and server.service.faults == 0


def live_sessions(server):
    with server.lock:
        return [(s.peer, s.tech_id) for s in server.service.sessions if s.tech_id]


def test_cli_logs_out_after_a_refused_command(udp_handset):
    """A command the handset refuses still ends with a logout: over UDP, where no cable ends it, no session of
    the CLI's is left open afterwards."""
    s = udp_handset
    lockout_id = s.sim.fsm.lockout_id
    r = cli("--udp", s.where, "clear", "--lockout-id", str(lockout_id + 1), token=s.token)
    assert r.returncode == 1 and "REFUSED" in r.stdout, r.stdout + r.stderr
    assert live_sessions(s) == []
    r = cli("--udp", s.where, "policy", "version=7", token=s.token)  # refused: not the companion's version
    assert r.returncode == 1 and "REFUSED" in r.stdout, r.stdout + r.stderr
    assert live_sessions(s) == []
    r = cli("--udp", s.where, "status", token=s.token)
    assert r.returncode == 0, r.stdout + r.stderr
    assert live_sessions(s) == []


def test_cli_shows_dates_and_takes_dates(udp_handset):
    """Status shows due dates and times as dates; --expiry and --due take YYYY-MM-DD; a bare number is refused
    in one line before anything is sent."""
    s = udp_handset
    fsm = s.sim.fsm
    r = cli("--udp", s.where, "status", token=s.token)
    assert r.returncode == 0, r.stdout + r.stderr
    wall_text = wall_to_text(fsm.wall)[:10]
    assert re.search(r"\bwall\s+" + wall_text + r" \d\d:\d\d:\d\d UTC", r.stdout), r.stdout
    expiry = day_to_date(fsm.wall // 86400 + 200)
    r = cli("--udp", s.where, "module", "--serial", "5150", "--expiry", expiry.isoformat(), token=s.token)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"expires on {expiry.isoformat()}" in r.stdout
    due = day_to_date(fsm.wall // 86400 + 45)
    r = cli("--udp", s.where, "service", "--due", due.isoformat(), token=s.token)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"next due on {due.isoformat()}" in r.stdout and fsm.service_due == date_to_day(due.isoformat())
    r = cli("--udp", s.where, "status", token=s.token)
    assert re.search(r"service_due\s+" + due.isoformat(), r.stdout), r.stdout
    one_line_error(cli("--udp", s.where, "module", "--serial", "1", "--expiry", "1400", token=s.token),
                   "--expiry", "YYYY-MM-DD")


def test_date_conversions():
    """Device days and seconds convert to and from calendar dates and UTC times exactly."""
    assert day_to_date(0) == EPOCH_DATE and date_to_day("2024-03-01") == 60
    assert text_to_wall("2024-01-01T00:01:40") == 100 and wall_to_text(100) == "2024-01-01 00:01:40 UTC"
    assert text_to_wall("2024-01-01T01:00:00+01:00") == 0
    day = date_to_day("2026-11-22")
    assert day_to_date(day) == datetime.date(2026, 11, 22)
    for bad in ("2023-12-31", "22/11/2026", "1400"):
        with pytest.raises(ValueError):
            date_to_day(bad)
    assert split_udp("10.0.0.5") == ("10.0.0.5", 1337) and split_udp("10.0.0.5:9000") == ("10.0.0.5", 9000)


def test_host_sim_service_port_serves_udp_too(tmp_path):
    """`python -m host_sim service-port --udp 0` prints its pty and its UDP address; the CLI works over both."""
    proc = subprocess.Popen([sys.executable, "-m", "host_sim", "service-port", "--udp", "127.0.0.1:0",
                             "--token", str(tmp_path / "tech.json")], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        udp = proc.stdout.readline().strip()
        assert path.startswith("/dev/") and udp.startswith("udp 127.0.0.1:"), (path, udp)
        r = cli("--udp", udp.split()[1], "status", token=tmp_path / "tech.json")
        assert r.returncode == 0 and "logged in as technician 1" in r.stdout, r.stdout + r.stderr
        r = cli("--port", path, "status", token=tmp_path / "tech.json")
        assert r.returncode == 0 and "logged in as technician 1" in r.stdout, r.stdout + r.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_host_sim_service_port_reports_a_taken_udp_port(tmp_path):
    """A UDP port already in use is reported in one line and the command exits 1."""
    sim, log = locked_sim(lockout=False)
    with UdpService(sim.fsm, log, clock=sim.ticks, port=0) as taken:
        r = run([sys.executable, "-m", "host_sim", "service-port", "--udp", "127.0.0.1:%d" % taken.address[1]],
                ROOT)
    assert r.returncode == 1
    assert "cannot serve UDP on 127.0.0.1:%d" % taken.address[1] in r.stdout


def test_cli_logs_out_after_a_refused_command_on_the_serial_line(tmp_path):
    """On the serial line, a refused command is followed by a logout: the session is gone while the cable is
    still in."""
    sim, log = locked_sim()
    tok = mint(sim.fsm.keys()[2], sim.fsm.device_id, 64, sim.fsm.wall + 3600)
    (tmp_path / "tech.json").write_text(json.dumps(tok.to_json()))
    with SimServicePort(sim, log) as port:
        with serial.Serial(port.path):  # keep the line "plugged in" so only a logout can end the session
            r = cli("--port", port.path, "clear", "--lockout-id", "0", token=tmp_path / "tech.json")
            assert r.returncode == 1 and "REFUSED" in r.stdout, r.stdout + r.stderr
            with port.lock:
                s = port.service.session_for()
                assert s is None or s.tech_id == 0
        assert port.port.crashed is None and port.service.faults == 0
