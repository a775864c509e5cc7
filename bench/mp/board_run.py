"""MicroPython: the live heap of the whole firmware in one run, as the board runs it. The runtime with every
task: a drive with a start test and rolling retests on the simulated drivers; the sync client uploading the
log and applying a companion command (an in-process companion signs its answers); a technician logged in on
the service port downloading the whole log; the flash log and state store on the interpreter's file system
(drivers.flash.VfsFlash, as on the board). The four interleave, poll by poll.

Run by bench/board.py: WebAssembly port `run.mjs --fw DIR --loop step` (the runner collects between calls and
keeps the peak) and unix port with the firmware frozen, `micropython board_run.py --drive`. step() returns
between stretches of work at the moments the most is held: a sync request in flight, a service answer half
sent. The harness (world model, drivers' stand-ins) is built before the baseline; the firmware's objects are
built after it, so the peak is the firmware's: its objects, its log and state buffers, its working set."""

import gc
import os
import sys

if "--drive" in sys.argv:
    # the unix port with the firmware frozen in: host_sim.paths leaves sys.path alone when /fw (where the
    # WebAssembly runner puts the firmware) is on it, so the frozen modules are the ones imported
    sys.path.append("/fw")
try:
    import host_sim  # noqa: F401  (CPython: firmware/ on sys.path)
except ImportError:
    pass

import storage
import supervisor as sv
from drivers.flash import VfsFlash
from fsm import records
from host_sim.simdrivers import hardware
from host_sim.world import World, default_module
from interlock import crypto, timebase, token, wire
from runtime import Runtime
from service import cbor, frame
from service.server import Service
from sync.client import SyncClient

DEVICE = 4711
SECRET = b"board run bench secret: 32 bytes"
START_WALL = timebase.days_from_civil(2026, 11, 23) * timebase.DAY + 7 * 3600
TICK0 = timebase.TICKS_PERIOD - 20000
PRELOAD = 38000  # records already in the log at boot: about a year of a typical program (storage/log.py)
PRELOAD_UNACKED = 2000  # of them not yet with the companion: the sync uploads them during the run
SYNC_PERIOD_MS = 300000  # sync every 5 min during the run (the board's 30 min), so uploads overlap the drive


class Screen:
    """The trace the simulated drivers write to, keeping only the screen (no growing transcript)."""

    def __init__(self):
        self.screen = ("", "")

    def add(self, text):
        pass

    def show(self, buf):
        b = bytes(buf)
        self.screen = (b[:16].decode().rstrip(), b[16:32].decode().rstrip())

    def record(self, rec):
        pass


def flash_root(hw, preload):
    """A directory for the flash driver (the interpreter's file system stands in for littlefs) holding what an
    installed handset's flash holds: identity, state, and a log of `preload` records, the last PRELOAD_UNACKED
    of them unacknowledged (an earlier boot of the firmware writes them, before the baseline)."""
    path = "/tmp/board_run_flash"
    try:
        for name in os.listdir(path + "/log"):
            os.remove(path + "/log/" + name)
    except OSError:
        pass
    for name in os.listdir(path) if _exists(path) else ():
        try:
            os.remove(path + "/" + name)
        except OSError:
            pass
    for d in ("/tmp", path):
        try:
            os.mkdir(d)
        except OSError:
            pass
    log, state = storage.on_flash(VfsFlash(path))
    rt = Runtime(hw, log, state, seed=10)
    rt.boot(TICK0)
    rt.fsm.provision(TICK0, DEVICE, SECRET)
    wall = START_WALL - 29 * timebase.DAY
    step_s = 29 * timebase.DAY // preload if preload else 0
    for i in range(preload):
        log.append(wall + i * step_s, records.IGNITION, i & 1, 0, 0, 0)
    if preload:
        log.acknowledge(log.next_seq() - 1 - PRELOAD_UNACKED)
    return path


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Companion:
    """Answers the handset's sync requests as the companion does: acknowledges the uploaded records and sends
    one service-extend command, signed for the request's nonce."""

    def __init__(self):
        self.key = crypto.derive(SECRET, crypto.LABEL_SYNC)
        self.cid = 0
        self.acked = 0
        self.uploaded = 0

    def answer(self, wall, headers, body):
        doc = wire.decode(body)
        log = doc.get("log")
        if log:
            import binascii

            n = len(binascii.a2b_base64(log["data"].encode())) // 40  # interlock.record: 40 bytes a record
            self.acked = log["first"] + n - 1
            self.uploaded += n
        cmds = []
        if self.cid < 2:
            self.cid += 1
            arg, expires = 30, wall + 3600
            cmds.append({"id": self.cid, "device_id": DEVICE, "seq": self.cid, "kind": wire.KIND_SERVICE,
                         "arg": arg, "expires": expires,
                         "mac": wire.command_mac(self.key, DEVICE, self.cid, self.cid, wire.KIND_SERVICE, arg,
                                                 expires)})
        nonce = headers[wire.H_NONCE]
        out = wire.encode({"nonce": nonce, "device_id": DEVICE, "time": wall, "log_ack": self.acked,
                           "commands": cmds, "more": False}).encode()
        return 200, {wire.H_SIG: wire.sign_response(self.key, DEVICE, nonce, 200, out)}, out


