"""Bad input never breaks the companion: schemathesis generates requests from the OpenAPI schema (valid and
invalid) against a real server on SQLite and PostgreSQL, with and without the admin key; nothing answers 5xx,
every error is a problem, and every answer's status, media type and body are the ones the schema documents."""

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from companion import testing

pytest_plugins = ["tests.companion_support"]  # the shared fixtures (both backends)

EXAMPLES = 30  # per operation and mode: about 1,500 requests per backend
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _check(case, server, session, with_key):
    headers = {"X-API-Key": testing.ADMIN_KEY} if with_key else {}
    response = case.call(base_url=server.url, session=session, headers=headers, timeout=30)
    where = case.method + " " + case.formatted_path
    assert response.status_code < 500, (where, response.status_code, response.text[:500])
    case.validate_response(response, checks=CHECKS, headers=headers)
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), where
        body = response.json()
        assert body["status"] == response.status_code and body["detail"], where
    return response.status_code


def _fuzz(op, mode, server, session, seen):
    """Run the generated cases of one operation in one mode."""

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        seen.add(_check(case, server, session, with_key=True))
        if mode == GenerationMode.NEGATIVE:
            seen.add(_check(case, server, session, with_key=False))

    try:
        run()
    except Unsatisfiable:
        # an operation with nothing to get wrong (no parameters, no body) has no negative cases
        assert mode == GenerationMode.NEGATIVE


def test_generated_requests_never_get_a_server_error(server):
    """Positive and negative requests for every operation, with and without the admin key: no 5xx."""
    # one session, closed at the end: no connection is left for the garbage collector to find open
    with requests.Session() as session:
        raw = session.get(server.url + "/api/v1/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(raw)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 15
        seen = set()
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(op, mode, server, session, seen)
    # the run reached the handlers, not only the authentication and validation layers
    assert {200, 201, 401, 422} <= seen, seen
