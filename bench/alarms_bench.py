"""Alarm engine throughput: cost of one ``evaluate`` per scan, quiet and under an alarm storm.

Baseline (in-run): the example plant's alarms (~70) on steady values. Then the same plant scaled to N
tanks, a storm where every value flips between far-low and far-high every 12 s (past every on-delay, so
every alarm transitions; every transition goes to a subscriber),
and the journal conversion cost per event. Prints a table; ``--quick`` runs a few seconds for CI.

    .venv/bin/python bench/alarms_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alarms.engine import AlarmEngine  # noqa: E402
from alarms.journal import to_event  # noqa: E402
from scada.config import PlantConfig, load_config, parse_config  # noqa: E402
from scada.tags import Sample  # noqa: E402


def scaled_plant(base: PlantConfig, copies: int) -> PlantConfig:
    """The example plant with its tanks repeated ``copies`` times (new ids and prefixes)."""
    data = base.model_dump(mode="json", exclude_none=True)
    tanks = data["tanks"]
    out = []
    for i in range(copies):
        for t in tanks:
            t2 = copy.deepcopy(t)
            t2["id"] = f"{t['id']}{i}"
            t2["prefix"] = f"line1.{t['id']}{i}"
            out.append(t2)
    data["tanks"] = out
    data["line"]["tank_order"] = []
    return parse_config(data)


def values_for(engine: AlarmEngine, value: float, ts: float) -> dict[str, Sample]:
    vals: dict[str, Sample] = {}
    for d in engine.definitions:
        if d.tag:
            vals[d.tag] = Sample.good_value(value if d.kind.value != "discrete" else False, ts)
    return vals


def bench_evaluate(plant: PlantConfig, scans: int, storm: bool) -> tuple[int, float, int]:
    t = 1_800_000_000.0
    engine = AlarmEngine(plant, lambda: t)
    sub = engine.subscribe("bench", maxsize=10_000_000)
    quiet = values_for(engine, 55.0, t)
    low = values_for(engine, -100.0, t)
    high = values_for(engine, 1000.0, t)
    engine.evaluate(t, quiet, {})
    events = 0
    t0 = time.perf_counter()
    for i in range(scans):
        t += 0.25
        vals = (high if (i // 48) % 2 else low) if storm else quiet  # flip every 12 s: past every delay
        events += len(engine.evaluate(t, vals, {}))
        if storm and i % 40 == 0:
            sub.drain()
    dt = time.perf_counter() - t0
    return len(engine.definitions), dt / scans * 1e6, events


def bench_journal(n: int) -> float:
    t = 1_800_000_000.0
    plant = load_config(ROOT / "examples" / "plating-line.yaml")
    engine = AlarmEngine(plant, lambda: t)
    engine.evaluate(t, values_for(engine, 1000.0, t), {})
    snap = engine.snapshot_events(t)
    t0 = time.perf_counter()
    for i in range(n):
        to_event(snap[i % len(snap)])
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    args = ap.parse_args()
    scans = 200 if args.quick else 2000
    base = load_config(ROOT / "examples" / "plating-line.yaml")
    rows = []
    n, us, _ = bench_evaluate(base, scans, storm=False)
    baseline = us
    rows.append(("example plant, quiet", n, us, 0))
    n, us, ev = bench_evaluate(base, scans, storm=True)
    rows.append(("example plant, storm", n, us, ev))
    for copies in ((5,) if args.quick else (5, 20)):
        p = scaled_plant(base, copies)
        n, us, _ = bench_evaluate(p, scans // 4, storm=False)
        rows.append((f"{copies}x plant, quiet", n, us, 0))
        n, us, ev = bench_evaluate(p, scans // 4, storm=True)
        rows.append((f"{copies}x plant, storm", n, us, ev))
    print(f"{'case':<24} {'alarms':>7} {'us/scan':>10} {'us/alarm':>9} {'x base':>7} {'events':>8}")
    for name, n, us, ev in rows:
        print(f"{name:<24} {n:>7} {us:>10.1f} {us / n:>9.2f} {us / baseline:>7.1f} {ev:>8}")
    j = bench_journal(2000 if args.quick else 20000)
    print(f"journal to_event: {j:.2f} us/event")
    print("scan budget at period 0.25 s: 250000 us")


if __name__ == "__main__":
    main()
