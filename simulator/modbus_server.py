"""The simulated PLC on Modbus TCP: a pymodbus server behind a small fault-injecting front.

- :class:`ModbusPlcServer` runs pymodbus (``SimDevice`` per configured unit id, four separate blocks:
  coils, discrete inputs, holding and input registers, each from address 0 to the highest mapped
  address, so a read past the map gets exception 2 like a real PLC). Writes to a holding register or
  coil of a read-only tag get exception 2 (illegal data address). pymodbus listens on an internal
  loopback port only.
- :class:`ModbusFront` owns the public port and relays Modbus TCP (MBAP) frames to pymodbus, one
  upstream connection per client. The injected comm faults act here, on whole frames, so they are
  exact and independent of pymodbus internals: drop the connection, stall (read and never answer),
  slow responses, exception responses (any code: 2 illegal address, 6 device busy...), malformed
  responses (bad byte count, bad length, bad protocol id, garbage). A unit id no device has gets
  exception 0x0B (gateway target failed to respond), as a gateway would answer.

This is the only simulator module that imports pymodbus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from scada.config import ModbusTable
from simulator.faults import Fault, FaultKind
from simulator.plant import ModbusImage, PlantSimulator

log = logging.getLogger(__name__)

_WRITE_FCS = {5, 6, 15, 16, 22, 23}
_FC = {ModbusTable.COIL: 1, ModbusTable.DISCRETE: 2, ModbusTable.HOLDING: 3, ModbusTable.INPUT: 4}


def _device(img: ModbusImage) -> SimDevice:
    async def action(fc: int, start: int, address: int, count: int, regs: list[int],
                     values: Any) -> ExcCodes | None:
        """Refuse client writes to read-only tags (the server's own updates use fc 1/3)."""
        if fc in _WRITE_FCS and values is not None:
            ro = img.readonly_coils if fc in (5, 15) else img.readonly_holding
            if ro and any(a in ro for a in range(address, address + count)):
                return ExcCodes.ILLEGAL_ADDRESS
        return None

    return SimDevice(
        id=img.unit_id,
        action=action,
        simdata=(
            [SimData(0, count=len(img.coils), values=False, datatype=DataType.BITS)],
            [SimData(0, count=len(img.discrete), values=False, datatype=DataType.BITS)],
            [SimData(0, count=len(img.holding), values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=len(img.input), values=0, datatype=DataType.REGISTERS)],
        ),
    )


class ModbusPlcServer:
    """pymodbus on an internal port + the public :class:`ModbusFront`; syncs with the process image."""

    def __init__(self, sim: PlantSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self.requested_port = port
        self.images = list(sim.images.values())
        units = [i.unit_id for i in self.images]
        dupes = {u for u in units if units.count(u) > 1}
        if dupes:
            raise ValueError(f"Modbus devices share unit id(s) {sorted(dupes)}: the simulator serves every "
                             "Modbus TCP device on one port, so unit ids must differ")
        self._server: ModbusTcpServer | None = None
        self.front: ModbusFront | None = None
        self.upstream_port = 0

    @property
    def port(self) -> int:
        return self.front.port if self.front else 0

    async def start(self) -> None:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        devices = [_device(img) for img in self.images]
        if not devices:
            raise ValueError("the plant has no Modbus TCP device to simulate")
        self._server = ModbusTcpServer(devices, address=("127.0.0.1", 0))
        await self._server.serve_forever(background=True)
        transport: Any = self._server.transport
        self.upstream_port = transport.sockets[0].getsockname()[1]
        await self.push_all()
        self.front = ModbusFront(self.sim, self.upstream_port, {i.unit_id: i.device for i in self.images},
                                 self.host, self.requested_port, seed=self.sim.seed)
        await self.front.start()

    async def stop(self) -> None:
        if self.front is not None:
            await self.front.stop()
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    async def push_all(self) -> None:
        """Copy the whole image into pymodbus (start-up)."""
        srv = self._server
        assert srv is not None
        for img in self.images:
            for table in ModbusTable:
                await srv.async_setValues(img.unit_id, _FC[table], 0, list(img.table(table)))

    async def pull_outputs(self) -> None:
        """Copy what clients wrote (coils, holding registers) into the image, after our own pending writes."""
        srv = self._server
        assert srv is not None
        by_dev = {i.device: i for i in self.images}
        writes, self.sim.pending_writes = self.sim.pending_writes, []
        for dev, table, address, values in writes:
            await srv.async_setValues(by_dev[dev].unit_id, _FC[table], address, values)
        for img in self.images:
            img.coils[:] = [bool(b) for b in await srv.async_getValues(img.unit_id, 1, 0, len(img.coils))]
            img.holding[:] = await srv.async_getValues(img.unit_id, 3, 0, len(img.holding))

    async def push_inputs(self) -> None:
        """Copy the PLC's inputs (discrete, input registers) and its own output writes to pymodbus."""
        srv = self._server
        assert srv is not None
        by_dev = {i.device: i for i in self.images}
        writes, self.sim.pending_writes = self.sim.pending_writes, []
        for dev, table, address, values in writes:
            await srv.async_setValues(by_dev[dev].unit_id, _FC[table], address, values)
        for img in self.images:
            await srv.async_setValues(img.unit_id, 2, 0, list(img.discrete))
            await srv.async_setValues(img.unit_id, 4, 0, list(img.input))
            for a in sorted(img.readonly_holding):
                await srv.async_setValues(img.unit_id, 3, a, [img.holding[a]])


class ModbusFront:
    """Relays Modbus TCP frames between clients and pymodbus, applying the injected comm faults."""

    def __init__(self, sim: PlantSimulator, upstream_port: int, units: dict[int, str], host: str, port: int,
                 seed: int = 0) -> None:
        self.sim = sim
        self.upstream_port = upstream_port
        self.units = units
        self.host = host
        self.requested_port = port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._rng = random.Random(seed)
        self.requests = 0
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    def drop_all(self) -> None:
        """Close every client connection now (the ``comm_drop`` fault)."""
        for w in list(self._writers):
            w.close()

    def _faults(self, unit: int | None) -> dict[FaultKind, Fault]:
        device = self.units.get(unit, "") if unit is not None else None
        out: dict[FaultKind, Fault] = {}
        for f in (self.sim.comm_faults(device) if device is not None else
                  [a.fault for a in self.sim.faults.values() if a.fault.kind.is_comm]):
            p = 1.0 if f.probability is None else f.probability
            if p >= 1.0 or self._rng.random() < p:
                out.setdefault(f.kind, f)
        return out

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        up_w: asyncio.StreamWriter | None = None
        try:
            if FaultKind.COMM_DROP in self._faults(None):
                return
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            while True:
                header = await reader.readexactly(7)
                tid, pid, length, unit = struct.unpack(">HHHB", header)
                if pid != 0 or not 2 <= length <= 254:
                    return  # not Modbus TCP: a PLC closes the connection
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                faults = self._faults(unit)
                if FaultKind.COMM_DROP in faults:
                    return
                if FaultKind.COMM_STALL in faults:
                    continue
                if FaultKind.COMM_SLOW in faults:
                    await asyncio.sleep(faults[FaultKind.COMM_SLOW].delay_s)
                fc = pdu[0]
                if FaultKind.COMM_EXCEPTION in faults:
                    writer.write(_exception(tid, unit, fc, faults[FaultKind.COMM_EXCEPTION].code))
                    await writer.drain()
                    continue
                if unit not in self.units:
                    writer.write(_exception(tid, unit, fc, 0x0B))
                    await writer.drain()
                    continue
                up_w.write(header + pdu)
                await up_w.drain()
                rh = await up_r.readexactly(7)
                _, _, rlen, _ = struct.unpack(">HHHB", rh)
                body = await up_r.readexactly(rlen - 1)
                frame = rh + body
                if FaultKind.COMM_MALFORMED in faults:
                    frame = self._malform(frame, faults[FaultKind.COMM_MALFORMED].variant)
                writer.write(frame)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception:  # noqa: BLE001 - a client must never crash the PLC
            log.exception("modbus front: connection handler failed")
        finally:
            self._writers.discard(writer)
            writer.close()
            if up_w is not None:
                up_w.close()

    def _malform(self, frame: bytes, variant: str) -> bytes:
        b = bytearray(frame)
        if variant == "protocol_id":
            b[2:4] = b"\x12\x34"
        elif variant == "length":
            b[4:6] = struct.pack(">H", len(b) - 6 + 5)
        elif variant == "garbage":
            b[7:] = bytes(self._rng.randrange(256) for _ in range(len(b) - 7))
            b[7] = 0x7F  # not a function code any client knows
        else:  # byte_count: the PDU says more data than it carries
            if len(b) > 8 and b[7] in (1, 2, 3, 4):
                b[8] = (b[8] + 2) & 0xFF
            else:
                b = b[:-1]
                b[4:6] = struct.pack(">H", len(b) - 6)
        return bytes(b)


def _exception(tid: int, unit: int, fc: int, code: int) -> bytes:
    return struct.pack(">HHHBBB", tid, 0, 3, unit, (fc | 0x80) & 0xFF, code & 0xFF)
