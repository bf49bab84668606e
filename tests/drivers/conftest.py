"""Peers for the driver tests: a pymodbus server with known values, and a raw Modbus TCP responder
that can be told to misbehave (garbage, stall, close mid-response, wrong transaction id or byte count)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest_asyncio
from pymodbus import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers.base import DriverStatus
from scada.tags import Sample

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
logging.getLogger("asyncua").setLevel(logging.ERROR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def other_tasks() -> set[asyncio.Task[object]]:
    me = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not me and not t.done()}


class Collector:
    """A SampleSink that remembers everything it got."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Sample]] = []
        self.latest: dict[str, Sample] = {}

    def __call__(self, samples: dict[str, Sample]) -> None:
        self.batches.append(dict(samples))
        self.latest.update(samples)

    def count(self, tag: str, pred: Callable[[Sample], bool] = lambda s: True) -> int:
        return sum(1 for b in self.batches if tag in b and pred(b[tag]))

    async def wait_for(self, pred: Callable[[dict[str, Sample]], bool], within_s: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + within_s
        while not pred(self.latest):
            if loop.time() > end:
                raise AssertionError(f"condition not met within {within_s} s; latest={self.latest}")
            await asyncio.sleep(0.01)


async def wait_status(get: Callable[[], DriverStatus], pred: Callable[[DriverStatus], bool], within_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + within_s
    while not pred(get()):
        if loop.time() > end:
            raise AssertionError(f"status condition not met: {get()}")
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- pymodbus peer


def sim_device(unit: int = 1, size: int = 1000) -> SimDevice:
    """Four separate tables of ``size`` entries each, all zero."""
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, size, False, datatype=SimType.BITS)],
            [SimData(0, size, False, datatype=SimType.BITS)],
            [SimData(0, size, 0, datatype=SimType.REGISTERS)],
            [SimData(0, size, 0, datatype=SimType.REGISTERS)],
        ),
    )


class ModbusPeer:
    """A real pymodbus server on loopback; can be stopped and restarted on the same port."""

    def __init__(self, devices: list[SimDevice], port: int = 0, framer: FramerType = FramerType.SOCKET) -> None:
        self.devices = devices
        self.port = port
        self.framer = framer
        self.server: ModbusTcpServer | None = None
        self.writes: dict[tuple[int, int, int], list[int] | list[bool]] = {}

    async def start(self) -> None:
        if not self.port:
            self.port = free_port()
        self.server = ModbusTcpServer(self.devices, address=("127.0.0.1", self.port), framer=self.framer)
        await self.server.serve_forever(background=True)
        for (unit, fc, addr), values in self.writes.items():
            await self.server.async_setValues(unit, fc, addr, values)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def set(self, fc: int, address: int, values: list[int] | list[bool], unit: int = 1) -> None:
        """Set values (fc 1 coils, 2 discrete, 3 holding, 4 input); replayed after a restart."""
        self.writes[(unit, fc, address)] = values
        assert self.server is not None
        await self.server.async_setValues(unit, fc, address, values)

    async def get(self, fc: int, address: int, count: int = 1, unit: int = 1) -> list[int] | list[bool]:
        assert self.server is not None
        return await self.server.async_getValues(unit, fc, address, count)


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[ModbusPeer]:
    p = ModbusPeer([sim_device(1)])
    await p.start()
    yield p
    await p.stop()


# --------------------------------------------------------------------------- raw responder


@dataclass
class RawModbus:
    """A minimal Modbus TCP responder written by hand (MBAP + FC 1-6, 15, 16) with fault modes.

    ``mode``: ``normal`` | ``garbage`` | ``stall`` | ``close_mid`` | ``tid_mismatch`` | ``short_count`` |
    ``extra_registers`` | ``exception:<code>`` | ``delay:<seconds>``. ``silent_units``: unit ids that
    never get an answer (a dead slave behind a gateway). ``holding`` is shared by FC 3 and 4.
    """

    mode: str = "normal"
    silent_units: set[int] = field(default_factory=set)
    holding: dict[int, int] = field(default_factory=dict)
    coils: dict[int, bool] = field(default_factory=dict)
    requests: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=2000))
    readback_offset: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
            self.server = None

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self._writers.add(w)
        try:
            while True:
                head = await r.readexactly(7)
                tid, _pid, length, unit = struct.unpack(">HHHB", head)
                pdu = await r.readexactly(length - 1)
                self.requests.append((unit, pdu[0]))
                if unit in self.silent_units:
                    continue
                reply = await self._reply(tid, unit, pdu)
                if reply is None:
                    continue
                if reply == b"CLOSE":
                    return
                w.write(reply)
                await w.drain()
                if self.mode == "close_mid":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(w)
            w.close()

    def _frame(self, tid: int, unit: int, pdu: bytes) -> bytes:
        return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu

    async def _reply(self, tid: int, unit: int, pdu: bytes) -> bytes | None:
        fc = pdu[0]
        mode = self.mode
        if mode == "garbage":
            return b"\xde\xad\xbe\xef" * 4
        if mode == "stall":
            return None
        if mode.startswith("delay:"):
            await asyncio.sleep(float(mode.split(":")[1]))
        if mode.startswith("exception:"):
            return self._frame(tid, unit, bytes([fc | 0x80, int(mode.split(":")[1])]))
        if fc in (3, 4):
            addr, count = struct.unpack(">HH", pdu[1:5])
            n = count + 1 if mode == "extra_registers" else count
            regs = [(self.holding.get(addr + i, 0) + self.readback_offset) & 0xFFFF for i in range(n)]
            body = struct.pack(f">{n}H", *regs)
            byte_count = len(body) + (4 if mode == "short_count" else 0)
            out = self._frame(tid + (7 if mode == "tid_mismatch" else 0), unit, bytes([fc, byte_count]) + body)
            if mode == "close_mid":
                return out[:5]  # half a header, then the caller writes it and closes below
            return out
        if fc in (1, 2):
            addr, count = struct.unpack(">HH", pdu[1:5])
            bits = [self.coils.get(addr + i, False) for i in range(count)]
            data = bytearray((count + 7) // 8)
            for i, b in enumerate(bits):
                if b:
                    data[i // 8] |= 1 << (i % 8)
            return self._frame(tid, unit, bytes([fc, len(data)]) + bytes(data))
        if fc == 6:
            addr, value = struct.unpack(">HH", pdu[1:5])
            self.holding[addr] = value
            return self._frame(tid, unit, pdu[:5])
        if fc == 16:
            addr, count = struct.unpack(">HH", pdu[1:5])
            for i in range(count):
                self.holding[addr + i] = struct.unpack(">H", pdu[6 + 2 * i : 8 + 2 * i])[0]
            return self._frame(tid, unit, pdu[:5])
        if fc == 5:
            addr, value = struct.unpack(">HH", pdu[1:5])
            self.coils[addr] = value == 0xFF00
            return self._frame(tid, unit, pdu[:5])
        return self._frame(tid, unit, bytes([fc | 0x80, 1]))


@pytest_asyncio.fixture
async def raw() -> AsyncIterator[RawModbus]:
    srv = RawModbus()
    await srv.start()
    yield srv
    await srv.stop()
