"""`python -m companion serve --workers 2` (companion/app/core/workers.py): each worker accepts on a listening
socket of its own, so connections opened at once are spread over both processes (uvicorn's shared socket gave
one worker nearly all of them); a killed worker is replaced on its socket and no request is lost; SIGTERM stops
every process; a port another program holds is a clear error. Linux (/proc)."""

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from companion import testing

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture()
def settings(tmp_path):
    from companion.app.core import migrate

    s = testing.settings_for("sqlite:///" + str(tmp_path / "w.db"), testing.test_master_keys())
    migrate.upgrade(s)
    return s


def _children(pid):
    """The worker processes of the supervisor pid (multiprocessing's spawned children)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == pid and b"spawn_main" in cmd:
            out.append(int(entry))
    return sorted(out)


def _socket_inodes(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _established_on(port):
    """The inodes of the server's ends of the established TCP connections on port."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                out.add(int(fields[9]))
    return out


def _wait(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_connections_opened_at_once_are_spread_over_the_workers(settings):
    with testing.ServerProcess(settings, workers=2) as srv:
        workers = _wait(lambda: (lambda c: c if len(c) == 2 else None)(_children(srv.proc.pid)), "two workers")
        conns = [socket.create_connection(("127.0.0.1", srv.port), timeout=60) for _ in range(40)]  # a burst
        try:
            request = (b"GET /api/v1/utils/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            for c in conns:
                c.sendall(request)
            for c in conns:
                assert c.recv(65536).startswith(b"HTTP/1.1 200")
            held = _established_on(srv.port)
            per_worker = [len(_socket_inodes(w) & held) for w in workers]
        finally:
            for c in conns:
                c.close()
    assert sum(per_worker) == 40, per_worker
    # a hash over 40 connections: each worker gets a fair share (P(fewer than 8 of 40) < 1e-4), where the
    # shared socket gave one of them nearly all
    assert min(per_worker) >= 8, per_worker


def test_a_killed_worker_is_replaced_and_no_request_is_lost(settings):
    with testing.ServerProcess(settings, workers=2) as srv:
        first = _wait(lambda: (lambda c: c if len(c) == 2 else None)(_children(srv.proc.pid)), "two workers")
        os.kill(first[0], signal.SIGKILL)

        def fresh(_):  # a new connection each: some are hashed to the dead worker's socket and wait there
            with httpx.Client(base_url=srv.url, timeout=120) as c:
                return c.get("/api/v1/utils/health").status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(fresh, range(24))) == [200] * 24
        now = _wait(lambda: (lambda c: c if len(c) == 2 and first[0] not in c else None)(_children(srv.proc.pid)),
                    "a replacement worker")
        assert first[1] in now
        supervisor = srv.proc.pid
        srv.stop()
    assert srv.proc is None and not _children(supervisor)
    for pid in now:
        _wait(lambda pid=pid: not os.path.exists("/proc/%d" % pid)
              or open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z", "worker %d gone" % pid)


def test_a_port_in_use_is_a_clear_error(settings):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "companion", "serve", "--port", str(port), "--workers", "2"],
                              env=testing.env_for(settings), cwd=str(testing.ROOT), capture_output=True,
                              text=True, timeout=120)
    finally:
        holder.close()
    assert done.returncode == 1, done.stderr
    assert "cannot listen on 127.0.0.1:%d" % port in done.stderr


