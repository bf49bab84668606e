"""The composition root: builds the whole server from a plant config and runs it in one event loop.

Nothing here decides process behaviour; it wires the parts and adapts their APIs to each other:

- drivers publish samples into the :class:`~scada.tags.TagStore`;
- the :class:`~scada.engine.ScanEngine` scans the store and writes outputs back through the drivers;
- each :class:`~scada.engine.ScanResult` feeds the plating layer, the alarm engine and the journal;
- the historian logs every change through a lossless subscription and stores every event;
- a 1 Hz supervisor turns driver, scan and historian health into system alarms;
- :class:`Runtime` is also the HMI's :class:`~hmi.ports.RuntimePort`.

A failure in one consumer (plating, alarms, journal) is logged and alarmed, never allowed to stop the
scan: the scan is what keeps outputs safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from alarms import AlarmEngine
from alarms.definitions import HISTORIAN_BUFFERING, SCAN_OVERRUN, driver_down_id
from alarms.journal import JournalWriter, restore_from_journal
from drivers import Driver, create_drivers
from drivers.base import WriteResult
from drivers.mqtt import MqttPublisher, create_mqtt_publisher
from historian import Historian
from historian.db import SchemaError, upgrade
from historian.plating_store import SqlPlatingStore
from hmi.ports import (
    Actor,
    AlarmView,
    Bucket,
    CommandKind,
    CommandResult,
    HistoryPoint,
    InterlockState,
    InterlockStatus,
    LoopState,
    Role,
    RuntimeStatus,
    UserRecord,
)
from scada.commands import (
    BypassInterlock,
    CancelBypass,
    ResetInterlock,
    SetLoadArea,
    SetMode,
    SetOutput,
    SetSetpoint,
    command_for_tag,
)
from scada.commands import CommandResult as EngineResult
from scada.config import LoopMode, PlantConfig
from scada.engine import ScanEngine, ScanResult
from scada.events import Event, EventKind
from scada.interlocks import InterlockStatus as IlStatus
from scada.plating.service import PlatingService
from scada.runtime_plating import PlatingAdapter
from scada.tags import Quality, QualityReason, Sample, TagStore, Value

log = logging.getLogger("scada.runtime")
TASK_FAILED = "system.task_failed"

_IL_STATUS = {
    IlStatus.NORMAL: InterlockStatus.HEALTHY,
    IlStatus.TRIPPED: InterlockStatus.TRIPPED,
    IlStatus.LATCHED: InterlockStatus.LATCHED,
    IlStatus.BYPASSED: InterlockStatus.BYPASSED,
}
_ALARM_STATE = {"unack": "unack_active", "acked": "ack_active", "rtn_unack": "unack_cleared",
                "shelved": "shelved", "suppressed": "suppressed", "out_of_service": "out_of_service",
                "normal": "normal"}
_ENGINE_KIND = {k.value: k for k in CommandKind}


def _result(r: EngineResult) -> CommandResult:
    """Engine command result -> HMI command result (same vocabulary of kinds)."""
    if r.ok:
        data = r.data or {}
        return CommandResult.success(old=data.get("old"), new=data.get("new"), reason=r.reason)
    kind = _ENGINE_KIND.get(str(r.kind), CommandKind.CONFLICT)
    return CommandResult.refused(kind, r.reason)


class Runtime:
    """Everything ``scada run`` runs. ``await start()`` then serve the HMI; ``await stop()`` on exit."""

    def __init__(
        self,
        plant: PlantConfig,
        *,
        db_url: str,
        buffer_path: str | Path = "scada-buffer.db",
        migrate: bool = False,
        clock: Any = time.time,
    ) -> None:
        self.plant = plant
        self.db_url = db_url
        self.buffer_path = Path(buffer_path)
        self.migrate = migrate
        self.clock = clock
        self.tags = TagStore(clock=clock)
        self.historian = Historian(db_url, str(self.buffer_path), tags=plant.tags, clock=clock)
        self.alarms = AlarmEngine(plant, clock)
        self.mqtt: MqttPublisher | None = create_mqtt_publisher(plant, self.tags, self.alarms, clock)
        self.drivers: list[Driver] = []
        self._driver_of: dict[str, Driver] = {}
        self.engine = ScanEngine(plant, self.tags, self._write)
        self.plating: PlatingService | None = None
        self.plating_port: PlatingAdapter | None = None
        self.journal: JournalWriter | None = None
        self._pending_events: list[Event] = []
        self._events_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False
        self._consumer_errors = 0
        self._last_overruns = 0
        self.started_ts: float | None = None
        self._last_scan: ScanResult | None = None
        self._users_seen: dict[str, UserRecord] = {}
        self.startup_grace_s = 10.0
        """Alarms are not evaluated until every device delivered data or this long after start: a
        restart must not annunciate every interlock because its inputs were still unread."""
        self._alarms_live = False
        self._settled_scans = 0
        # current density (A/dm2) = measured current / load area, per rectifier loop: the plating
        # process parameter the HMI trends and the load record reports
        self._cd_tags: list[tuple[str, str, str]] = []
        for tank in plant.tanks:
            for lc in tank.loops:
                if lc.kind.value == "rectifier" and lc.pv in tank.sensors:
                    tp = tank.tag_prefix(plant.line.prefix)
                    self._cd_tags.append((tank.pv_tag(plant.line.prefix, lc.pv), f"{tp}.{lc.id}.area_dm2",
                                          tank.pv_tag(plant.line.prefix, "current_density")))
        self.alarms.define_external(TASK_FAILED, priority="critical", area="system",
                                    message="A server task stopped unexpectedly (restarted)")
        for d in plant.devices:
            self.alarms.define_external(driver_down_id(d.name), priority="high", area="system",
                                        message=f"PLC {d.name}: no data (communication lost)", on_delay_s=1.0)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        # worker threads (SQLite writer, large API responses) must hand the GIL back to the scan's event
        # loop quickly: 1 ms instead of CPython's 5 ms bounds what they can add to scan lateness
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        if self.migrate:
            await upgrade(self.db_url)
        await self.historian.start()  # raises SchemaError when the schema is behind/ahead
        self.historian.attach(self.tags)
        self.tags.declare(t.name for t in self.plant.tags)
        self.tags.declare(cd for _, _, cd in self._cd_tags)
        await restore_from_journal(self.alarms, self.historian)
        journal = await self.historian.query_events(kinds=[EventKind.INTERLOCK], newest_first=True, limit=20_000)
        relatched = self.engine.core.interlocks.restore_latched(journal)
        if relatched:
            log.warning("interlocks latched before the restart stay latched until reset: %s", ", ".join(relatched))
            self._queue_event(Event(ts=self.clock(), kind=EventKind.SYSTEM, source="runtime", state="restored",
                                    message=f"latched interlocks restored: {', '.join(relatched)}"))
        self.journal = JournalWriter(self.alarms, self.historian)
        self._spawn("alarm-journal")
        self.plating = PlatingService(self.plant, SqlPlatingStore(self.historian.engine), sink=self._queue_event)
        await self.plating.open()
        self.plating_port = PlatingAdapter(self.plating, self.historian, clock=self.clock)
        self.drivers = create_drivers(self.plant.devices, self.plant.tags, self.tags.publish, self.clock)
        for drv in self.drivers:
            devices = getattr(drv, "devices", None) or [getattr(drv, "device", None)]
            names = {d.name for d in devices if d is not None}
            for t in self.plant.tags:
                if t.device in names:
                    self._driver_of[t.name] = drv
            await drv.start()
        self.engine.add_listener(self._on_scan)
        if self.mqtt is not None:
            await self.mqtt.start()  # never raises; reconnects on its own
        # Everything built so far (config models, modules, schemas, drivers) lives as long as the process.
        # Moving it out of the collector's reach keeps full collections short: without this a 1,000-tag
        # plant saw 100-300 ms gen-2 pauses that stalled the scan (bench/bench_system.py).
        gc.collect()
        gc.freeze()
        await self.engine.start()
        self._spawn("event-pump")
        self._tasks.append(asyncio.create_task(self._supervise(), name="supervisor"))
        self._started = True
        self.started_ts = self.clock()
        self._queue_event(Event(ts=self.clock(), kind=EventKind.SYSTEM, source="runtime", message="server started",
                                state="started"))

    def _spawn(self, name: str) -> None:
        """(Re)start one of the restartable background tasks by name."""
        factories = {"alarm-journal": lambda: self.journal.run(),  # type: ignore[union-attr]
                     "event-pump": self._event_pump}
        self._tasks.append(asyncio.create_task(factories[name](), name=name))

    def _check_tasks(self, now: float) -> None:
        """A background task that died is restarted, and an alarm says which and why."""
        dead = [t for t in self._tasks if t.done() and t.get_name() != "supervisor"]
        messages = []
        for t in dead:
            self._tasks.remove(t)
            exc = t.exception() if not t.cancelled() else None
            messages.append(f"{t.get_name()}: {exc!r}" if exc else f"{t.get_name()}: ended")
            log.error("background task %s stopped (%r); restarting it", t.get_name(), exc)
            self._spawn(t.get_name())
        scan = getattr(self.engine, "_task", None)
        if scan is not None and scan.done():
            messages.append("scan-engine: stopped")
        self.alarms.set_condition(TASK_FAILED, bool(messages), message="; ".join(messages), now=now)

    async def stop(self) -> None:
        """Outputs safe first, then drivers, journal, plating state, historian (which flushes)."""
        self._started = False
        with contextlib.suppress(Exception):
            await self.engine.stop(safe=True)
        for drv in self.drivers:
            with contextlib.suppress(Exception):
                await drv.stop()
        if self.mqtt is not None:
            with contextlib.suppress(Exception):
                await self.mqtt.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.journal is not None:
            with contextlib.suppress(Exception):
                await self.journal.stop()
        if self.plating is not None:
            with contextlib.suppress(Exception):
                await self.plating.flush(self.clock(), force=True)
        self._pending_events.append(Event(ts=self.clock(), kind=EventKind.SYSTEM, source="runtime",
                                          message="server stopped", state="stopped"))
        with contextlib.suppress(Exception):
            await self.historian.write_events(self._drain_events())
        await self.historian.stop()

    # ------------------------------------------------------------------ the data path

    async def _write(self, values: dict[str, Value]) -> list[WriteResult]:
        """Route the engine's writes to the drivers owning the tags, all devices in parallel."""
        by_driver: dict[int, tuple[Driver, dict[str, Value]]] = {}
        results: list[WriteResult] = []
        for tag, v in values.items():
            drv = self._driver_of.get(tag)
            if drv is None:
                results.append(WriteResult(tag, False, v, "no driver owns this tag"))
                continue
            by_driver.setdefault(id(drv), (drv, {}))[1][tag] = v
        outs = await asyncio.gather(*(d.write(vals) for d, vals in by_driver.values()), return_exceptions=True)
        for (_, vals), out in zip(by_driver.values(), outs, strict=True):
            if isinstance(out, BaseException):
                results += [WriteResult(t, False, v, f"driver error: {out}") for t, v in vals.items()]
            else:
                results += list(out)
        return results

    def _queue_event(self, ev: Event) -> None:
        self._pending_events.append(ev)
        self._events_wakeup.set()

    def _drain_events(self) -> list[Event]:
        evs, self._pending_events = self._pending_events, []
        return evs

    def _on_scan(self, r: ScanResult) -> None:
        """Runs synchronously after every scan; must never raise or block."""
        self._last_scan = r
        if self._cd_tags:
            self._publish_current_density(r)
        # Audit of operator commands is written by the HMI (with source address and old/new value).
        for ev in r.events:
            if ev.kind is not EventKind.AUDIT:
                self._queue_event(ev)
        if self.plating is not None:
            try:
                self._plating_step(r)
            except Exception:  # noqa: BLE001 - one consumer must not stop the scan
                self._consumer_errors += 1
                log.exception("plating step failed")
        try:
            snapshot = self.tags.snapshot()
            if not self._alarms_live:
                waiting = any(snapshot[t.name].reason is QualityReason.WAITING_FOR_INITIAL_DATA
                              for t in self.plant.tags if t.device is not None and t.name in snapshot)
                started = self.started_ts if self.started_ts is not None else r.ts
                # the scan that just ran read an earlier snapshot: wait until a few scans in a row saw
                # every device's data before the interlock and quality states count as alarms
                self._settled_scans = 0 if waiting else self._settled_scans + 1
                if self._settled_scans < 3 and r.ts - started < self.startup_grace_s:
                    return
                self._alarms_live = True
            self.alarms.evaluate(r.ts, snapshot)
        except Exception:  # noqa: BLE001
            self._consumer_errors += 1
            log.exception("alarm evaluation failed")

    def _publish_current_density(self, r: ScanResult) -> None:
        cds: dict[str, Sample] = {}
        for cur_tag, area_tag, cd_tag in self._cd_tags:
            cur = r.published.get(cur_tag) or self.tags.get(cur_tag)
            area = r.published.get(area_tag) or (self.tags.get(area_tag) if area_tag in self.tags else None)
            if area is None or not cur.usable or not area.usable or not float(area.value or 0) > 0:  # type: ignore[arg-type]
                why = "no load area" if area is None or not area.usable else cur.detail or str(cur.reason)
                cds[cd_tag] = Sample(value=None, quality=Quality.BAD, server_ts=r.ts,
                                     reason=cur.reason if not cur.usable else QualityReason.CONFIG_ERROR, detail=why)
                continue
            q = min(cur.quality, area.quality)
            cds[cd_tag] = Sample(value=round(float(cur.value) / float(area.value), 4), quality=q,  # type: ignore[arg-type]
                                 server_ts=r.ts, reason=cur.reason if q is not Quality.GOOD else QualityReason.NONE)
        self.tags.publish(cds)

    def _plating_step(self, r: ScanResult) -> None:
        assert self.plating is not None
        values = {**self.tags.snapshot(), **r.published}
        blocked: dict[str, str] = {}
        for tank_id, roles in r.forced.items():
            tank = self.plant.tank(tank_id)
            for role in roles:
                tag = tank.outputs.get(role)
                if tag:
                    blocked[tag] = "held safe by interlock"
        res = self.plating.scan(values, r.ts, blocked=blocked)
        for ch in self.plating.line.rectifier_changes():
            self.engine.execute(SetLoadArea(ch.tank, ch.loop, ch.area_dm2, "plating", "engineer"))
            if ch.current_density_a_dm2 is not None:
                self.engine.execute(SetSetpoint(ch.tank, ch.loop, ch.current_density_a_dm2, "plating", "engineer"))
        for tag, on in res.outputs.items():
            for tank in self.plant.tanks:
                for role, t in tank.outputs.items():
                    if t == tag:
                        self.engine.execute(SetOutput(tank.id, role, on, "plating", "engineer"))

    async def _event_pump(self) -> None:
        """Moves queued events to the historian (which buffers them when the database is away)."""
        while True:
            await self._events_wakeup.wait()
            self._events_wakeup.clear()
            await asyncio.sleep(0.2)  # batch
            evs = self._drain_events()
            if not evs:
                continue
            try:
                await self.historian.write_events(evs)
            except Exception:  # noqa: BLE001 - keep them for the next try
                log.exception("writing %d events failed; will retry", len(evs))
                self._pending_events[:0] = evs
                await asyncio.sleep(1.0)

    async def _supervise(self) -> None:
        """1 Hz: health of drivers, scan and historian as system alarms; plating state persisted."""
        while True:
            await asyncio.sleep(1.0)
            now = self.clock()
            try:
                self._check_tasks(now)
                for drv in self.drivers:
                    st = drv.status()
                    devices = getattr(drv, "devices", None) or [getattr(drv, "device", None)]
                    for d in devices:
                        if d is None:
                            continue
                        down = st.state in ("down", "connecting") and d.enabled
                        self.alarms.set_condition(driver_down_id(d.name), down, message=st.last_error or "", now=now)
                overruns = int(self.engine.stats.summary().get("overruns") or 0)
                self.alarms.set_condition(SCAN_OVERRUN, overruns > self._last_overruns, value=overruns, now=now)
                self._last_overruns = overruns
                hs = self.historian.status()
                buffering = bool(hs.get("buffer_rows")) or not hs.get("db_ok", True)
                self.alarms.set_condition(HISTORIAN_BUFFERING, buffering, value=hs.get("buffer_fraction"), now=now)
                self.alarms.tick(now)
                if self.plating is not None:
                    await self.plating.flush(now)
            except Exception:  # noqa: BLE001
                self._consumer_errors += 1
                log.exception("supervisor step failed")

    # ------------------------------------------------------------------ RuntimePort: status

    def ready(self) -> tuple[bool, str]:
        if not self._started:
            return False, "starting"
        scans = self.engine.stats.summary().get("scans") or self.engine.stats.summary().get("count") or 0
        if not scans:
            return False, "scan not running yet"
        hs = self.historian.status()
        if not hs.get("running"):
            return False, "historian not running"
        return True, ""

    async def status(self) -> RuntimeStatus:
        drivers = []
        for drv in self.drivers:
            d = asdict(drv.status())
            drivers.append({k: (v if isinstance(v, (int, float, str, bool, type(None), dict, list)) else str(v))
                            for k, v in d.items()})
        if self.mqtt is not None:
            drivers.append({"name": "mqtt", "protocol": "mqtt (northbound)", **self.mqtt.status()})
        summary = self.alarms.summary()
        return RuntimeStatus(
            drivers=drivers,
            scan={**self.engine.stats.summary(), "period_s": self.plant.scan.period_s,
                  "consumer_errors": self._consumer_errors},
            historian=self.historian.status(),
            alarms={
                "total": summary.total, "unacknowledged": summary.unacknowledged,
                "by_state": summary.by_state, "by_priority": summary.by_priority,
                "annunciating": summary.annunciating, "flood": any(summary.flood.values()),
                "flood_by_area": summary.flood, "alarms_last_10min": summary.alarms_last_10min,
                "standing": summary.standing, "chattering": [asdict(c) for c in summary.chattering],
            },
        )

    # ------------------------------------------------------------------ RuntimePort: commands

    async def write_tag(self, name: str, value: Value, actor: Actor) -> CommandResult:
        cmd = command_for_tag(self.plant, name, value, actor.username, actor.role.value)
        if isinstance(cmd, EngineResult):
            return _result(cmd)
        return _result(self.engine.execute(cmd))

    async def set_setpoint(self, tank: str, loop: str, value: float, actor: Actor) -> CommandResult:
        return _result(self.engine.execute(SetSetpoint(tank, loop, value, actor.username, actor.role.value)))

    async def set_loop_mode(self, tank: str, loop: str, mode: LoopMode, actor: Actor) -> CommandResult:
        return _result(self.engine.execute(SetMode(tank, loop, mode, actor.username, actor.role.value)))

    async def reset_interlock(self, tank: str, interlock: str, actor: Actor) -> CommandResult:
        return _result(self.engine.execute(ResetInterlock(tank, interlock, actor.username, actor.role.value)))

    async def bypass_interlock(
        self, tank: str, interlock: str, actor: Actor, *, enable: bool, duration_s: float, reason: str
    ) -> CommandResult:
        if enable:
            cmd: Any = BypassInterlock(tank, interlock, duration_s, actor.username, actor.role.value, reason)
        else:
            cmd = CancelBypass(tank, interlock, actor.username, actor.role.value)
        return _result(self.engine.execute(cmd))

    # ------------------------------------------------------------------ RuntimePort: views

    def loop_states(self) -> list[LoopState]:
        out = []
        last = self._last_scan.loops if self._last_scan is not None else {}
        for (tank, loop), ctl in self.engine.core.loops.items():
            lo = last.get(f"{tank}.{loop}")
            out.append(LoopState(
                tank=tank, loop=loop, mode=LoopMode(ctl.mode), setpoint=ctl.sp, working_setpoint=ctl.wsp,
                output=finite_or_none(lo.out) if lo is not None else None,
                detail=(lo.reason if lo is not None and lo.safe else "") or "",
            ))
        return out

    def interlock_states(self) -> list[InterlockState]:
        out = []
        now = self.clock()
        for tank in self.plant.tanks:
            for il in tank.interlocks:
                v = self.engine.core.interlocks.view(f"{tank.id}.{il.id}")
                remaining = v.bypass_remaining_s
                out.append(InterlockState(
                    tank=tank.id, interlock=il.id, status=_IL_STATUS.get(v.status, InterlockStatus.TRIPPED),
                    causes=tuple(v.conditions), first_out=v.first_out, since=v.trip_ts,
                    bypass_until=(now + remaining) if remaining else None, bypass_by=v.bypass_user,
                ))
        return out

    def _alarm_view(self, ev: Any) -> AlarmView:
        st = self.alarms.status(ev.alarm_id)
        d = st.defn
        return AlarmView(
            id=ev.alarm_id, tank=ev.tank, area=ev.area, source=d.tag or d.source or ev.alarm_id,
            priority=str(ev.priority), state=_ALARM_STATE.get(ev.state.value, ev.state.value), message=ev.message,
            active=ev.active, acked=not ev.state.unacknowledged, value=ev.value, limit=d.limit,
            ts=ev.since or ev.changed_ts or ev.ts, shelved_until=ev.shelved_until,
        )

    def active_alarms(self) -> list[AlarmView]:
        views = [self._alarm_view(ev) for ev in self.alarms.active()]
        shelved = [self._alarm_view(ev) for ev in self.alarms.alarms(states=None)
                   if ev.state.value == "shelved"] if hasattr(self.alarms, "alarms") else []
        seen = {v.id for v in views}
        return views + [v for v in shelved if v.id not in seen]

    async def ack_alarm(self, alarm_id: str, actor: Actor, comment: str) -> CommandResult:
        if not self._known_alarm(alarm_id):
            return CommandResult.refused(CommandKind.UNKNOWN, f"no alarm {alarm_id!r}")
        r = self.alarms.ack(alarm_id, actor.username, comment)
        return CommandResult.success() if r.ok else CommandResult.refused(CommandKind.CONFLICT, r.reason)

    async def shelve_alarm(self, alarm_id: str, actor: Actor, duration_s: float, comment: str) -> CommandResult:
        if not self._known_alarm(alarm_id):
            return CommandResult.refused(CommandKind.UNKNOWN, f"no alarm {alarm_id!r}")
        if duration_s <= 0:
            r = self.alarms.unshelve(alarm_id, actor.username, comment)
        else:
            r = self.alarms.shelve(alarm_id, actor.username, comment, duration_s)
        if r.ok:
            return CommandResult.success()
        kind = CommandKind.LIMIT if "maximum" in r.reason or "reason" in r.reason else CommandKind.CONFLICT
        return CommandResult.refused(kind, r.reason)

    def _known_alarm(self, alarm_id: str) -> bool:
        try:
            self.alarms.status(alarm_id)
            return True
        except KeyError:
            return False

    # ------------------------------------------------------------------ RuntimePort: history & events

    async def history_aggregate(
        self, tags: Sequence[str], start: float, end: float, buckets: int
    ) -> dict[str, list[Bucket]]:
        rows = await self.historian.query_aggregates(list(tags), start, end, buckets, twa=False)
        return {
            tag: [Bucket(start=b.start, end=b.end, min=b.min, max=b.max, avg=b.avg, last=b.last, count=b.count)
                  for b in bs]
            for tag, bs in rows.items()
        }

    async def history_raw(self, tags: Sequence[str], start: float, end: float, limit: int) -> list[HistoryPoint]:
        points: list[HistoryPoint] = []
        for tag in tags:
            for s in await self.historian.query_raw(tag, start, end):
                points.append(HistoryPoint(tag=tag, ts=s.ts, value=s.value, quality=s.quality.label,
                                           reason=s.reason or "none"))
        points.sort(key=lambda p: p.ts)
        return points[:limit]

    async def record_event(self, event: Event) -> None:
        await self.historian.write_events([event])

    async def query_events(
        self,
        *,
        kinds: Sequence[EventKind],
        start: float | None = None,
        end: float | None = None,
        limit: int = 200,
        tank: str | None = None,
        user: str | None = None,
    ) -> list[Event]:
        filters: dict[str, Any] = {"kinds": list(kinds), "limit": limit if user is None else max(limit * 5, 1000),
                                   "newest_first": True}
        if start is not None:
            filters["start"] = start
        if end is not None:
            filters["end"] = end
        if tank is not None:
            filters["tank"] = tank
        evs = await self.historian.query_events(**filters)
        if user is not None:
            evs = [e for e in evs if e.user == user][:limit]
        return evs

    # ------------------------------------------------------------------ RuntimePort: users

    @staticmethod
    def _user(u: Any) -> UserRecord | None:
        if u is None:
            return None
        return UserRecord(id=u.id, username=u.username, password_hash=u.password_hash, role=Role(u.role),
                          created_ts=u.created_ts, disabled=u.disabled)

    async def get_user(self, username: str) -> UserRecord | None:
        """The stored user; while the database is unreachable, the last record read (so operators keep
        the HMI during a database outage; nobody can change users meanwhile, they live in that database)."""
        try:
            user = self._user(await self.historian.get_user(username))
        except Exception:  # noqa: BLE001 - database down: fall back, else let the HMI report the error
            cached = self._users_seen.get(username)
            if cached is None:
                raise
            return cached
        if user is None:
            self._users_seen.pop(username, None)
        else:
            self._users_seen[username] = user
        return user

    async def create_user(self, username: str, password_hash: str, role: Role) -> UserRecord:
        u = self._user(await self.historian.create_user(username, password_hash, role.value))
        assert u is not None
        return u

    async def list_users(self) -> list[UserRecord]:
        return [u for u in (self._user(x) for x in await self.historian.list_users()) if u is not None]


def finite_or_none(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


__all__ = ["Runtime", "SchemaError"]
