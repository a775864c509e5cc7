"""Shared fixtures of the companion, sync and end-to-end tests (registered with `pytest_plugins`, never
imported): the same tests on SQLite and PostgreSQL."""

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


@pytest.fixture(params=BACKENDS)
def fresh_backend(request, tmp_path):
    """Settings for a database of its own for one test (for tests that run companion processes)."""
    import contextlib

    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = "sqlite:///" + str(tmp_path / "companion.db")
        else:
            reason = testing.pg_unavailable_reason()
            if reason:
                pytest.skip(reason)
            url = stack.enter_context(testing.fresh_pg_database("pytest"))
        yield testing.settings_for(url, testing.test_master_keys())
