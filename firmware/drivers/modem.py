"""The sync transport: one HTTP exchange with the companion, whatever carries it.

Same shape as an httpx transport: the sync client builds a request and reads a response; implementations are
the board's cellular modem (drivers/simcom.py), a real HTTP connection in the simulator and an in-memory one
for tests (host_sim/http_modem.py).
"""


class ModemError(Exception):
    """The exchange did not complete (no network, timeout, modem error); the client backs off."""


class Modem:
    """Carries one request to the companion and brings back its answer."""

    async def request(self, method, path, headers, body):
        """Send method path with headers (dict) and body (bytes); return (status, headers, body).

        Response header names are lowercase. Raises ModemError when no answer arrived.
        """
        raise NotImplementedError
