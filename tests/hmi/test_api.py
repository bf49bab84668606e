"""REST API: every endpoint, every role, and the 401/403/404/409/413/422 paths (TestClient, no sockets)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from hmi.fake_runtime import FakeRuntime
from hmi.ports import InterlockStatus
from scada.events import EventKind

Auth = Callable[[str], dict[str, str]]
ROLES = ["viewer", "operator", "engineer", "admin"]


def no_5xx(r) -> None:  # noqa: ANN001
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}"


# ---------------------------------------------------------------- reads


@pytest.mark.parametrize("path", [
    "/api/tags", "/api/tags/line1.nickel.temperature.pv", "/api/tanks", "/api/tanks/nickel", "/api/alarms",
    "/api/alarms/journal", "/api/history?tags=line1.nickel.temperature.pv", "/api/history/raw?tags=line1.nickel.ph.pv",
    "/api/history/csv?tags=line1.nickel.ph.pv", "/api/status", "/api/auth/me",
])
def test_reads_need_login_and_work_for_every_role(client: TestClient, auth: Auth, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    for role in ROLES:
        r = client.get(path, headers=auth(role))
        assert r.status_code == 200, (role, r.text)


def test_tag_has_value_quality_timestamps_unit_limits(client: TestClient, auth: Auth) -> None:
    t = client.get("/api/tags/line1.nickel.rect.setpoint", headers=auth("viewer")).json()
    assert t["quality"] == "good" and t["reason"] == "none"
    assert isinstance(t["value"], int | float) and t["server_ts"] > 0
    assert t["unit"] == "A" and t["limits"] == {"min": 0, "max": 1000} and t["operator_limits"] == {"min": 0, "max": 600}
    assert t["writable"] is True


def test_bad_tag_shows_reason(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    from scada.tags import Quality, QualityReason

    runtime.force("line1.nickel.temp.b", Quality.BAD, QualityReason.COMM_FAILURE, detail="no answer from plc1")
    t = client.get("/api/tags/line1.nickel.temp.b", headers=auth("viewer")).json()
    assert (t["quality"], t["reason"], t["value"]) == ("bad", "comm_failure", None)
    assert "plc1" in t["detail"]


def test_tag_filters(client: TestClient, auth: Auth) -> None:
    h = auth("viewer")
    names = [t["name"] for t in client.get("/api/tags", params={"prefix": "line1.chrome."}, headers=h).json()]
    assert names and all(n.startswith("line1.chrome.") for n in names)
    names = [t["name"] for t in client.get("/api/tags", params={"tank": "nickel"}, headers=h).json()]
    assert "line1.nickel.temp.a" in names and "line1.nickel.temperature.pv" in names
    assert not any(n.startswith("line1.chrome") for n in names)
    assert client.get("/api/tags", params={"tank": "nope"}, headers=h).status_code == 404
    assert client.get("/api/tags/line1.nope", headers=h).status_code == 404


def test_tanks_in_line_order_with_state(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    tanks = client.get("/api/tanks", headers=auth("viewer")).json()
    assert [t["id"] for t in tanks] == runtime.plant.line.tank_order
    nickel = next(t for t in tanks if t["id"] == "nickel")
    assert nickel["summary"]["alarms"] >= 1  # seeded ph alarm
    assert {p["group"] for p in nickel["pvs"]} >= {"temperature", "ph"}
    full = client.get("/api/tanks/nickel", headers=auth("viewer")).json()
    assert len(full["sensors"]["temperature"]["probes"]) == 3
    assert full["sensors"]["temperature"]["voting"] == "2oo3"
    assert {lp["id"] for lp in full["loops"]} == {"nickel.temp", "nickel.ph", "nickel.rectifier"}
    assert {i["interlock"] for i in full["interlocks"]} >= {"dry_fire", "over_temp"}
    assert [t["group"] for t in full["trends"]] == ["temperature", "ph", "current_density"]
    assert client.get("/api/tanks/nope", headers=auth("viewer")).status_code == 404


# ---------------------------------------------------------------- tag writes


@pytest.mark.parametrize(("role", "value", "status"), [
    ("viewer", 500, 403),
    ("operator", 500, 200),
    ("operator", 700, 422),
    ("engineer", 700, 200),
    ("engineer", 1200, 422),
    ("admin", 1000, 200),
    ("operator", -1, 422),
])
def test_tag_write_by_role_and_limits(client: TestClient, auth: Auth, runtime: FakeRuntime,
                                      role: str, value: float, status: int) -> None:
    r = client.put("/api/tags/line1.nickel.rect.setpoint/value", json={"value": value}, headers=auth(role))
    assert r.status_code == status, r.text
    written = [w for w in runtime.writes if w[0] == "line1.nickel.rect.setpoint"]
    if status == 200:
        assert written == [("line1.nickel.rect.setpoint", value, role)]
        assert client.get("/api/tags/line1.nickel.rect.setpoint", headers=auth(role)).json()["value"] == value
    else:
        assert written == []
    if status == 422:
        limit = "0..600" if role == "operator" else "0..1000"
        assert limit in r.json()["detail"]


def test_tag_write_errors(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    h = auth("engineer")
    put = lambda name, body: client.put(f"/api/tags/{name}/value", json=body, headers=h)  # noqa: E731
    assert put("line1.nope", {"value": 1}).status_code == 404
    assert put("line1.nickel.temp.a", {"value": 1}).status_code == 403  # read-only
    assert put("line1.nickel.rect.setpoint", {"value": "12"}).status_code == 422
    assert put("line1.nickel.rect.setpoint", {"value": True}).status_code == 422
    assert put("line1.nickel.rect.setpoint", {}).status_code == 422
    assert put("line1.nickel.rect.setpoint", {"value": 1, "extra": 2}).status_code == 422
    assert put("line1.nickel.heater", {"value": 1}).status_code == 422  # boolean tag wants true/false
    r = client.put("/api/tags/line1.nickel.rect.setpoint/value", content=b"{not json", headers=h | {"content-type": "application/json"})
    assert r.status_code == 422
    assert runtime.writes == []
    assert put("line1.nickel.heater", {"value": True}).status_code == 200


def test_tag_write_refused_by_interlock(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    runtime.set_interlock("nickel", "rectifier", InterlockStatus.TRIPPED, ("rectifier_fault",))
    r = client.put("/api/tags/line1.nickel.rect.setpoint/value", json={"value": 100}, headers=auth("operator"))
    assert r.status_code == 409 and "rectifier" in r.json()["detail"]
    assert runtime.writes == []


def test_every_write_is_audited_with_old_new_and_address(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    old = runtime.tags.get("line1.nickel.rect.setpoint").value
    client.put("/api/tags/line1.nickel.rect.setpoint/value", json={"value": 321, "comment": "trial"}, headers=auth("operator"))
    client.put("/api/tags/line1.nickel.rect.setpoint/value", json={"value": 999}, headers=auth("operator"))
    audit = [e for e in runtime.events if e.kind is EventKind.AUDIT]
    ok, refused = audit[-2], audit[-1]
    assert (ok.user, ok.state, ok.data["old"], ok.data["new"], ok.comment) == ("operator", "ok", old, 321, "trial")
    assert ok.data["address"] == "testclient" and ok.data["role"] == "operator"
    assert refused.state == "refused" and refused.data["kind"] == "limit"


# ---------------------------------------------------------------- loops and interlocks


def test_setpoint_roles_and_limits(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    url = "/api/loops/nickel.temp/setpoint"
    assert client.put(url, json={"value": 58}, headers=auth("viewer")).status_code == 403
    r = client.put(url, json={"value": 62}, headers=auth("operator"))
    assert r.status_code == 422 and "50..60" in r.json()["detail"]
    assert client.put(url, json={"value": 58}, headers=auth("operator")).json() == {"ok": True, "old": 55.0, "new": 58, "message": ""}
    assert client.put(url, json={"value": 62}, headers=auth("engineer")).status_code == 200
    assert client.put(url, json={"value": 66}, headers=auth("engineer")).status_code == 422
    assert client.put(url, json={"value": "x"}, headers=auth("engineer")).status_code == 422
    assert client.put("/api/loops/nickel.nope/setpoint", json={"value": 1}, headers=auth("engineer")).status_code == 404
    assert client.put("/api/loops/nope/setpoint", json={"value": 1}, headers=auth("engineer")).status_code == 404
    assert runtime.loops[("nickel", "temp")].setpoint == 62
    tank = client.get("/api/tanks/nickel", headers=auth("viewer")).json()
    assert next(lp for lp in tank["loops"] if lp["loop"] == "temp")["setpoint"] == 62


def test_loop_mode(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    url = "/api/loops/nickel.ph/mode"
    assert client.put(url, json={"mode": "manual"}, headers=auth("viewer")).status_code == 403
    assert client.put(url, json={"mode": "sideways"}, headers=auth("operator")).status_code == 422
    assert client.put(url, json={"mode": "manual"}, headers=auth("operator")).status_code == 200
    assert runtime.loops[("nickel", "ph")].mode.value == "manual"
    assert client.put("/api/loops/x.y/mode", json={"mode": "off"}, headers=auth("operator")).status_code == 404


def test_interlock_reset(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    url = "/api/interlocks/nickel.over_temp/reset"
    runtime.set_interlock("nickel", "over_temp", InterlockStatus.TRIPPED, ("temperature > 68",))
    assert client.post(url, headers=auth("operator")).status_code == 409  # cause still present
    runtime.set_interlock("nickel", "over_temp", InterlockStatus.LATCHED)
    assert client.post(url, headers=auth("viewer")).status_code == 403
    assert client.post(url, json={"comment": "probe replaced"}, headers=auth("operator")).status_code == 200
    assert runtime.interlocks[("nickel", "over_temp")].status is InterlockStatus.HEALTHY
    assert client.post("/api/interlocks/nickel.nope/reset", headers=auth("operator")).status_code == 404


def test_interlock_bypass(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    body = {"duration_s": 600, "reason": "probe calibration"}
    url = "/api/interlocks/nickel.over_temp/bypass"
    assert client.post(url, json=body, headers=auth("operator")).status_code == 403
    assert client.post("/api/interlocks/nickel.dry_fire/bypass", json=body, headers=auth("engineer")).status_code == 409
    assert client.post(url, json=body | {"duration_s": 7200}, headers=auth("engineer")).status_code == 422
    assert client.post(url, json={"duration_s": 600}, headers=auth("engineer")).status_code == 422  # reason required
    assert client.post(url, json=body, headers=auth("engineer")).status_code == 200
    assert runtime.interlocks[("nickel", "over_temp")].status is InterlockStatus.BYPASSED
    assert client.post(url, json=body | {"enable": False}, headers=auth("engineer")).status_code == 200
    assert runtime.interlocks[("nickel", "over_temp")].status is InterlockStatus.HEALTHY


# ---------------------------------------------------------------- alarms


def test_alarm_ack_shelve_journal(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    alarms = client.get("/api/alarms", headers=auth("viewer")).json()
    assert {a["id"] for a in alarms} >= {"nickel.ph_limits"}
    url = "/api/alarms/nickel.ph_limits/ack"
    assert client.post(url, headers=auth("viewer")).status_code == 403
    assert client.post(url, json={"comment": "seen"}, headers=auth("operator")).status_code == 200
    assert client.post(url, headers=auth("operator")).status_code == 409
    assert client.post("/api/alarms/nope/ack", headers=auth("operator")).status_code == 404
    shelve = "/api/alarms/rinse1.conductivity_h/shelve"
    assert client.post(shelve, json={"duration_s": 600, "comment": "rinse being refilled"}, headers=auth("viewer")).status_code == 403
    assert client.post(shelve, json={"duration_s": 10 * 86400, "comment": "too long"}, headers=auth("operator")).status_code == 422
    assert client.post(shelve, json={"duration_s": 600, "comment": "rinse being refilled"}, headers=auth("operator")).status_code == 200
    states = {a["id"]: a["state"] for a in client.get("/api/alarms", headers=auth("viewer")).json()}
    assert states == {"nickel.ph_limits": "ack_active", "rinse1.conductivity_h": "shelved"}
    journal = client.get("/api/alarms/journal", headers=auth("viewer")).json()
    assert journal[0]["user"] == "operator" and journal[0]["state"] == "shelved"


# ---------------------------------------------------------------- history, audit, status, health


def test_history(client: TestClient, auth: Auth) -> None:
    h = auth("viewer")
    r = client.get("/api/history", params={"tags": "line1.nickel.temperature.pv,line1.nickel.ph.pv", "buckets": 10}, headers=h)
    series = r.json()["series"]
    assert len(series["line1.nickel.temperature.pv"]) == 10
    assert any(b["count"] > 0 and 40 < b["avg"] < 70 for b in series["line1.nickel.temperature.pv"])
    raw = client.get("/api/history/raw", params=[("tags", "line1.nickel.ph.pv"), ("limit", 5)], headers=h).json()
    assert len(raw["points"]) == 5 and raw["truncated"] is True
    csv = client.get("/api/history/csv", params={"tags": "line1.nickel.ph.pv"}, headers=h)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "ts,epoch_s,tag,value,quality,reason" and len(lines) > 10
    assert client.get("/api/history", params={"tags": "line1.nope"}, headers=h).status_code == 404
    assert client.get("/api/history", headers=h).status_code == 422
    assert client.get("/api/history", params={"tags": "line1.nickel.ph.pv", "buckets": 0}, headers=h).status_code == 422
    bad_window = {"tags": "line1.nickel.ph.pv", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    assert client.get("/api/history", params=bad_window, headers=h).status_code == 422
    assert client.get("/api/history", params={"tags": "line1.nickel.ph.pv", "start": "yesterday"}, headers=h).status_code == 422


def test_audit_page_roles(client: TestClient, auth: Auth) -> None:
    assert client.get("/api/audit", headers=auth("viewer")).status_code == 403
    client.put("/api/loops/nickel.temp/setpoint", json={"value": 57}, headers=auth("operator"))
    events = client.get("/api/audit", headers=auth("operator")).json()
    assert events[0]["source"] == "nickel.temp" and events[0]["data"]["new"] == 57
    client.post("/api/auth/token", data={"username": "operator", "password": "operator-pass-1"})
    client.post("/api/auth/token", data={"username": "engineer", "password": "wrong"})
    logins = client.get("/api/audit", params={"kind": "login"}, headers=auth("engineer")).json()
    assert [(e["source"], e["state"]) for e in logins] == [("engineer", "failed"), ("operator", "ok")]
    assert logins[0]["data"]["address"] == "testclient"
    assert client.get("/api/audit", params={"kind": "bogus"}, headers=auth("engineer")).status_code == 422


def test_status_health_ready_metrics(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    st = client.get("/api/status", headers=auth("viewer")).json()
    assert {"drivers", "scan", "historian", "alarms", "hmi"} <= st.keys()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    runtime.is_ready = False
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["reason"]
    m = client.get("/metrics")
    assert m.status_code == 200 and "scada_http_requests_total" in m.text and 'route="/api/status"' in m.text


def test_users_admin_only(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    assert client.get("/api/users", headers=auth("operator")).status_code == 403
    users = client.get("/api/users", headers=auth("admin")).json()
    assert {u["username"] for u in users} == set(ROLES) and all("password_hash" not in u for u in users)
    body = {"username": "shift.lead", "password": "a-long-password", "role": "engineer"}
    assert client.post("/api/users", json=body, headers=auth("engineer")).status_code == 403
    assert client.post("/api/users", json=body, headers=auth("admin")).status_code == 201
    assert client.post("/api/users", json=body, headers=auth("admin")).status_code == 409
    assert client.post("/api/users", json=body | {"username": "<img src=x>"}, headers=auth("admin")).status_code == 422
    assert client.post("/api/users", json=body | {"username": "x2", "role": "god"}, headers=auth("admin")).status_code == 422
    r = client.post("/api/auth/token", data={"username": "shift.lead", "password": "a-long-password"})
    assert r.status_code == 200 and r.json()["role"] == "engineer"


# ---------------------------------------------------------------- transport guards


def test_oversized_body_is_413(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    big = b'{"value": 1, "comment": "' + b"x" * 100_000 + b'"}'
    r = client.put("/api/tags/line1.nickel.rect.setpoint/value", content=big,
                   headers=auth("operator") | {"content-type": "application/json"})
    assert r.status_code == 413
    def chunks():  # noqa: ANN202 - no content-length: the streaming count must catch it
        for _ in range(100):
            yield b"x" * 1000
    r = client.put("/api/tags/line1.nickel.rect.setpoint/value", content=chunks(),
                   headers=auth("operator") | {"content-type": "application/json"})
    assert r.status_code == 413
    assert runtime.writes == []


def test_security_headers(client: TestClient) -> None:
    for path in ("/", "/healthz", "/api/tags", "/static/app.js"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"


def test_unknown_route_is_404_and_methods_405(client: TestClient, auth: Auth) -> None:
    assert client.get("/api/nope", headers=auth("viewer")).status_code == 404
    assert client.delete("/api/tags", headers=auth("viewer")).status_code == 405
