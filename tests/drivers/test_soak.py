"""Soak: repeated disconnects, stalls and exception responses; memory, sockets and tasks stay flat.

About 30 s by default (``SCADA_SOAK_S`` to change). Marked slow."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import tracemalloc

import pytest

from drivers.modbus import ModbusDriver
from scada.config.devices import ModbusTcpDevice
from scada.config.tags import TagConfig
from scada.tags import QualityReason
from tests.drivers.conftest import Collector, RawModbus, open_fds, other_tasks

pytestmark = pytest.mark.slow
SOAK_S = float(os.environ.get("SCADA_SOAK_S", "30"))


async def test_soak_disconnects_and_exceptions_flat_memory_and_sockets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)  # pytest keeps every captured record: that would be the "leak"
    raw = RawModbus()
    await raw.start()
    raw.holding.update({i: i for i in range(200)})
    port = raw.port
    dev = ModbusTcpDevice.model_validate({"name": "plc1", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": port,
                                          "timeout_s": 0.1, "retries": 0, "poll_period_s": 0.02,
                                          "reconnect_delay_s": 0.02, "reconnect_max_s": 0.1, "max_gap": 0})
    tags = [TagConfig.model_validate({"name": f"s.t{i}", "device": "plc1",
                                      "modbus": {"table": "holding", "address": i * 3}}) for i in range(60)]
    sink = Collector()
    drv = ModbusDriver(dev, tags, sink)
    fds0, tasks0 = open_fds(), other_tasks()
    await drv.start()
    modes = ["normal", "exception:2", "normal", "stall", "normal", "restart", "normal", "close_mid", "normal", "garbage"]
    loop = asyncio.get_running_loop()
    end = loop.time() + SOAK_S
    warm = loop.time() + min(5.0, SOAK_S / 4)
    snap0: int | None = None
    fds_warm = 0
    cycles = 0
    while loop.time() < end:
        mode = modes[cycles % len(modes)]
        cycles += 1
        if mode == "restart":
            await raw.stop()
            await asyncio.sleep(0.3)
            raw.port = port
            await raw.start()
        else:
            raw.mode = mode
        await asyncio.sleep(0.3)
        sink.batches.clear()  # the collector would otherwise be the leak
        if snap0 is None and loop.time() > warm:
            gc.collect()
            tracemalloc.start()
            snap0 = tracemalloc.get_traced_memory()[0]
            first = tracemalloc.take_snapshot()
            fds_warm = open_fds()
    raw.mode = "normal"
    await sink.wait_for(lambda s: all(s[t.name].good for t in tags), within_s=3)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - (snap0 or 0)
    if os.environ.get("SCADA_SOAK_DEBUG"):
        for d in tracemalloc.take_snapshot().compare_to(first, "lineno")[:12]:
            print(d)
    tracemalloc.stop()
    fds_end = open_fds()
    st = drv.status()
    await drv.stop()
    await raw.stop()
    await asyncio.sleep(0.05)
    print(f"soak {SOAK_S:.0f}s cycles={cycles} requests={st.requests} errors={st.errors} timeouts={st.timeouts} "
          f"reconnects={st.reconnects} mem_growth={grown / 1024:.1f}KiB fds warm={fds_warm} end={fds_end}")
    assert st.requests > 500 and st.errors > 10 and st.reconnects >= 2
    assert grown < 128 * 1024, f"memory grew by {grown} bytes"
    assert fds_end <= fds_warm + 1
    assert other_tasks() <= tasks0 and open_fds() <= fds0
    assert QualityReason.COMM_FAILURE in {b.reason for b in sink.latest.values()} or st.state == "ok"
