"""Sync transports for the simulator and the tests (the firmware's drivers.modem.Modem interface).

HttpModem speaks HTTP/1.1 to a running companion over a real TCP connection (asyncio streams, one
connection per exchange, as a cellular modem's HTTP stack does). MemoryModem hands each request to a
function in the same process and records every exchange; it can also lose requests or responses, delay
or alter them, which is how the tests play an unreliable or hostile network.
"""

import asyncio
import http.client
import urllib.parse

from drivers.modem import Modem, ModemError


class HttpModem(Modem):
    """The companion at base_url (e.g. "http://127.0.0.1:8000") over real HTTP."""

    def __init__(self, base_url, timeout_s=10.0):
        u = urllib.parse.urlsplit(base_url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.prefix = u.path.rstrip("/")
        self.timeout_s = timeout_s

    async def request(self, method, path, headers, body):
        """One exchange; raises ModemError when the companion cannot be reached or does not answer."""
        try:
            return await asyncio.wait_for(self._exchange(method, path, headers, body), self.timeout_s)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            raise ModemError(str(exc) or type(exc).__name__) from exc

    async def _exchange(self, method, path, headers, body):
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            head = [method + " " + self.prefix + path + " HTTP/1.1", "host: " + self.host,
                    "content-length: " + str(len(body)), "connection: close"]
            head += [k + ": " + v for k, v in headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split()
            if len(parts) < 2:
                raise ValueError("no HTTP status line")
            status = int(parts[1])
            out = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                out[k.strip().lower()] = v.strip()
            if "content-length" in out:
                data = await reader.readexactly(int(out["content-length"]))
            else:
                data = await reader.read()
            return status, out, data
        finally:
            writer.close()

    def request_blocking(self, method, path, headers, body):
        """The same exchange without an event loop (for scripts and the bench)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            # a dropped connection mid-answer (IncompleteRead, BadStatusLine) is a transport failure too
            raise ModemError(str(exc)) from exc
        finally:
            conn.close()


# what a MemoryModem does to the next exchange
PASS = "pass"
DROP_REQUEST = "drop-request"  # the request never reaches the companion
DROP_RESPONSE = "drop-response"  # the companion handles it, the answer is lost


class MemoryModem(Modem):
    """Exchanges with handler(method, path, headers, body) -> (status, headers, body), recorded in order.

    `faults` is a list of PASS / DROP_REQUEST / DROP_RESPONSE applied to the next exchanges in turn;
    `tamper`, when set, may rewrite each answer (status, headers, body) before the handset sees it.
    """

    def __init__(self, handler, faults=None, tamper=None):
        self.handler = handler
        self.faults = list(faults or [])
        self.tamper = tamper
        self.exchanges = []  # (method, path, headers, body, status, response headers, response body)
        self.online = True

    def exchange(self, method, path, headers, body):
        """The blocking form of request (the handler is called directly)."""
        if not self.online:
            raise ModemError("no network")
        fault = self.faults.pop(0) if self.faults else PASS
        if fault == DROP_REQUEST:
            raise ModemError("request lost")
        status, rh, rb = self.handler(method, path, dict(headers), bytes(body))
        rh = {k.lower(): v for k, v in rh.items()}
        self.exchanges.append((method, path, dict(headers), bytes(body), status, rh, rb))
        if fault == DROP_RESPONSE:
            raise ModemError("response lost")
        if self.tamper is not None:
            status, rh, rb = self.tamper(status, rh, rb)
        return status, rh, rb

    async def request(self, method, path, headers, body):
        """One exchange through the handler."""
        return self.exchange(method, path, headers, body)


def http_handler(base_url, timeout_s=10.0):
    """A MemoryModem handler that forwards to a real companion (so faults can be injected over real HTTP)."""
    modem = HttpModem(base_url, timeout_s)
    return modem.request_blocking


def sync_now(client, modem, now_ms):
    """One blocking exchange of the sync client's pure core over a MemoryModem (or anything with
    `exchange`); returns the client's outcome (sync.client OK/FAILED/REFUSED/SKEW), None when not provisioned."""
    req = client.build(now_ms)
    if req is None:
        return None
    try:
        status, headers, body = modem.exchange(*req)
    except ModemError:
        return client.failed(now_ms)
    return client.handle_response(now_ms, status, headers, body)
