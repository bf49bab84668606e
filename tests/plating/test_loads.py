"""Line tracker: bad loads refused, double load refused, PLC edges, dwell alarms on a fake clock."""

from __future__ import annotations

import pytest

from scada.config import PlantConfig
from scada.events import EventKind
from scada.plating import LineTracker, LoadRequest, LoadStatus, MoveSource, PlatingLine, RecipeBook
from scada.tags import QualityReason, Sample

T0 = 1_700_000_000.0


@pytest.fixture
def tracker(plant: PlantConfig, book: RecipeBook) -> LineTracker:
    return LineTracker(plant, book)


def _load(tracker: LineTracker, lid: str = "R1", area: float = 50.0) -> None:
    res = tracker.create_load(LoadRequest("PN-100", 10, area, "SO-1", id=lid), ts=T0, user="op")
    assert res.ok, res.reason


@pytest.mark.parametrize(
    ("req", "path", "words"),
    [
        (LoadRequest("PN-100", 10, 0.0), "area_dm2", "must be > 0"),
        (LoadRequest("PN-100", 10, -3.0), "area_dm2", "must be > 0"),
        (LoadRequest("PN-100", 10, float("nan")), "area_dm2", "must be > 0"),
        (LoadRequest("PN-100", 0, 5.0), "quantity", "must be > 0"),
        (LoadRequest("PN-999", 1, 5.0), "part_number", "unknown part number"),
        (LoadRequest("PN-100", 1, 5.0, recipe_id="nope"), "recipe_id", "unknown recipe"),
        (LoadRequest("PN-100", 1, 5.0, id="has space"), "id", "not a load id"),
        # 400 dm2 x 4 A/dm2 = 1600 A > nickel rectifier 1000 A
        (LoadRequest("PN-100", 1, 400.0), "area_dm2", "exceeds the rectifier maximum"),
    ],
)
def test_bad_loads_refused(tracker: LineTracker, req: LoadRequest, path: str, words: str) -> None:
    res = tracker.create_load(req, ts=T0, user="op")
    assert not res.ok
    assert any(i.path == path and words in i.message for i in res.issues), res.issues
    assert res.events and res.events[0].state == "refused" and res.events[0].kind is EventKind.LOAD
    assert not tracker.loads


def test_duplicate_load_id_refused(tracker: LineTracker) -> None:
    _load(tracker)
    res = tracker.create_load(LoadRequest("PN-100", 1, 5.0, id="R1"), ts=T0, user="op")
    assert not res.ok and "exists already" in res.reason


def test_generated_ids_are_unique(tracker: LineTracker) -> None:
    ids = {tracker.create_load(LoadRequest("PN-100", 1, 5.0), ts=T0, user="op").load.id  # type: ignore[union-attr]
           for _ in range(3)}
    assert len(ids) == 3


def test_tank_holding_a_load_refuses_another(tracker: LineTracker) -> None:
    _load(tracker, "R1")
    _load(tracker, "R2")
    assert tracker.enter("R1", "nickel", ts=T0 + 1).ok
    res = tracker.enter("R2", "nickel", ts=T0 + 2)
    assert not res.ok and "already holds load R1" in res.reason
    assert res.events[0].state == "refused"
    # a load still in one tank cannot enter another
    res = tracker.enter("R1", "chrome", ts=T0 + 3)
    assert not res.ok and "still in tank 'nickel'" in res.reason
    assert not tracker.enter("R9", "chrome", ts=T0).ok
    assert not tracker.enter("R2", "copper", ts=T0).ok


def test_rectifier_setpoint_is_cd_times_area(tracker: LineTracker) -> None:
    _load(tracker, area=42.5)
    assert tracker.rectifier_current_a("nickel") is None
    assert tracker.area_dm2("nickel") is None
    tracker.enter("R1", "nickel", ts=T0)
    assert tracker.rectifier_current_a("nickel") == pytest.approx(4.0 * 42.5)
    assert tracker.area_dm2("nickel") == 42.5
    d = tracker.rectifier_demand("nickel")
    assert d is not None and d.ramp_s == 20 and d.current_density_a_dm2 == 4.0
    tracker.leave("nickel", ts=T0 + 700)
    assert tracker.rectifier_current_a("nickel") is None
    tracker.enter("R1", "chrome", ts=T0 + 720)
    assert tracker.rectifier_current_a("chrome") == pytest.approx(31.0 * 42.5)


