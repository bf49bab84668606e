"""Plating API: recipes, loads, moves and the traceability record, every role and refusal (TestClient, no sockets).

The FakeRuntime runs the real PlatingService on an in-memory store with a manual clock, so dwell times,
amp-hours and the history behind the record are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hmi.fake_runtime import FakeRuntime
from scada.config import PlantConfig
from scada.events import EventKind
from scada.tags import Quality, QualityReason

from .conftest import add_users

Auth = Callable[[str], dict[str, str]]
ROLES = ["viewer", "operator", "engineer", "admin"]
T0 = 1_800_000_000.0
XSS = '<img src=x onerror="window.__xss=1">'
PV_T = "line1.nickel.temperature.pv"


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def ni_body(part: str = "PN-100", **step: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"tank": "nickel", "dwell_min_s": 30, "dwell_max_s": 300, "current_density_a_dm2": 4.0,
                         "temperature_c": {"min": 52, "max": 58}}
    s.update(step)
    return {"part_number": part, "description": "bright nickel", "steps": [s]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(plant: PlantConfig, password_hashes: dict[str, str], clock: Clock) -> FakeRuntime:  # overrides conftest
    rt = FakeRuntime(plant, clock=clock, history_s=60.0)
    add_users(rt, password_hashes)
    return rt


def run(rt: FakeRuntime, clock: Clock, seconds: float, dt: float = 0.5) -> None:
    """Advance the fake plant (scan + plating step) on the manual clock."""
    for _ in range(int(round(seconds / dt))):
        clock.t += dt
        rt.step(dt)


@pytest.fixture
def recipe(client: TestClient, auth: Auth) -> dict[str, Any]:
    r = client.put("/api/recipes/ni", json={"body": ni_body(), "comment": "first"}, headers=auth("engineer"))
    assert r.status_code == 200, r.text
    return r.json()


def new_load(client: TestClient, auth: Auth, load_id: str = "L1", **kw: Any) -> Any:
    body = {"part_number": "PN-100", "quantity": 12, "area_dm2": 20.0, "customer_order": "SO-1", "id": load_id, **kw}
    return client.post("/api/loads", json=body, headers=auth("operator"))


def audits(rt: FakeRuntime, action: str) -> list[Any]:
    return [e for e in rt.events if e.kind is EventKind.AUDIT and e.data.get("action") == action]


# ---------------------------------------------------------------- reads


@pytest.mark.parametrize("path", ["/api/recipes", "/api/recipes/ni", "/api/recipes/ni?version=1",
                                  "/api/recipes/ni/versions", "/api/loads", "/api/loads?on_line=true",
                                  "/api/loads/L1", "/api/loads/L1/record", "/api/loads/L1/record.csv",
                                  "/api/loads/L1/report"])
def test_reads_need_login_and_work_for_every_role(client: TestClient, auth: Auth, recipe: dict[str, Any],
                                                  path: str) -> None:
    assert new_load(client, auth).status_code == 201
    r = client.get(path)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    for role in ROLES:
        r = client.get(path, headers=auth(role))
        assert r.status_code == 200, (role, path, r.text)


@pytest.mark.parametrize("path", ["/api/recipes/nope", "/api/recipes/ni?version=9", "/api/recipes/nope/versions",
                                  "/api/loads/nope", "/api/loads/nope/record", "/api/loads/nope/record.csv",
                                  "/api/loads/nope/report"])
def test_unknown_is_404(client: TestClient, auth: Auth, recipe: dict[str, Any], path: str) -> None:
    r = client.get(path, headers=auth("viewer"))
    assert r.status_code == 404 and "unknown" in r.json()["detail"]


def test_without_a_plating_layer_everything_is_404(client: TestClient, auth: Auth, runtime: FakeRuntime) -> None:
    runtime.plating_port = None
    assert client.get("/api/recipes", headers=auth("viewer")).status_code == 404
    r = client.post("/api/loads", json={"part_number": "X", "quantity": 1, "area_dm2": 1}, headers=auth("operator"))
    assert r.status_code == 404 and "plating" in r.json()["detail"]


# ---------------------------------------------------------------- recipes


def test_recipe_versions_and_single_audit(client: TestClient, auth: Auth, runtime: FakeRuntime,
                                          recipe: dict[str, Any]) -> None:
    assert recipe["version"] == 1 and recipe["user"] == "engineer" and recipe["changed"] is True
    # the same body again: no new version, nothing pretends to have changed
    r = client.put("/api/recipes/ni", json={"body": ni_body()}, headers=auth("engineer"))
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["changed"] is False
    r = client.put("/api/recipes/ni", json={"body": ni_body(dwell_max_s=400), "comment": "longer"},
                   headers=auth("admin"))
    assert r.status_code == 200 and r.json()["version"] == 2
    assert [v["version"] for v in client.get("/api/recipes/ni/versions", headers=auth("viewer")).json()] == [1, 2]
    assert client.get("/api/recipes/ni", headers=auth("viewer")).json()["body"]["steps"][0]["dwell_max_s"] == 400
    assert client.get("/api/recipes/ni?version=1", headers=auth("viewer")).json()["body"]["steps"][0]["dwell_max_s"] == 300
    assert [x["id"] for x in client.get("/api/recipes", headers=auth("viewer")).json()] == ["ni"]
    # each accepted version is audited exactly once (by the plating layer), with the source address added
    saves = audits(runtime, "recipe_save")
    assert [e.data["version"] for e in saves] == [1, 2]
    assert all(e.data["address"] == "testclient" and e.data["role"] in ("engineer", "admin") for e in saves)
    assert saves[1].data["old"]["steps"][0]["dwell_max_s"] == 300 and saves[1].data["new"]["steps"][0]["dwell_max_s"] == 400
    assert saves[1].comment == "longer"
    assert not [e for e in audits(runtime, "recipe.save") if e.state == "ok" and e.data["new"] != "v1"]


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_recipe_edit_needs_engineer(client: TestClient, auth: Auth, runtime: FakeRuntime, role: str) -> None:
    r = client.put("/api/recipes/ni", json={"body": ni_body()}, headers=auth(role))
    assert r.status_code == 403 and "engineer" in r.json()["detail"]
    assert client.get("/api/recipes/ni", headers=auth("viewer")).status_code == 404
    (ev,) = audits(runtime, "recipe.save")
    assert ev.state == "refused" and ev.user == role and ev.data["kind"] == "forbidden"


@pytest.mark.parametrize(("step", "path", "words"), [
    ({"dwell_min_s": 500, "dwell_max_s": 100}, "steps[0].dwell_min_s", "greater than"),
    ({"temperature_c": {"min": 40, "max": 70}}, "steps[0].temperature_c", "outside the process window"),
    ({"tank": "nowhere"}, "steps[0].tank", "unknown tank"),
    ({"current_density_a_dm2": 9.0}, "steps[0].current_density_a_dm2", "outside"),
    ({"dwell_max_s": "long"}, "steps[0].dwell_max_s", "number"),
    ({"current_a": 50.0}, "steps[0].current_a", "not both"),
    ({"tank": "pickle", "temperature_c": None, "current_density_a_dm2": None, "current_a": 10.0},
     "steps[0].current_a", "no rectifier"),
    ({"tank": "soak", "temperature_c": None, "current_density_a_dm2": None, "ph": {"min": 9, "max": 12}},
     "steps[0].ph", "no 'ph' sensor"),
])
def test_recipe_refusals_carry_the_key_path(client: TestClient, auth: Auth, runtime: FakeRuntime,
                                            step: dict[str, Any], path: str, words: str) -> None:
    r = client.put("/api/recipes/ni", json={"body": ni_body(**step)}, headers=auth("engineer"))
    assert r.status_code == 422, r.text
    issues = r.json()["issues"]
    assert any(i["path"] == path and words in i["message"] for i in issues), issues
    assert path in r.json()["detail"]
    assert client.get("/api/recipes/ni", headers=auth("viewer")).status_code == 404
    (ev,) = audits(runtime, "recipe.save")
    assert ev.state == "refused" and path in " ".join(ev.data["issues"])


def test_recipe_body_shape_and_ids(client: TestClient, auth: Auth, recipe: dict[str, Any]) -> None:
    h = auth("engineer")
    r = client.put("/api/recipes/ni", json={"body": {"part_number": "PN-100"}}, headers=h)
    assert r.status_code == 422 and r.json()["issues"][0]["path"] == "steps"
    assert client.put("/api/recipes/ni", json={"body": ni_body(), "extra": 1}, headers=h).status_code == 422
    assert client.put("/api/recipes/bad%20id", json={"body": ni_body("PN-2")}, headers=h).json()["issues"][0]["path"] == "id"
    # one recipe per part number
    r = client.put("/api/recipes/other", json={"body": ni_body()}, headers=h)
    assert r.status_code == 422 and r.json()["issues"][0]["path"] == "part_number"


# ---------------------------------------------------------------- loads


def test_create_load_roles_and_audit(client: TestClient, auth: Auth, runtime: FakeRuntime,
                                     recipe: dict[str, Any]) -> None:
    r = client.post("/api/loads", json={"part_number": "PN-100", "quantity": 1, "area_dm2": 5}, headers=auth("viewer"))
    assert r.status_code == 403
    r = new_load(client, auth)
    assert r.status_code == 201, r.text
    ld = r.json()
    assert (ld["id"], ld["status"], ld["recipe_id"], ld["recipe_version"], ld["next_tank"]) == ("L1", "queued", "ni", 1, "nickel")
    assert ld["created_by"] == "operator" and ld["area_dm2"] == 20.0
    # generated id when none is given
    r = client.post("/api/loads", json={"part_number": "PN-100", "quantity": 1, "area_dm2": 5}, headers=auth("engineer"))
    assert r.status_code == 201 and r.json()["id"].startswith("L")
    created = audits(runtime, "load.create")
    assert [e.state for e in created] == ["refused", "ok", "ok"]
    assert created[1].source == "L1" and created[1].data["address"] == "testclient"
    assert any(e.kind is EventKind.LOAD and e.state == "created" and e.source == "L1" for e in runtime.events)


@pytest.mark.parametrize(("body", "status", "path"), [
    ({"area_dm2": 0}, 422, "area_dm2"),
    ({"area_dm2": -3.5}, 422, "area_dm2"),
    ({"quantity": 0}, 422, "quantity"),
    ({"part_number": "PN-NONE"}, 422, "part_number"),
    ({"recipe_id": "nope"}, 422, "recipe_id"),
    ({"area_dm2": 400.0}, 422, "area_dm2"),  # 4 A/dm2 x 400 dm2 = 1600 A > the 1000 A rectifier
    ({"id": "bad id!"}, 422, "id"),
])
def test_load_refusals(client: TestClient, auth: Auth, recipe: dict[str, Any], body: dict[str, Any], status: int,
                       path: str) -> None:
    r = new_load(client, auth, **body)
    assert r.status_code == status, r.text
    assert any(i["path"] == path for i in r.json()["issues"]), r.json()
    assert client.get("/api/loads", headers=auth("viewer")).json() == []


def test_load_bad_types_and_duplicates(client: TestClient, auth: Auth, runtime: FakeRuntime,
                                       recipe: dict[str, Any]) -> None:
    assert new_load(client, auth, area_dm2="20").status_code == 422
    assert new_load(client, auth, quantity=1.5).status_code == 422
    assert new_load(client, auth, unknown=1).status_code == 422
    nan = '{"part_number": "PN-100", "quantity": 1, "area_dm2": NaN}'
    r = client.post("/api/loads", content=nan, headers={**auth("operator"), "Content-Type": "application/json"})
    assert r.status_code == 422 and "area_dm2" in r.text
    assert audits(runtime, "load.create") == []  # refused by the schema: no NaN reaches the audit JSON
    assert new_load(client, auth).status_code == 201
    r = new_load(client, auth)
    assert r.status_code == 409 and "exists already" in r.json()["detail"]


def test_moves_dwell_and_refusals(client: TestClient, auth: Auth, runtime: FakeRuntime, clock: Clock,
                                  recipe: dict[str, Any]) -> None:
    op = auth("operator")
    assert new_load(client, auth, "L1").status_code == 201
    assert new_load(client, auth, "L2").status_code == 201
    assert client.post("/api/loads/L1/enter", json={"tank": "nickel"}, headers=auth("viewer")).status_code == 403
    assert client.post("/api/loads/nope/enter", json={"tank": "nickel"}, headers=op).status_code == 404
    r = client.post("/api/loads/L1/enter", json={"tank": "nowhere"}, headers=op)
    assert r.status_code == 404 and "unknown tank" in r.json()["detail"]
    assert client.post("/api/loads/L1/enter", json={}, headers=op).status_code == 422
    r = client.post("/api/loads/L1/leave", headers=op)
    assert r.status_code == 409 and "not in a tank" in r.json()["detail"]

    r = client.post("/api/loads/L1/enter", json={"tank": "nickel"}, headers=op)
    assert r.status_code == 200 and r.json()["tank"] == "nickel" and r.json()["status"] == "in_tank"
    r = client.post("/api/loads/L2/enter", json={"tank": "nickel"}, headers=op)
    assert r.status_code == 409 and "already holds load L1" in r.json()["detail"]
    r = client.post("/api/loads/L1/enter", json={"tank": "chrome"}, headers=op)
    assert r.status_code == 409 and "still in tank" in r.json()["detail"]

    run(runtime, clock, 10)
    (on,) = [x for x in client.get("/api/loads?on_line=true", headers=auth("viewer")).json() if x["id"] == "L1"]
    assert on["dwell_s"] == pytest.approx(10.0) and on["dwell_state"] == "short"
    assert (on["dwell_min_s"], on["dwell_max_s"]) == (30, 300)
    assert on["current_density_a_dm2"] == 4.0 and on["current_a"] == pytest.approx(80.0)
    assert client.post("/api/loads/L1/leave", headers=auth("viewer")).status_code == 403
    r = client.post("/api/loads/L1/leave", json={"comment": "hoist"}, headers=op)
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["tank"] is None
    v = r.json()["visits"][0]
    assert v["under_dwell"] is True and v["exit_ts"] - v["entry_ts"] == pytest.approx(10.0)
    # the under-dwell alarm event for the operator
    assert any(e.kind is EventKind.LOAD and e.source == "plating.nickel.under_dwell" for e in runtime.events)
    r = client.post("/api/loads/L1/enter", json={"tank": "nickel"}, headers=op)
    assert r.status_code == 409 and "done" in r.json()["detail"]
    assert [e.state for e in audits(runtime, "load.enter")] == ["refused"] * 3 + ["ok", "refused", "refused", "refused"]
    leaves = audits(runtime, "load.leave")
    assert [e.state for e in leaves] == ["refused", "refused", "ok"] and leaves[-1].data["old"] == "nickel"


def test_abort(client: TestClient, auth: Auth, runtime: FakeRuntime, recipe: dict[str, Any]) -> None:
    op = auth("operator")
    assert new_load(client, auth).status_code == 201
    assert client.post("/api/loads/L1/enter", json={"tank": "nickel"}, headers=op).status_code == 200
    assert client.post("/api/loads/L1/abort", json={"reason": "ok?"}, headers=auth("viewer")).status_code == 403
    assert client.post("/api/loads/L1/abort", json={"reason": "x"}, headers=op).status_code == 422
    assert client.post("/api/loads/nope/abort", json={"reason": "dropped"}, headers=op).status_code == 404
    r = client.post("/api/loads/L1/abort", json={"reason": "dropped in the tank"}, headers=op)
    assert r.status_code == 200 and r.json()["status"] == "aborted" and r.json()["tank"] is None
    r = client.post("/api/loads/L1/abort", json={"reason": "again"}, headers=op)
    assert r.status_code == 409
    ab = audits(runtime, "load.abort")
    assert [e.state for e in ab] == ["refused", "refused", "ok", "refused"]
    assert ab[2].comment == "dropped in the tank" and ab[2].data["old"] == "in_tank"
    # the tank is free again
    assert new_load(client, auth, "L2").status_code == 201
    assert client.post("/api/loads/L2/enter", json={"tank": "nickel"}, headers=op).status_code == 200


def test_history_search(client: TestClient, auth: Auth, clock: Clock, recipe: dict[str, Any]) -> None:
    h = auth("engineer")
    r = client.put("/api/recipes/cu", json={"body": ni_body("PN-200")}, headers=h)
    assert r.status_code == 200
    for i, (pn, order) in enumerate([("PN-100", "SO-1"), ("PN-200", "SO-2"), ("PN-100", "SO-3")]):
        clock.t = T0 + 100 * i
        assert new_load(client, auth, f"L{i}", part_number=pn, customer_order=order).status_code == 201
    assert client.post("/api/loads/L0/abort", json={"reason": "scrap"}, headers=auth("operator")).status_code == 200

    def ids(q: str) -> list[str]:
        r = client.get("/api/loads" + q, headers=auth("viewer"))
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()]

    assert ids("") == ["L2", "L1", "L0"]  # newest first
    assert ids("?part=PN-100") == ["L2", "L0"]
    assert ids("?order=SO-2") == ["L1"]
    assert ids("?text=so-3") == ["L2"]
    assert ids("?status=aborted") == ["L0"]
    assert ids("?on_line=true") == ["L2", "L1"]
    assert ids("?on_line=true&part=PN-100") == ["L2"]
    assert ids(f"?start={T0 + 50:.0f}&end={T0 + 150:.0f}") == ["L1"]
    assert ids("?limit=1") == ["L2"]
    assert client.get("/api/loads?status=lost", headers=auth("viewer")).status_code == 422
    assert client.get("/api/loads?limit=0", headers=auth("viewer")).status_code == 422
    assert client.get("/api/loads?start=1e30", headers=auth("viewer")).status_code == 422


# ---------------------------------------------------------------- traceability


def through_nickel(client: TestClient, auth: Auth, rt: FakeRuntime, clock: Clock, *, excursion: bool,
                   load_id: str = "L1", part: str = "PN-100", order: str = "SO-1") -> None:
    op = auth("operator")
    assert new_load(client, auth, load_id, part_number=part, customer_order=order).status_code == 201
    assert client.post(f"/api/loads/{load_id}/enter", json={"tank": "nickel"}, headers=op).status_code == 200
    run(rt, clock, 20)
    if excursion:
        rt.force(PV_T, Quality.GOOD, QualityReason.NONE, value=63.5)  # above the recipe's 52..58
        run(rt, clock, 3)
        rt.unforce(PV_T)
    run(rt, clock, 20)
    assert client.post(f"/api/loads/{load_id}/leave", headers=op).status_code == 200
    run(rt, clock, 2)


def test_record_json_csv_report(client: TestClient, auth: Auth, runtime: FakeRuntime, clock: Clock,
                                recipe: dict[str, Any]) -> None:
    through_nickel(client, auth, runtime, clock, excursion=False)
    rec = client.get("/api/loads/L1/record", headers=auth("viewer")).json()
    assert rec["conforming"] is True, rec["nonconformities"]
    (step,) = rec["steps"]
    assert step["tank"] == "nickel" and step["dwell_s"] == pytest.approx(40.0)
    assert (step["dwell_min_s"], step["dwell_max_s"]) == (30, 300)
    assert step["temperature_window"] == [52, 58] and 52 <= step["temperature"]["min"] <= step["temperature"]["max"] <= 58
    assert step["ph"]["count"] > 0
    # 4 A/dm2 x 20 dm2 = 80 A for 40 s (the fake adds 1 % noise)
    assert rec["amp_hours"] == pytest.approx(80 * 40 / 3600, rel=0.03)
    assert step["avg_current_density_a_dm2"] == pytest.approx(4.0, rel=0.03)
    assert rec["thickness_um"]["Ni"] > 0
    assert "trends" not in step
    with_trends = client.get("/api/loads/L1/record?trends=true", headers=auth("viewer")).json()
    assert len(with_trends["steps"][0]["trends"]["temperature"]) >= 80

    r = client.get("/api/loads/L1/record.csv", headers=auth("viewer"))
    assert r.headers["content-type"].startswith("text/csv") and "load-L1.csv" in r.headers["content-disposition"]
    head, row = r.text.strip().splitlines()
    cells = dict(zip(head.split(","), row.split(","), strict=True))
    assert (cells["load_id"], cells["tank"], cells["conforming"], cells["dwell_s"]) == ("L1", "nickel", "yes", "40.0")

    r = client.get("/api/loads/L1/report", headers=auth("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = r.text
    assert "<script" not in html.lower() and "<style" not in html.lower()
    assert "/static/plating/report.css" in html
    assert "CONFORMING" in html and "<table id='steps'>" in html
    assert html.count("<svg class='trend'") >= 2  # temperature, pH (and current)
    assert client.get("/static/plating/report.css").status_code == 200


def test_excursion_makes_the_load_nonconforming(client: TestClient, auth: Auth, runtime: FakeRuntime, clock: Clock,
                                                recipe: dict[str, Any]) -> None:
    through_nickel(client, auth, runtime, clock, excursion=True)
    rec = client.get("/api/loads/L1/record", headers=auth("viewer")).json()
    assert rec["conforming"] is False
    assert any("temperature above window 52..58" in r for r in rec["nonconformities"]), rec["nonconformities"]
    assert rec["steps"][0]["temperature"]["max"] == pytest.approx(63.5)
    html = client.get("/api/loads/L1/report", headers=auth("viewer")).text
    assert "NON-CONFORMING" in html and "temperature above window" in html
    csv = client.get("/api/loads/L1/record.csv", headers=auth("viewer")).text
    assert ",no," in csv and "temperature above window" in csv


def test_stored_xss_is_escaped_in_the_report(client: TestClient, auth: Auth, runtime: FakeRuntime, clock: Clock) -> None:
    body = ni_body(XSS)
    body["description"] = XSS
    assert client.put("/api/recipes/x1", json={"body": body}, headers=auth("engineer")).status_code == 200
    through_nickel(client, auth, runtime, clock, excursion=False, part=XSS, order=XSS)
    html = client.get("/api/loads/L1/report", headers=auth("viewer")).text
    assert XSS not in html and "<img" not in html
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in html
    rec = client.get("/api/loads/L1/record", headers=auth("viewer")).json()
    assert rec["load"]["part_number"] == XSS and rec["load"]["customer_order"] == XSS  # JSON keeps the text as text


def test_record_of_a_load_still_on_the_line(client: TestClient, auth: Auth, runtime: FakeRuntime, clock: Clock,
                                            recipe: dict[str, Any]) -> None:
    assert new_load(client, auth).status_code == 201
    rec = client.get("/api/loads/L1/record", headers=auth("viewer")).json()
    assert rec["steps"] == [] and rec["load"]["status"] == "queued"
    assert client.post("/api/loads/L1/enter", json={"tank": "nickel"}, headers=auth("operator")).status_code == 200
    run(runtime, clock, 5)
    rec = client.get("/api/loads/L1/record", headers=auth("viewer")).json()
    assert rec["steps"][0]["exit_ts"] is None and rec["steps"][0]["dwell_s"] == pytest.approx(5.0)


def test_history_failure_is_503_with_a_reason(client: TestClient, auth: Auth, runtime: FakeRuntime,
                                              recipe: dict[str, Any]) -> None:
    assert new_load(client, auth).status_code == 201
    port: Any = runtime.plating_port

    async def broken(load_id: str) -> None:
        raise ConnectionError("database away")

    port.record = broken
    r = client.get("/api/loads/L1/record", headers=auth("viewer"))
    assert r.status_code == 503 and "cannot be read now" in r.json()["detail"]