def smp_request(op, group, cmd, body, seq):
    """One SMP request as service-port wire lines (bytes)."""
    payload = cbor.encode(body)
    head = bytes((8 | op, 0, len(payload) >> 8, len(payload) & 255, group >> 8, group & 255, seq & 255, cmd))
    return b"".join(frame.encode(head + payload))


class Technician:
    """The technician's side of the cable: log in with a token, then download the log file to its end."""

    def __init__(self, svc, fsm):
        self.svc = svc
        self.fsm = fsm
        self.decoder = frame.Decoder(4096)
        self.out = []
        self.seq = 0
        self.phase = 0  # 0 ask nonce, 1 log in, 2 download, 3 done
        self.off = 0
        self.size = -1
        self.got = 0
        self.answers = 0

    def send(self, op, group, cmd, body):
        self.seq += 1
        self.svc.take(smp_request(op, group, cmd, body, self.seq))

    def start_next(self):
        """Send the next request of the session."""
        if self.phase == 0:
            self.send(0, 100, 0, {})
        elif self.phase == 1:
            k = crypto.derive(SECRET, crypto.LABEL_TECH)
            expires = self.fsm.wall + 3600
            self.send(2, 100, 0, {"tech_id": 3, "expires": expires,
                                  "mac": token.answer(token.token_key(k, DEVICE, 3, expires), self.nonce)})
        elif self.phase == 2:
            self.send(0, 8, 0, {"off": self.off, "name": "/log/events.bin"})

    def line(self, data):
        """One line of the handset's answer arrived."""
        self.decoder.feed(data, self.out)
        if not self.out:
            return False
        _, pkt = self.out.pop()
        rsp = cbor.decode(pkt[8:])
        self.answers += 1
        if self.phase == 0:
            self.nonce = rsp["nonce"]
            self.phase = 1
        elif self.phase == 1:
            self.phase = 2
        else:
            if "len" in rsp:
                self.size = rsp["len"]
            self.got += len(rsp["data"])
            self.off = rsp["off"] + len(rsp["data"])
            if self.off >= self.size:
                self.phase = 3
        return True


_plan = None
_result = []
# the harness, built before the runner's baseline
_world = World(START_WALL, 5, 200)
_world.insert_module(default_module(start_wall=START_WALL))
_screen = Screen()
_hw = hardware(_world, _screen)
_harness = (_world, _screen, _hw, flash_root(_hw, 0 if "--empty-log" in sys.argv else PRELOAD))


