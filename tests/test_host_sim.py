"""The simulator's command line, demo, interactive program, determinism and the runtime's fail-safe."""

import subprocess
import sys

import pytest

from fsm import records
from host_sim import scenario
from host_sim.handset import SimHandset
from tests.interpreters import ROOT

PY = sys.executable


def _run(*args, stdin=None):
    return subprocess.run([PY, "-m", "host_sim", *args], cwd=ROOT, capture_output=True, text=True,
                          input=stdin, timeout=300)


def test_run_prints_transcript_and_trace_and_exits_zero():
    """`python -m host_sim run` prints the display transcript, the event trace and a zero-failure result."""
    out = _run("run", "tests/scenarios/pass_start.scn")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.index("== display ==") < text.index("== events ==") < text.index("== result ==")
    assert '"PASS" "START 03:00"' in text
    assert "RELAY ON" in text


def test_run_is_deterministic():
    """Running the same scenario twice prints the same bytes."""
    a = _run("run", "tests/scenarios/retest_missed.scn").stdout
    b = _run("run", "tests/scenarios/retest_missed.scn").stdout
    assert a == b and len(a) > 1000


def test_failed_expectation_exits_one(tmp_path):
    """A scenario whose expectation does not hold is reported and exits 1."""
    path = tmp_path / "wrong.scn"
    path.write_text('key on\nexpect display "PASS"\n')
    out = _run("run", str(path))
    assert out.returncode == 1
    assert 'wrong.scn:2: display is "HEATING  0%" ""' in out.stdout


@pytest.mark.parametrize("text, message", [
    ("fly away\n", "unknown command fly"),
    ("wait forever\n", "bad duration forever"),
    ('key on\nexpect display "unterminated\n', "unterminated quote"),
    ("key on\nseed 3\n", "seed must come before the first action"),
])
def test_bad_scenario_lines_are_a_clear_error(tmp_path, text, message):
    """An invalid scenario line stops the run with exit 2 and says what is wrong."""
    path = tmp_path / "bad.scn"
    path.write_text(text)
    out = _run("run", str(path))
    assert out.returncode == 2
    assert message in out.stderr


def test_missing_scenario_file_is_a_clear_error():
    """A scenario path that does not exist is reported, not a traceback."""
    out = _run("run", "no/such/file.scn")
    assert out.returncode == 2
    assert "No such file" in out.stderr and "Traceback" not in out.stderr


def test_demo_shows_the_drive():
    """`make demo` shows warm-up, blow, pass, start, a retest, a failed test, a lockout and an unlock code."""
    out = _run("demo")
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for screen in ("HEATING", "BLOW", "PASS", "START 03:00", "RETEST - BLOW", "FAIL .0", "LOCK 04:", "MISSED TEST",
                   "VIOLATION       |LOCKOUT", "ENTER CODE", "CODE ACCEPTED"):
        assert screen in text, screen
    assert "CRANK STARTED" in text and "HORN ON" in text


def test_interactive_program_headless():
    """The interactive handset, driven through piped input, warms up, passes and enables the starter."""
    cmds = "key on\nwait 15s\nblow\nwait 8s\nshow\ncrank\nshow\nquit\n"
    out = _run(stdin=cmds)
    assert out.returncode == 0, out.stderr
    assert "|BLOW            |" in out.stdout
    assert "|PASS            |  RELAY KEY\n|START 02:58     |" in out.stdout
    assert "|DRIVE SAFELY    |  ENGINE KEY" in out.stdout


def test_tick_counter_start_does_not_change_behaviour():
    """The same scenario gives the same display transcript wherever the tick counter starts (wrap included)."""
    text = (ROOT / "tests" / "scenarios" / "retest_pass.scn").read_text()
    transcripts = []
    for start in (0, 2**30 - 1, 2**30 - 20000, 2**29, 123456789):
        sc = scenario.Scenario("wrap")
        sc.tick_start = start
        sc.run_text(text)
        assert not sc.failures, sc.failures
        transcripts.append(sc.sim.trace.display)
    assert all(t == transcripts[0] for t in transcripts)


