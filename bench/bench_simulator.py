"""Simulator benchmark: can a 10-tank line run at 100x real time on one core?

Measures
1. the pure physics + PLC scan cost of the example line (10 tanks) without sockets: µs per fixed
   step (all tanks), µs per publish (encoding every probe), and the speed factor one core could
   sustain;
2. the real thing: the Modbus server (and OPC UA unless --no-opcua) serving the line at the target
   speed while a client polls the whole map every 0.25 s and writes the heartbeat, as the SCADA does.
   Reports the achieved speed factor (simulated s / real s), the CPU share of this process and
   the scan duration. The in-run baseline is the same run at 1x: the extra CPU at 100x is the cost
   of acceleration.

    python bench/bench_simulator.py [--quick] [--speed 100] [--seconds 10] [--no-opcua]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from scada.config import load_config  # noqa: E402
from simulator.plant import PlantSimulator  # noqa: E402
from simulator.servers import SimulatorServers  # noqa: E402

CONFIG = ROOT / "examples" / "plating-line.yaml"


def bench_core(seconds: float) -> dict[str, float]:
    plant = load_config(CONFIG)
    sim = PlantSimulator(plant, speed=100, seed=1, watchdog=False)
    for name in ("line1.nickel.heater", "line1.chrome.heater", "line1.nickel.rect.enable"):
        sim.write_tag(name, True)
    sim.write_tag("line1.nickel.rect.setpoint", 300)
    sim.put_load("nickel", 50)
    t0, steps0 = time.perf_counter(), sim.steps
    n_scans = 0
    while time.perf_counter() - t0 < seconds:
        sim.advance(0.05)  # 5 simulated seconds per scan at 100x = 50 steps
        n_scans += 1
    elapsed = time.perf_counter() - t0
    steps = sim.steps - steps0
    t1 = time.perf_counter()
    for _ in range(200):
        sim._publish()
    publish_us = (time.perf_counter() - t1) / 200 * 1e6
    step_us = (elapsed * 1e6 - publish_us * n_scans) / steps
    return {"tanks": len(sim.tanks), "step_us": step_us, "publish_us": publish_us,
            "max_speed": sim.dt_s / (step_us * 1e-6), "sim_s": sim.sim_s, "real_s": elapsed}


async def bench_served(speed: float, seconds: float, opcua: bool) -> dict[str, float]:
    plant = load_config(CONFIG)
    sim = PlantSimulator(plant, speed=speed, seed=1)
    scans: list[float] = []
    async with SimulatorServers(sim, modbus_port=0, opcua_port=0 if opcua else None) as servers:
        c = AsyncModbusTcpClient("127.0.0.1", port=servers.modbus_port or 0, timeout=2, retries=0)
        await c.connect()
        hb = 0
        cpu0, t0, sim0 = time.process_time(), time.perf_counter(), sim.sim_s
        polls = 0
        while time.perf_counter() - t0 < seconds:
            hb = (hb + 1) % 65536
            await c.write_register(0, hb)
            await c.write_coils(30, [True, False, True])
            for start in range(0, 414, 125):
                await c.read_input_registers(start, count=min(125, 414 - start))
            await c.read_discrete_inputs(0, count=48)
            await c.read_coils(0, count=48)
            polls += 1
            scans.append(servers.last_scan_ms)
            await asyncio.sleep(0.25)
        real = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        sim_s = sim.sim_s - sim0
        c.close()
        errors = servers.scan_errors
    return {"speed": speed, "real_s": real, "sim_s": sim_s, "achieved": sim_s / real, "cpu_pct": 100 * cpu / real,
            "scan_p50_ms": statistics.median(scans), "scan_max_ms": max(scans), "polls": polls,
            "errors": errors, "tripped": sim.watchdog_trips}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke pass of a few seconds")
    ap.add_argument("--speed", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-opcua", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    secs = 2.0 if args.quick else args.seconds

    core = bench_core(1.0 if args.quick else 3.0)
    print(f"Core (no sockets), {core['tanks']} tanks, dt 0.1 s")
    print(f"  step (all tanks)  {core['step_us']:8.1f} us")
    print(f"  publish (encode)  {core['publish_us']:8.1f} us")
    print(f"  sustainable speed {core['max_speed']:8.0f} x real time on one core (physics only)")
    print()
    rows = [asyncio.run(bench_served(1.0, secs, not args.no_opcua)),
            asyncio.run(bench_served(args.speed, secs, not args.no_opcua))]
    hdr = f"{'target':>7} {'real s':>7} {'sim s':>8} {'achieved':>9} {'CPU %':>6} {'scan p50':>9} {'scan max':>9} " \
          f"{'polls':>6} {'errors':>6} {'wd trips':>8}"
    print(f"Served ({'Modbus + OPC UA' if not args.no_opcua else 'Modbus'}; client polls 414 input regs + "
          "bits every 0.25 s, heartbeat)")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['speed']:>6.0f}x {r['real_s']:7.1f} {r['sim_s']:8.1f} {r['achieved']:8.1f}x {r['cpu_pct']:6.1f} "
              f"{r['scan_p50_ms']:7.2f}ms {r['scan_max_ms']:7.2f}ms {r['polls']:6d} {r['errors']:6d} {r['tripped']:8d}")
    base, fast = rows
    print(f"\nCPU cost of {args.speed:g}x over 1x: {fast['cpu_pct'] - base['cpu_pct']:+.1f} % of one core; "
          f"achieved/target = {fast['achieved'] / args.speed:.3f}")


if __name__ == "__main__":
    main()