def run_plan():
    """The whole run, as a generator: each yield is a point where the runner samples the live heap."""
    world, screen, hw, root = _harness
    log, state = storage.on_flash(VfsFlash(root))
    sup = sv.Supervisor()
    for task_id in (sv.TASK_SYNC, sv.TASK_SERVICE, sv.TASK_BUTTONS):
        sup.add(task_id, sv.LIMIT_BUTTONS_MS, 0)
    rt = Runtime(hw, log, state, seed=11, supervisor=sup)

    def ticks():
        return (TICK0 + world.t) & (timebase.TICKS_PERIOD - 1)

    rt.boot(ticks())
    sync = SyncClient(rt.fsm, None, log=log, period_ms=SYNC_PERIOD_MS, seed=3)
    n = [0]

    def entropy(k):
        n[0] += 1
        return bytes((n[0] * 7 + i) & 255 for i in range(k))

    svc = Service(rt.fsm, log, entropy)
    comp = Companion()
    tech = None
    stats = {"polls": 0, "syncs": 0, "retests": 0, "lines": 0}
    nxt = [world.t]
    pending = []  # a sync request in flight (answered at the next poll)

    def shown(text):
        a, b = screen.screen
        return a.startswith(text) or b.startswith(text)

    def run(ms, until=None):
        """Let ms of world time pass, polling the runtime, the sync client and the service port."""
        end = world.t + ms
        chunk = 0
        while world.t < end:
            if nxt[0] > world.t:
                world.advance((nxt[0] if nxt[0] < end else end) - world.t)
                if world.t >= end:
                    break
            now = ticks()
            for task_id in (sv.TASK_SYNC, sv.TASK_SERVICE, sv.TASK_BUTTONS):
                sup.beat(task_id, now)  # each task reports progress every turn
            nxt[0] = world.t + rt.step(now)
            stats["polls"] += 1
            chunk += 1
            # the service task's turn: timers, then the technician's next request and its whole answer
            svc.poll(now)
            if tech is not None and tech.phase < 3:
                tech.start_next()
                k = 0
                while True:
                    line = svc.next_line(now)
                    if line is None:
                        break
                    stats["lines"] += 1
                    tech.line(bytes(line))
                    k += 1
                    if k == 4 and chunk >= 20:
                        chunk = 0
                        yield 1  # an answer half sent
            # the sync task's turn
            if pending:
                req = pending.pop()
                st, hd, bd = comp.answer(rt.fsm.wall, req[2], req[3])
                sync.handle_response(now, st, hd, bd)
                stats["syncs"] += 1
            sync.watch(now)
            if sync.due(now):
                req = sync.build(now)
                if req is not None:
                    pending.append(req)
                    yield 1  # a request in flight
            if until is not None and shown(until):
                return
            if chunk >= 200:
                chunk = 0
                yield 1

    def blow(brac=0):
        world.start_blow(brac, 2000, 5500, 340, False)
        yield from run(5600)

    # start test, crank, drive with rolling retests
    world.key(True)
    yield from run(120000, "BLOW")
    yield from blow()
    yield from run(20000, "START")
    world.crank()
    yield from run(1000)
    tech = Technician(svc, rt.fsm)  # the technician plugs in while the vehicle idles (worst case: all at once)
    for _ in range(3):
        yield from run(50 * 60000, "RETEST")
        if shown("RETEST"):
            stats["retests"] += 1
            yield from blow()
            yield from run(20000, "PASS")
    yield from run(60000)
    world.key(False)  # key-off: a sync
    yield from run(5 * 60000)
    while tech.phase < 3:
        yield from run(10000)
    _result.append("firmware_loaded_from " + getattr(sys.modules["fsm.machine"], "__file__", "?"))
    _result.append("board_run polls %d retests %d syncs %d records_uploaded %d log_records %d "
                   "download_bytes %d of %d service_lines %d fault %d" % (
                       stats["polls"], stats["retests"], stats["syncs"], comp.uploaded, log.next_seq() - 1,
                       tech.got, tech.size, stats["lines"], 1 if rt.failed else 0))


def step():
    """One stretch of the run; None when it is over (then the summary is printed)."""
    global _plan
    if _plan is None:
        _plan = run_plan()
    try:
        return next(_plan)
    except StopIteration:
        for line in _result:
            print(line)
        return None


if "--drive" in sys.argv:
    # the unix port collects from inside a frame; sample the live heap after a collection at every yield
    gc.collect()
    base = gc.mem_alloc()
    peak = 0
    while step() is not None:
        gc.collect()
        used = gc.mem_alloc() - base
        if used > peak:
            peak = used
    print("peak_live_heap_bytes", peak)
