"""Run a :class:`PlantSimulator` behind real sockets: Modbus TCP, OPC UA and the control endpoint.

One asyncio task owns the timing: every ``scan_s`` real seconds it copies what clients wrote into
the process image, runs one PLC scan (``sim.advance``) and publishes the inputs to both servers.
Both servers therefore serve one simulation state. No exception escapes the scan task: a failing
scan is logged and the next one runs.

    sim = PlantSimulator(plant, speed=50, seed=1)
    async with SimulatorServers(sim, modbus_port=0, opcua_port=None, control_port=0) as servers:
        servers.modbus_port, servers.control_url
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType

from simulator.control import ControlServer
from simulator.faults import FaultKind
from simulator.plant import PlantSimulator

log = logging.getLogger(__name__)
MAX_SCAN_GAP_S = 1.0
"""A scan later than this (a stalled loop) advances only this much real time: no catch-up storm."""


class SimulatorServers:
    """Start/stop the servers of one simulator. A port of ``None`` disables that server; 0 picks one."""

    def __init__(
        self,
        sim: PlantSimulator,
        *,
        host: str = "127.0.0.1",
        modbus_port: int | None = 0,
        opcua_port: int | None = None,
        control_port: int | None = None,
        scan_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sim = sim
        self.host = host
        self.scan_s = scan_s
        self._clock = clock
        self._modbus_req = modbus_port
        self._opcua_req = opcua_port
        self._control_req = control_port
        self.modbus = None
        self.opcua = None
        self.control: ControlServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.scan_errors = 0
        self.last_scan_ms = 0.0

    # ---------------------------------------------------------------- ports
    @property
    def modbus_port(self) -> int | None:
        return self.modbus.port if self.modbus is not None else None

    @property
    def opcua_port(self) -> int | None:
        return self.opcua.port if self.opcua is not None else None

    @property
    def opcua_endpoint(self) -> str | None:
        return self.opcua.endpoint if self.opcua is not None else None

    @property
    def opcua_namespace(self) -> str | None:
        return self.opcua.namespace if self.opcua is not None else None

    @property
    def control_port(self) -> int | None:
        return self.control.port if self.control is not None else None

    @property
    def control_url(self) -> str | None:
        return self.control.url if self.control is not None else None

    def ports(self) -> dict[str, int | None]:
        return {"modbus": self.modbus_port, "opcua": self.opcua_port, "control": self.control_port}

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        try:
            if self._modbus_req is not None and self.sim.images:
                from simulator.modbus_server import ModbusPlcServer

                self.modbus = ModbusPlcServer(self.sim, self.host, self._modbus_req)
                await self.modbus.start()
            if self._opcua_req is not None:
                from simulator.opcua_server import OpcUaPlcServer

                self.opcua = OpcUaPlcServer(self.sim, self.host, self._opcua_req)
                await self.opcua.start()
            if self._control_req is not None:
                self.control = ControlServer(self.sim, self.host, self._control_req)
                await self.control.start()
                self.control.ports.update(self.ports())
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="simulator-scan")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for srv in (self.control, self.opcua, self.modbus):
            if srv is not None:
                with contextlib.suppress(Exception):
                    await srv.stop()
        self.control = self.opcua = self.modbus = None

    async def __aenter__(self) -> SimulatorServers:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._task is not None, "call start() first"
        await self._task

    # ---------------------------------------------------------------- the scan
    async def scan(self, real_dt_s: float) -> None:
        """One synchronised scan: client writes in, PLC scan, inputs out (also used by tests)."""
        async with self._lock:
            t0 = time.perf_counter()
            if self.modbus is not None:
                await self.modbus.pull_outputs()
                if self.modbus.front is not None and any(
                        a.fault.kind is FaultKind.COMM_DROP for a in self.sim.faults.values()):
                    self.modbus.front.drop_all()
            if self.opcua is not None:
                self.opcua.pull_outputs()
            self.sim.advance(real_dt_s)
            if self.modbus is not None:
                await self.modbus.push_inputs()
            if self.opcua is not None:
                await self.opcua.push()
            self.last_scan_ms = (time.perf_counter() - t0) * 1000.0

    async def _run(self) -> None:
        last = self._clock()
        while True:
            await asyncio.sleep(self.scan_s)
            now = self._clock()
            dt, last = min(now - last, MAX_SCAN_GAP_S), now
            try:
                await self.scan(dt)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the plant must keep running
                self.scan_errors += 1
                log.exception("simulator scan failed (%d so far)", self.scan_errors)

    async def wait_sim_time(self, sim_s: float, timeout_s: float = 30.0) -> None:
        """Wait until the simulation clock reaches ``sim_s`` (tests)."""
        deadline = time.monotonic() + timeout_s
        while self.sim.sim_s < sim_s:
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulation time {self.sim.sim_s:.1f} s did not reach {sim_s} s")
            await asyncio.sleep(self.scan_s / 2)
