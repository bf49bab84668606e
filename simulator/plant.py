"""The simulated plant and its PLC program, without any I/O: ``PlantSimulator``.

Every configured tag is bound to what it means physically by the tank's roles
(``tanks[].sensors.<group>.tags[i]`` is probe *i* of that group, ``tanks[].inputs.<role>`` a switch,
``tanks[].outputs.<role>`` an actuator) plus the line signals (e-stop, heartbeat, PLC watchdog).

One PLC scan (:meth:`PlantSimulator.advance`, called with the real time elapsed):

1. read the outputs the SCADA wrote (coils / holding registers in the process image, OPC UA nodes);
2. run the watchdog on the heartbeat register (real time, not simulated time): when it has not
   changed for ``line.watchdog_timeout_s`` every output is de-energised (coils false, setpoints 0)
   and ``line.plc_watchdog_tripped`` set; while tripped the outputs are forced off every scan; the
   trip clears when the heartbeat moves again, and the outputs stay off until the SCADA rewrites them;
3. integrate the physics in fixed steps ``dt_s`` over ``real_dt × speed`` simulated seconds (scenario
   events and fault expiries are applied between steps at their simulated time);
4. sample every probe (own noise, calibration offset, lag, injected faults) and encode it into the
   process image exactly as its tag says.

The servers (simulator/servers.py) copy the image to and from pymodbus and asyncua around each scan.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scada.config import (
    ByteOrder,
    DataType,
    ModbusTable,
    ModbusTcpDevice,
    OpcUaDevice,
    PlantConfig,
    TagConfig,
    WordOrder,
)
from scada.config.simulation import ProbeSim, SimulationConfig
from simulator.codec import Signal, eng_to_raw, orders, pack, raw_to_eng, unpack
from simulator.faults import Fault, FaultError, FaultKind, Scenario, ScenarioEvent, parse_fault
from simulator.params import probe_sim, resolve_simulation
from simulator.physics import Actuators, TankModel, TankParams

Value = float | bool

_DUTY_ROLES = ("heater", "cooler", "acid_pump", "base_pump", "additive_pump", "makeup_valve")
_PUMPS = ("acid_pump", "base_pump", "additive_pump")
RIPPLE_RESIDUAL = 0.05
"""Share of the rectifier ripple still visible after the meter's averaging (1 sigma)."""


# ---------------------------------------------------------------------------- bindings


@dataclass
class ProbeBinding:
    tag: TagConfig
    tank: str
    group: str
    index: int
    noise: float
    offset: float
    lag_s: float
    lagged: float | None = None


@dataclass(frozen=True)
class RoleBinding:
    tag: TagConfig
    tank: str
    role: str


@dataclass
class ModbusImage:
    """The memory of one simulated Modbus device (unit id): four tables from address 0."""

    device: str
    unit_id: int
    word_order: WordOrder
    byte_order: ByteOrder
    coils: list[bool]
    discrete: list[bool]
    holding: list[int]
    input: list[int]
    readonly_holding: set[int] = field(default_factory=set)
    readonly_coils: set[int] = field(default_factory=set)

    def table(self, t: ModbusTable) -> list[Any]:
        return {ModbusTable.COIL: self.coils, ModbusTable.DISCRETE: self.discrete,
                ModbusTable.HOLDING: self.holding, ModbusTable.INPUT: self.input}[t]


@dataclass
class ActiveFault:
    id: str
    fault: Fault
    start_s: float
    expires_s: float | None
    stuck_value: float | None = None


@dataclass(frozen=True)
class MapRow:
    """One line of the register map a PLC programmer reads."""

    tag: str
    device: str
    unit_id: int | None
    table: str
    address: str
    plc_address: str
    type: str
    word_order: str
    scaling: str
    access: str
    meaning: str
    unit: str
    description: str


