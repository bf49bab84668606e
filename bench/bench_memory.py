"""Memory for 1,000 and 10,000 tags: resident set size of the scan world in a fresh process.

World (as in bench_scan.py): the example plant copied until it has N device tags, a TagStore where
every device tag is published before each scan, the ScanEngine (validation, voting, interlocks,
loops, derived tags; ``scan_once`` called directly, writes acknowledged) and two store subscribers
(an HMI-like coalescing one and a historian-like queue holding one scan of changes). Each size runs in its own child process; RSS from /proc/self/status (VmRSS, VmHWM).

Baseline (in-run): the same child after the imports and loading the example plant, before building the
world: what the interpreter and our libraries cost without tags.

    .venv/bin/python bench/bench_memory.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SIZES = (1_000, 10_000)
TARGET_MB_PER_1000 = 50.0  # issue 10: a 10,000-tag plant must fit a small industrial PC (<= 0.5 GB)


def _rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _child(n_tags: int, scans: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import asyncio
    import gc
    import time

    from bench_scan import scaled_plant

    from drivers.base import WriteResult
    from scada.config import load_config
    from scada.engine import ScanEngine
    from scada.tags import Sample, TagStore, Value
    from tests.engine.world import healthy_values

    base = load_config(ROOT / "examples" / "plating-line.yaml")
    healthy = healthy_values(base)
    gc.collect()
    baseline = _rss_kib()
    per_copy = sum(1 for t in base.tags if t.device) - 3
    copies = max(1, -(-n_tags // per_copy))
    plant = scaled_plant(base, copies, 0.25)
    device_tags = [t for t in plant.tags if t.device]
    store = TagStore()
    hmi = store.subscribe("hmi", policy="coalesce", initial=False)
    hist = store.subscribe("historian", policy="queue", maxsize=1_000_000, initial=False)

    def original(name: str) -> str:
        head, _, rest = name.partition(".")
        return head + "." + rest.split("_", 1)[1] if "_" in rest.split(".", 1)[0] else name

    async def writer(values: dict[str, Value]) -> list[WriteResult]:
        return [WriteResult(k, True, v, "") for k, v in values.items()]

    async def run() -> tuple[ScanEngine, list[float]]:
        eng = ScanEngine(plant, store, writer)
        durations = []
        for k in range(scans):
            ts = time.time()
            store.publish({t.name: Sample.good_value(healthy.get(original(t.name), False if t.is_boolean else 50.0), ts)
                           for t in device_tags})
            t0 = time.perf_counter()
            await eng.scan_once()
            durations.append(time.perf_counter() - t0)
            hmi.drain()
            if k < scans - 1:
                hist.drain()  # the last scan's changes stay queued, as between two historian flushes
        return eng, durations

    eng, durations = asyncio.run(run())
    gc.collect()
    out.put({"tags": len(device_tags), "baseline_kib": baseline, "rss_kib": _rss_kib(), "hwm_kib": _rss_kib("VmHWM"),
             "scans": scans, "derived": len(eng.core.derived), "scan_ms": 1000 * sorted(durations)[len(durations) // 2]})


def measure(n_tags: int, scans: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    p = ctx.Process(target=_child, args=(n_tags, scans, q))
    p.start()
    r = q.get(timeout=600)
    p.join(30)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds (CI smoke pass)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON to this file")
    args = ap.parse_args()
    scans = 3 if args.quick else 10
    rows = []
    print("| device tags | derived tags | scans | baseline RSS MB | RSS MB | world MB | bytes/tag | peak MB | scan p50 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        r = measure(size, scans)
        world = (r["rss_kib"] - r["baseline_kib"]) / 1024
        per_tag = (r["rss_kib"] - r["baseline_kib"]) * 1024 / r["tags"]
        print(f"| {r['tags']:,} | {r['derived']:,} | {r['scans']} | {r['baseline_kib'] / 1024:.0f} | "
              f"{r['rss_kib'] / 1024:.0f} | {world:.0f} | {per_tag:,.0f} | {r['hwm_kib'] / 1024:.0f} | {r['scan_ms']:.0f} |")
        target = TARGET_MB_PER_1000 * size / 1000
        rows.append({"benchmark": f"memory, {size:,} tags (scan world RSS above baseline)", "figure": round(world, 1),
                     "unit": "MB", "baseline": round(r["baseline_kib"] / 1024, 1), "baseline_label": "interpreter+imports",
                     "ratio": round(r["rss_kib"] / max(1, r["baseline_kib"]), 2), "target": f"<= {target:.0f} MB",
                     "pass": world <= target})
    print(f"\ntarget: <= {TARGET_MB_PER_1000:.0f} MB per 1,000 tags above the baseline")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
