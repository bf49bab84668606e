"""Modbus TCP / RTU / RTU-over-TCP driver (pymodbus async client).

One :class:`ModbusDriver` owns one connection (a TCP socket, a serial port, or a TCP-to-RTU gateway)
and one poll task. Several devices (unit ids) that share a gateway or a serial port are handled by one
driver: they are polled in turn with exactly one request in flight on the connection, and a unit that
stops answering is put in its own capped exponential backoff so it never starves its neighbours
(see :func:`create_drivers`, which groups devices by connection).

Reads follow the :mod:`drivers.planner` plan (block reads, grouped by poll period). Failures are
reported as sample quality, never as exceptions:

* exception response -> only the tags of that request Bad ``device_failure`` (exception code text);
* wrong byte count -> the tags of that request Bad ``device_failure``;
* timeout -> every tag of that unit Bad ``comm_failure`` in the same poll, unit backs off;
* lost connection / every unit timing out -> every tag Bad ``comm_failure``, reconnect with capped
  exponential backoff (pymodbus auto-reconnect is disabled: ``reconnect_delay=0``, we own reconnects).

Failures are logged on transitions only (failure, then "recovered").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pymodbus import FramerType, ModbusException
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException

from drivers.base import DriverStatus, SampleSink, WriteResult, deliver
from drivers.codec import EncodeResult, TagCodec, set_bit
from drivers.planner import PlanItem, ReadPlan, ReadRequest, plan_reads
from drivers.stats import HealthLog, LatencyRing
from scada.config.devices import ModbusRtuDevice, ModbusTcpDevice
from scada.config.tags import DataType, ModbusTable, TagConfig
from scada.tags import QualityReason, Sample, Value

log = logging.getLogger(__name__)

ModbusDevice = ModbusTcpDevice | ModbusRtuDevice

EXCEPTION_TEXT: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
_UNIT_UNREACHABLE = {10, 11}
"""Gateway exception codes that mean the unit behind it is gone: treated like a timeout."""


def exception_text(code: int) -> str:
    return f"exception code {code}: {EXCEPTION_TEXT.get(code, 'unknown')}"


def connection_key(device: ModbusDevice) -> str:
    """Devices with the same key share one connection (and one request in flight)."""
    if isinstance(device, ModbusRtuDevice):
        return f"serial:{device.serial_port}"
    if device.gateway:
        return f"gateway:{device.gateway}"
    return f"device:{device.name}"


class _Timeout(Exception):
    """No (valid) answer from one unit."""


class _ConnectionLost(Exception):
    """The connection itself is gone."""


@dataclass
class _Unit:
    """Runtime state of one unit id on the connection (one configured device)."""

    device: ModbusDevice
    codecs: dict[str, TagCodec]
    tags: dict[str, TagConfig]
    plan: ReadPlan
    backoff_s: float = 0.0
    retry_at: float = 0.0
    last_good_ts: float | None = None
    last_error: str = ""
    last_error_ts: float | None = None
    bad_requests: set[int] = field(default_factory=set)
    failing: bool = False
    decoders: dict[int, list[tuple[str, Callable[[Sequence[int], float], Sample]]]] = field(default_factory=dict)
    """Last attempt timed out or the connection was lost: no fresh data, whatever the timestamps."""

    @property
    def name(self) -> str:
        return self.device.name


class ModbusDriver:
    """Polls one Modbus connection (one or several unit ids) and writes to it. See module docstring."""

    def __init__(
        self,
        device: ModbusDevice | Sequence[ModbusDevice],
        tags: Iterable[TagConfig],
        sink: SampleSink,
        clock: Callable[[], float] = time.time,
        *,
        name: str | None = None,
    ) -> None:
        devices = [device] if isinstance(device, ModbusTcpDevice | ModbusRtuDevice) else list(device)
        if not devices:
            raise ValueError("ModbusDriver needs at least one device")
        keys = {connection_key(d) for d in devices}
        if len(devices) > 1 and len(keys) > 1:
            raise ValueError(f"devices {[d.name for d in devices]} do not share one connection ({sorted(keys)})")
        self.devices = devices
        self.primary = devices[0]
        self.name = name or (self.primary.name if len(devices) == 1 else keys.pop().split(":", 1)[1])
        self.sink = sink
        self.clock = clock
        tags = list(tags)
        self.units: list[_Unit] = [self._build_unit(d, [t for t in tags if t.device == d.name]) for d in devices]
        self._by_tag: dict[str, _Unit] = {t: u for u in self.units for t in u.tags}
        periods = sorted({r.period_s for u in self.units for r in u.plan.requests})
        self._periods: list[float] = periods
        self._status = DriverStatus(name=self.name, protocol=self.primary.protocol)
        self._latency = LatencyRing()
        self._health = HealthLog(log, "modbus")
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ever_connected = False
        self._lost = False
        self._conn_backoff_s = self.primary.reconnect_delay_s
        self._conn_retry_at = 0.0
        self._next_due: dict[float, float] = {}
        self._min_period = min(periods) if periods else min(d.poll_period_s for d in devices)

    # ------------------------------------------------------------------ construction

    def _build_unit(self, device: ModbusDevice, tags: list[TagConfig]) -> _Unit:
        codecs: dict[str, TagCodec] = {}
        items: list[PlanItem] = []
        for t in tags:
            if t.modbus is None:
                continue
            codecs[t.name] = TagCodec.for_tag(t, device.word_order, device.byte_order)
            first, last = t.modbus.span
            items.append(PlanItem(t.name, device.unit_id, t.modbus.table, first, last, t.poll_period_s or device.poll_period_s))
        plan = plan_reads(
            items,
            max_registers=device.max_registers_per_request,
            max_bits=device.max_bits_per_request,
            max_gap=device.max_gap,
        )
        return _Unit(device, codecs, {t.name: t for t in tags if t.modbus is not None}, plan)

    @property
    def plan(self) -> list[ReadRequest]:
        """Every planned request (for tests, benchmarks and the HMI's diagnostics page)."""
        return [r for u in self.units for r in u.plan.requests]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self._status.state = "connecting"
        if not any(d.enabled for d in self.devices):
            self._status.state = "stopped"
            self._emit({t: Sample.bad(QualityReason.OUT_OF_SERVICE, self.clock(), "device disabled") for t in self._by_tag})
            return
        if self._status.requests == 0:  # nothing read yet: say so rather than leave tags unset
            now = self.clock()
            self._emit({t: Sample.bad(QualityReason.WAITING_FOR_INITIAL_DATA, now) for t in self._by_tag})
        self._task = asyncio.create_task(self._run(), name=f"modbus-poll-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_client()
        self._status.state = "stopped"
        self._status.connected = False

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        d = self.primary
        if isinstance(d, ModbusRtuDevice):
            return AsyncModbusSerialClient(
                d.serial_port,
                framer=FramerType.RTU,
                baudrate=d.baudrate,
                bytesize=d.bytesize,
                parity=d.parity,
                stopbits=d.stopbits,
                timeout=d.timeout_s,
                retries=d.retries,
                reconnect_delay=0,
            )
        return AsyncModbusTcpClient(
            d.host,
            port=d.port,
            framer=FramerType.RTU if d.framer == "rtu" else FramerType.SOCKET,
            timeout=d.timeout_s,
            retries=d.retries,
            reconnect_delay=0,  # we own reconnects (capped backoff); pymodbus must not fight us
        )

    async def _ensure_connected(self) -> bool:
        """Connect if needed (respecting the reconnect backoff). Never raises."""
        if self._client is not None and self._client.connected:
            return True
        async with self._connect_lock:  # poll task, poll_once and write may all get here at once
            return await self._connect()

    async def _connect(self) -> bool:
        if self._client is not None and self._client.connected:
            return True
        if self._client is not None:  # pymodbus noticed the peer going away before we did
            self._lost = self._lost or self._ever_connected
        self._close_client()
        if time.monotonic() < self._conn_retry_at:
            return False
        client = self._make_client()
        self._client = client
        try:
            ok = await asyncio.wait_for(client.connect(), timeout=self.primary.timeout_s + 1.0)
        except (TimeoutError, OSError, ModbusException) as e:
            ok, err = False, f"connect failed: {e or type(e).__name__}"
        else:
            err = "connect failed: connection refused or unreachable"
        if ok and client.connected:
            if self._ever_connected and self._lost:
                self._status.reconnects += 1
            self._lost = False
            self._ever_connected = True
            self._conn_backoff_s = self.primary.reconnect_delay_s
            self._status.connected = True
            self._health.ok("connection")
            return True
        self._close_client()
        self._connection_failed(err)
        return False

    def _drop_connection(self) -> None:
        """Close the link and schedule the next connect attempt (capped exponential backoff)."""
        self._close_client()
        self._lost = self._lost or self._ever_connected
        self._status.connected = False
        self._conn_retry_at = time.monotonic() + self._conn_backoff_s
        self._conn_backoff_s = min(self._conn_backoff_s * 2, self.primary.reconnect_max_s)

    def _connection_failed(self, reason: str) -> None:
        self._drop_connection()
        self._status.errors += 1
        self._set_error(reason)
        self._health.fail("connection", f"{self.name}: {reason}")
        now = self.clock()
        out: dict[str, Sample] = {}
        for u in self.units:
            u.last_error, u.last_error_ts, u.failing = reason, now, True
            for t in u.tags:
                out[t] = Sample.bad(QualityReason.COMM_FAILURE, now, reason)
        self._emit(out)

    def _set_error(self, reason: str) -> None:
        self._status.last_error = reason
        self._status.last_error_ts = self.clock()

    # ------------------------------------------------------------------ polling

    async def _run(self) -> None:
        """The one poll task: whichever period group is due, then sleep until the next one."""
        mono = time.monotonic
        start = mono()
        self._next_due = {p: start for p in self._periods}
        while not self._stopping:
            try:
                if not self._periods:
                    await asyncio.sleep(self._min_period)
                    continue
                now = mono()
                due = [p for p, t in self._next_due.items() if t <= now]
                if not due:
                    wake = min(self._next_due.values())
                    if not self._status.connected:
                        wake = min(wake, max(self._conn_retry_at, now + 0.01))
                    await asyncio.sleep(max(0.0, wake - now))
                    continue
                await self._poll(set(due))
                end = mono()
                for p in due:
                    nxt = self._next_due[p] + p
                    if nxt <= end:
                        self._status.overruns += 1
                        self._status.extra["last_overrun_s"] = round(end - self._next_due[p], 4)
                        nxt = end + p  # skip the missed cycles rather than bursting
                    self._next_due[p] = nxt
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the poll task must survive anything
                log.exception("modbus %s: unexpected error in the poll loop", self.name)
                self._connection_failed(f"internal error: {type(e).__name__}: {e}")
                await asyncio.sleep(self._min_period)

    async def poll_once(self) -> dict[str, Sample]:
        """Read every tag now (all period groups) and deliver the result to the sink too."""
        return await self._poll(set(self._periods), ignore_backoff=True)

    async def _poll(self, periods: set[float], *, ignore_backoff: bool = False) -> dict[str, Sample]:
        if ignore_backoff:
            self._conn_retry_at = 0.0
        if not await self._ensure_connected():
            return {t: Sample.bad(QualityReason.COMM_FAILURE, self.clock(), self._status.last_error) for t in self._by_tag}
        out: dict[str, Sample] = {}
        any_ok = False
        any_timeout = False
        for unit in self.units:
            now_m = time.monotonic()
            if not ignore_backoff and now_m < unit.retry_at:
                continue
            try:
                await self._read_unit(unit, periods, out)
                any_ok = True
                unit.failing = False
                unit.backoff_s = 0.0
                self._health.ok(f"{unit.name}")
                for t, why in unit.plan.unplannable.items():
                    out[t] = Sample.bad(QualityReason.CONFIG_ERROR, self.clock(), why)
            except _Timeout as e:
                any_timeout = True
                out.update(self._unit_failed(unit, str(e)))
            except _ConnectionLost as e:
                self._connection_failed(str(e))
                return {t: Sample.bad(QualityReason.COMM_FAILURE, self.clock(), str(e)) for t in self._by_tag}
        if any_timeout and not any_ok:
            # Nobody on this connection answers: the link itself is suspect (stalled socket,
            # stale bytes after a transaction id mismatch). Drop it and reconnect with backoff.
            self._drop_connection()
        self._emit(out)
        return out

    def _unit_failed(self, unit: _Unit, reason: str) -> dict[str, Sample]:
        d = unit.device
        unit.backoff_s = min(unit.backoff_s * 2 if unit.backoff_s else d.reconnect_delay_s, d.reconnect_max_s)
        unit.retry_at = time.monotonic() + unit.backoff_s
        now = self.clock()
        unit.last_error, unit.last_error_ts, unit.failing = reason, now, True
        self._set_error(f"{unit.name}: {reason}")
        self._health.fail(unit.name, reason)
        return {t: Sample.bad(QualityReason.COMM_FAILURE, now, reason) for t in unit.tags}

    async def _call(self, fn: Callable[..., object], *args: object, **kw: object) -> object:
        """One request, under the connection lock, with stats. Raises _Timeout / _ConnectionLost."""
        client = self._client
        if client is None or not client.connected:
            raise _ConnectionLost("not connected")
        d = self.primary
        hard_limit = d.timeout_s * (d.retries + 1) + 1.0  # safety net above pymodbus' own timeout
        async with self._lock:
            self._status.requests += 1
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(hard_limit):  # no extra task, unlike wait_for on 3.11
                    rr = await fn(*args, **kw)  # type: ignore[misc]
            except ConnectionException as e:
                self._status.errors += 1
                raise _ConnectionLost(f"connection lost: {e}") from None
            except (ModbusException, TimeoutError) as e:
                self._status.errors += 1
                if not client.connected:
                    raise _ConnectionLost("connection closed by peer (no or malformed response)") from None
                self._status.timeouts += 1
                raise _Timeout(f"no valid response within {d.timeout_s:g} s ({type(e).__name__})") from None
            except OSError as e:
                self._status.errors += 1
                raise _ConnectionLost(f"connection lost: {e}") from None
            self._latency.add(time.perf_counter() - t0)
            return rr

    def _reader(self, table: ModbusTable) -> Callable[..., object]:
        c = self._client
        assert c is not None
        return {
            ModbusTable.HOLDING: c.read_holding_registers,
            ModbusTable.INPUT: c.read_input_registers,
            ModbusTable.COIL: c.read_coils,
            ModbusTable.DISCRETE: c.read_discrete_inputs,
        }[table]

    async def _read_unit(self, unit: _Unit, periods: set[float], out: dict[str, Sample]) -> None:
        """Read the unit's due blocks in turn. While block k+1 is on the wire (still one request in
        flight), block k is decoded: the CPU work hides behind the round trip."""
        pending: tuple[int, ReadRequest, object] | None = None
        task: asyncio.Future[object] | None = None
        try:
            for i, req in enumerate(unit.plan.requests):
                if req.period_s not in periods:
                    continue
                task = asyncio.ensure_future(
                    self._call(self._reader(req.table), req.start, count=req.count, device_id=req.unit)
                )
                if pending is not None:
                    await asyncio.sleep(0)  # let the task put its request on the wire first
                    out.update(self._decode(unit, *pending))
                    pending = None
                pending = (i, req, await task)
            if pending is not None:
                out.update(self._decode(unit, *pending))
        finally:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _decode(self, unit: _Unit, index: int, req: ReadRequest, rr: object) -> dict[str, Sample]:
        now = self.clock()
        key = f"{unit.name} {req.table.value}[{req.start}..{req.start + req.count - 1}]"
        problem = self._response_problem(rr, req)
        if problem is not None:
            code = getattr(rr, "exception_code", None)
            self._status.errors += 1
            if code in _UNIT_UNREACHABLE:
                self._status.timeouts += 1
                raise _Timeout(problem)
            self._set_error(f"{key}: {problem}")
            unit.last_error, unit.last_error_ts = problem, now
            self._health.fail(key, problem)
            unit.bad_requests.add(index)
            return {i.tag: Sample.bad(QualityReason.DEVICE_FAILURE, now, problem) for i in req.items}
        if index in unit.bad_requests:
            unit.bad_requests.discard(index)
            self._health.ok(key)
        unit.last_good_ts = now
        self._status.last_good_ts = now
        out: dict[str, Sample] = {}
        if req.table.is_bits:
            bits = rr.bits  # type: ignore[attr-defined]
            for i in req.items:
                out[i.tag] = unit.codecs[i.tag].sample_from_bits(bits[i.first - req.start], now)
        else:
            regs = rr.registers  # type: ignore[attr-defined]
            decoders = unit.decoders.get(index)
            if decoders is None:
                decoders = [(i.tag, unit.codecs[i.tag].block_decoder(i.first - req.start)) for i in req.items]
                unit.decoders[index] = decoders
            for name, decode in decoders:
                out[name] = decode(regs, now)
        return out

    @staticmethod
    def _response_problem(rr: object, req: ReadRequest) -> str | None:
        is_error = getattr(rr, "isError", None)
        if is_error is None:
            return f"unexpected response {type(rr).__name__}"
        if is_error():
            code = getattr(rr, "exception_code", None)
            return exception_text(code) if isinstance(code, int) else f"error response {rr}"
        if req.table.is_bits:
            got = len(getattr(rr, "bits", []) or [])
            if got < req.count:
                return f"wrong byte count: asked for {req.count} bits, got {got}"
        else:
            got = len(getattr(rr, "registers", []) or [])
            if got != req.count:
                return f"wrong byte count: asked for {req.count} registers, got {got}"
        return None

    def _emit(self, samples: dict[str, Sample]) -> None:
        deliver(self.sink, samples, f"modbus {self.name}", log)

    # ------------------------------------------------------------------ writes

    async def write(self, values: Mapping[str, Value]) -> list[WriteResult]:
        """Write engineering values, one result per tag, in order. Never raises."""
        results: list[WriteResult] = []
        for tag, value in values.items():
            try:
                results.append(await self._write_one(tag, value))
            except Exception as e:  # noqa: BLE001 - a write returns its reason, never raises
                log.exception("modbus %s: unexpected error writing %s", self.name, tag)
                results.append(WriteResult(tag, False, value, f"internal error: {type(e).__name__}: {e}"))
        return results

    async def _write_one(self, tag: str, value: Value) -> WriteResult:
        unit = self._by_tag.get(tag)
        if unit is None:
            return WriteResult(tag, False, value, f"tag {tag!r} is not on device {self.name}")
        cfg = unit.tags[tag]
        if not cfg.writable:
            return WriteResult(tag, False, value, "tag is not writable (access: read)")
        codec = unit.codecs[tag]
        enc = codec.encode_write(value)
        if not enc.ok:
            return WriteResult(tag, False, value, enc.reason)
        if not await self._ensure_connected():
            return WriteResult(tag, False, value, f"not connected: {self._status.last_error}")
        assert cfg.modbus is not None and self._client is not None
        addr, dev_id = cfg.modbus.address, unit.device.unit_id
        c = self._client
        try:
            if cfg.modbus.table is ModbusTable.COIL:
                rr = await self._call(c.write_coil, addr, bool(enc.bit), device_id=dev_id)
            elif cfg.modbus.type is DataType.BIT:
                rr = await self._write_bit(unit, cfg, enc)
            elif len(enc.words) == 1:
                rr = await self._call(c.write_register, addr, enc.words[0], device_id=dev_id)
            else:
                rr = await self._call(c.write_registers, addr, list(enc.words), device_id=dev_id)
            if rr.isError():  # type: ignore[attr-defined]
                code = getattr(rr, "exception_code", None)
                self._status.errors += 1
                return WriteResult(tag, False, value, exception_text(code) if isinstance(code, int) else str(rr))
            if cfg.verify_write:
                return await self._verify(unit, cfg, enc, value)
        except (_Timeout, _ConnectionLost) as e:
            return WriteResult(tag, False, value, f"write failed: {e}")
        return WriteResult(tag, True, value)

    async def _write_bit(self, unit: _Unit, cfg: TagConfig, enc: EncodeResult) -> object:
        """Read-modify-write of one bit, holding the bus so nobody writes the register in between."""
        assert cfg.modbus is not None and cfg.modbus.bit is not None and self._client is not None
        codec = unit.codecs[cfg.name]
        rr = await self._call(self._client.read_holding_registers, cfg.modbus.address, count=1, device_id=unit.device.unit_id)
        if rr.isError():  # type: ignore[attr-defined]
            return rr
        word = set_bit(rr.registers[0], cfg.modbus.bit, bool(enc.bit), codec.encoding.byte_order)  # type: ignore[attr-defined]
        return await self._call(self._client.write_register, cfg.modbus.address, word, device_id=unit.device.unit_id)

    async def _verify(self, unit: _Unit, cfg: TagConfig, enc: EncodeResult, value: Value) -> WriteResult:
        assert cfg.modbus is not None
        first, last = cfg.modbus.span
        req = ReadRequest(unit.device.unit_id, cfg.modbus.table, first, last - first + 1, 0.0,
                          (PlanItem(cfg.name, unit.device.unit_id, cfg.modbus.table, first, last, 0.0),))
        rr = await self._call(self._reader(cfg.modbus.table), first, count=req.count, device_id=req.unit)
        problem = self._response_problem(rr, req)
        if problem is not None:
            return WriteResult(cfg.name, False, value, f"read-back failed: {problem}")
        codec = unit.codecs[cfg.name]
        if cfg.modbus.table.is_bits:
            sample = codec.sample_from_bits(rr.bits[0], self.clock())  # type: ignore[attr-defined]
        else:
            sample = codec.sample_from_words(rr.registers, self.clock())  # type: ignore[attr-defined]
        if not codec.matches(enc, sample):
            return WriteResult(cfg.name, False, value, f"read-back mismatch: wrote raw {enc.raw!r}, read {sample.raw!r}")
        return WriteResult(cfg.name, True, value)

    # ------------------------------------------------------------------ status

    def status(self) -> DriverStatus:
        """Statistics and a state that reflects data freshness, not socket state."""
        s = replace(self._status, extra=dict(self._status.extra))
        s.latency_p50_ms = self._latency.percentile(50)
        s.latency_p99_ms = self._latency.percentile(99)
        if self._task is None:
            s.state = "stopped"
        else:
            now = self.clock()
            fresh_limit = 2 * self._min_period + self.primary.timeout_s * (self.primary.retries + 1) + 0.5
            fresh_units = [
                u for u in self.units
                if not u.failing and u.last_good_ts is not None and now - u.last_good_ts <= fresh_limit
            ]
            degraded = any(u.bad_requests or u.plan.unplannable for u in fresh_units)
            if not fresh_units:
                s.state = "connecting" if not self._ever_connected and not self._status.last_error else "down"
            elif len(fresh_units) < len(self.units) or degraded:
                s.state = "degraded"
            else:
                s.state = "ok"
        s.extra["units"] = {
            u.name: {
                "unit_id": u.device.unit_id,
                "last_good_ts": u.last_good_ts,
                "last_error": u.last_error,
                "last_error_ts": u.last_error_ts,
                "backoff_s": u.backoff_s,
                "failing": u.failing,
                "requests_planned": len(u.plan.requests),
            }
            for u in self.units
        }
        s.extra["reconnect_backoff_s"] = self._conn_backoff_s
        return s


def create_modbus_drivers(
    devices: Iterable[ModbusDevice],
    tags: Iterable[TagConfig],
    sink: SampleSink,
    clock: Callable[[], float] = time.time,
) -> list[ModbusDriver]:
    """One driver per connection: devices sharing a gateway or serial port go into one driver."""
    tags = list(tags)
    groups: dict[str, list[ModbusDevice]] = {}
    for d in devices:
        groups.setdefault(connection_key(d), []).append(d)
    return [ModbusDriver(ds, tags, sink, clock) for ds in groups.values()]

