"""Modbus driver over loopback against a real pymodbus server with known values."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest
from pymodbus import FramerType

from drivers import create_driver, create_drivers
from drivers.modbus import ModbusDriver
from scada.config.devices import ModbusRtuDevice, ModbusTcpDevice
from scada.config.tags import TagConfig
from scada.tags import Quality, QualityReason
from tests.drivers.conftest import Collector, ModbusPeer, open_fds, other_tasks, sim_device, wait_status

FMT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}
ORDERS = {"ABCD": ("big", "big"), "CDAB": ("little", "big"), "BADC": ("big", "little"), "DCBA": ("little", "little")}
VALUES = {
    "int16": [-32768, -1, 0, 12345, 32767],
    "uint16": [0, 1, 65535],
    "int32": [-(2**31), -123456, 0, 2**31 - 1],
    "uint32": [0, 0x11223344, 2**32 - 1],
    "float32": [-273.15, 0.0, 3.5, 1e-3, 3.0e38],
    "float64": [-1e300, -0.1, 2.718281828459045],
}


def ref_words(t: str, order: str, value: float) -> list[int]:
    """Independent reference: byte permutation of the big-endian image (not the driver's codec)."""
    b = struct.pack(">" + FMT[t], value)
    if order in ("CDAB", "DCBA"):
        b = b"".join(b[i : i + 2] for i in range(len(b) - 2, -1, -2))
    if order in ("BADC", "DCBA"):
        b = b"".join(b[i : i + 2][::-1] for i in range(0, len(b), 2))
    return [int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b), 2)]


def device(port: int, **kw: object) -> ModbusTcpDevice:
    base: dict[str, object] = {"name": "plc1", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": port,
                               "timeout_s": 0.3, "retries": 0, "poll_period_s": 0.05, "reconnect_delay_s": 0.05,
                               "reconnect_max_s": 0.4}
    base.update(kw)
    return ModbusTcpDevice.model_validate(base)


def tag(name: str, dev: str = "plc1", **kw: object) -> TagConfig:
    return TagConfig.model_validate({"name": name, "device": dev, **kw})


