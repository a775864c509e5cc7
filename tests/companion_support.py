"""Shared fixtures of the companion, sync and end-to-end tests: the same tests on SQLite and PostgreSQL."""

import pytest

from companion import testing

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _database_url(kind, tmp_path_factory, stack):
    if kind == "sqlite":
        return "sqlite:///" + str(tmp_path_factory.mktemp("companion") / "companion.db")
    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return stack.enter_context(testing.fresh_pg_database("pytest"))


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, tmp_path_factory):
    """Settings for a fresh database of each backend (one database per test module and backend)."""
    import contextlib

    with contextlib.ExitStack() as stack:
        url = _database_url(request.param, tmp_path_factory, stack)
        yield testing.settings_for(url, testing.test_master_keys(("k1", "k2")), MASTER_KEY_ID="k1")


@pytest.fixture(scope="module")
def server(backend):
    """A real uvicorn server on a free loopback port, in a thread (migrations applied at start)."""
    with testing.ServerThread(backend) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server):
    """An HTTP client of the server with the admin key; `api.app_state` is the app's state."""
    with server.client() as client:
        client.app_state = server.app.state
        yield client


@pytest.fixture
def office(server):
    """Back-office client of the running server."""
    bo = testing.Backoffice(server.url)
    yield bo
    bo.close()


class WireHandset:
    """A handset reduced to its wire behaviour (firmware wire format and record codec, no state machine):
    signs requests, keeps an encoded, chained log, checks answers."""

    def __init__(self, device_id, secret_hex):
        import os

        from fsm import crypto
        from storage import record

        self.device_id = device_id
        self.secret = bytes.fromhex(secret_hex)
        self.key = crypto.derive(self.secret, crypto.LABEL_SYNC)
        self.record = record
        self.encoded = [b""]  # index = seq
        self.hashes = [record.GENESIS]
        self._os = os

    def append(self, n, rtype=4, wall=91000000):
        """Log n more records."""
        for _ in range(n):
            seq = len(self.encoded)
            enc = self.record.encode(self.hashes[-1], seq, wall + seq, rtype, seq, -seq, 7, 0)
            self.encoded.append(enc)
            self.hashes.append(self.record.chain(self.hashes[-1], enc))

    def chunk(self, first, last):
        """The log part of a request for records first..last."""
        import base64

        data = b"".join(self.encoded[first:last + 1])
        return {"first": first, "data": base64.b64encode(data).decode()}

    def request(self, status=None, log=None, acks=(), desired_version=0, last_command_seq=0, ts=None,
                nonce=None, body=None):
        """(headers, body) of a signed sync request."""
        from companion.app.core import timebase
        from sync import wire

        if body is None:
            doc = {"v": 1, "device_id": self.device_id, "status": status or {"state": "OFF", "lockout": False},
                   "desired_version": desired_version, "last_command_seq": last_command_seq,
                   "acks": [list(a) for a in acks], "log": log}
            body = wire.encode(doc).encode()
        nonce = nonce or self._os.urandom(8).hex()
        ts = timebase.device_now() if ts is None else ts
        return wire.sign_request(self.key, self.device_id, ts, nonce, body), body

    def sync(self, client, expect=200, **kw):
        """Send one request; returns (response, decoded answer or problem). Checks the answer's signature."""
        from sync import wire

        headers, body = self.request(**kw)
        r = client.post("/api/v1/sync", content=body, headers=headers)
        assert r.status_code == expect, r.text
        if expect == 200:
            assert wire.verify_response(self.key, self.device_id, headers[wire.H_NONCE], 200,
                                        {k.lower(): v for k, v in r.headers.items()}, r.content)
        return r, r.json()
