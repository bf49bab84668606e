"""Bad peers: garbage, stalls, half frames, wrong ids and counts, dead slaves behind a gateway, overruns.

Each must give Bad quality with a reason, log once on the transition, raise nothing, and leak no task
or socket (counted before and after)."""

from __future__ import annotations

import asyncio
import logging
import struct
import time

import pytest

from drivers.modbus import ModbusDriver
from scada.config.devices import ModbusTcpDevice
from scada.config.tags import TagConfig
from scada.tags import Quality, QualityReason
from tests.drivers.conftest import Collector, RawModbus, open_fds, other_tasks, wait_status


def device(port: int, **kw: object) -> ModbusTcpDevice:
    base: dict[str, object] = {"name": "plc1", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": port,
                               "timeout_s": 0.2, "retries": 0, "poll_period_s": 0.05, "reconnect_delay_s": 0.05,
                               "reconnect_max_s": 0.3}
    base.update(kw)
    return ModbusTcpDevice.model_validate(base)


def tag(name: str, address: int = 0, dev: str = "plc1", **kw: object) -> TagConfig:
    m = {"table": "holding", "address": address}
    m.update(kw.pop("modbus", {}))  # type: ignore[arg-type]
    return TagConfig.model_validate({"name": name, "device": dev, "modbus": m, **kw})