class _Exploding:
    def __init__(self, exc):
        self.exc = exc

    def read(self):
        raise self.exc


def _driving_with_relay_closed():
    sim = SimHandset()
    sim.world.key(True)
    sim.run(15000)
    sim.world.start_blow(0, 2000, 5500, 340, False)
    sim.run(12000)
    assert sim.world.relay
    return sim


def test_one_bus_glitch_skips_a_poll_only():
    """A single driver OSError skips one poll; the handset carries on."""
    sim = _driving_with_relay_closed()
    good = sim.hw.flow
    sim.hw.flow = _Exploding(OSError("I2C NAK"))
    sim.wake()
    sim.run(60)
    sim.hw.flow = good
    sim.run(1000)
    assert not sim.runtime.failed and sim.world.relay


@pytest.mark.parametrize("exc", [OSError("bus fault"), ValueError("corrupt RTC registers")])
def test_runtime_fails_safe_on_an_unexpected_exception(exc):
    """A persistent driver error or any other exception opens the relay, shows an error and writes a FAULT."""
    sim = _driving_with_relay_closed()
    sim.hw.flow = _Exploding(exc)
    for _ in range(5):
        sim.wake()
        sim.run(300)
    assert not sim.world.relay
    assert sim.trace.screen == ("SYSTEM ERROR", "CALL SERVICE")
    last = sim.log.read(sim.log.next_seq() - 1)
    assert last[2] == records.FAULT and last[3] == 2
    assert sim.runtime.failed


def test_run_on_a_flash_image_then_read_its_log(tmp_path):
    """`run --flash IMAGE` keeps the log on a littlefs image that the log reader decodes and verifies."""
    image = tmp_path / "handset.img"
    out = _run("run", "--flash", str(image), "tests/scenarios/retest_failed.scn")
    assert out.returncode == 0, out.stderr
    log = _run("log", str(image))
    assert log.returncode == 0, log.stderr
    assert "chain verifies" in log.stdout
    assert "RETEST" in log.stdout and "VIOLATION" in log.stdout
    # a second run appends to the same image: boot after the first run's records, chain still whole
    again = _run("run", "--flash", str(image), "tests/scenarios/pass_start.scn")
    assert again.returncode == 0, again.stdout[-500:]
    assert "chain verifies" in _run("log", str(image)).stdout


def test_runtime_loop_polls_at_the_asked_interval_and_wakes_on_input():
    """The asyncio loop sleeps the state machine's poll interval, and wake() makes it poll at once."""
    import asyncio
    import time

    sim = SimHandset()
    runtime = sim.runtime
    polls = []
    real_poll = runtime.poll

    def counting_poll(now):
        polls.append(time.monotonic())
        real_poll(now)

    runtime.poll = counting_poll

    async def scenario():
        loop_task = asyncio.create_task(runtime.run(sim.ticks))
        await asyncio.sleep(0.3)
        assert len(polls) == 1  # ignition off: the idle interval is 5 s
        runtime.wake()
        await asyncio.sleep(0.05)
        assert len(polls) == 2
        loop_task.cancel()

    asyncio.run(scenario())


def test_the_simulator_steps_the_firmware_runtime_loop():
    """SimHandset advances the firmware by Runtime.step, the loop step Runtime.run takes on a board, and waits
    the interval each step returns."""
    sim = SimHandset()
    runtime = sim.runtime
    steps = []
    real_step = runtime.step

    def counting_step(now):
        ms = real_step(now)
        steps.append((sim.world.t, ms))
        return ms

    runtime.step = counting_step
    sim.run(16000)
    assert len(steps) >= 3
    for (t0, ms), (t1, _) in zip(steps, steps[1:], strict=False):
        assert t1 - t0 == ms