def _gone(pid):
    """The process pid has ended (a zombie nobody reaped counts)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _end_leftovers(pids):
    """SIGKILL the given worker processes if they are still running (so a failing test leaves no server)."""
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"spawn_main" not in f.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_workers_stop_when_the_supervisor_is_killed(settings):
    """SIGKILL leaves the supervisor no chance to stop its workers: they notice and stop themselves, rather
    than serve the port on as orphans (a later server on the port would share its connections with them)."""
    srv = testing.ServerProcess(settings, workers=2).start()
    workers = _wait(lambda: (lambda c: c if len(c) == 2 else None)(_children(srv.proc.pid)), "two workers")
    try:
        srv.kill()
        for pid in workers:
            _wait(lambda pid=pid: _gone(pid), "orphan worker %d to stop" % pid)
    finally:
        _end_leftovers(workers)


def test_sighup_stops_every_process_gracefully(settings):
    """SIGHUP (the terminal closed, or sent by hand) stops the workers and then the supervisor, which exits
    normally; it used to kill the supervisor alone."""
    srv = testing.ServerProcess(settings, workers=2).start()
    workers = _wait(lambda: (lambda c: c if len(c) == 2 else None)(_children(srv.proc.pid)), "two workers")
    try:
        srv.proc.send_signal(signal.SIGHUP)
        assert srv.proc.wait(timeout=120) == 0
        srv.proc = None
        for pid in workers:
            _wait(lambda pid=pid: _gone(pid), "worker %d to stop" % pid)
    finally:
        srv.kill()
        _end_leftovers(workers)


def _serve_until_stopped_or_restarted(cmd, env):
    """Run cmd; its return code and stderr once it exits. AssertionError as soon as the supervisor starts a
    second replacement for a worker that fails before it serves (it would do so for ever), or when it still
    runs after a liveness bound."""
    import threading

    proc = subprocess.Popen(cmd, env=env, cwd=str(testing.ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    settled = threading.Event()

    def read():
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if sum("died: starting another" in x for x in lines) >= 2:
                break
        settled.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if settled.wait(120) and not any("died: starting another" in x for x in lines):
            proc.wait(timeout=30)  # stderr closed: the process is ending
        err = "".join(lines)
        assert sum("died: starting another" in x for x in lines) < 2, "a worker that cannot start is restarted" \
            " again and again:\n" + err
        assert proc.poll() is not None, "still serving:\n" + err
        return proc.returncode, err
    finally:
        if proc.poll() is None:
            leftovers = _children(proc.pid)
            proc.kill()
            proc.wait()
            _end_leftovers(leftovers)
        reader.join(30)
        proc.stderr.close()  # type: ignore[union-attr]


def test_a_worker_that_cannot_import_the_app_stops_the_server(tmp_path):
    """An app whose import raises (exit code 1, not uvicorn's STARTUP_FAILURE): the supervisor stops every
    process and reports it, instead of starting a new worker every half second for ever."""
    (tmp_path / "broken_app_r11.py").write_text("raise RuntimeError('broken at import')\n")
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from uvicorn import Config\n"
              "from companion.app.core import workers\n"
              "sys.exit(0 if workers.serve(Config('broken_app_r11:app', host='127.0.0.1', port=0, workers=2))"
              " else 3)\n" % str(tmp_path))
    code, err = _serve_until_stopped_or_restarted([sys.executable, "-c", script], os.environ.copy())
    assert code == 3, err
    assert "broken at import" in err and "failed to start" in err


def test_invalid_portal_settings_are_a_clear_error_with_workers(settings):
    """An invalid PORTAL_ setting is refused before any worker starts, as the service's own settings are."""
    env = testing.env_for(settings)
    env["PORTAL_SESSION_HOURS"] = "twelve"
    code, err = _serve_until_stopped_or_restarted(
        [sys.executable, "-m", "companion", "serve", "--port", str(testing.free_port()), "--workers", "2"], env)
    assert code == 2, err
    assert "companion: refusing to start: SESSION_HOURS:" in err


def test_a_port_held_with_so_reuseport_is_a_clear_error(settings):
    """A program of the same user listening with SO_REUSEPORT: the workers would join its group silently and
    share its connections (Linux lets only the same user join). Refused like any port in use."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        code, err = _serve_until_stopped_or_restarted(
            [sys.executable, "-m", "companion", "serve", "--port", str(port), "--workers", "2"],
            testing.env_for(settings))
    finally:
        holder.close()
    assert code == 1, err
    assert "cannot listen on 127.0.0.1:%d" % port in err


HANGING_APP = '''
import os, time

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/hang":
        time.sleep(3600)  # a request that never gives the event loop back
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def test_a_worker_whose_event_loop_is_stuck_is_replaced(tmp_path):
    """A request that blocks its worker's event loop: the worker still answered the supervisor's health check
    (from a thread of its own), so it was never replaced and the new connections the kernel hashed to its
    socket waited for ever. Now it is replaced, and every new connection is served."""
    (tmp_path / "hanging_app_r11.py").write_text(HANGING_APP)
    port = testing.free_port()
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from uvicorn import Config\n"
              "from companion.app.core import workers\n"
              "workers.serve(Config('hanging_app_r11:app', host='127.0.0.1', port=%d, workers=2,"
              " log_level='warning'))\n" % (str(tmp_path), port))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=str(testing.ROOT), stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    first = []
    try:
        first = _wait(lambda: (lambda c: c if len(c) == 2 else None)(_children(proc.pid)), "two workers")

        def answers():
            try:
                return httpx.get(url + "/", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(answers, "the server to answer", timeout=120)
        stuck = socket.create_connection(("127.0.0.1", port), timeout=60)
        stuck.sendall(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
        now = _wait(lambda: (lambda c: c if len(c) == 2 and c != first else None)(_children(proc.pid)),
                    "the stuck worker to be replaced", timeout=180)
        stuck.close()

        def fresh(_):
            with httpx.Client(timeout=120) as c:
                return c.get(url + "/").status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(fresh, range(24))) == [200] * 24
        assert len(set(first) & set(now)) == 1
    finally:
        leftovers = _children(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _end_leftovers(leftovers)


def test_a_start_up_failure_with_workers_exits_with_an_error(settings):
    """The app's own start-up refuses (MASTER_KEYS without the key the stored secrets use): with workers the
    server stops and exits with uvicorn's STARTUP_FAILURE, 3, and the reason; it used to exit 0, which a
    service manager takes for a clean stop."""
    from tests.companion_helpers import new_handset

    with testing.ServerThread(settings) as srv, srv.client() as c:
        assert new_handset(c)["key_id"] == "k1"
    only_k2 = testing.settings_for(settings.DATABASE_URL, testing.test_master_keys(("k2",)))
    code, err = _serve_until_stopped_or_restarted(
        [sys.executable, "-m", "companion", "serve", "--port", str(testing.free_port()), "--workers", "2"],
        testing.env_for(only_k2))
    assert code == 3, err
    assert "k1" in err and "MASTER_KEYS" in err and "a worker failed to start" in err