async def test_every_type_and_order_decodes(peer: ModbusPeer) -> None:
    tags: list[TagConfig] = []
    expect: dict[str, float] = {}
    addr = 0
    for t, values in VALUES.items():
        for order, (wo, bo) in ORDERS.items():
            for i, v in enumerate(values):
                name = f"enc.{t}_{order.lower()}_{i}"
                words = ref_words(t, order, v)
                await peer.set(3, addr, words)
                tags.append(tag(name, modbus={"table": "holding", "address": addr, "type": t, "word_order": wo,
                                              "byte_order": bo}))
                expect[name] = struct.unpack(">" + FMT[t], struct.pack(">" + FMT[t], v))[0]
                addr += len(words)
    sink = Collector()
    drv = ModbusDriver(device(peer.port), tags, sink)
    try:
        samples = await drv.poll_once()
    finally:
        await drv.stop()
    assert len(samples) == len(expect)
    for name, v in expect.items():
        assert samples[name].quality is Quality.GOOD, (name, samples[name])
        assert samples[name].value == v, name
    # block reads: 800-odd registers in 7 requests, not one per tag
    assert len(drv.plan) == -(-addr // 125)
    assert drv.status().requests == len(drv.plan)
    assert sink.batches and sink.latest == samples


async def test_device_order_applies_and_tag_overrides(peer: ModbusPeer) -> None:
    await peer.set(4, 0, ref_words("float32", "CDAB", 4.25) + ref_words("float32", "ABCD", 4.25))
    tags = [tag("a.ph", modbus={"table": "input", "address": 0, "type": "float32"}),
            tag("b.ph", modbus={"table": "input", "address": 2, "type": "float32", "word_order": "big"})]
    drv = ModbusDriver(device(peer.port, word_order="little"), tags, Collector())
    s = await drv.poll_once()
    await drv.stop()
    assert s["a.ph"].value == 4.25 and s["b.ph"].value == 4.25


async def test_scaling_bits_coils_discrete(peer: ModbusPeer) -> None:
    await peer.set(4, 10, [ref_words("int16", "ABCD", -250)[0], 4000, 20000, 2000, 0b1010])
    await peer.set(1, 5, [True, False, True])
    await peer.set(2, 7, [False, True])
    tags = [
        tag("t.temp", modbus={"table": "input", "address": 10, "type": "int16"},
            scale={"raw_min": -1000, "raw_max": 1000, "eng_min": -100, "eng_max": 100}),
        tag("t.ma_lo", modbus={"table": "input", "address": 11, "type": "uint16"}, signal="ma_4_20",
            scale={"raw_min": 4000, "raw_max": 20000, "eng_min": 0, "eng_max": 100}),
        tag("t.ma_hi", modbus={"table": "input", "address": 12, "type": "uint16"}, signal="ma_4_20",
            scale={"raw_min": 4000, "raw_max": 20000, "eng_min": 0, "eng_max": 100}),
        tag("t.ma_broken", modbus={"table": "input", "address": 13, "type": "uint16"}, signal="ma_4_20",
            scale={"raw_min": 4000, "raw_max": 20000, "eng_min": 0, "eng_max": 100}),
        tag("t.bit1", modbus={"table": "input", "address": 14, "type": "bit", "bit": 1}),
        tag("t.bit2", modbus={"table": "input", "address": 14, "type": "bit", "bit": 2}),
        tag("t.c5", modbus={"table": "coil", "address": 5, "type": "bool"}),
        tag("t.c6", modbus={"table": "coil", "address": 6, "type": "bool"}),
        tag("t.c7", modbus={"table": "coil", "address": 7, "type": "bool"}),
        tag("t.d8", modbus={"table": "discrete", "address": 8, "type": "bool"}),
    ]
    drv = ModbusDriver(device(peer.port), tags, Collector())
    s = await drv.poll_once()
    await drv.stop()
    assert s["t.temp"].value == pytest.approx(-25.0) and s["t.temp"].raw == -250
    assert s["t.ma_lo"].value == 0.0 and s["t.ma_lo"].good
    assert s["t.ma_hi"].value == 100.0 and s["t.ma_hi"].good
    assert s["t.ma_broken"].quality is Quality.BAD and s["t.ma_broken"].reason is QualityReason.SENSOR_FAILURE
    assert s["t.ma_broken"].raw == 2000
    assert (s["t.bit1"].value, s["t.bit2"].value) == (True, False)
    assert (s["t.c5"].value, s["t.c6"].value, s["t.c7"].value, s["t.d8"].value) == (True, False, True, True)
    assert len(drv.plan) == 3  # input block, coil block, discrete block


async def test_exception_response_marks_only_affected_tags(peer: ModbusPeer) -> None:
    # sim_device has 1000 registers: address 5000 is illegal -> exception code 2 for that block only
    await peer.set(3, 0, [42])
    tags = [tag("ok.a", modbus={"table": "holding", "address": 0}),
            tag("bad.b", modbus={"table": "holding", "address": 5000}),
            tag("bad.c", modbus={"table": "holding", "address": 5001})]
    drv = ModbusDriver(device(peer.port), tags, Collector())
    s = await drv.poll_once()
    assert s["ok.a"].value == 42 and s["ok.a"].good
    for name in ("bad.b", "bad.c"):
        assert s[name].quality is Quality.BAD and s[name].reason is QualityReason.DEVICE_FAILURE
        assert s[name].detail == "exception code 2: illegal data address"
    st = drv.status()
    assert "exception code 2" in st.last_error and st.errors == 1 and st.timeouts == 0
    await drv.start()
    await wait_status(drv.status, lambda st: st.state == "degraded")
    await drv.stop()


async def test_writes_registers_coils_bits_with_verify(peer: ModbusPeer) -> None:
    tags = [
        tag("w.sp", modbus={"table": "holding", "address": 20, "type": "int16"}, access="read_write",
            scale={"raw_min": 0, "raw_max": 1000, "eng_min": 0, "eng_max": 100}, limits={"min": 0, "max": 90},
            verify_write=True),
        tag("w.f", modbus={"table": "holding", "address": 22, "type": "float32", "word_order": "little"},
            access="read_write", verify_write=True),
        tag("w.u32", modbus={"table": "holding", "address": 24, "type": "uint32"}, access="read_write"),
        tag("w.bit", modbus={"table": "holding", "address": 26, "type": "bit", "bit": 3}, access="read_write",
            verify_write=True),
        tag("w.coil", modbus={"table": "coil", "address": 3, "type": "bool"}, access="read_write", verify_write=True),
        tag("w.ro", modbus={"table": "input", "address": 0}),
    ]
    await peer.set(3, 26, [0b1])
    drv = ModbusDriver(device(peer.port), tags, Collector())
    res = await drv.write({"w.sp": 55.5, "w.f": -1.25, "w.u32": 70000, "w.bit": True, "w.coil": True,
                           "w.ro": 1, "w.nope": 1})
    by = {r.tag: r for r in res}
    assert [r.tag for r in res] == ["w.sp", "w.f", "w.u32", "w.bit", "w.coil", "w.ro", "w.nope"]
    assert all(by[t].ok for t in ("w.sp", "w.f", "w.u32", "w.bit", "w.coil")), res
    assert await peer.get(3, 20) == [555]
    assert await peer.get(3, 22, 2) == ref_words("float32", "CDAB", -1.25)
    assert await peer.get(3, 24, 2) == [1, 4464]
    assert await peer.get(3, 26) == [0b1001]  # read-modify-write kept bit 0
    assert await peer.get(1, 3) == [True]
    assert not by["w.ro"].ok and "not writable" in by["w.ro"].reason
    assert not by["w.nope"].ok and "not on device" in by["w.nope"].reason
    refused = await drv.write({"w.sp": 95.0, "w.f": float("nan")})
    assert [r.ok for r in refused] == [False, False]
    assert "outside limits 0..90" in refused[0].reason and "finite" in refused[1].reason
    assert await peer.get(3, 20) == [555]  # nothing written
    s = await drv.poll_once()
    assert s["w.sp"].value == pytest.approx(55.5) and s["w.f"].value == -1.25 and s["w.bit"].value is True
    await drv.stop()


async def test_write_exception_and_not_connected(peer: ModbusPeer) -> None:
    tags = [tag("w.far", modbus={"table": "holding", "address": 6000}, access="read_write")]
    drv = ModbusDriver(device(peer.port), tags, Collector())
    (r,) = await drv.write({"w.far": 1})
    assert not r.ok and r.reason == "exception code 2: illegal data address"
    await peer.stop()
    await drv.stop()
    (r,) = await drv.write({"w.far": 1})
    assert not r.ok and r.reason.startswith("not connected")


async def test_reconnect_after_server_restart(peer: ModbusPeer) -> None:
    await peer.set(3, 0, [7])
    sink = Collector()
    drv = ModbusDriver(device(peer.port), [tag("r.x", modbus={"table": "holding", "address": 0})], sink)
    fds, tasks = open_fds(), other_tasks()
    await drv.start()
    await sink.wait_for(lambda s: "r.x" in s and s["r.x"].good)
    await wait_status(drv.status, lambda st: st.state == "ok" and st.connected)
    await peer.stop()
    t0 = time.monotonic()
    await sink.wait_for(lambda s: s["r.x"].reason is QualityReason.COMM_FAILURE, within_s=2)
    assert time.monotonic() - t0 < 1.0  # within a poll or two, not after a long timeout
    await wait_status(drv.status, lambda st: st.state == "down" and not st.connected)
    await peer.start()
    await sink.wait_for(lambda s: s["r.x"].good and s["r.x"].value == 7, within_s=3)
    await wait_status(drv.status, lambda st: st.state == "ok")
    st = drv.status()
    assert st.reconnects >= 1 and st.errors >= 1 and st.latency_p50_ms is not None
    await drv.stop()
    await asyncio.sleep(0.05)
    assert other_tasks() <= tasks and open_fds() <= fds
    assert drv.status().state == "stopped"


async def test_rtu_over_tcp_gateway_two_units_in_turn() -> None:
    peer = ModbusPeer([sim_device(1), sim_device(2)], framer=FramerType.RTU)
    await peer.start()
    await peer.set(3, 0, [11], unit=1)
    await peer.set(3, 0, [22], unit=2)
    d1 = device(peer.port, framer="rtu", gateway="gw1", unit_id=1)
    d2 = device(peer.port, name="plc2", framer="rtu", gateway="gw1", unit_id=2)
    tags = [tag("u1.x", modbus={"table": "holding", "address": 0}),
            tag("u2.x", dev="plc2", modbus={"table": "holding", "address": 0})]
    sink = Collector()
    (drv,) = create_drivers([d1, d2], tags, sink)
    try:
        assert drv.name == "gw1"
        s = await drv.poll_once()
        assert s["u1.x"].value == 11 and s["u2.x"].value == 22
        assert set(drv.status().extra["units"]) == {"plc1", "plc2"}  # type: ignore[arg-type]
    finally:
        await drv.stop()
        await peer.stop()


async def test_rtu_serial_client_via_socket_url() -> None:
    """The serial client path (pyserial) against an RTU-framed server through pyserial's socket:// URL."""
    peer = ModbusPeer([sim_device(3)], framer=FramerType.RTU)
    await peer.start()
    await peer.set(3, 1, [ref_words("int16", "ABCD", -5)[0]], unit=3)
    dev = ModbusRtuDevice.model_validate({"name": "rtu1", "protocol": "modbus_rtu", "unit_id": 3, "timeout_s": 0.5,
                                          "serial_port": f"socket://127.0.0.1:{peer.port}", "retries": 0})
    drv = create_driver(dev, [tag("s.x", dev="rtu1", modbus={"table": "holding", "address": 1, "type": "int16"})],
                        Collector())
    try:
        s = await drv.poll_once()
        assert s["s.x"].value == -5 and s["s.x"].good
    finally:
        await drv.stop()
        await peer.stop()


async def test_poll_periods_per_tag(peer: ModbusPeer) -> None:
    tags = [tag("fast.x", modbus={"table": "holding", "address": 0}, poll_period_s=0.02),
            tag("slow.x", modbus={"table": "holding", "address": 1}, poll_period_s=0.3)]
    sink = Collector()
    drv = ModbusDriver(device(peer.port), tags, sink)
    assert sorted(r.period_s for r in drv.plan) == [0.02, 0.3]
    await drv.start()
    await asyncio.sleep(0.65)
    await drv.stop()
    fast, slow = sink.count("fast.x"), sink.count("slow.x")
    assert fast >= 10 and 2 <= slow <= 4, (fast, slow)


async def test_disabled_device_is_out_of_service(peer: ModbusPeer) -> None:
    sink = Collector()
    drv = ModbusDriver(device(peer.port, enabled=False), [tag("d.x", modbus={"table": "holding", "address": 0})], sink)
    await drv.start()
    assert sink.latest["d.x"].reason is QualityReason.OUT_OF_SERVICE
    await drv.stop()


async def test_concurrent_poll_and_write_share_one_connection(peer: ModbusPeer) -> None:
    """poll_once, the poll task and writes at the same time: one client, every result correct."""
    await peer.set(3, 0, [5])
    tags = [tag("c.x", modbus={"table": "holding", "address": 0}),
            tag("c.w", modbus={"table": "holding", "address": 1}, access="read_write")]
    drv = ModbusDriver(device(peer.port), tags, Collector())
    fds = open_fds()
    await drv.start()
    results = await asyncio.gather(*[drv.poll_once() for _ in range(5)], *[drv.write({"c.w": i}) for i in range(5)])
    await drv.stop()
    await asyncio.sleep(0.05)  # let the server side notice the close
    assert all(r["c.x"].value == 5 for r in results[:5])
    assert all(r[0].ok for r in results[5:])  # type: ignore[index]
    assert await peer.get(3, 1) == [4]
    assert open_fds() <= fds
