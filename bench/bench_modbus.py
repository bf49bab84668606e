"""Modbus read throughput: the driver's planned block reads vs naive one-request-per-tag vs a minimal
back-to-back pymodbus block read, same pymodbus server, same run.

    python bench/bench_modbus.py            # 4 s per case
    python bench/bench_modbus.py --quick    # 1 s per case (CI smoke)

Targets (issue 4): planner >= 80 % of the minimal block-read rate and >= 20x the naive rate for
1,000 tags. The server runs in a child process so that client and server do not share one core's
event loop (the machine has 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402
from pymodbus.server import ModbusTcpServer  # noqa: E402
from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: E402

from drivers.modbus import ModbusDriver  # noqa: E402
from scada.config.devices import ModbusTcpDevice  # noqa: E402
from scada.config.tags import TagConfig  # noqa: E402

N_TAGS = 1000
ROUNDS = 5


def _serve(port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    async def main() -> None:
        dev = SimDevice(id=1, simdata=([SimData(0, 16, False, datatype=DataType.BITS)],
                                       [SimData(0, 16, False, datatype=DataType.BITS)],
                                       [SimData(0, 2000, 7, datatype=DataType.REGISTERS)],
                                       [SimData(0, 2000, 7, datatype=DataType.REGISTERS)]))
        server = ModbusTcpServer(dev, address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        ready.set()  # type: ignore[attr-defined]
        await asyncio.Event().wait()

    asyncio.run(main())


async def _rate(fn: object, seconds: float) -> tuple[float, int]:
    """Calls of ``fn`` per second and the number of calls, after one warm-up call."""
    await fn()  # type: ignore[operator]
    n = 0
    seconds = max(seconds, 0.05)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await fn()  # type: ignore[operator]
        n += 1
    return n / (time.perf_counter() - t0), n


async def run(seconds: float, port: int) -> list[tuple[str, float, int, int]]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0, reconnect_delay=0)
    await client.connect()

    async def minimal() -> None:
        for start in range(0, N_TAGS, 125):
            rr = await client.read_holding_registers(start, count=min(125, N_TAGS - start), device_id=1)
            assert not rr.isError()

    async def naive() -> None:
        for a in range(N_TAGS):
            rr = await client.read_holding_registers(a, count=1, device_id=1)
            assert not rr.isError()

    dev = ModbusTcpDevice.model_validate({"name": "plc1", "protocol": "modbus_tcp", "host": "127.0.0.1",
                                          "port": port, "timeout_s": 2.0, "retries": 0})
    tags = [TagConfig.model_validate({"name": f"b.t{i}", "device": "plc1", "modbus": {"table": "holding",
                                      "address": i, "type": "int16"},
                                      "scale": {"raw_min": 0, "raw_max": 1000, "eng_min": 0, "eng_max": 100}})
            for i in range(N_TAGS)]
    received = [0]

    def sink(samples: dict[str, object]) -> None:
        received[0] += len(samples)

    driver = ModbusDriver(dev, tags, sink)

    async def planned() -> None:
        out = await driver.poll_once()
        assert len(out) == N_TAGS

    plan = [(r.start, r.count) for r in driver.plan]

    async def planned_io() -> None:
        for start, count in plan:
            rr = await client.read_holding_registers(start, count=count, device_id=1)
            assert not rr.isError()

    cases = [("minimal block read (pymodbus)", minimal, -(-N_TAGS // 125)),
             ("planner's requests, raw client (no decode)", planned_io, len(plan)),
             ("driver poll_once (plan+decode+scale+Sample)", planned, len(driver.plan)),
             ("naive one request per tag", naive, N_TAGS)]
    # Interleaved rounds, median per case: the shared VM's load drifts, so A-then-B would measure the drift.
    rates: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(ROUNDS):
        for name, fn, _reqs in cases:
            per_s, _n = await _rate(fn, seconds / ROUNDS)
            rates[name].append(per_s * N_TAGS)
    rows = [(name, statistics.median(rates[name]), reqs, ROUNDS) for name, _, reqs in cases]
    client.close()
    await driver.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 s per case (smoke run)")
    args = ap.parse_args()
    seconds = 1.0 if args.quick else 4.0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(20):
            raise SystemExit("server did not start")
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        rows = asyncio.run(run(seconds, port))
    finally:
        proc.terminate()
        proc.join(5)
    base = rows[0][1]
    naive = rows[3][1]
    print(f"Modbus read throughput, {N_TAGS} scaled int16 tags (1 register each), {seconds:g} s per case in {ROUNDS} "
          "interleaved rounds (median), pymodbus server in a child process")
    print(f"| {'case':<42} | {'registers/s':>12} | {'requests/poll':>13} | {'vs minimal':>10} | {'vs naive':>8} |")
    print(f"|{'-' * 44}|{'-' * 14}:|{'-' * 15}:|{'-' * 12}:|{'-' * 10}:|")
    for name, rate, reqs, _n in rows:
        print(f"| {name:<42} | {rate:>12,.0f} | {reqs:>13} | {rate / base:>9.0%} | {rate / naive:>7.1f}x |")
    for name, rate, _reqs, _n in rows[1:3]:
        ok = rate >= 0.8 * base and rate >= 20 * naive
        print(f"targets (>= 80 % of minimal, >= 20x naive) for {name.split(' (')[0]}: {'met' if ok else 'NOT met'}")
    driver_us = (1e6 / rows[2][1] - 1e6 / rows[0][1])
    print(f"driver cost above the wire: {driver_us:.2f} us per tag (decode, scale, NE 43 checks, Sample)")


if __name__ == "__main__":
    main()
