"""Firmware core on either interpreter: heap allocated per idle tick and per breath-sample event, peak heap
during a drive cycle, and state-machine steps per second. Prints `key value` lines."""

import gc
import sys
import time

import host_sim  # noqa: F401  (CPython: firmware/ and the stand-ins on sys.path; run with the root on PYTHONPATH)
from board import Board
from fsm import records
from fsm.inputs import Inputs
from fsm.machine import S_DRIVING, Interlock
from host_sim.world import default_module
from interlock import timebase
from storage.memory import MemoryLog

MICRO = sys.implementation.name == "micropython"


class NullBoard(Board):
    """Board verbs that do nothing, so what is measured is the state machine alone."""

    def relay(self, on):
        pass

    def horn(self, on):
        pass

    def lights(self, on):
        pass

    def beep(self, pattern):
        pass

    def heater(self, on):
        pass

    def show(self, buf):
        pass

    def photo(self, reason, photo_id):
        return 0

    def pump(self):
        pass

    def set_clock(self, wall):
        pass


class SavingState:
    """A state store that keeps the last save in a preallocated buffer, as flash would hold it."""

    def __init__(self):
        self.data = None
        self.saves = 0

    def load(self):
        return None

    def save(self, data):
        if self.data is None:
            self.data = bytearray(len(data))
        buf = self.data
        for i in range(len(data)):
            buf[i] = data[i]
        self.saves += 1


def alloc():
    return gc.mem_alloc() if MICRO else 0


def clock_ms():
    return time.ticks_ms() if MICRO else int(time.perf_counter() * 1000)


def setup():
    fsm = Interlock(NullBoard(), MemoryLog(), SavingState(), seed=7)
    inp = Inputs()
    inp.rtc = 94000000
    inp.module_present = True
    inp.module = default_module(start_wall=inp.rtc)
    inp.cell_temp = 355
    inp.cell = 200
    now = 0x3FFF0000  # a few seconds before the tick counter wraps
    fsm.boot(now, inp.rtc)
    return fsm, inp, now


def polls(fsm, inp, now, count, dt):
    """count polls dt ms apart; returns the tick after the last."""
    for _ in range(count):
        now = timebase.add(now, dt)
        fsm.step(now, inp)
    return now


def measured(fsm, inp, now, count, dt):
    """(bytes allocated, records written) over count polls, with the collector off."""
    gc.collect()
    seq = fsm.log.next_seq()
    gc.disable()
    before = alloc()
    polls(fsm, inp, now, count, dt)
    used = alloc() - before
    gc.enable()
    return used, fsm.log.next_seq() - seq


def drive_to_driving(fsm, inp, now):
    """Key on, pass a test, crank: returns the tick at which the engine runs."""
    inp.ignition = True
    now = polls(fsm, inp, now, 10, 50)
    inp.flow = 400
    inp.breath_temp = 340
    now = polls(fsm, inp, now, 120, 50)
    inp.flow = 0
    now = polls(fsm, inp, now, 200, 50)
    inp.engine = True
    return polls(fsm, inp, now, 1, 50)


def idle_alloc(n):
    fsm, inp, now = setup()
    now = drive_to_driving(fsm, inp, now)
    assert fsm.state == S_DRIVING
    return measured(fsm, inp, now, n, 250)


def sample_alloc(n):
    fsm, inp, now = setup()
    inp.ignition = True
    now = polls(fsm, inp, now, 10, 50)
    inp.flow = 300
    inp.breath_temp = 340
    now = polls(fsm, inp, now, 1, 50)
    # steady blowing below the sample volume: each poll is one breath-sample event
    fsm.policy.volume_ml = 5000
    fsm.policy.blow_ms = 15000
    return measured(fsm, inp, now, n, 50)


_DRIVE = ((10, 50, 0, False), (120, 50, 400, False), (200, 50, 0, False), (1, 50, 0, True),
          (14400, 250, 0, True))


class DriveCycle:
    """A full drive cycle in chunks: boot, test, start, an hour of driving with retests, key off."""

    def __init__(self):
        self.fsm, self.inp, self.now = setup()
        self.inp.ignition = True
        self.phase = 0
        self.left = _DRIVE[0][0]
        self.steps = 0
        self.t0 = clock_ms()

    def chunk(self, n):
        """Run up to n polls; returns False when the cycle is over."""
        fsm = self.fsm
        inp = self.inp
        while n > 0:
            if self.left == 0:
                self.phase += 1
                if self.phase >= len(_DRIVE):
                    inp.ignition = False
                    inp.engine = False
                    fsm.step(timebase.add(self.now, 50), inp)
                    return False
                self.left = _DRIVE[self.phase][0]
            count, dt, flow, engine = _DRIVE[self.phase]
            inp.flow = flow
            inp.engine = engine
            if fsm.state == 15:
                inp.flow = 400 if self.steps % 40 < 20 else 0  # blow for retests
            inp.breath_temp = 340 if inp.flow else 200
            self.now = timebase.add(self.now, dt)
            fsm.step(self.now, inp)
            self.steps += 1
            if self.steps % 4 == 0:
                inp.rtc = fsm.wall
            self.left -= 1
            n -= 1
        return True


_cycle = []


def step():
    """For `run.mjs --loop step`: one chunk of the drive cycle per call, None at the end."""
    if not _cycle:
        _cycle.append(DriveCycle())
    return 1 if _cycle[0].chunk(200) else None


def speed(n):
    fsm, inp, now = setup()
    now = drive_to_driving(fsm, inp, now)
    t0 = clock_ms()
    polls(fsm, inp, now, n, 250)
    return n * 1000 // max(1, clock_ms() - t0)


if __name__ == "__main__" and "--peak-only" not in sys.argv:
    # windows without log records: a record is an event, not steady state
    used, records_written = idle_alloc(1000)
    print("idle_tick_bytes", used, "over 1000 driving polls at 250 ms; records written", records_written)
    used, records_written = sample_alloc(200)
    print("sample_event_bytes", used, "over 200 breath-sample polls at 50 ms; records written", records_written)
    cycle = DriveCycle()
    while cycle.chunk(1000):
        pass
    log = cycle.fsm.log
    print("drive_cycle_polls", cycle.steps, "log_records", log.next_seq() - 1, "retests",
          sum(1 for s in range(1, log.next_seq()) if log.read(s)[2] == records.RETEST and log.read(s)[4] == 1))
    print("steps_per_second", speed(20000))
