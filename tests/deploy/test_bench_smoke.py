"""CI smoke pass of every benchmark through ``bench/run_all.py --quick``: they run and report, not timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHES = {"modbus", "scan", "alarms", "plating", "historian", "api", "mqtt", "simulator", "memory", "system"}

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1500)
def test_every_bench_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    r = subprocess.run([sys.executable, "bench/run_all.py", "--quick", "--json", str(out), "--logs", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=1400)
    assert out.exists(), r.stdout + r.stderr
    data = json.loads(out.read_text())
    rows = data["rows"]
    by_bench: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_bench.setdefault(row["bench"], []).append(row)
    assert set(by_bench) == BENCHES, f"benches without rows: {BENCHES - set(by_bench)}"
    broken = [row["benchmark"] for row in rows if row["verdict"] == "FAIL" and row["figure"] == "-"]
    assert not broken, f"benches that failed to run or report: {broken}\n{r.stdout}"
    for name, got in by_bench.items():
        if all(row["verdict"] == "skipped" for row in got):
            continue
        assert any(row["figure"] not in ("-", "") for row in got), f"{name}: no figure"
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| benchmark | ours | in-run baseline | ratio | target | verdict |" in r.stdout
