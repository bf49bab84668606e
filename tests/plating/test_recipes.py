"""Recipe versioning, audit and the refusals against the plant config."""

from __future__ import annotations

import copy
from typing import Any

from scada.config import PlantConfig
from scada.events import EventKind
from scada.plating import RecipeBook


def test_versions_are_immutable_and_each_edit_is_audited(plant: PlantConfig, body: dict[str, Any]) -> None:
    book = RecipeBook()
    r1 = book.propose("ni-cr", body, plant, user="alice", ts=10.0, comment="first")
    assert r1.ok and r1.recipe is not None and r1.recipe.version == 1
    assert r1.event is not None and r1.event.kind is EventKind.AUDIT and r1.event.user == "alice"
    assert r1.event.data["old"] is None and r1.event.data["new"]["part_number"] == "PN-100"
    book.add(r1.recipe)

    edited = copy.deepcopy(body)
    edited["steps"][0]["dwell_max_s"] = 1000
    r2 = book.propose("ni-cr", edited, plant, user="bob", ts=20.0)
    assert r2.ok and r2.recipe is not None and r2.recipe.version == 2
    assert r2.event is not None
    assert r2.event.user == "bob"
    assert r2.event.data["old"]["steps"][0]["dwell_max_s"] == 900
    assert r2.event.data["new"]["steps"][0]["dwell_max_s"] == 1000
    book.add(r2.recipe)

    # version 1 is unchanged and still retrievable; latest is v2
    v1 = book.get("ni-cr", 1)
    assert v1 is not None and v1.steps[0].dwell_max_s == 900
    assert book.latest("ni-cr").version == 2  # type: ignore[union-attr]
    assert book.for_part("PN-100").version == 2  # type: ignore[union-attr]
    # an identical save makes no new version and no audit record
    same = book.propose("ni-cr", edited, plant, user="bob", ts=30.0)
    assert same.ok and not same.changed and same.event is None
    assert [r.version for r in book.versions("ni-cr")] == [1, 2]


def test_round_trip_dict(plant: PlantConfig, book: RecipeBook) -> None:
    from scada.plating import Recipe

    r = book.latest("ni-cr")
    assert r is not None
    assert Recipe.from_dict(r.to_dict()) == r


def _issues(plant: PlantConfig, body: dict[str, Any]) -> dict[str, str]:
    res = RecipeBook().propose("x", body, plant, user="u", ts=0.0)
    assert not res.ok
    return {i.path: i.message for i in res.issues}


def test_unknown_tank_refused(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"][1]["tank"] = "copper"
    issues = _issues(plant, body)
    assert "unknown tank 'copper'" in issues["steps[1].tank"]


def test_window_outside_tank_window_refused(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"][0]["temperature_c"] = {"min": 45, "max": 58}  # nickel window is 50..60
    body["steps"][0]["ph"] = {"min": 4.0, "max": 5.0}            # nickel pH window 3.8..4.6
    issues = _issues(plant, body)
    assert "outside the process window" in issues["steps[0].temperature_c"]
    assert "3.8..4.6" in issues["steps[0].ph"]


def test_cd_outside_tank_cd_window_refused(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"][0]["current_density_a_dm2"] = 8.0  # nickel 1.0..6.5
    issues = _issues(plant, body)
    assert "current-density window" in issues["steps[0].current_density_a_dm2"]


def test_cd_outside_loop_setpoint_limits_refused(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"][1]["current_density_a_dm2"] = 80.0  # chrome loop limits 0..77.5 (window 15.5..77.5)
    res = RecipeBook().propose("x", body, plant, user="u", ts=0.0)
    msgs = [i.message for i in res.issues if i.path == "steps[1].current_density_a_dm2"]
    assert any("setpoint limits of loop chrome.rectifier" in m for m in msgs)
    assert any("current-density window" in m for m in msgs)


def test_dwell_min_above_max_refused(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"][1]["dwell_min_s"] = 2000
    issues = _issues(plant, body)
    assert "greater than dwell_max_s" in issues["steps[1].dwell_min_s"]


def test_type_errors_have_key_paths(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"][0]["dwell_max_s"] = -5
    body["steps"][1]["temperature_c"] = {"min": 60, "max": 50}
    issues = _issues(plant, body)
    assert "steps[0].dwell_max_s" in issues
    assert "steps[1].temperature_c" in issues


def test_other_refusals(plant: PlantConfig, body: dict[str, Any]) -> None:
    body["steps"].append({"tank": "rinse1", "dwell_min_s": 10, "dwell_max_s": 60, "current_density_a_dm2": 2,
                          "ph": {"min": 4, "max": 5}})
    issues = _issues(plant, body)
    assert "no rectifier loop" in issues["steps[2].current_density_a_dm2"]
    assert "no 'ph' sensor" in issues["steps[2].ph"]
    assert "steps" in _issues(plant, {"part_number": "p", "steps": []})
    res = RecipeBook().propose("bad id!", body, plant, user="u", ts=0)
    assert not res.ok and res.issues[0].path == "id"


def test_part_number_belongs_to_one_recipe(plant: PlantConfig, book: RecipeBook, body: dict[str, Any]) -> None:
    res = book.propose("other", body, plant, user="u", ts=5.0)
    assert not res.ok and "already has recipe 'ni-cr'" in res.reason
