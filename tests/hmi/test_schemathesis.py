"""Property-based fuzzing of every operation in the OpenAPI spec: no input may produce a 5xx.

Drives schemathesis' per-operation Hypothesis strategies directly (its pytest plugin does not load
under pytest 9), against the ASGI app in process, as admin, as operator and anonymously.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from hmi import HmiSettings, create_app
from hmi.fake_runtime import FakeRuntime
from hmi.ports import Role
from hmi.security import TokenCodec

from .conftest import SECRET, add_users

CODEC = TokenCodec(SECRET, 3600)
HEADERS = {
    "admin": {"Authorization": "Bearer " + CODEC.issue("admin", Role.ADMIN)[0]},
    "operator": {"Authorization": "Bearer " + CODEC.issue("operator", Role.OPERATOR)[0]},
    "anonymous": {},
}


@pytest.fixture(scope="module")
def api_schema(plant, password_hashes):  # noqa: ANN001, ANN201
    rt = FakeRuntime(plant, history_s=300.0)
    add_users(rt, password_hashes)
    app = create_app(rt, HmiSettings(secret_key=SECRET, login_max_attempts=1000))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_spec_lists_every_endpoint(api_schema) -> None:  # noqa: ANN001
    paths = {op.ok().path for op in api_schema.get_all_operations()}
    assert {"/api/tags", "/api/tags/{name}/value", "/api/loops/{loop_id}/setpoint", "/api/interlocks/{interlock_id}/bypass",
            "/api/alarms/{alarm_id}/shelve", "/api/history/csv", "/api/audit", "/api/status", "/metrics"} <= paths


@pytest.mark.parametrize("who", ["admin", "operator", "anonymous"])
def test_no_operation_returns_5xx(api_schema, who: str) -> None:  # noqa: ANN001
    examples = {"admin": 10, "operator": 3, "anonymous": 2}[who]
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # noqa: ANN001
            case.call_and_validate(headers=HEADERS[who], checks=[not_a_server_error])

        try:
            run()
        except Exception as e:  # noqa: BLE001 - collect every failing operation, then report all
            failures.append(f"{op.method.upper()} {op.path}: {str(e)[:600]}")
    assert not failures, "\n".join(failures)


def test_the_fuzz_check_can_fail(plant, password_hashes) -> None:  # noqa: ANN001
    """A runtime that raises must show up as a 500 the check reports (the catch-all answers, logged)."""
    rt = FakeRuntime(plant, history_s=60.0)
    add_users(rt, password_hashes)

    async def broken_status() -> None:
        raise RuntimeError("boom")

    rt.status = broken_status  # type: ignore[method-assign]
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(rt, HmiSettings(secret_key=SECRET)))
    op = next(r.ok() for r in schema.get_all_operations() if r.ok().path == "/api/status")
    case = op.Case()
    with pytest.raises(Exception):  # noqa: B017 - the 500 (or the re-raised error) must surface
        case.call_and_validate(headers=HEADERS["admin"], checks=[not_a_server_error])