def _bits_size(n: int) -> int:
    return max(16, (n + 15) // 16 * 16)


class PlantSimulator:
    """A plating line and its PLC: physics + process image + watchdog + faults. No I/O.

    ``speed`` is the time-acceleration factor (simulated seconds per real second), ``seed`` makes
    the noise reproducible, ``dt_s`` is the fixed physics step. ``watchdog=False`` disables the
    heartbeat watchdog (for tests that write outputs without a heartbeat).
    """

    def __init__(
        self,
        plant: PlantConfig,
        *,
        speed: float = 1.0,
        seed: int = 0,
        dt_s: float = 0.1,
        watchdog: bool = True,
    ) -> None:
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number, got {speed}")
        if not 0 < dt_s <= 10:
            raise ValueError(f"dt_s must be in (0, 10], got {dt_s}")
        self.plant = plant
        self.speed = float(speed)
        self.dt_s = float(dt_s)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.sim_s = 0.0
        self.real_s = 0.0
        self._sim_target = 0.0
        self.estop = False
        self.watchdog_enabled = watchdog and plant.line.heartbeat is not None
        self.watchdog_tripped = False
        self.watchdog_trips = 0
        self._hb_value: float | None = None
        self._hb_change_real = 0.0
        self.scans = 0
        self.steps = 0
        self.ambient_c = plant.line.ambient_c

        self.simulation: dict[str, SimulationConfig] = {}
        self.tanks: dict[str, TankModel] = {}
        for t in plant.tanks:
            sim = resolve_simulation(t)
            self.simulation[t.id] = sim
            self.tanks[t.id] = TankModel(TankParams.from_config(sim, t.volume_l, self.ambient_c), self.ambient_c)

        self.probes: dict[str, ProbeBinding] = {}
        self.inputs: dict[str, RoleBinding] = {}
        self.outputs: dict[str, RoleBinding] = {}
        self._bind()
        self.images: dict[str, ModbusImage] = {}
        self._build_images()
        self.values: dict[str, Value] = {}
        """Engineering value every bound tag presents right now (what the PLC shows)."""
        self.signals: dict[str, Signal] = {}
        self.opcua_outputs: dict[str, Value] = {}
        """Outputs addressed over OPC UA: the last value a client wrote (the OPC UA server sets it)."""
        self.pending_writes: list[tuple[str, ModbusTable, int, list[Any]]] = []
        """Writes the PLC program made to coils/holding registers, for the server to flush."""
        self.output_values: dict[str, dict[str, Value]] = {t: {} for t in self.tanks}
        self.faults: dict[str, ActiveFault] = {}
        self._fault_ids = itertools.count(1)
        self._events: list[ScenarioEvent] = []
        self.event_log: list[dict[str, Any]] = []
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self._last_publish_s = 0.0
        self._publish()

    # ------------------------------------------------------------------ construction
    def _bind(self) -> None:
        plant = self.plant
        for tank in plant.tanks:
            sim = self.simulation[tank.id]
            for group, grp in tank.sensors.items():
                ps: ProbeSim = probe_sim(sim, group)
                for i, name in enumerate(grp.tags):
                    if not plant.has_tag(name):
                        continue
                    extra = ps.offsets[i] if i < len(ps.offsets) else 0.0
                    calib = float(self.rng.normal(0.0, ps.noise)) if ps.noise > 0 else 0.0
                    self.probes[name] = ProbeBinding(plant.tag(name), tank.id, group, i, ps.noise,
                                                     ps.offset + extra + calib, ps.lag_s)
            for role, name in tank.inputs.items():
                if plant.has_tag(name):
                    self.inputs[name] = RoleBinding(plant.tag(name), tank.id, role)
            for role, name in tank.outputs.items():
                if plant.has_tag(name):
                    self.outputs[name] = RoleBinding(plant.tag(name), tank.id, role)

    def _modbus_devices(self) -> list[ModbusTcpDevice]:
        return [d for d in self.plant.devices if isinstance(d, ModbusTcpDevice) and d.enabled]

    def _build_images(self) -> None:
        for dev in self._modbus_devices():
            tags = [t for t in self.plant.tags_of(dev.name) if t.modbus]
            size: dict[ModbusTable, int] = dict.fromkeys(ModbusTable, 0)
            for t in tags:
                assert t.modbus is not None
                size[t.modbus.table] = max(size[t.modbus.table], t.modbus.span[1] + 1)
            img = ModbusImage(
                device=dev.name, unit_id=dev.unit_id, word_order=dev.word_order, byte_order=dev.byte_order,
                coils=[False] * _bits_size(size[ModbusTable.COIL]),
                discrete=[False] * _bits_size(size[ModbusTable.DISCRETE]),
                holding=[0] * max(size[ModbusTable.HOLDING], 1),
                input=[0] * max(size[ModbusTable.INPUT], 1),
            )
            for t in tags:
                assert t.modbus is not None
                if not t.writable and t.modbus.table is ModbusTable.HOLDING:
                    img.readonly_holding.update(range(t.modbus.span[0], t.modbus.span[1] + 1))
                if not t.writable and t.modbus.table is ModbusTable.COIL:
                    img.readonly_coils.add(t.modbus.address)
            self.images[dev.name] = img

    # ------------------------------------------------------------------ tag access (as the PLC sees it)
    def _image_of(self, tag: TagConfig) -> ModbusImage | None:
        return self.images.get(tag.device or "") if tag.modbus else None

    def _encode(self, tag: TagConfig, value: Value, signal: Signal = Signal.OK) -> None:
        """Write a value into the process image at the tag's address, in its encoding."""
        img = self._image_of(tag)
        if img is None or tag.modbus is None:
            return
        m = tag.modbus
        table = img.table(m.table)
        if m.table.is_bits:
            table[m.address] = bool(value)
            return
        if m.type is DataType.BIT:
            assert m.bit is not None
            mask = 1 << m.bit
            table[m.address] = (table[m.address] | mask) if value else (table[m.address] & ~mask)
            return
        raw = eng_to_raw(tag, float(value), signal)
        wo, bo = orders(tag, img.word_order, img.byte_order)
        regs = pack(raw, m.type, wo, bo)
        table[m.address:m.address + len(regs)] = regs

    def _decode(self, tag: TagConfig) -> Value:
        """The engineering value the image holds for a tag (what a driver would decode)."""
        if tag.opcua is not None:
            return self.opcua_outputs.get(tag.name, self.values.get(tag.name, 0.0))
        img = self._image_of(tag)
        if img is None or tag.modbus is None:
            return self.values.get(tag.name, 0.0)
        m = tag.modbus
        table = img.table(m.table)
        if m.table.is_bits:
            return bool(table[m.address])
        if m.type is DataType.BIT:
            assert m.bit is not None
            return bool(table[m.address] >> m.bit & 1)
        wo, bo = orders(tag, img.word_order, img.byte_order)
        return raw_to_eng(tag, unpack(table[m.address:m.address + m.type.registers], m.type, wo, bo))

    def read_tag(self, name: str) -> Value:
        """Decode a tag from the process image (the number a correct driver would read)."""
        return self._decode(self.plant.tag(name))

    def write_tag(self, name: str, value: Value) -> None:
        """Write a tag as the SCADA would (in-process, without a socket)."""
        tag = self.plant.tag(name)
        if not tag.writable:
            raise PermissionError(f"tag {name!r} is read-only (access: read)")
        if tag.opcua is not None:
            self.opcua_outputs[name] = value
            return
        self._encode(tag, value)
        self._queue_write(tag)

    def _queue_write(self, tag: TagConfig) -> None:
        img = self._image_of(tag)
        if img is None or tag.modbus is None:
            return
        m = tag.modbus
        lo, hi = m.span
        self.pending_writes.append((img.device, m.table, lo, list(img.table(m.table)[lo:hi + 1])))

    # ------------------------------------------------------------------ operator / test API
    def put_load(self, tank_id: str, area_dm2: float | None = None) -> None:
        """A load enters ``tank_id`` (area from the tank's ``simulation.load_area_dm2`` when unset)."""
        tank = self._tank(tank_id)
        area = tank.p.load_area_dm2 if area_dm2 is None else float(area_dm2)
        tank.put_load(area, self.sim_s)
        self._log("load", tank=tank_id, area_dm2=area)

    def remove_load(self, tank_id: str) -> dict[str, float] | None:
        """The load leaves ``tank_id``; returns what it received (area, Ah, thickness)."""
        load = self._tank(tank_id).remove_load()
        self._log("unload", tank=tank_id)
        if load is None:
            return None
        return {"area_dm2": load.area_dm2, "amp_hours": load.amp_hours, "thickness_um": load.thickness_um,
                "entered_s": load.entered_s, "left_s": self.sim_s}

    def set_estop(self, active: bool) -> None:
        """Open (True) or close the e-stop chain."""
        self.estop = bool(active)
        self._log("estop" if active else "estop_release")

    def inject(self, fault: Fault | dict[str, Any]) -> str:
        """Start a fault; returns its id. Raises :class:`FaultError` naming what is wrong."""
        f = parse_fault(fault)
        if f.kind.is_probe:
            if f.tag not in self.probes:
                known = ", ".join(sorted(self.probes)[:6])
                raise FaultError(f"tag: {f.tag!r} is not a probe of any tank's sensor group (e.g. {known})")
        elif f.kind.is_actuator:
            self._tank(f.tank or "")
        elif f.device is not None and f.device not in self.images:
            raise FaultError(f"device: {f.device!r} is not a simulated Modbus TCP device "
                             f"(known: {', '.join(self.images) or 'none'})")
        fid = f.id or f"f{next(self._fault_ids)}"
        if fid in self.faults:
            raise FaultError(f"id: a fault {fid!r} is already active")
        active = ActiveFault(fid, f, self.sim_s, self.sim_s + f.duration_s if f.duration_s else None)
        if f.kind is FaultKind.STUCK:
            active.stuck_value = f.value if f.value is not None else float(self.values.get(f.tag or "", 0.0))
        self.faults[fid] = active
        self._apply_actuator_faults()
        self._log("inject", fault=f.model_dump(exclude_none=True), id=fid)
        return fid

    def clear_faults(self, fault_id: str | None = None) -> int:
        """Clear one fault (by id) or all; returns how many were cleared."""
        if fault_id is None:
            n = len(self.faults)
            self.faults.clear()
        else:
            n = 1 if self.faults.pop(fault_id, None) is not None else 0
            if n == 0:
                raise FaultError(f"no active fault {fault_id!r}")
        self._apply_actuator_faults()
        self._log("clear", id=fault_id)
        return n

    def active_faults(self) -> list[dict[str, Any]]:
        return [{"id": a.id, "since_s": a.start_s, "expires_s": a.expires_s, **a.fault.model_dump(exclude_none=True)}
                for a in self.faults.values()]

    def comm_faults(self, device: str) -> list[Fault]:
        """Comm faults that apply to requests to ``device`` (the Modbus front asks per request)."""
        return [a.fault for a in self.faults.values()
                if a.fault.kind.is_comm and a.fault.device in (None, device)]

    def load_scenario(self, scenario: Scenario) -> None:
        """Queue a scenario's events (their ``at_s`` counts from now, on the simulation clock)."""
        base = self.sim_s
        evs = [ev.model_copy(update={"at_s": ev.at_s + base}) for ev in scenario.events]
        for ev in evs:  # validate every target before anything runs
            if ev.tank:
                self._tank(ev.tank)
            if ev.fault is not None and ev.fault.kind.is_probe and ev.fault.tag not in self.probes:
                raise FaultError(f"scenario: tag {ev.fault.tag!r} is not a probe of any tank")
            if ev.fault is not None and ev.fault.kind.is_actuator:
                self._tank(ev.fault.tank or "")
        self._events = sorted(self._events + evs, key=lambda e: e.at_s)

    def _tank(self, tank_id: str) -> TankModel:
        try:
            return self.tanks[tank_id]
        except KeyError:
            raise FaultError(f"tank: unknown tank {tank_id!r} (known: {', '.join(self.tanks)})") from None

    def _log(self, what: str, **kw: Any) -> None:
        rec = {"sim_s": round(self.sim_s, 3), "event": what, **kw}
        self.event_log.append(rec)
        del self.event_log[:-500]
        if self.on_event is not None:
            self.on_event(rec)

    # ------------------------------------------------------------------ the PLC scan
    def advance(self, real_dt_s: float) -> None:
        """One PLC scan after ``real_dt_s`` real seconds: outputs in, watchdog, physics, inputs out."""
        if real_dt_s < 0:
            raise ValueError("time does not run backwards")
        self.real_s += real_dt_s
        self.scans += 1
        outs = self._read_outputs()
        self._watchdog()
        if self.watchdog_tripped:
            outs = self._force_outputs_off()
        actuators = self._actuators(outs)
        self._sim_target += real_dt_s * self.speed
        dt = self.dt_s
        tanks = list(self.tanks.values())
        while self.sim_s + dt <= self._sim_target + 1e-9:
            if self._events or self.faults:
                if self._due():
                    actuators = self._actuators(outs)
            estop = self.estop
            for tank in tanks:
                tank.step(actuators[id(tank)], dt, estop)
            self.sim_s += dt
            self.steps += 1
        self._publish()

    def run_for(self, sim_seconds: float, scan_s: float = 0.25) -> None:
        """Advance ``sim_seconds`` of simulated time in scans of ``scan_s`` real seconds (tests, bench)."""
        real = sim_seconds / self.speed
        n = max(1, math.ceil(real / scan_s))
        for _ in range(n):
            self.advance(real / n)

    def _due(self) -> bool:
        """Apply scenario events and fault expiries due now; True when actuators may have changed."""
        changed = False
        now = self.sim_s + 1e-9
        while self._events and self._events[0].at_s <= now:
            ev = self._events.pop(0)
            self._apply_event(ev)
            changed = True
        expired = [fid for fid, a in self.faults.items() if a.expires_s is not None and a.expires_s <= now]
        for fid in expired:
            self.faults.pop(fid, None)
            self._log("expired", id=fid)
            changed = True
        if changed:
            self._apply_actuator_faults()
        return changed

    def _apply_event(self, ev: ScenarioEvent) -> None:
        try:
            if ev.do == "inject":
                assert ev.fault is not None
                self.inject(ev.fault)
            elif ev.do == "clear":
                self.clear_faults(ev.fault_id)
            elif ev.do == "load":
                self.put_load(ev.tank or "", ev.area_dm2)
            elif ev.do == "unload":
                self.remove_load(ev.tank or "")
            elif ev.do == "estop":
                self.set_estop(True)
            elif ev.do == "estop_release":
                self.set_estop(False)
        except FaultError as e:  # a scenario must never stop the plant
            self._log("scenario_error", error=str(e))

    def _read_outputs(self) -> dict[str, Value]:
        outs: dict[str, Value] = {}
        for name, b in self.outputs.items():
            v = self._decode(b.tag)
            outs[name] = v
            self.values[name] = v
            self.output_values[b.tank][b.role] = v
        return outs

    def _watchdog(self) -> None:
        hb_name = self.plant.line.heartbeat
        if not self.watchdog_enabled or hb_name is None:
            return
        hb = float(self._decode(self.plant.tag(hb_name)))
        if self._hb_value is None or hb != self._hb_value:
            if self._hb_value is not None and self.watchdog_tripped:
                self.watchdog_tripped = False
                self._log("watchdog_clear")
            self._hb_value = hb
            self._hb_change_real = self.real_s
        elif not self.watchdog_tripped and self.real_s - self._hb_change_real > self.plant.line.watchdog_timeout_s:
            self.watchdog_tripped = True
            self.watchdog_trips += 1
            self._log("watchdog_trip")

    def _force_outputs_off(self) -> dict[str, Value]:
        """Watchdog: de-energise every output (coils false, registers 0) in the image."""
        outs: dict[str, Value] = {}
        for name, b in self.outputs.items():
            off: Value = False if b.tag.is_boolean else 0.0
            if self._decode(b.tag) != off:
                if b.tag.opcua is not None:
                    self.opcua_outputs[name] = off
                else:
                    self._encode(b.tag, off)
                    self._queue_write(b.tag)
            outs[name] = off
            self.values[name] = off
            self.output_values[b.tank][b.role] = off
        return outs

    def _actuators(self, outs: dict[str, Value]) -> dict[int, Actuators]:
        by_tank: dict[str, dict[str, Value]] = {t: {} for t in self.tanks}
        for name, v in outs.items():
            b = self.outputs[name]
            by_tank[b.tank][b.role] = v
        result: dict[int, Actuators] = {}
        for tid, tank in self.tanks.items():
            roles = by_tank[tid]
            a = Actuators()
            for role in _DUTY_ROLES:
                if role in roles:
                    setattr(a, role, self._duty(roles[role], role, tid))
            a.rectifier_enable = bool(roles.get("rectifier_enable", "rectifier_setpoint" in roles))
            a.rectifier_setpoint_a = float(roles.get("rectifier_setpoint", 0.0))
            a.exhaust_fan = bool(roles.get("exhaust_fan", False))
            for af in self.faults.values():
                f = af.fault
                if f.tank != tid:
                    continue
                if f.kind is FaultKind.HEATER_WELDED:
                    a.heater_welded = True
                elif f.kind is FaultKind.PUMP_DEAD:
                    for pump in ([f.pump] if f.pump else _PUMPS):
                        setattr(a, pump, 0.0)
            result[id(tank)] = a
        return result

    def _duty(self, v: Value, role: str, tank_id: str) -> float:
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        name = self.plant.tank(tank_id).outputs.get(role, "")
        unit = self.plant.tag(name).unit if self.plant.has_tag(name) else ""
        x = float(v) / 100.0 if unit == "%" else float(v)
        return min(max(x, 0.0), 1.0)

    def _apply_actuator_faults(self) -> None:
        tripped = {a.fault.tank for a in self.faults.values() if a.fault.kind is FaultKind.RECTIFIER_TRIP}
        fan = {a.fault.tank for a in self.faults.values() if a.fault.kind is FaultKind.FAN_FAIL}
        for tid, tank in self.tanks.items():
            tank.s.rectifier_tripped = tid in tripped
            tank.s.fan_failed = tid in fan

    # ------------------------------------------------------------------ instruments
    def _publish(self) -> None:
        """Sample every probe and switch and encode them into the process image."""
        n = len(self.probes)
        noise = self.rng.standard_normal(n) if n else np.empty(0)
        extra = self.rng.random(n) if n else np.empty(0)
        probe_faults: dict[str, list[ActiveFault]] = {}
        for af in self.faults.values():
            if af.fault.kind.is_probe and af.fault.tag:
                probe_faults.setdefault(af.fault.tag, []).append(af)
        dt_sim = max(self.sim_s - self._last_publish_s, 0.0)
        self._last_publish_s = self.sim_s
        for k, (name, pb) in enumerate(self.probes.items()):
            tank = self.tanks[pb.tank]
            true = tank.quantity(pb.group)
            if pb.lag_s > 0:
                if pb.lagged is None:
                    pb.lagged = true
                else:
                    pb.lagged += (true - pb.lagged) * (1.0 - math.exp(-dt_sim / pb.lag_s))
                true = pb.lagged
            value = true + pb.offset + pb.noise * float(noise[k])
            if pb.group in ("current", "voltage") and tank.p.ripple_pct > 0:
                value += true * tank.p.ripple_pct / 100.0 * RIPPLE_RESIDUAL * float(noise[k])
            signal = Signal.OK
            for af in probe_faults.get(name, ()):
                f = af.fault
                if f.kind is FaultKind.STUCK:
                    value = af.stuck_value if af.stuck_value is not None else value
                elif f.kind is FaultKind.DRIFT:
                    value += f.rate_per_h * (self.sim_s - af.start_s) / 3600.0
                elif f.kind is FaultKind.OFFSET:
                    value += f.amplitude
                elif f.kind is FaultKind.NOISE:
                    value += f.amplitude * float(self.rng.standard_normal())
                elif f.kind is FaultKind.SPIKE:
                    if float(extra[k]) < (0.5 if f.probability is None else f.probability):
                        value += f.amplitude if self.rng.random() < 0.5 else -f.amplitude
                elif f.kind is FaultKind.OPEN_CIRCUIT:
                    signal = Signal.OPEN
                elif f.kind is FaultKind.SHORT:
                    signal = Signal.SHORT
            self.values[name] = value
            self.signals[name] = signal
            self._encode(pb.tag, value, signal)
        for name, rb in self.inputs.items():
            v = self.tanks[rb.tank].switch(rb.role)
            self.values[name] = v
            self._encode(rb.tag, v)
        line = self.plant.line
        for name, v in ((line.estop, self.estop), (line.plc_watchdog_tripped, self.watchdog_tripped)):
            if name and self.plant.has_tag(name):
                self.values[name] = v
                self._encode(self.plant.tag(name), v)
        for name in self.outputs:
            self.values.setdefault(name, self._decode(self.plant.tag(name)))

    # ------------------------------------------------------------------ truth and map
    def truth(self) -> dict[str, Any]:
        """The physical truth (not what the probes say): JSON-serialisable."""
        tanks: dict[str, Any] = {}
        for tid, t in self.tanks.items():
            s, p = t.s, t.p
            load = s.load
            tanks[tid] = {
                "temperature_c": s.temp_c,
                "ph": s.ph if p.has_ph else None,
                "current_a": s.current_a,
                "voltage_v": s.voltage_v,
                "amp_hours": s.amp_hours,
                "thickness_um": load.thickness_um if load else None,
                "load": None if load is None else {"area_dm2": load.area_dm2, "entered_s": load.entered_s,
                                                   "amp_hours": load.amp_hours, "thickness_um": load.thickness_um},
                "last_load": None if s.last_load is None else {
                    "area_dm2": s.last_load.area_dm2, "amp_hours": s.last_load.amp_hours,
                    "thickness_um": s.last_load.thickness_um},
                "level_l": s.level_l,
                "level_fraction": t.level_fraction,
                "conductivity_us_cm": s.conductivity_us if p.has_rinse else None,
                "exhaust_fan_running": s.fan_running,
                "rectifier_tripped": s.rectifier_tripped,
                "heater_overtemp": s.heater_overtemp,
                "acid_dosed_l": s.acid_dosed_l,
                "base_dosed_l": s.base_dosed_l,
                "heater_energy_kwh": s.energy_heater_kwh,
                "switches": {r: t.switch(r) for r in ("level_low", "level_low_low", "level_high", "load_present")},
                "outputs": dict(self.output_values[tid]),
            }
        return {
            "sim_time_s": self.sim_s,
            "real_time_s": self.real_s,
            "speed": self.speed,
            "estop": self.estop,
            "watchdog": {"enabled": self.watchdog_enabled, "tripped": self.watchdog_tripped,
                         "trips": self.watchdog_trips, "heartbeat": self._hb_value,
                         "since_change_s": self.real_s - self._hb_change_real},
            "tanks": tanks,
            "faults": self.active_faults(),
        }

    def meaning(self, name: str) -> str:
        """What a tag is bound to, in words (for the register map)."""
        line = self.plant.line
        if name in self.probes:
            pb = self.probes[name]
            n = len(self.plant.tank(pb.tank).sensors[pb.group].tags)
            return f"{pb.tank} {pb.group}" + (f" probe {chr(ord('a') + pb.index)}" if n > 1 else "")
        if name in self.inputs:
            rb = self.inputs[name]
            return f"{rb.tank} input {rb.role}"
        if name in self.outputs:
            ob = self.outputs[name]
            return f"{ob.tank} output {ob.role}"
        return {line.estop: "line e-stop chain open", line.heartbeat: "SCADA heartbeat (watchdog)",
                line.plc_watchdog_tripped: "PLC watchdog tripped"}.get(name, "memory (unbound)")

    def register_map(self) -> list[MapRow]:
        rows: list[MapRow] = []
        units = {d.name: d for d in self.plant.devices}
        for tag in self.plant.tags:
            dev = units.get(tag.device or "")
            if dev is None:
                continue
            scaling = ""
            if tag.scale is not None:
                sc = tag.scale
                scaling = f"{sc.raw_min:g}..{sc.raw_max:g} -> {sc.eng_min:g}..{sc.eng_max:g}"
                if tag.signal == "ma_4_20":
                    scaling += " (4-20 mA)"
            if tag.modbus is not None and not isinstance(dev, OpcUaDevice):
                m = tag.modbus
                wo = (m.word_order or dev.word_order).value if m.type.registers > 1 else "-"
                bo = (m.byte_order or dev.byte_order).value
                base = {ModbusTable.COIL: 1, ModbusTable.DISCRETE: 10001, ModbusTable.INPUT: 30001,
                        ModbusTable.HOLDING: 40001}[m.table]
                addr = f"{m.address}" if m.type.registers <= 1 else f"{m.span[0]}-{m.span[1]}"
                plc = f"{base + m.address:05d}" + (f".{m.bit}" if m.bit is not None else "")
                typ = m.type.value + ("" if bo == "big" else " (bytes swapped)")
                rows.append(MapRow(tag.name, dev.name, getattr(dev, "unit_id", None), m.table.value, addr, plc,
                                   typ, wo, scaling, tag.access.value, self.meaning(tag.name), tag.unit,
                                   tag.description))
            elif tag.opcua is not None:
                rows.append(MapRow(tag.name, dev.name, None, "opcua", tag.opcua.node, "-",
                                   tag.opcua.type or "double", "-", scaling, tag.access.value,
                                   self.meaning(tag.name), tag.unit, tag.description))
        return rows

    def tank_ids(self) -> Iterable[str]:
        return self.tanks.keys()
