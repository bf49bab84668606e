"""Plating layer cost per scan, and the SQL store's flush and record build.

Baseline (in-run): ``PlatingLine.scan`` on the example plant with the line empty. Then with a load in
every rectifier tank (amp-hour attribution, dwell timers, dosing) and with 50 queued loads (PLC-edge
candidate search). Then ``build_record`` of a two-step load with 1 s history over a 1-hour dwell, and
``PlatingService.flush`` of 10 loads + counters to SQLite. Prints a table; ``--quick`` for CI.

    .venv/bin/python bench/bench_plating.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from historian import make_engine, upgrade  # noqa: E402
from historian.plating_store import SqlPlatingStore  # noqa: E402
from scada.config import PlantConfig, load_config  # noqa: E402
from scada.plating import LoadRequest, PlatingLine, PlatingService, RecipeBook, build_record  # noqa: E402
from scada.tags import Sample  # noqa: E402

BODY = {"part_number": "B-1", "steps": [
    {"tank": "nickel", "dwell_min_s": 60, "dwell_max_s": 7200, "current_density_a_dm2": 4.0,
     "temperature_c": {"min": 50, "max": 60}, "ph": {"min": 3.8, "max": 4.6}},
    {"tank": "chrome", "dwell_min_s": 60, "dwell_max_s": 7200, "current_density_a_dm2": 31.0,
     "temperature_c": {"min": 52, "max": 60}}]}


def _book(plant: PlantConfig) -> RecipeBook:
    book = RecipeBook()
    res = book.propose("b-1", BODY, plant, user="bench", ts=0.0)
    assert res.recipe is not None
    book.add(res.recipe)
    return book


def _values(ts: float) -> dict[str, Sample]:
    return {"line1.nickel.current.pv": Sample.good_value(200.0, ts), "line1.chrome.current.pv": Sample.good_value(600.0, ts),
            "line1.nickel.load_present": Sample.good_value(True, ts),
            "line1.chrome.load_present": Sample.good_value(True, ts)}


def time_scans(line: PlatingLine, n: int) -> float:
    t = time.perf_counter()
    for k in range(n):
        line.scan(_values(1000.0 + k * 0.25), 1000.0 + k * 0.25)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 2000 if args.quick else 40_000
    plant = load_config(ROOT / "examples" / "plating-line.yaml")
    rows: list[tuple[str, float, str]] = []

    empty = PlatingLine(plant, book=_book(plant))
    for t in ("nickel", "chrome"):
        empty.tracker._present[t] = True  # nothing due: no candidate search noise
    base = time_scans(empty, n)
    rows.append(("scan, line empty (baseline)", base, "us/scan"))

    busy = PlatingLine(plant, book=_book(plant))
    for i, tank in enumerate(("nickel", "chrome")):
        busy.tracker.create_load(LoadRequest("B-1", 1, 20.0, id=f"L{i}"), ts=0.0, user="bench")
        busy.tracker.enter(f"L{i}", tank, ts=0.0)
        busy.tracker._present[tank] = True
    rows.append(("scan, a load in each rectifier tank", time_scans(busy, n), "us/scan"))

    queued = PlatingLine(plant, book=_book(plant))
    for i in range(50):
        queued.tracker.create_load(LoadRequest("B-1", 1, 20.0, id=f"Q{i}"), ts=float(i), user="bench")
    t = time.perf_counter()
    m = 200 if args.quick else 2000
    for k in range(m):  # a rising and a falling edge every scan: worst case candidate search
        ts = 1000.0 + k
        queued.scan({"line1.chrome.load_present": Sample.good_value(k % 2 == 0, ts)}, ts)
        queued.tracker.occupancy.pop("chrome", None)
        for ld in queued.tracker.loads.values():
            ld.visits.clear()
            ld.next_step = 0
            ld.status = ld.status.__class__("queued")
    rows.append(("scan with a PLC edge, 50 queued loads", (time.perf_counter() - t) / m * 1e6, "us/scan"))

    # record build: 1 h dwell with 1 s history of temperature, pH, current
    dwell = 600 if args.quick else 3600
    line = PlatingLine(plant, book=_book(plant))
    line.tracker.create_load(LoadRequest("B-1", 1, 20.0, id="R"), ts=0.0, user="bench")
    line.tracker.enter("R", "nickel", ts=0.0)
    line.tracker.leave("nickel", ts=float(dwell))
    hist = {tag: [Sample.good_value(v, float(s)) for s in range(dwell)] for tag, v in
            (("line1.nickel.temperature.pv", 55.0), ("line1.nickel.ph.pv", 4.2), ("line1.nickel.current.pv", 80.0))}
    load = line.tracker.loads["R"]
    t = time.perf_counter()
    rec = build_record(load, line.tracker.recipe_of(load), plant, hist, [], now=float(dwell))
    rows.append((f"build_record, {dwell} s x 3 series", (time.perf_counter() - t) * 1e3, "ms"))
    t = time.perf_counter()
    page = rec.to_html()
    rows.append((f"to_html ({len(page) // 1024} KiB)", (time.perf_counter() - t) * 1e3, "ms"))

    async def flush() -> float:
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite+aiosqlite:///{d}/b.db"
            await upgrade(url)
            engine = make_engine(url)
            try:
                svc = PlatingService(plant, SqlPlatingStore(engine))
                await svc.open()
                await svc.save_recipe("b-1", BODY, user="bench", ts=0.0)
                for i in range(10):
                    await svc.create_load(LoadRequest("B-1", 1, 20.0, id=f"F{i}"), user="bench", ts=0.0)
                reps = 5 if args.quick else 50
                t0 = time.perf_counter()
                for _ in range(reps):
                    svc.tracker.dirty.update(svc.tracker.loads)
                    await svc.flush(0.0, force=True)
                return (time.perf_counter() - t0) / reps * 1e3
            finally:
                await engine.dispose()

    rows.append(("flush 10 loads + counters (SQLite)", asyncio.run(flush()), "ms"))

    print(f"{'measurement':45} {'value':>10}  unit   x baseline")
    for name, v, unit in rows:
        ratio = f"{v / base:8.1f}" if unit == "us/scan" else ""
        print(f"{name:45} {v:10.1f}  {unit:7}{ratio}")


if __name__ == "__main__":
    main()
