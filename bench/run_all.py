"""Run every benchmark and print ONE table: benchmark, our figure, the in-run baseline, ratio, target, verdict.

    .venv/bin/python bench/run_all.py            # full runs (several minutes on 2 cores)
    .venv/bin/python bench/run_all.py --quick    # every bench's smoke pass (CI: checks they run and report)
    .venv/bin/python bench/run_all.py --only scan,modbus --json rows.json --markdown

Each bench script keeps its own detailed table (printed with ``--verbose``, and kept in the log
directory); this script runs them one after another in child processes (never two at once: they
time things) and extracts the headline rows from their output. A bench that fails, times out or
whose output no longer parses gives a FAIL row naming what went wrong, so a broken bench is seen.
Benches that need a service (PostgreSQL for the historian's second backend, Mosquitto for MQTT)
report that part as skipped when it is absent.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NUM = r"([-+]?[\d,]*\.?\d+)"


@dataclass
class Row:
    bench: str
    benchmark: str
    figure: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    verdict: str = "-"  # pass / FAIL / info / skipped

    @staticmethod
    def fail(bench: str, why: str) -> Row:
        return Row(bench, f"{bench}: {why}", "-", verdict="FAIL")


def num(s: str) -> float:
    return float(s.replace(",", "").replace("%", "").rstrip("x"))


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "FAIL")


def md_rows(out: str) -> list[list[str]]:
    """Cells of every markdown table row (``| a | b |``), header and separator rows included."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.splitlines()
            if line.strip().startswith("|") and line.strip().endswith("|")]


def md_find(out: str, first_cell: str) -> list[str]:
    for cells in md_rows(out):
        if cells and cells[0].startswith(first_cell):
            return cells
    raise ValueError(f"no table row starting with {first_cell!r}")


def line_find(out: str, pattern: str) -> re.Match[str]:
    m = re.search(pattern, out, re.MULTILINE)
    if m is None:
        raise ValueError(f"no line matching {pattern!r}")
    return m


# --------------------------------------------------------------------------------------------- parsers


def p_modbus(out: str) -> list[Row]:
    def rate(name: str) -> float:
        return num(md_find(out, name)[1])

    minimal, planner = rate("minimal block read"), rate("planner's requests")
    driver, naive = rate("driver poll_once"), rate("naive one request")
    b = "modbus"
    return [
        Row(b, "Modbus read, planner's requests (registers/s, 1,000 tags)", f"{planner:,.0f}",
            f"{minimal:,.0f} minimal block read", f"{planner / minimal:.0%}", ">= 80 % of minimal",
            verdict(planner >= 0.8 * minimal)),
        Row(b, "Modbus poll, full driver path (decode, scale, NE 43)", f"{driver:,.0f}",
            f"{minimal:,.0f} minimal block read", f"{driver / minimal:.0%}", ">= 80 % of minimal",
            verdict(driver >= 0.8 * minimal)),
        Row(b, "Modbus poll, driver vs naive one-request-per-tag", f"{driver:,.0f}", f"{naive:,.0f} naive",
            f"{driver / naive:.1f}x", ">= 20x naive", verdict(driver >= 20 * naive)),
    ]


def p_scan(out: str) -> list[Row]:
    base, eng = md_find(out, "baseline: empty loop"), md_find(out, "engine")
    tags = line_find(out, r"(\d[\d,]*) device tags").group(1)
    rows = [Row("scan", f"scan lateness p99 ms ({tags} tags, engine + subscribers)", eng[3], f"{base[3]} empty loop",
                f"{num(eng[3]) / max(num(base[3]), 1e-3):.1f}x", "<= 5 ms", verdict(num(eng[3]) <= 5.0)),
            Row("scan", f"scan duration p50 ms ({tags} tags)", eng[5], "-", "-", "-", "info")]
    for cells in md_rows(out):
        if len(cells) == 5 and cells[0] in ("250", "100"):
            rows.append(Row("scan", f"interlock reaction over Modbus, {cells[0]} ms scan (p50 / max ms)",
                            f"{cells[2]} / {cells[3]}", "-", "-", f"<= {cells[4]} ms", verdict(num(cells[3]) <= num(cells[4]))))
    if len(rows) < 3:
        raise ValueError("no interlock reaction rows")
    return rows


