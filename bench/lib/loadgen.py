"""The benches' HTTP load generator: raw HTTP/1.1 requests on keep-alive connections, in a process of its own
(uvloop when available), each connection working through its queues in order; latencies and statuses."""

import asyncio
import multiprocessing as mp
import statistics
import time


async def _one(reader, writer, req):
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    i = head.lower().find(b"content-length:")
    n = int(head[i + 15:head.index(b"\r\n", i)]) if i >= 0 else 0
    if n:
        await reader.readexactly(n)
    return status


async def _load(port, queues, seconds, concurrency):
    """Run the queues (lists of requests; each list in order) for seconds; (latencies, statuses)."""
    lat = []
    statuses = {}
    deadline = time.perf_counter() + seconds
    mine = [queues[i::concurrency] for i in range(concurrency)]

    async def worker(qs):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        pos = [0] * len(qs)
        k = 0
        try:
            while time.perf_counter() < deadline and qs:
                j = k % len(qs)
                k += 1
                if pos[j] >= len(qs[j]):
                    if all(p >= len(q) for p, q in zip(pos, qs, strict=True)):
                        return
                    continue
                req = qs[j][pos[j]]
                pos[j] += 1
                t0 = time.perf_counter()
                st = await _one(reader, writer, req)
                lat.append(time.perf_counter() - t0)
                statuses[st] = statuses.get(st, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(q) for q in mine if q))
    return lat, statuses, time.perf_counter() - t0


def _generator(port, queues, seconds, concurrency, conn):
    """Child process: the load generator (uvloop when available)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    cpu0 = time.process_time()
    lat, statuses, elapsed = asyncio.run(_load(port, queues, seconds, concurrency))
    conn.send((lat, statuses, elapsed, time.process_time() - cpu0))
    conn.close()


def run_load(port, queues, seconds, concurrency):
    """Run the load generator in its own process; its numbers."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_generator, args=(port, queues, seconds, concurrency, child))
    p.start()
    lat, statuses, elapsed, cpu = parent.recv()
    p.join()
    lat.sort()
    n = len(lat)
    return {"requests": n, "rps": n / elapsed, "p50_ms": 1000 * lat[n // 2] if n else 0,
            "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))] if n else 0,
            "mean_ms": 1000 * statistics.fmean(lat) if n else 0, "statuses": statuses,
            "elapsed_s": elapsed, "loadgen_cpu_s": cpu}  # the load generator's own CPU time
