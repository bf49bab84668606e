"""An in-memory :class:`~hmi.ports.RuntimePort` built from a plant config, for tests, the browser
test, the API benchmark and UI work without PLCs.

It keeps loop and interlock state, a toy first-order "process" that follows the setpoints (so the
HMI shows live values), an alarm list with ack/shelve, a history ring per tag, an event list and a
user table. Deterministic given a seed and a clock. Not a simulator of the plant physics (that is
``simulator/``), and never used by ``scada run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace

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
    PlatingPort,
    Role,
    RuntimeStatus,
    UserRecord,
)
from scada.config import LoopKind, LoopMode, PlantConfig, TankConfig
from scada.events import Event, EventKind
from scada.plating import InMemoryPlatingStore, PlatingService
from scada.runtime_plating import PlatingAdapter
from scada.tags import Quality, QualityReason, Sample, TagStore, Value


class FakeRuntime:
    """In-memory runtime: ``step()`` advances the toy process; ``start()`` runs it in the background."""

    def __init__(
        self,
        plant: PlantConfig,
        *,
        clock: Callable[[], float] = time.time,
        seed: int = 1,
        history_s: float = 3600.0,
        history_step_s: float = 10.0,
    ) -> None:
        self.plant = plant
        self.tags = TagStore(clock=clock)
        self._clock = clock
        self._rng = random.Random(seed)
        self._lp = plant.line.prefix
        self.loops: dict[tuple[str, str], LoopState] = {}
        self.interlocks: dict[tuple[str, str], InterlockState] = {}
        self.alarms: dict[str, AlarmView] = {}
        self.events: list[Event] = []
        self.users: dict[str, UserRecord] = {}
        self.writes: list[tuple[str, Value, str]] = []
        """Every write that reached the "device": (tag, value, user) -- what a test asserts."""
        self._forced: dict[str, Sample] = {}
        self._hist: dict[str, deque[tuple[float, Value, str, str]]] = {}
        self._process: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.steps = 0
        self.is_ready = True
        # the real plating layer on an in-memory store; each step() feeds it like a scan would
        self._load_area: dict[str, float] = {}
        self.plating = PlatingService(plant, InMemoryPlatingStore(), sink=self._plating_event)
        self.plating_port: PlatingPort | None = PlatingAdapter(self.plating, _FakeTrace(self), clock=clock)

        names: list[str] = [t.name for t in plant.tags]
        for tank in plant.tanks:
            names += [tank.pv_tag(self._lp, g) for g in tank.sensors]
            if any(lc.kind is LoopKind.RECTIFIER for lc in tank.loops):
                names.append(tank.pv_tag(self._lp, "current_density"))
            for lc in tank.loops:
                self.loops[(tank.id, lc.id)] = LoopState(
                    tank=tank.id, loop=lc.id, mode=lc.mode, setpoint=lc.setpoint.initial,
                    working_setpoint=lc.setpoint.initial, output=0.0,
                )
            for il in tank.interlocks:
                self.interlocks[(tank.id, il.id)] = InterlockState(tank.id, il.id, InterlockStatus.HEALTHY)
        self.tags.declare(names)
        self._seed_alarms()
        now = clock()
        t = now - history_s
        while t < now:
            self._step_process(history_step_s, t, record=True, publish=False)
            t += history_step_s
        self.step(0.0)

    # ---------------------------------------------------------------- test hooks

    def force(self, tag: str, quality: Quality, reason: QualityReason, value: Value = None, detail: str = "") -> None:
        """Hold a tag at this quality (e.g. Bad comm_failure) until :meth:`unforce`."""
        s = Sample(value=value, quality=quality, server_ts=self._clock(), reason=reason, detail=detail)
        self._forced[tag] = s
        self.tags.publish({tag: s})

    def unforce(self, tag: str) -> None:
        self._forced.pop(tag, None)

    def set_interlock(self, tank: str, interlock: str, status: InterlockStatus, causes: tuple[str, ...] = ()) -> None:
        self.interlocks[(tank, interlock)] = InterlockState(
            tank, interlock, status, causes=causes, first_out=causes[0] if causes else None, since=self._clock()
        )

    def raise_alarm(self, alarm_id: str, value: float | None = None) -> AlarmView:
        """Make a configured alarm (``tank.alarm``) active and unacknowledged."""
        tank_id, _, aid = alarm_id.partition(".")
        tank = self.plant.tank(tank_id)
        cfg = next(a for a in tank.alarms if a.id == aid)
        view = AlarmView(
            id=alarm_id, tank=tank.id, area=tank.area, source=cfg.source, priority=cfg.priority.value,
            state="unack_active", message=cfg.message or f"{tank.name}: {cfg.id}", active=True, acked=False,
            value=value, limit=cfg.h or cfg.hh or cfg.l or cfg.ll, ts=self._clock(),
        )
        self.alarms[alarm_id] = view
        self._event(EventKind.ALARM, alarm_id, view.message, tank=tank.id, priority=view.priority, state=view.state)
        return view

    def _seed_alarms(self) -> None:
        for ref in ("nickel.ph_limits", "rinse1.conductivity_h"):
            tank_id, _, aid = ref.partition(".")
            try:
                tank = self.plant.tank(tank_id)
            except KeyError:
                continue
            if any(a.id == aid for a in tank.alarms):
                self.raise_alarm(ref)

    # ---------------------------------------------------------------- the toy process

    def _sp(self, tank: TankConfig, group: str) -> float | None:
        for lc in tank.loops:
            if lc.pv == group and lc.kind is not LoopKind.RECTIFIER:
                st = self.loops[(tank.id, lc.id)]
                if st.mode is LoopMode.AUTO:
                    return st.working_setpoint
                return None
        return None

    def _step_process(self, dt: float, now: float, *, record: bool, publish: bool) -> None:
        out: dict[str, Sample] = {}
        rng = self._rng
        lp = self._lp

        def put(name: str, value: Value) -> None:
            out[name] = Sample.good_value(value, now, source_ts=now)

        for tank in self.plant.tanks:
            for group, sg in tank.sensors.items():
                key = f"{tank.id}.{group}"
                if group == "temperature":
                    mid = tank.window.temperature_c
                    target = self._sp(tank, group)
                    if target is None:
                        target = (mid.min + mid.max) / 2 if mid and self._sp_loop_missing(tank, group) else self.plant.line.ambient_c
                    x = self._process.get(key, target - 1.0)
                    x += (target - x) * min(1.0, dt / 60.0) + rng.gauss(0, 0.05)
                elif group == "ph":
                    target = self._sp(tank, group) or 4.2
                    x = self._process.get(key, target)
                    x += (target - x) * min(1.0, dt / 120.0) + rng.gauss(0, 0.01)
                elif group == "conductivity":
                    x = self._process.get(key, 40.0) + rng.gauss(0, 0.5)
                    x = min(max(x, 5.0), 400.0)
                elif group == "current":
                    x = self._current(tank) * (1 + rng.gauss(0, 0.01))
                elif group == "voltage":
                    x = 2.0 + 0.012 * self._current(tank)
                elif group == "amp_hours":
                    x = self._process.get(key, 0.0) + self._current(tank) * dt / 3600.0
                else:
                    x = self._process.get(key, 0.0)
                self._process[key] = x
                put(tank.pv_tag(lp, group), round(x, 4))
                for i, t in enumerate(sg.tags):
                    put(t, round(x + (i - 1) * 0.02 + rng.gauss(0, 0.01), 4))
            if any(lc.kind is LoopKind.RECTIFIER for lc in tank.loops):
                area = self._area(tank)
                put(tank.pv_tag(lp, "current_density"), round(self._current(tank) / area, 4) if area else 0.0)
            for role, t in tank.inputs.items():
                put(t, role in ("exhaust_fan_running",))
            for role, t in tank.outputs.items():
                if role == "heater":
                    sp = self._sp(tank, "temperature")
                    pv = self._process.get(f"{tank.id}.temperature", 0.0)
                    put(t, bool(sp is not None and pv < sp))
                elif role == "exhaust_fan":
                    put(t, True)
                elif role == "rectifier_setpoint":
                    put(t, round(self._current(tank)))
                elif t not in out:
                    tc = self.plant.tag(t) if self.plant.has_tag(t) else None
                    put(t, bool(tc.initial) if tc and tc.is_boolean else False)
        for tc in self.plant.tags:
            if tc.name not in out:
                if tc.is_boolean or tc.modbus and tc.modbus.type.is_boolean:
                    put(tc.name, bool(tc.initial) if tc.initial is not None else False)
                elif tc.name == self.plant.line.heartbeat:
                    put(tc.name, (self.steps % 65536))
                else:
                    put(tc.name, float(tc.initial) if isinstance(tc.initial, int | float) else 0.0)
        for name, s in self._forced.items():
            out[name] = replace(s, server_ts=now)
        if record:
            for name, s in out.items():
                if isinstance(s.value, bool) or not isinstance(s.value, int | float):
                    continue
                self._hist.setdefault(name, deque(maxlen=50_000)).append(
                    (now, s.value, s.quality.label, str(s.reason))
                )
        if publish:
            self.tags.publish(out)

    def _sp_loop_missing(self, tank: TankConfig, group: str) -> bool:
        return not any(lc.pv == group for lc in tank.loops)

    def _area(self, tank: TankConfig) -> float:
        if tank.id in self._load_area:
            return self._load_area[tank.id]
        for lc in tank.loops:
            if lc.rectifier and lc.rectifier.default_area_dm2:
                return lc.rectifier.default_area_dm2
        return 0.0

    def _current(self, tank: TankConfig) -> float:
        for lc in tank.loops:
            if lc.kind is LoopKind.RECTIFIER:
                st = self.loops[(tank.id, lc.id)]
                if st.mode is not LoopMode.AUTO or self._blocked(tank.id, lc.output):
                    return 0.0
                return (st.working_setpoint or 0.0) * self._area(tank)
        return 0.0

    def step(self, dt: float = 0.25) -> None:
        """Advance the toy process by ``dt`` seconds and publish every value."""
        self.steps += 1
        self._step_process(dt, self._clock(), record=True, publish=True)
        self._plating_step()

    def _plating_step(self) -> None:
        """What the runtime does after a scan: plating scan, then the rectifier follows the load."""
        self.plating.scan(self.tags.snapshot(), self._clock())
        for ch in self.plating.line.rectifier_changes():
            if ch.area_dm2 is None:
                self._load_area.pop(ch.tank, None)
            else:
                self._load_area[ch.tank] = ch.area_dm2
            st = self.loops.get((ch.tank, ch.loop))
            if st is not None and ch.current_density_a_dm2 is not None:
                self.loops[(ch.tank, ch.loop)] = replace(st, setpoint=ch.current_density_a_dm2,
                                                         working_setpoint=ch.current_density_a_dm2)

    def _plating_event(self, event: Event) -> None:
        self.events.append(replace(event, id=len(self.events) + 1))

    def history_samples(self, tag: str, start: float, end: float) -> list[Sample]:
        """Recorded samples of ``tag`` in [start, end], the one in effect at ``start`` moved to it."""
        out: list[Sample] = []
        prev: Sample | None = None
        for ts, v, q, r in self._hist.get(tag, ()):
            s = Sample(value=v, quality=Quality[q.upper()], server_ts=ts, source_ts=ts, reason=QualityReason(r))
            if ts < start:
                prev = s
            elif ts <= end:
                out.append(s)
        if prev is not None and (not out or out[0].server_ts > start):
            out.insert(0, replace(prev, server_ts=start, source_ts=start))
        return out

    async def _run(self, period_s: float) -> None:
        while True:
            try:
                self.step(period_s)
            except Exception:  # noqa: BLE001 - a fake must not die silently either; keep stepping
                pass
            await asyncio.sleep(period_s)

    def start(self, period_s: float = 0.25) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(period_s), name="fake-runtime")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---------------------------------------------------------------- RuntimePort

    def ready(self) -> tuple[bool, str]:
        return (True, "") if self.is_ready else (False, "fake runtime told to be unready")

    async def status(self) -> RuntimeStatus:
        return RuntimeStatus(
            drivers=[{"name": d.name, "protocol": d.protocol, "state": "ok", "connected": True} for d in self.plant.devices],
            scan={"period_s": self.plant.scan.period_s, "count": self.steps, "lateness_p99_ms": 0.0, "overruns": 0},
            historian={"connected": True, "buffered": 0, "tags": len(self._hist)},
            alarms={
                "active": sum(1 for a in self.alarms.values() if a.active),
                "unacked": sum(1 for a in self.alarms.values() if not a.acked),
                "shelved": sum(1 for a in self.alarms.values() if a.state == "shelved"),
                "flood": False,
            },
        )

    def _blocked(self, tank_id: str, role: str) -> str | None:
        tank = self.plant.tank(tank_id)
        for il in tank.interlocks:
            st = self.interlocks[(tank_id, il.id)]
            if role in il.acts_on and st.status in (InterlockStatus.TRIPPED, InterlockStatus.LATCHED):
                return il.id
        return None

    async def write_tag(self, name: str, value: Value, actor: Actor) -> CommandResult:
        if name not in self.tags:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown tag {name!r}")
        if not self.plant.has_tag(name) or not self.plant.tag(name).writable:
            return CommandResult.refused(CommandKind.FORBIDDEN, f"tag {name!r} is not writable")
        for tank in self.plant.tanks:
            for role, t in tank.outputs.items():
                if t == name and (il := self._blocked(tank.id, role)):
                    return CommandResult.refused(
                        CommandKind.INTERLOCK, f"interlock {tank.id}.{il} holds {role} at its safe value"
                    )
        old = self.tags.get(name).value
        self.writes.append((name, value, actor.username))
        self._forced.pop(name, None)
        self.tags.publish({name: Sample.good_value(value, self._clock())})
        return CommandResult.success(old=old, new=value)

    def _loop(self, tank: str, loop: str) -> LoopState | None:
        return self.loops.get((tank, loop))

    async def set_setpoint(self, tank: str, loop: str, value: float, actor: Actor) -> CommandResult:
        st = self._loop(tank, loop)
        if st is None:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown loop {tank}.{loop}")
        self.loops[(tank, loop)] = replace(st, setpoint=value, working_setpoint=value)
        self.writes.append((f"{tank}.{loop}.sp", value, actor.username))
        return CommandResult.success(old=st.setpoint, new=value)

    async def set_loop_mode(self, tank: str, loop: str, mode: LoopMode, actor: Actor) -> CommandResult:
        st = self._loop(tank, loop)
        if st is None:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown loop {tank}.{loop}")
        self.loops[(tank, loop)] = replace(st, mode=mode)
        return CommandResult.success(old=st.mode.value, new=mode.value)

    async def reset_interlock(self, tank: str, interlock: str, actor: Actor) -> CommandResult:
        st = self.interlocks.get((tank, interlock))
        if st is None:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown interlock {tank}.{interlock}")
        if st.status is InterlockStatus.TRIPPED:
            return CommandResult.refused(
                CommandKind.CONFLICT, f"interlock {tank}.{interlock} cannot be reset: cause still present ({', '.join(st.causes) or 'tripped'})"
            )
        if st.status is not InterlockStatus.LATCHED:
            return CommandResult.refused(CommandKind.CONFLICT, f"interlock {tank}.{interlock} is not latched ({st.status.value})")
        self.interlocks[(tank, interlock)] = InterlockState(tank, interlock, InterlockStatus.HEALTHY)
        return CommandResult.success(old=st.status.value, new=InterlockStatus.HEALTHY.value)

    async def bypass_interlock(
        self, tank: str, interlock: str, actor: Actor, *, enable: bool, duration_s: float, reason: str
    ) -> CommandResult:
        st = self.interlocks.get((tank, interlock))
        if st is None:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown interlock {tank}.{interlock}")
        if enable:
            new = InterlockState(
                tank, interlock, InterlockStatus.BYPASSED, since=self._clock(),
                bypass_until=self._clock() + duration_s, bypass_by=actor.username,
            )
        else:
            if st.status is not InterlockStatus.BYPASSED:
                return CommandResult.refused(CommandKind.CONFLICT, f"interlock {tank}.{interlock} is not bypassed")
            new = InterlockState(tank, interlock, InterlockStatus.HEALTHY)
        self.interlocks[(tank, interlock)] = new
        return CommandResult.success(old=st.status.value, new=new.status.value)

    def loop_states(self) -> list[LoopState]:
        return list(self.loops.values())

    def interlock_states(self) -> list[InterlockState]:
        return list(self.interlocks.values())

    def active_alarms(self) -> list[AlarmView]:
        now = self._clock()
        out = []
        for a in self.alarms.values():
            if a.state == "shelved" and a.shelved_until is not None and a.shelved_until <= now:
                a = replace(a, state="ack_active" if a.acked else "unack_active", shelved_until=None)
                self.alarms[a.id] = a
            out.append(a)
        return out

    async def ack_alarm(self, alarm_id: str, actor: Actor, comment: str) -> CommandResult:
        a = self.alarms.get(alarm_id)
        if a is None:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown alarm {alarm_id!r}")
        if a.acked:
            return CommandResult.refused(CommandKind.CONFLICT, f"alarm {alarm_id!r} is already acknowledged")
        new_state = "ack_active" if a.active else "normal"
        if new_state == "normal":
            del self.alarms[alarm_id]
        else:
            self.alarms[alarm_id] = replace(a, acked=True, state=new_state if a.state != "shelved" else "shelved")
        self._event(EventKind.ALARM, alarm_id, f"acknowledged: {a.message}", tank=a.tank, priority=a.priority,
                    state=new_state, user=actor.username, comment=comment)
        return CommandResult.success(old=a.state, new=new_state)

    async def shelve_alarm(self, alarm_id: str, actor: Actor, duration_s: float, comment: str) -> CommandResult:
        a = self.alarms.get(alarm_id)
        if a is None:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown alarm {alarm_id!r}")
        if duration_s <= 0:
            new = replace(a, state="ack_active" if a.acked else "unack_active", shelved_until=None)
        else:
            new = replace(a, state="shelved", shelved_until=self._clock() + duration_s)
        self.alarms[alarm_id] = new
        self._event(EventKind.ALARM, alarm_id, f"{'shelved' if duration_s > 0 else 'unshelved'}: {a.message}",
                    tank=a.tank, priority=a.priority, state=new.state, user=actor.username, comment=comment)
        return CommandResult.success(old=a.state, new=new.state)

    async def history_aggregate(
        self, tags: Sequence[str], start: float, end: float, buckets: int
    ) -> dict[str, list[Bucket]]:
        width = (end - start) / buckets
        out: dict[str, list[Bucket]] = {}
        for tag in tags:
            acc: list[list[tuple[float, float, str]]] = [[] for _ in range(buckets)]
            for ts, v, q, _r in self._hist.get(tag, ()):
                if start <= ts < end and isinstance(v, int | float):
                    acc[min(buckets - 1, int((ts - start) / width))].append((ts, float(v), q))
            rows = []
            for i, pts in enumerate(acc):
                b0 = start + i * width
                good = [p for p in pts if p[2] != "bad"]
                vals = [p[1] for p in good if math.isfinite(p[1])]
                rows.append(Bucket(
                    start=b0, end=b0 + width,
                    min=min(vals) if vals else None, max=max(vals) if vals else None,
                    avg=sum(vals) / len(vals) if vals else None, last=vals[-1] if vals else None,
                    count=len(pts), good_fraction=(sum(1 for p in pts if p[2] == "good") / len(pts)) if pts else 0.0,
                ))
            out[tag] = rows
        return out

    async def history_raw(self, tags: Sequence[str], start: float, end: float, limit: int) -> list[HistoryPoint]:
        pts = [
            HistoryPoint(tag=t, ts=ts, value=v, quality=q, reason=r)
            for t in tags for ts, v, q, r in self._hist.get(t, ()) if start <= ts < end
        ]
        pts.sort(key=lambda p: p.ts)
        return pts[:limit]

    def _event(self, kind: EventKind, source: str, message: str, **kw: object) -> None:
        self.events.append(Event(ts=self._clock(), kind=kind, source=source, message=message, id=len(self.events) + 1, **kw))  # type: ignore[arg-type]

    async def record_event(self, event: Event) -> None:
        self.events.append(replace(event, id=len(self.events) + 1))

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
        ks = set(kinds)
        out = [
            e for e in reversed(self.events)
            if e.kind in ks
            and (start is None or e.ts >= start)
            and (end is None or e.ts < end)
            and (tank is None or e.tank == tank)
            and (user is None or e.user == user)
        ]
        return out[:limit]

    async def get_user(self, username: str) -> UserRecord | None:
        return self.users.get(username)

    async def create_user(self, username: str, password_hash: str, role: Role) -> UserRecord:
        if username in self.users:
            raise ValueError(f"user {username!r} already exists")
        rec = UserRecord(id=len(self.users) + 1, username=username, password_hash=password_hash, role=role,
                         created_ts=self._clock())
        self.users[username] = rec
        return rec

    async def list_users(self) -> list[UserRecord]:
        return list(self.users.values())

    def disable_user(self, username: str) -> None:
        self.users[username] = replace(self.users[username], disabled=True)


class _FakeTrace:
    """The fake's history ring and event list as the plating layer's trace source."""

    def __init__(self, rt: FakeRuntime) -> None:
        self.rt = rt

    async def samples(self, tags: Sequence[str], start: float, end: float) -> dict[str, list[Sample]]:
        return {t: self.rt.history_samples(t, start, end) for t in tags}

    async def events(self, start: float, end: float) -> list[Event]:
        return [e for e in self.rt.events if start <= e.ts <= end]