@pytest.mark.parametrize(
    ("mode", "reason", "detail"),
    [
        ("garbage", QualityReason.COMM_FAILURE, ""),
        ("stall", QualityReason.COMM_FAILURE, "no valid response within 0.2 s"),
        ("close_mid", QualityReason.COMM_FAILURE, ""),
        ("tid_mismatch", QualityReason.COMM_FAILURE, ""),
        ("short_count", QualityReason.COMM_FAILURE, ""),
        ("extra_registers", QualityReason.DEVICE_FAILURE, "wrong byte count: asked for 2 registers, got 3"),
        ("exception:4", QualityReason.DEVICE_FAILURE, "exception code 4: server device failure"),
        ("exception:11", QualityReason.COMM_FAILURE, "exception code 11: gateway target device failed to respond"),
    ],
)
async def test_bad_peer_gives_bad_quality(
    raw: RawModbus, mode: str, reason: QualityReason, detail: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw.holding.update({0: 1, 1: 2})
    fds, tasks = open_fds(), other_tasks()
    sink = Collector()
    drv = ModbusDriver(device(raw.port), [tag("a.x", 0), tag("a.y", 1)], sink)
    s = await drv.poll_once()
    assert s["a.x"].good and s["a.y"].value == 2
    raw.mode = mode
    caplog.set_level(logging.INFO, logger="drivers")
    await drv.start()
    await sink.wait_for(lambda s: s["a.x"].quality is Quality.BAD and s["a.y"].quality is Quality.BAD, within_s=2)
    assert sink.latest["a.x"].reason is reason, sink.latest["a.x"]
    assert detail in sink.latest["a.x"].detail and sink.latest["a.x"].detail
    await asyncio.sleep(0.4)  # several more failing polls...
    warnings = [r for r in caplog.records if r.name == "drivers.modbus" and r.levelno == logging.WARNING]
    assert len(warnings) <= 2, [r.getMessage() for r in warnings]  # ...logged once (unit + connection at most)
    assert warnings
    st = drv.status()
    assert st.state in ("down", "degraded") and st.errors >= 1 and st.last_error
    raw.mode = "normal"
    await sink.wait_for(lambda s: s["a.x"].good and s["a.y"].good, within_s=3)
    await wait_status(drv.status, lambda st: st.state == "ok")
    assert any("recovered" in r.getMessage() for r in caplog.records if r.name == "drivers.modbus")
    await drv.stop()
    await asyncio.sleep(0.05)
    assert other_tasks() <= tasks
    assert open_fds() <= fds


async def test_nan_and_inf_from_device(raw: RawModbus) -> None:
    nan = struct.unpack(">2H", struct.pack(">f", float("nan")))
    inf = struct.unpack(">2H", struct.pack(">f", float("-inf")))
    raw.holding.update({0: nan[0], 1: nan[1], 2: inf[0], 3: inf[1], 4: 0x3F80, 5: 0})
    tags = [tag(f"f.{n}", a, modbus={"type": "float32"}) for n, a in (("nan", 0), ("inf", 2), ("one", 4))]
    drv = ModbusDriver(device(raw.port), tags, Collector())
    s = await drv.poll_once()
    await drv.stop()
    assert s["f.nan"].quality is Quality.BAD and s["f.nan"].reason is QualityReason.DEVICE_FAILURE
    assert s["f.inf"].quality is Quality.BAD and s["f.inf"].reason is QualityReason.OUT_OF_RANGE
    assert s["f.one"].value == 1.0 and s["f.one"].good


async def test_value_outside_scaling_range(raw: RawModbus) -> None:
    raw.holding.update({0: 1200})
    t = tag("s.x", 0, scale={"raw_min": 0, "raw_max": 1000, "eng_min": 0, "eng_max": 100})
    drv = ModbusDriver(device(raw.port), [t], Collector())
    (s,) = (await drv.poll_once()).values()
    await drv.stop()
    assert s.quality is Quality.BAD and s.reason is QualityReason.OUT_OF_RANGE and s.value == 120.0 and s.raw == 1200


async def test_server_accepts_and_never_answers_then_dead_port() -> None:
    """A stalled peer, then nobody listening at all: Bad within one poll, no leaks, stop is prompt."""
    stall = RawModbus(mode="stall")
    await stall.start()
    fds, tasks = open_fds(), other_tasks()
    sink = Collector()
    drv = ModbusDriver(device(stall.port), [tag("z.x")], sink)
    await drv.start()
    await sink.wait_for(lambda s: "z.x" in s and s["z.x"].reason is QualityReason.COMM_FAILURE, within_s=1.5)
    await stall.stop()
    await asyncio.sleep(0.5)
    assert drv.status().state == "down" and drv.status().timeouts >= 1
    t0 = time.monotonic()
    await drv.stop()
    assert time.monotonic() - t0 < 0.5
    await asyncio.sleep(0.05)
    assert other_tasks() <= tasks and open_fds() <= fds


async def test_readback_mismatch_reported(raw: RawModbus) -> None:
    raw.readback_offset = 1  # the device "keeps" a different value than written
    t = tag("v.x", 0, access="read_write", verify_write=True)
    drv = ModbusDriver(device(raw.port), [t], Collector())
    (r,) = await drv.write({"v.x": 10})
    await drv.stop()
    assert not r.ok and r.reason == "read-back mismatch: wrote raw 10, read 11.0"


async def test_write_to_stalled_device_fails_with_reason(raw: RawModbus) -> None:
    drv = ModbusDriver(device(raw.port), [tag("v.x", 0, access="read_write")], Collector())
    await drv.poll_once()
    raw.mode = "stall"
    (r,) = await drv.write({"v.x": 3})
    await drv.stop()
    assert not r.ok and r.reason.startswith("write failed: no valid response")


async def test_dead_slave_behind_gateway_does_not_starve_neighbour(raw: RawModbus) -> None:
    raw.holding[0] = 5
    d1 = device(raw.port, gateway="gw", unit_id=1, framer="socket")
    d2 = device(raw.port, name="plc2", gateway="gw", unit_id=2)
    raw.silent_units = {2}
    sink = Collector()
    drv = ModbusDriver([d1, d2], [tag("u1.x"), tag("u2.x", dev="plc2")], sink)
    await drv.start()
    await asyncio.sleep(1.5)
    await drv.stop()
    u1_good = sink.count("u1.x", lambda s: s.good)
    assert sink.latest["u2.x"].reason is QualityReason.COMM_FAILURE
    # unit 1 keeps its 50 ms rhythm apart from one 200 ms timeout per backoff period (capped 0.3 s)
    assert u1_good >= 12, u1_good
    unit2_requests = sum(1 for u, _ in raw.requests if u == 2)
    assert unit2_requests <= 8, unit2_requests  # backoff, not one request per poll (would be ~20)
    units = drv.status().extra["units"]
    assert units["plc2"]["backoff_s"] > 0 and units["plc1"]["last_error"] == ""  # type: ignore[index]
    # never two requests in flight: the responder saw strictly alternating request/response traffic
    assert drv.status().state == "stopped"


async def test_dead_device_does_not_delay_another(raw: RawModbus) -> None:
    stall = RawModbus(mode="stall")
    await stall.start()
    raw.holding[0] = 9
    good_sink, dead_sink = Collector(), Collector()
    good = ModbusDriver(device(raw.port, name="good"), [tag("g.x", dev="good")], good_sink)
    dead = ModbusDriver(device(stall.port, name="dead", timeout_s=0.6), [tag("d.x", dev="dead")], dead_sink)
    await dead.start()
    await good.start()
    await asyncio.sleep(1.0)
    await good.stop()
    await dead.stop()
    await stall.stop()
    assert good_sink.count("g.x", lambda s: s.good) >= 15  # ~20 polls at 50 ms despite the 0.6 s timeouts next door
    assert dead_sink.latest["d.x"].reason is QualityReason.COMM_FAILURE
    assert dead_sink.batches[0]["d.x"].reason is QualityReason.WAITING_FOR_INITIAL_DATA


async def test_overrun_counted_and_visible(raw: RawModbus) -> None:
    raw.mode = "delay:0.08"
    drv = ModbusDriver(device(raw.port, poll_period_s=0.03, timeout_s=0.5), [tag("o.x")], Collector())
    await drv.start()
    await wait_status(drv.status, lambda st: st.overruns >= 3, within_s=2)
    st = drv.status()
    await drv.stop()
    assert st.extra["last_overrun_s"] > 0.03  # type: ignore[operator]
    assert st.state == "ok"  # slow but fresh data is still data


async def test_sink_that_raises_does_not_kill_the_poller(raw: RawModbus) -> None:
    calls = []

    def bad_sink(samples: object) -> None:
        calls.append(samples)
        raise RuntimeError("consumer bug")

    drv = ModbusDriver(device(raw.port), [tag("k.x")], bad_sink)
    await drv.start()
    await asyncio.sleep(0.3)
    await drv.stop()
    assert len(calls) >= 3
