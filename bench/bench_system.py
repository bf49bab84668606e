"""Scan lateness of the whole server under load: ~1,000 tags at a 100 ms scan, historian writing, API polled.

The plant is the example line with the Watts-nickel tank cloned until the tag count reaches the target
(each clone: 3 voted temperature probes, 2 pH probes, rectifier, level switches, 6 outputs, 3 loops,
5 interlocks). The simulator runs as a separate process (``scada simulate``), as a real PLC would be
elsewhere. The server is the real composition root (``scada.runtime.Runtime``) on an SQLite file, with the
HMI served by uvicorn in the same process and a client polling ``GET /api/tags`` at a fixed rate.

Baseline in the same run: the lateness of a bare asyncio timer at the same period in the same process,
before the server starts (what the event loop and the machine give for free).

    python bench/bench_system.py [--quick] [--tags 1000] [--seconds 60] [--api-rate 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "examples" / "plating-line.yaml"


def cloned_plant_yaml(target_tags: int) -> tuple[str, int]:
    """The example YAML with the nickel tank and its tags cloned ``n`` times (addresses shifted)."""
    text = EXAMPLE.read_text()
    tag_lines = [ln for ln in text.splitlines() if ln.strip().startswith("- {name: line1.nickel.")]
    tank_block = re.search(r"(  - id: nickel\n.*?)(?=\n  - id: rinse4)", text, re.S)
    assert tank_block and tag_lines
    per_clone = len(tag_lines)
    base_tags = sum(1 for ln in text.splitlines() if ln.strip().startswith("- {name: "))
    n = max(0, (target_tags - base_tags + per_clone - 1) // per_clone)
    new_tags, new_tanks = [], []
    for k in range(1, n + 1):
        def shift(m: re.Match[str], k: int = k) -> str:
            table, addr = m.group(1), int(m.group(2))
            off = 1000 * k if table in ("input", "holding") else 100 * k
            return f"table: {table}, address: {addr + off}"

        for ln in tag_lines:
            ln = ln.replace("line1.nickel.", f"line1.nickel{k}.")
            new_tags.append(re.sub(r"table: (\w+), address: (\d+)", shift, ln))
        block = tank_block.group(1).replace("line1.nickel.", f"line1.nickel{k}.")
        block = block.replace("  - id: nickel\n", f"  - id: nickel{k}\n", 1)
        block = block.replace("name: Watts bright nickel", f"name: Watts nickel {k}", 1)
        new_tanks.append(block)
    last_tag = tag_lines[-1]
    text = text.replace(last_tag, "\n".join([last_tag, *new_tags]), 1)
    text = text.replace(tank_block.group(1), "\n".join([tank_block.group(1), *new_tanks]), 1)
    return text, base_tags + n * per_clone


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else float("nan")


async def timer_baseline(period: float, seconds: float) -> list[float]:
    late: list[float] = []
    deadline = time.monotonic()
    end = deadline + seconds
    while deadline < end:
        deadline += period
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        late.append(max(0.0, time.monotonic() - deadline))
    return late


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen[str], Path, int, dict[str, object]]:
    """The plant YAML in a temp dir and ``scada simulate`` serving it (a separate process, like a PLC)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-system-"))
    text, n_tags = cloned_plant_yaml(args.tags)
    cfg = tmp / "plant.yaml"
    cfg.write_text(text)
    sim = subprocess.Popen([sys.executable, "-m", "scada", "simulate", "--config", str(cfg), "--modbus-port", "0",
                            "--opcua-port", "0", "--speed", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, cwd=ROOT)
    assert sim.stdout is not None
    ready = json.loads(sim.stdout.readline())
    return sim, cfg, n_tags, ready


async def run(args: argparse.Namespace, cfg: Path, n_tags: int, ready: dict[str, object]) -> list[dict[str, object]]:
    import httpx
    import uvicorn

    from hmi import HmiSettings, create_app
    from hmi.ports import Role
    from hmi.security import hash_password
    from scada.config import load_config
    from scada.runtime import Runtime
    from scada.runtime_cli import with_device_ports

    tmp = cfg.parent
    plant = load_config(cfg)
    plant = plant.model_copy(update={"scan": plant.scan.model_copy(update={"period_s": args.period})})
    plant = with_device_ports(plant, ready["modbus"], ready["opcua"])  # type: ignore[assignment,arg-type]
    base = await timer_baseline(args.period, min(10.0, args.seconds))
    rt = Runtime(plant, db_url=f"sqlite+aiosqlite:///{tmp / 'scada.db'}", buffer_path=tmp / "buf.sqlite",
                 migrate=True)
    await rt.start()
    await rt.create_user("bench", hash_password("bench-password-123"), Role.VIEWER)
    app = create_app(rt, HmiSettings(secret_key="b" * 48))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    srv_task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    api_lat: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        tok = (await client.post("/api/auth/token", data={"username": "bench", "password": "bench-password-123"})).json()
        headers = {"Authorization": f"Bearer {tok['access_token']}"}
        await asyncio.sleep(3.0)  # settle: first polls, startup inhibit
        rt.engine.stats.lateness.clear()
        rt.engine.stats.lateness_max_s = 0.0
        scans0 = rt.engine.stats.scans
        written0 = rt.historian.status()["counters"].get("written", 0)
        end = time.monotonic() + args.seconds
        nxt = time.monotonic()
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = await client.get("/api/tags", headers=headers)
            api_lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
            nxt += 1.0 / args.api_rate
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    late = list(rt.engine.stats.lateness)
    scans = rt.engine.stats.scans - scans0
    written = rt.historian.status()["counters"].get("written", 0) - written0
    overruns = rt.engine.stats.overruns
    server.should_exit = True
    await srv_task
    await rt.stop()
    ms = 1000.0
    rows: list[dict[str, object]] = [
        {"bench": "system", "metric": f"scan lateness p50 ({n_tags} tags, {args.period * 1000:.0f} ms)",
         "ours": round(pct(late, 0.5) * ms, 3), "baseline": round(pct(base, 0.5) * ms, 3), "unit": "ms", "target": ""},
        {"bench": "system", "metric": f"scan lateness p99 ({n_tags} tags, {args.period * 1000:.0f} ms)",
         "ours": round(pct(late, 0.99) * ms, 3), "baseline": round(pct(base, 0.99) * ms, 3), "unit": "ms",
         "target": "<= 5"},
        {"bench": "system", "metric": "scan lateness max", "ours": round(max(late) * ms, 3) if late else None,
         "baseline": round(max(base) * ms, 3), "unit": "ms", "target": ""},
        {"bench": "system", "metric": "scans / overruns", "ours": f"{scans} / {overruns}", "baseline": "",
         "unit": "", "target": ""},
        {"bench": "system", "metric": f"historian rows written ({args.seconds:g} s)", "ours": written, "baseline": "",
         "unit": "rows", "target": ""},
        {"bench": "system", "metric": f"GET /api/tags p50 / p99 at {args.api_rate:g} req/s",
         "ours": f"{pct(api_lat, 0.5) * ms:.1f} / {pct(api_lat, 0.99) * ms:.1f}", "baseline": "", "unit": "ms",
         "target": ""},
    ]
    p99, p99_base = pct(late, 0.99) * ms, pct(base, 0.99) * ms
    rows[1]["pass"] = p99 <= 5.0
    rows[1]["ratio"] = round(p99 / p99_base, 2) if p99_base else None
    return rows


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke pass: fewer tags, a few seconds")
    ap.add_argument("--tags", type=int, default=1000)
    ap.add_argument("--period", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--api-rate", type=float, default=20.0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.tags, args.seconds = min(args.tags, 200), min(args.seconds, 5.0)
    os.environ.setdefault("SCADA_COOKIE_SECURE", "false")
    import logging

    logging.basicConfig(level=logging.ERROR)
    for noisy in ("pymodbus", "asyncua"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    sim, cfg, n_tags, ready = start_simulator(args)
    try:
        rows = asyncio.run(run(args, cfg, n_tags, ready))
    finally:
        sim.terminate()
        sim.wait(10)
    print(f"{'metric':58} {'ours':>16} {'baseline':>10} {'unit':>5} {'target':>7}")
    for r in rows:
        print(f"{r['metric']!s:58} {r['ours']!s:>16} {r['baseline']!s:>10} {r['unit']!s:>5} {r['target']!s:>7}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
