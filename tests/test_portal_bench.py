"""bench/portal.py's "where the time goes" part runs through the dashboard route's own functions: run once
(n=1) here, so a change to the page's context breaks this test rather than the bench."""

import importlib

import pytest

from companion import testing


def _bench():
    return importlib.import_module("bench.portal")  # main() runs only as a script


PS_ENV = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024, "ARGON2_PARALLELISM": 1}


def test_the_profile_renders_the_dashboard_on_sqlite(tmp_path):
    out = _bench().where_time_goes("sqlite:///" + str(tmp_path / "prof.db"), PS_ENV, n=1)
    assert out["statements"] == 1
    assert {"health", "dashboard", "query", "build", "render", "page"} <= set(out)


@pytest.mark.postgres
def test_the_profile_renders_the_dashboard_on_postgres():
    reason = testing.pg_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with testing.fresh_pg_database("pytest_bench_portal") as url:
        out = _bench().where_time_goes(url, PS_ENV, n=1)
    assert out["statements"] == 1
