"""Bad input never breaks the portal's JSON API: schemathesis generates requests (valid and invalid) for every
portal operation, sent with a signed-in driver's bearer token, on SQLite and PostgreSQL: no 5xx, and every
error is a problem body."""

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytest_plugins = ["tests.portal_support"]

EXAMPLES = 15
SKIP = {"/api/v1/portal/sign-out"}  # would end the token the rest of the run uses (tested on its own)


def test_generated_portal_requests_never_get_a_server_error(world, portal_server):
    """Positive and negative requests for every portal operation, signed in: no 5xx, problems on errors."""
    d = world.driver(devices=2)
    token = world.api_token(d["email"])["access_token"]
    headers = {"Authorization": "Bearer " + token}
    seen = set()
    with requests.Session() as session:
        raw = session.get(portal_server.url + "/api/v1/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(raw)
        ops = [r.ok() for r in schema.get_all_operations()]
        ops = [op for op in ops if op.path.startswith("/api/v1/portal") and op.path not in SKIP]
        assert len(ops) >= 12

        def check(case):
            r = case.call(base_url=portal_server.url, session=session, headers=headers, timeout=30)
            where = case.method + " " + case.formatted_path
            assert r.status_code < 500, (where, r.status_code, r.text[:500])
            if r.status_code >= 400:
                assert r.headers["content-type"][0].startswith("application/problem+json"), where
                assert r.json()["status"] == r.status_code, where
            seen.add(r.status_code)

        for op in ops:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @given(case=op.as_strategy(generation_mode=mode))
                @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))
                def run(case):
                    check(case)

                try:
                    run()
                except Unsatisfiable:
                    assert mode == GenerationMode.NEGATIVE
    assert {200, 404, 422} <= seen, seen
