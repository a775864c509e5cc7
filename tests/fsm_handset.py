"""What the state machine's example tests share: a board that does nothing but remember what it was told, and an
Interlock polled with hand-set inputs."""

from fsm import breath
from fsm.inputs import Inputs
from fsm.machine import S_DRIVING, S_START, Interlock
from fsm.policy import Policy
from host_sim.world import default_module
from interlock import timebase
from storage.memory import MemoryLog, MemoryState


class QuietBoard:
    """A board that does nothing, and remembers what the relay, the heater and the clock were told."""

    def __init__(self):
        self.relays = []
        self.heaters = []
        self.clock_sets = []

    def relay(self, on):
        self.relays.append(on)

    def heater(self, on):
        self.heaters.append(on)

    def set_clock(self, wall):
        self.clock_sets.append(wall)

    def __getattr__(self, name):
        return lambda *a: 0


class Handset:
    """An Interlock polled with hand-set inputs (a warm cell, clean air), the tick counter about to wrap; its module
    inserted and latched unless `latched` is False (its data still in the inputs)."""

    def __init__(self, latched=True, seed=3, **policy_values):
        p = Policy()
        if policy_values:
            assert p.apply(policy_values, local=True) is None
        self.log = MemoryLog()
        self.store = MemoryState()
        self.board = QuietBoard()
        self.fsm = Interlock(self.board, self.log, self.store, policy=p, seed=seed)
        inp = self.inp = Inputs()
        inp.rtc = 90_000_000
        inp.module_present = latched
        inp.module = default_module(start_wall=inp.rtc)
        inp.cell_temp = 355
        self.now = timebase.TICKS_PERIOD - 100
        self.fsm.boot(self.now, inp.rtc)
        self.fsm.step(self.now, inp)

    def poll(self, ms=50, n=1):
        for _ in range(n):
            self.now = timebase.add(self.now, ms)
            self.fsm.step(self.now, self.inp)

    def records(self, rtype, since=1):
        """The log's records of this type from sequence number `since` on: (wall, a, b, c) each."""
        out = []
        for seq in range(since, self.log.next_seq()):
            rec = self.log.read(seq)
            if rec[2] == rtype:
                out.append((rec[1], rec[3], rec[4], rec[5]))
        return out

    def blow(self, until):
        """A good blow (5 s of warm breath at 400 mL/s), then clean air until the state is `until`."""
        assert self.fsm.test.phase == breath.READY
        self.inp.flow, self.inp.breath_temp = 400, 340
        self.poll(n=101)
        self.inp.flow, self.inp.breath_temp = 0, 200
        for _ in range(400):
            if self.fsm.state == until:
                return
            self.poll()
        raise AssertionError("no %d after the blow" % until)

    def to_start(self):
        """Key on, a passed start test, the start window open."""
        self.inp.ignition = True
        self.poll()
        self.blow(S_START)

    def to_driving(self):
        """Key on, a passed start test, the engine started in the start window (its alternator charging)."""
        self.to_start()
        self.inp.engine = self.inp.charging = True
        self.poll()
        assert self.fsm.state == S_DRIVING