def p_alarms(out: str) -> list[Row]:
    rows = {m.group(1).strip(): (int(m.group(2)), num(m.group(3)))
            for m in re.finditer(r"^(\S.*?)\s+(\d+)\s+" + NUM + r"\s+" + NUM + r"\s+" + NUM + r"\s+(\d+)$", out, re.M)}
    base = rows["example plant, quiet"][1]
    storm_name = max((k for k in rows if k.endswith("storm")), key=lambda k: rows[k][0])
    n, us = rows[storm_name]
    budget = 0.1 * 250_000
    return [Row("alarms", f"alarm evaluate per scan, {storm_name} ({n} alarms), us", f"{us:,.0f}",
                f"{base:,.0f} example quiet", f"{us / base:.1f}x", "<= 10 % of a 0.25 s scan", verdict(us <= budget))]


def p_plating(out: str) -> list[Row]:
    vals = {m.group(1).strip(): num(m.group(2)) for m in re.finditer(r"^(\S.*?)\s{2,}" + NUM + r"\s+(us/scan|ms)", out, re.M)}
    base = vals["scan, line empty (baseline)"]
    busy = vals["scan, a load in each rectifier tank"]
    rows = [Row("plating", "plating scan, a load in each rectifier tank (us)", f"{busy:.1f}", f"{base:.1f} line empty",
                f"{busy / base:.1f}x", "<= 1 % of a 0.25 s scan", verdict(busy <= 2500))]
    flush = next((v for k, v in vals.items() if k.startswith("flush")), None)
    if flush is not None:
        rows.append(Row("plating", "plating flush, 10 loads + counters to SQLite (ms)", f"{flush:.1f}", "-", "-",
                        "<= 1 s (supervisor tick)", verdict(flush <= 1000)))
    return rows


def p_simulator(out: str) -> list[Row]:
    runs = [m.groups() for m in re.finditer(r"^\s*" + NUM + r"x\s+" + NUM + r"\s+" + NUM + r"\s+" + NUM + r"x\s+" + NUM,
                                              out, re.M)]
    if len(runs) < 2:
        raise ValueError("no served runs")
    slow, fast = runs[0], runs[-1]
    target, achieved, cpu, cpu1 = num(fast[0]), num(fast[3]), num(fast[4]), num(slow[4])
    return [Row("simulator", f"simulator speed, 10 tanks served at {target:g}x (achieved)", f"{achieved:.1f}x",
                f"{cpu1:.1f} % CPU at 1x", f"{achieved / target:.3f} of target; {cpu:.1f} % CPU",
                f">= 0.95 x {target:g}", verdict(achieved >= 0.95 * target))]


def p_api(out: str) -> list[Row]:
    health, tags = md_find(out, "GET /healthz"), md_find(out, "GET /api/tags")
    zero, fifty = md_find(out, "0 clients"), md_find(out, "50 clients")
    return [
        Row("api", "GET /api/tags p99 ms at 200 req/s", tags[4], f"{health[4]} GET /healthz",
            f"{num(tags[4]) / max(num(health[4]), 1e-3):.1f}x", "<= 50 ms", verdict(num(tags[4]) <= 50)),
        Row("api", "WebSocket fan-out, 50 clients x 200 tags: delay p99 ms", fifty[3], "-", "-", "<= 250 ms",
            verdict(num(fifty[3]) <= 250)),
        Row("api", "scan lateness p99 ms with 50 WebSocket clients", fifty[5], f"{zero[5]} no clients",
            f"{num(fifty[5]) / max(num(zero[5]), 1e-3):.1f}x", "<= 25 ms (10 % of the scan)",
            verdict(num(fifty[5]) <= 25)),
    ]


