"""Traceability record: statistics, thickness, excursion -> non-conforming, renderings."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from scada.config import PlantConfig
from scada.events import Event, EventKind
from scada.plating import LoadRequest, PlatingLine, build_record, deposit_params
from scada.tags import QualityReason, Sample

T0 = 1_700_000_000.0
TEMP = "line1.nickel.temperature.pv"
PH = "line1.nickel.ph.pv"
CUR = "line1.nickel.current.pv"
CR_TEMP = "line1.chrome.temperature.pv"
CR_CUR = "line1.chrome.current.pv"


def _run(line: PlatingLine, *, excursion: bool) -> tuple[dict[str, list[Sample]], list[Event]]:
    """Nickel 700 s then chrome 1300 s at constant current, history recorded every 5 s."""
    hist: dict[str, list[Sample]] = {t: [] for t in (TEMP, PH, CUR, CR_TEMP, CR_CUR)}
    events: list[Event] = []
    tr = line.tracker
    events += tr.create_load(LoadRequest("PN-100", 12, 50.0, "SO-77", id="R1"), ts=T0, user="op").events
    events += tr.enter("R1", "nickel", ts=T0, user="op").events
    for k in range(0, 700 * 4 + 1):
        ts = T0 + k * 0.25
        temp = 55.0 + (6.5 if excursion and 300 <= k * 0.25 < 330 else 0.0)
        vals = {CUR: Sample.good_value(200.0, ts), TEMP: Sample.good_value(temp, ts), PH: Sample.good_value(4.2, ts)}
        events += line.scan(vals, ts).events
        if k % 20 == 0:
            for tag in (TEMP, PH, CUR):
                hist[tag].append(vals[tag])
    events += tr.leave("nickel", ts=T0 + 700, user="op").events
    events += tr.enter("R1", "chrome", ts=T0 + 720, user="op").events
    for k in range(0, 1300 * 4 + 1):
        ts = T0 + 720 + k * 0.25
        vals = {CR_CUR: Sample.good_value(1550.0, ts), CR_TEMP: Sample.good_value(56.0, ts)}
        events += line.scan(vals, ts).events
        if k % 20 == 0:
            hist[CR_CUR].append(vals[CR_CUR])
            hist[CR_TEMP].append(vals[CR_TEMP])
    hist[CR_TEMP].append(Sample.bad(QualityReason.SENSOR_FAILURE, T0 + 1000, value=-99.0))
    hist[CR_TEMP].sort(key=lambda s: s.server_ts)
    events += tr.leave("chrome", ts=T0 + 2020, user="op").events
    return hist, events


def test_conforming_load_record(plant: PlantConfig, line: PlatingLine) -> None:
    hist, events = _run(line, excursion=False)
    load = line.tracker.loads["R1"]
    rec = build_record(load, line.tracker.recipe_of(load), plant, hist, events, now=T0 + 3000)
    assert rec.conforming, rec.nonconformities
    ni, cr = rec.steps
    assert ni.dwell_s == 700 and ni.temperature is not None and ni.temperature.avg == pytest.approx(55.0)
    assert ni.ph is not None and ni.ph.min == pytest.approx(4.2)
    assert ni.amp_hours == pytest.approx(200 * 700 / 3600, rel=1e-6)
    assert ni.avg_current_density_a_dm2 == pytest.approx(4.0, rel=1e-6)
    p = deposit_params(plant.tank("nickel"))
    assert p is not None
    assert ni.thickness_um == pytest.approx(0.96 * p.k_um_per_a_min_dm2 * 4.0 * 700 / 60, rel=1e-6)
    assert cr.temperature is not None and cr.temperature.bad_count == 1 and cr.temperature.min == 56.0
    assert cr.thickness_um == pytest.approx(0.18 * 0.07495 * 31.0 * 1300 / 60, rel=1e-3)
    assert set(rec.thickness_um) == {"Ni", "Cr"}
    assert any(a["source"] == "R1" for a in ni.operator_actions)


def test_temperature_excursion_marks_the_load_non_conforming(plant: PlantConfig, line: PlatingLine) -> None:
    hist, events = _run(line, excursion=True)
    load = line.tracker.loads["R1"]
    rec = build_record(load, line.tracker.recipe_of(load), plant, hist, events, now=T0 + 3000)
    assert not rec.conforming
    assert not rec.steps[0].conforming and rec.steps[1].conforming
    assert any("temperature above window 52..58 degC: max 61.50" in r for r in rec.nonconformities)


def test_window_check_dwell_missing_data_interlock_and_skipped_steps(plant: PlantConfig, line: PlatingLine) -> None:
    tr = line.tracker
    tr.create_load(LoadRequest("PN-100", 1, 50.0, id="R2"), ts=T0, user="op")
    tr.enter("R2", "chrome", ts=T0)
    tr.leave("chrome", ts=T0 + 100)  # under-dwell, nickel skipped, no temperature data
    trip = Event(ts=T0 + 50, kind=EventKind.INTERLOCK, source="chrome.exhaust", tank="chrome", state="tripped")
    load = tr.loads["R2"]
    rec = build_record(load, tr.recipe_of(load), plant, {}, [trip], now=T0 + 200)
    text = "\n".join(rec.nonconformities)
    assert "under-dwell" in text
    assert "no valid temperature reading" in text
    assert "interlock chrome.exhaust tripped" in text
    assert "recipe step 0 (nickel) was not done" in text
    assert len(rec.steps[0].interlocks) == 1


def test_renderings_escape_and_embed_plots(plant: PlantConfig, line: PlatingLine) -> None:
    hist, events = _run(line, excursion=True)
    load = line.tracker.loads["R1"]
    load.customer_order = "<script>alert(1)</script>"
    rec = build_record(load, line.tracker.recipe_of(load), plant, hist, events, now=T0 + 3000)
    d = rec.to_dict(trends=True)
    json.dumps(d)  # serialisable
    assert d["conforming"] is False and d["steps"][0]["trends"]["temperature"]
    assert "trends" not in rec.to_dict()["steps"][0]
    rows = list(csv.DictReader(io.StringIO(rec.to_csv())))
    assert [r["tank"] for r in rows] == ["nickel", "chrome"]
    assert rows[0]["conforming"] == "no" and "above window" in rows[0]["nonconformities"]
    assert math.isclose(float(rows[0]["amp_hours"]), 200 * 700 / 3600, rel_tol=1e-3)
    page = rec.to_html()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 5  # nickel temp/pH/current, chrome temp/current
    assert "NON-CONFORMING" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no external assets