def test_dwell_alarms_on_a_fake_clock(tracker: LineTracker) -> None:
    _load(tracker)
    tracker.enter("R1", "nickel", ts=T0)
    assert tracker.tick(T0 + 899) == []
    evs = tracker.tick(T0 + 901)
    assert len(evs) == 1
    ev = evs[0]
    assert ev.kind is EventKind.LOAD and ev.state == "active" and ev.source == "plating.nickel.over_dwell"
    assert ev.data["load"] == "R1" and ev.data["limit_s"] == 900 and ev.priority == "high"
    assert tracker.tick(T0 + 1000) == []  # raised once
    left = tracker.leave("nickel", ts=T0 + 1100)
    states = [(e.source, e.state) for e in left.events]
    assert ("plating.nickel.over_dwell", "cleared") in states
    # chrome: under-dwell at exit (min 1200 s)
    tracker.enter("R1", "chrome", ts=T0 + 1200)
    left = tracker.leave("chrome", ts=T0 + 1500)
    under = [e for e in left.events if e.source == "plating.chrome.under_dwell"]
    assert [e.state for e in under] == ["active", "cleared"]
    assert tracker.loads["R1"].status is LoadStatus.DONE
    assert any(e.state == "done" for e in left.events)


def _present(v: bool, ts: float) -> Sample:
    return Sample.good_value(v, ts)


def test_plc_edges_move_the_due_load(line: PlatingLine) -> None:
    tr = line.tracker
    tr.create_load(LoadRequest("PN-100", 1, 20.0, id="A"), ts=T0, user="op")
    tr.create_load(LoadRequest("PN-100", 1, 20.0, id="B"), ts=T0 + 5, user="op")
    tag = "line1.nickel.load_present"
    line.scan({tag: _present(False, T0 + 10)}, T0 + 10)
    res = line.scan({tag: _present(True, T0 + 11)}, T0 + 11)
    assert tr.load_in("nickel").id == "A"  # type: ignore[union-attr]  # longest waiting
    assert any(e.state == "entered" and e.data["move_source"] == "plc" for e in res.events)
    # Bad quality is no edge
    line.scan({tag: Sample.bad(QualityReason.COMM_FAILURE, T0 + 12)}, T0 + 12)
    assert tr.load_in("nickel").id == "A"  # type: ignore[union-attr]
    line.scan({tag: _present(False, T0 + 700)}, T0 + 700)
    assert tr.load_in("nickel") is None
    assert tr.loads["A"].visits[0].exit_source is MoveSource.PLC
    line.scan({tag: _present(True, T0 + 710)}, T0 + 710)
    assert tr.load_in("nickel").id == "B"  # type: ignore[union-attr]


def test_plc_edge_without_a_due_load_is_reported(line: PlatingLine) -> None:
    tag = "line1.chrome.load_present"
    line.scan({tag: _present(False, T0)}, T0)
    res = line.scan({tag: _present(True, T0 + 1)}, T0 + 1)
    assert [e.state for e in res.events] == ["refused"]
    assert "no tracked load" in res.events[0].message


def test_out_of_sequence_and_abort(tracker: LineTracker) -> None:
    _load(tracker)
    res = tracker.enter("R1", "chrome", ts=T0)  # skipped nickel
    assert res.ok and "skipped step(s): nickel" in res.events[0].message
    assert tracker.rectifier_current_a("chrome") == pytest.approx(31.0 * 50)
    tracker.leave("chrome", ts=T0 + 1300)
    assert tracker.loads["R1"].status is LoadStatus.DONE
    _load(tracker, "R2")
    tracker.enter("R2", "soak", ts=T0)
    assert tracker.rectifier_current_a("soak") == 0.0  # not a recipe step: no current
    res = tracker.abort("R2", ts=T0 + 5, user="sup", reason="dropped part")
    assert res.ok and tracker.loads["R2"].status is LoadStatus.ABORTED and tracker.load_in("soak") is None