def p_historian(out: str) -> list[Row]:
    rows: list[Row] = []
    for backend in ("sqlite", "postgresql"):
        if re.search(rf"^{backend}\s", out, re.M) is None:
            rows.append(Row("historian", f"historian on {backend}", "-", verdict="skipped"))
            continue
        ours = line_find(out, rf"^{backend}\s+ingest via Historian\.submit.*?\s{{2,}}{NUM} rows/s").group(1)
        if backend == "sqlite":
            raw = line_find(out, rf"^{backend}\s+ingest raw sqlite3 executemany.*?\s{{2,}}{NUM} rows/s").group(1)
            raw_name = "sqlite3 executemany"
        else:
            raw = line_find(out, rf"^{backend}\s+ingest raw psycopg COPY.*?\s{{2,}}{NUM} rows/s").group(1)
            raw_name = "psycopg COPY"
        r = num(ours) / num(raw)
        rows.append(Row("historian", f"historian ingest, {backend} (rows/s)", ours, f"{raw} raw {raw_name}",
                        f"{r:.0%}", ">= 50 % of raw", verdict(r >= 0.5)))
        m = line_find(out, rf"^{backend}\s+[\d,]+ rows -> [\d,]+ buckets, count/avg/min/max/first/last \(median/best\)"
                           rf"\s+{NUM} / {NUM} ms")
        rows.append(Row("historian", f"trend query 1 day @ 1 s -> 1,000 buckets, {backend} (median ms)", m.group(1),
                        "-", "-", "< 50 ms", verdict(num(m.group(1)) < 50)))
    return rows


def p_mqtt(out: str) -> list[Row]:
    base, conn = md_find(out, "no subscriber"), md_find(out, "publisher connected")
    q0 = md_find(out, "0")
    return [
        Row("mqtt", "MQTT publisher: TagStore.publish cost (us)", conn[1], f"{base[1]} no subscriber", conn[2] + "x",
            "-", "info"),
        Row("mqtt", "MQTT delivered, QoS 0 (msg/s)", q0[2], f"{q0[1]} published", f"{q0[3]} % of ceiling", "-",
            "info"),
    ]


def p_memory(out: str, rows_json: list[dict[str, object]]) -> list[Row]:
    if not rows_json:
        raise ValueError("bench_memory wrote no rows")
    return [Row("memory", str(r["benchmark"]), f"{r['figure']} {r['unit']}", f"{r['baseline']} MB {r['baseline_label']}",
                f"{r['ratio']}x RSS", str(r["target"]), verdict(bool(r["pass"]))) for r in rows_json]


def p_system(out: str, rows_json: list[dict[str, object]]) -> list[Row]:
    if not rows_json:
        raise ValueError("bench_system wrote no rows")
    rows = []
    for r in rows_json:
        target = str(r.get("target") or "-")
        v = "info" if "pass" not in r else verdict(bool(r["pass"]))
        base = str(r.get("baseline") or "-")
        if base != "-" and r.get("unit") == "ms":
            base += " bare asyncio timer"
        rows.append(Row("system", f"server: {r['metric']}", f"{r['ours']} {r.get('unit', '')}".strip(), base,
                        f"{r['ratio']}x" if r.get("ratio") else "-", target, v))
    return rows


@dataclass
class Bench:
    name: str
    script: str
    parse: Callable[..., list[Row]]
    timeout_s: float
    json_out: bool = False
    needs: Callable[[], str] | None = None  # returns why the bench cannot run here ("" = it can)


def mqtt_broker() -> str:
    import os
    import socket

    host, _, port = os.environ.get("SCADA_TEST_MQTT", "127.0.0.1:1883").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
        return ""
    except OSError as e:
        return f"no MQTT broker at {host}:{port} ({e.strerror or e})"


