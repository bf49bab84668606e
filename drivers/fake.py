"""An in-memory driver for engine and API tests: same interface, no sockets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from drivers.base import DriverStatus, SampleSink, WriteResult
from scada.tags import Quality, QualityReason, Sample, Value


class FakeDriver:
    """Holds values in a dict. Tests set inputs with :meth:`set`, break it with :meth:`fail`,
    and read what the engine wrote in :attr:`writes` (every write, in order)."""

    def __init__(
        self,
        name: str,
        tags: Iterable[str],
        sink: SampleSink | None = None,
        clock: Callable[[], float] = time.time,
        writable: Iterable[str] | None = None,
    ) -> None:
        self.name = name
        self.tags = list(tags)
        self.values: dict[str, Value] = {t: None for t in self.tags}
        self.writable = set(writable) if writable is not None else set(self.tags)
        self.writes: list[tuple[float, str, Value]] = []
        self.sink = sink
        self.clock = clock
        self.failed: str | None = None
        self.bad: dict[str, tuple[QualityReason, str]] = {}
        self._status = DriverStatus(name=name, protocol="fake")

    def set(self, **values: Value) -> None:
        """Set input values by tag name with dots replaced by ``__`` (``line1__x=1``)."""
        for k, v in values.items():
            self.values[k.replace("__", ".")] = v

    def set_many(self, values: Mapping[str, Value]) -> None:
        self.values.update(values)

    def fail(self, reason: str | None = "connection refused") -> None:
        """Simulate losing the device (``None`` to recover)."""
        self.failed = reason

    def mark_bad(self, tag: str, reason: QualityReason = QualityReason.SENSOR_FAILURE, detail: str = "") -> None:
        self.bad[tag] = (reason, detail)

    async def start(self) -> None:
        self._status.state = "ok"
        self._status.connected = True

    async def stop(self) -> None:
        self._status.state = "stopped"
        self._status.connected = False

    def read(self) -> dict[str, Sample]:
        now = self.clock()
        out: dict[str, Sample] = {}
        self._status.requests += 1
        for t in self.tags:
            if self.failed:
                out[t] = Sample.bad(QualityReason.COMM_FAILURE, now, self.failed)
            elif t in self.bad:
                reason, detail = self.bad[t]
                out[t] = Sample(value=self.values[t], quality=Quality.BAD, server_ts=now, reason=reason, detail=detail)
            elif self.values[t] is None:
                out[t] = Sample.bad(QualityReason.WAITING_FOR_INITIAL_DATA, now)
            else:
                out[t] = Sample.good_value(self.values[t], now, source_ts=now)
        if self.failed:
            self._status.errors += 1
            self._status.state = "down"
            self._status.last_error = self.failed
            self._status.last_error_ts = now
        else:
            self._status.state = "ok"
            self._status.last_good_ts = now
        if self.sink is not None:
            self.sink(out)
        return out

    async def poll_once(self) -> dict[str, Sample]:
        return self.read()

    async def write(self, values: Mapping[str, Value]) -> list[WriteResult]:
        now = self.clock()
        results = []
        for tag, v in values.items():
            if self.failed:
                results.append(WriteResult(tag, False, v, f"not connected: {self.failed}"))
            elif tag not in self.writable:
                results.append(WriteResult(tag, False, v, "tag is not writable"))
            else:
                self.values[tag] = v
                self.writes.append((now, tag, v))
                results.append(WriteResult(tag, True, v))
        return results

    def status(self) -> DriverStatus:
        return self._status
