"""Per-app state (no globals): the runtime, settings, token codec, limiter, catalog and metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hmi.ports import Actor, CommandKind, CommandResult, RuntimePort
from hmi.security import LoginLimiter, TokenCodec
from hmi.settings import HmiSettings
from hmi.views import TagCatalog
from scada.events import Event, EventKind
from scada.tags import Value

log = logging.getLogger("hmi")

STATUS_OF = {
    CommandKind.LIMIT: 422,
    CommandKind.INVALID: 422,
    CommandKind.INTERLOCK: 409,
    CommandKind.CONFLICT: 409,
    CommandKind.UNKNOWN: 404,
    CommandKind.FORBIDDEN: 403,
}


class Metrics:
    """Prometheus metrics in a registry owned by one app (never the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("scada_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "scada_http_request_duration_seconds", "HTTP request latency", ["route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.logins = Counter("scada_logins", "Login attempts", ["outcome"], registry=r)
        self.ws_clients = Gauge("scada_ws_clients", "Connected WebSocket clients", registry=r)
        self.ws_dropped = Counter("scada_ws_dropped", "WebSocket clients dropped for being slow", registry=r)
        self.ws_frames = Counter("scada_ws_frames", "WebSocket frames sent", registry=r)
        self.commands = Counter("scada_commands", "Operator commands", ["action", "outcome"], registry=r)
        self.tags = Gauge("scada_tags", "Tags in the tag store", registry=r)
        self.alarms_active = Gauge("scada_alarms_active", "Active alarms", registry=r)


@dataclass
class HmiContext:
    runtime: RuntimePort
    settings: HmiSettings
    codec: TokenCodec
    limiter: LoginLimiter
    catalog: TagCatalog
    metrics: Metrics
    ws_clients: int = 0
    ws_dropped: int = 0
    started: float = field(default_factory=time.time)

    async def audit(
        self,
        actor: Actor,
        action: str,
        source: str,
        result: CommandResult,
        *,
        old: Value | str = None,
        new: Value | str = None,
        tank: str | None = None,
        comment: str | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        """One audit event per command, accepted or refused (who, when, what, old -> new, from where)."""
        old_v = result.old if result.old is not None else old
        new_v = result.new if result.new is not None else new
        outcome = "ok" if result.ok else "refused"
        msg = f"{action} {source}: {old_v!r} -> {new_v!r}" + ("" if result.ok else f" refused ({result.reason})")
        data: dict[str, object] = {
            "action": action, "old": old_v, "new": new_v, "address": actor.address, "role": actor.role.value,
            "kind": result.kind.value,
        }
        if extra:
            data.update(extra)
        self.metrics.commands.labels(action, outcome).inc()
        await self.record(Event(
            ts=time.time(), kind=EventKind.AUDIT, source=source, message=msg, tank=tank, state=outcome,
            value=new_v if isinstance(new_v, int | float) and not isinstance(new_v, bool) else None,
            user=actor.username, comment=comment, data=data,
        ))

    async def record(self, event: Event) -> None:
        """Write an event; a failing event store is logged, and the command still answers."""
        try:
            await self.runtime.record_event(event)
        except Exception:  # noqa: BLE001 - losing an audit row must be loud but must not 500 the request
            log.exception("could not record %s event for %s", event.kind, event.source)


def ctx_of(request: Request) -> HmiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


def raise_for(result: CommandResult) -> None:
    """Turn a refusal into the matching HTTP error (the reason is the message)."""
    if not result.ok:
        raise HTTPException(status_code=STATUS_OF.get(result.kind, 409), detail=result.reason or result.kind.value)


def client_address(request: Request, trusted_proxy: bool) -> str:
    if trusted_proxy:
        fwd = request.headers.get("x-forwarded-for")
        if fwd:
            return fwd.split(",")[0].strip()[:64]
    return request.client.host if request.client else "unknown"
