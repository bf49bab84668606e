"""The one driver interface the scan engine uses, whatever the protocol.

A driver owns one connection (one poller per connection, block reads). It polls on its own
period in a background task and hands every batch of samples to a *sink* (the composition root
passes ``TagStore.publish``); the scan engine never waits on a device, it reads the tag store.
When the device stops answering, the driver itself marks its tags Bad (comm failure) within one
poll: a stale number must never look live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from scada.tags import Sample, Value

SampleSink = Callable[[dict[str, Sample]], object]
"""Receives ``{tag name: sample}`` after every poll (must not block)."""


def deliver(sink: SampleSink, samples: dict[str, Sample], who: str, log: logging.Logger) -> None:
    """Hand a batch to the sink; a broken consumer is logged and must never kill the poller."""
    if not samples:
        return
    try:
        sink(samples)
    except Exception:  # noqa: BLE001 - isolation is the point
        log.exception("%s: sample sink raised", who)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of writing one tag. ``ok`` False always carries the reason."""

    tag: str
    ok: bool
    value: Value = None
    reason: str = ""


@dataclass
class DriverStatus:
    """What the HMI, /api/status and /metrics show about one device."""

    name: str
    protocol: str
    state: str = "stopped"
    """``stopped`` | ``connecting`` | ``ok`` (data fresh) | ``degraded`` (some tags bad) | ``down``."""
    connected: bool = False
    requests: int = 0
    errors: int = 0
    timeouts: int = 0
    reconnects: int = 0
    overruns: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    last_error: str = ""
    last_error_ts: float | None = None
    last_good_ts: float | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Driver(Protocol):
    name: str

    async def start(self) -> None:
        """Start polling in the background; return promptly even when the device is down."""

    async def stop(self) -> None:
        """Stop polling, close the connection; no task or socket may outlive this call."""

    async def poll_once(self) -> dict[str, Sample]:
        """Read every tag once now (also delivered to the sink)."""

    async def write(self, values: Mapping[str, Value]) -> list[WriteResult]:
        """Write engineering values (scaled, range-checked); one result per tag."""

    def status(self) -> DriverStatus:
        """Current statistics and state."""