BENCHES = [
    Bench("modbus", "bench_modbus.py", p_modbus, 300),
    Bench("scan", "bench_scan.py", p_scan, 300),
    Bench("alarms", "alarms_bench.py", p_alarms, 300),
    Bench("plating", "bench_plating.py", p_plating, 300),
    Bench("historian", "bench_historian.py", p_historian, 1200),
    Bench("api", "bench_api.py", p_api, 600),
    Bench("mqtt", "bench_mqtt.py", p_mqtt, 600, needs=mqtt_broker),
    Bench("simulator", "bench_simulator.py", p_simulator, 300),
    Bench("memory", "bench_memory.py", p_memory, 600, json_out=True),
    Bench("system", "bench_system.py", p_system, 600, json_out=True),
]


def run_one(b: Bench, quick: bool, logs: Path, verbose: bool) -> tuple[list[Row], float]:
    args = [sys.executable, str(BENCH / b.script)] + (["--quick"] if quick else [])
    json_path = logs / f"{b.name}.json"
    if b.json_out:
        args += ["--json", str(json_path)]
    missing = b.needs() if b.needs else ""
    if missing:
        return [Row(b.name, f"{b.name}: skipped, {missing}", "-", verdict="skipped")], 0.0
    t0 = time.monotonic()
    try:
        r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=b.timeout_s)
    except subprocess.TimeoutExpired:
        return [Row.fail(b.name, f"timed out after {b.timeout_s:g} s")], time.monotonic() - t0
    elapsed = time.monotonic() - t0
    (logs / f"{b.name}.log").write_text(r.stdout + "\n--- stderr ---\n" + r.stderr)
    if verbose:
        print(f"\n===== {b.script} ({elapsed:.0f} s)\n{r.stdout}", flush=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["?"])[-1][:120]
        return [Row.fail(b.name, f"exit {r.returncode}: {tail}")], elapsed
    try:
        if b.json_out:
            rows = b.parse(r.stdout, json.loads(json_path.read_text()) if json_path.exists() else [])
        else:
            rows = b.parse(r.stdout)
    except (ValueError, KeyError, IndexError, StopIteration) as e:
        return [Row.fail(b.name, f"output not understood ({e}); see {logs / (b.name + '.log')}")], elapsed
    return rows, elapsed


def table(rows: list[Row]) -> str:
    head = ("benchmark", "ours", "in-run baseline", "ratio", "target", "verdict")
    cells = [head] + [(r.benchmark, r.figure, r.baseline, r.ratio, r.target, r.verdict) for r in rows]
    lines = ["| " + " | ".join(c) + " |" for c in cells]
    lines.insert(1, "|" + "|".join("---" for _ in head) + "|")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="each bench's smoke pass (CI)")
    ap.add_argument("--only", default="", help="comma-separated bench names: " + ",".join(b.name for b in BENCHES))
    ap.add_argument("--json", type=Path, default=None, help="write the rows (and run times) as JSON")
    ap.add_argument("--logs", type=Path, default=None, help="directory for each bench's full output")
    ap.add_argument("--verbose", action="store_true", help="also print each bench's own output")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {b.name for b in BENCHES}
    if unknown:
        ap.error(f"unknown bench {sorted(unknown)}")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="scada-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    times: dict[str, float] = {}
    for b in BENCHES:
        if only and b.name not in only:
            continue
        print(f"running {b.script}{' --quick' if args.quick else ''} ...", file=sys.stderr, flush=True)
        got, elapsed = run_one(b, args.quick, logs, args.verbose)
        rows += got
        times[b.name] = round(elapsed, 1)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nBenchmarks ({'quick smoke pass' if args.quick else 'full'}), {stamp}, logs in {logs}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "date": stamp, "seconds": times,
                                         "rows": [asdict(r) for r in rows]}, indent=1))
    broken = [r for r in rows if r.verdict == "FAIL" and r.figure == "-"]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
