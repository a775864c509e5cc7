"""The supervisor on both interpreters: tasks under supervisor.guard that raise or return are reported, a task
that stops reporting progress fails at its limit (across the tick counter's wrap), and the first failure is
the one kept. Real asyncio on each interpreter."""

try:
    import host_sim  # noqa: F401  (firmware on sys.path under CPython)
except ImportError:
    pass

import supervisor as sv
from interlock import timebase

T0 = timebase.TICKS_PERIOD - 3000  # 3 s before the wrap


def main():
    sup = sv.Supervisor()
    clock = [T0]

    def now():
        return clock[0]

    beat_sync = sup.watch(sv.TASK_SYNC, 8000, now(), now)
    sup.add(sv.TASK_SERVICE, 10000, now())
    sup.start(now())
    print("start", sup.check(now()))
    clock[0] = timebase.add(T0, 4000)  # past the wrap
    beat_sync()
    print("sync beat after wrap", sup.check(now()))
    clock[0] = timebase.add(T0, 10000)
    print("service at its limit", sup.check(now()))
    clock[0] = timebase.add(T0, 10001)
    print("service past its limit", sup.check(now()), sup.failed_how)
    clock[0] = timebase.add(T0, 20000)
    print("first failure kept", sup.check(now()), sup.failed_task, sup.failed_how)

    # supervisor.guard driven by hand (the WebAssembly port's asyncio runs on the JavaScript event loop and has
    # no asyncio.run): each send is one turn of the task
    def turns(coro, n):
        for i in range(n):
            try:
                coro.send(None)
            except StopIteration:
                return "ended after %d turns" % (i + 1)
        coro.close()
        return "running after %d turns" % n

    async def raises(alive):
        alive()
        await Turn()
        raise ValueError("a bug")

    async def returns():
        await Turn()

    async def beats(alive):
        while True:
            alive()
            await Turn()

    for task_id, make in ((sv.TASK_SERVICE, raises), (sv.TASK_BUTTONS, returns), (sv.TASK_SYNC, beats)):
        s = sv.Supervisor()
        alive = s.watch(task_id, 1000, 0, lambda: 0)
        inner = make(alive) if make is not returns else make()
        print("guard", task_id, turns(sv.guard(s, task_id, inner), 5), s.failed_task, s.failed_how, s.check(0))


class Turn:
    """An awaitable that gives the turn back once (the same on both interpreters)."""

    def __iter__(self):
        yield None

    __await__ = __iter__


main()
