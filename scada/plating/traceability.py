"""Per-load traceability record (the electronic traveller) and its JSON, CSV and HTML renderings.

:func:`build_record` is pure: the load (with its visits and amp-hours), the recipe version it ran
with, the plant, the history samples of the tanks' voted values and the journal events of the load's
time span go in; a :class:`LoadRecord` comes out. For each visit it gives the entry/exit times,
dwell against its window, min/max/avg temperature and pH (avg = mean of the usable samples; Bad
samples are counted, never used), amp-hours, average current and current density, the deposit
thickness by Faraday's law (scada/plating/faraday.py), the alarms, interlock trips, doses and
operator actions during the dwell, and why it does not conform, if it does not.

Non-conforming (strict, as aerospace and automotive customers read a record) when: a usable
temperature/pH sample lies outside the step's window (the recipe's, else the tank's process window);
a windowed quantity has no usable sample in the dwell (conformance cannot be shown); the dwell is
under its minimum or over its maximum; a recipe step was skipped or a tank not in the recipe was
visited; an interlock tripped during the dwell; the current of a plating step was not measured for
part of the dwell (amp-hours incomplete).
"""

from __future__ import annotations

import csv
import html
import io
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scada.config import PlantConfig, Range, TankConfig
from scada.events import Event, EventKind
from scada.plating.faraday import deposit_params, thickness_um
from scada.plating.loads import Load, LoadVisit
from scada.plating.recipes import Recipe, RecipeStep
from scada.tags import Sample

TREND_GROUPS = ("temperature", "ph", "current")
_UNITS = {"temperature": "degC", "ph": "pH", "current": "A"}


@dataclass(frozen=True, slots=True)
class SeriesStats:
    """Statistics of one quantity during one dwell (usable samples only)."""

    count: int
    bad_count: int
    min: float | None
    max: float | None
    avg: float | None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    ts: float
    value: float | None
    quality: str


@dataclass
class StepRecord:
    """One visit of the load to a tank."""

    seq: int
    tank: str
    tank_name: str
    step_index: int | None
    entry_ts: float
    exit_ts: float | None
    dwell_s: float
    dwell_min_s: float | None
    dwell_max_s: float | None
    entry_source: str
    exit_source: str | None
    temperature: SeriesStats | None = None
    ph: SeriesStats | None = None
    temperature_window: tuple[float, float] | None = None
    ph_window: tuple[float, float] | None = None
    amp_hours: float = 0.0
    unmeasured_s: float = 0.0
    avg_current_a: float | None = None
    avg_current_density_a_dm2: float | None = None
    current_density_setpoint_a_dm2: float | None = None
    metal: str | None = None
    efficiency: float | None = None
    thickness_um: float | None = None
    alarms: list[dict[str, Any]] = field(default_factory=list)
    interlocks: list[dict[str, Any]] = field(default_factory=list)
    doses: list[dict[str, Any]] = field(default_factory=list)
    operator_actions: list[dict[str, Any]] = field(default_factory=list)
    nonconformities: list[str] = field(default_factory=list)
    trends: dict[str, list[TrendPoint]] = field(default_factory=dict)

    @property
    def conforming(self) -> bool:
        return not self.nonconformities


@dataclass
class LoadRecord:
    load: dict[str, Any]
    recipe: dict[str, Any] | None
    steps: list[StepRecord]
    nonconformities: list[str]
    """Every reason, prefixed with the step it belongs to."""
    amp_hours: float
    thickness_um: dict[str, float]
    """Total estimated deposit per metal (µm)."""
    generated_ts: float

    @property
    def conforming(self) -> bool:
        return not self.nonconformities

    # ---------------------------------------------------------------- renderings
    def to_dict(self, *, trends: bool = False) -> dict[str, Any]:
        """JSON-serialisable dict (trend points only when asked: they are large)."""
        steps = []
        for s in self.steps:
            d = asdict(s)
            d["conforming"] = s.conforming
            if not trends:
                d.pop("trends")
            steps.append(d)
        return {"load": self.load, "recipe": self.recipe, "conforming": self.conforming,
                "nonconformities": self.nonconformities, "amp_hours": self.amp_hours,
                "thickness_um": self.thickness_um, "generated_ts": self.generated_ts, "steps": steps}

    def to_csv(self) -> str:
        """One row per tank visit, with the load's identity repeated (spreadsheet-friendly).

        Text typed by people (ids, part number, order) is neutralised against spreadsheet formula
        injection: a cell starting with ``= + - @`` or a control character gets a leading quote."""
        cols = ["load_id", "part_number", "quantity", "area_dm2", "customer_order", "recipe_id", "recipe_version",
                "seq", "tank", "step_index", "entry_utc", "exit_utc", "dwell_s", "dwell_min_s", "dwell_max_s",
                "temp_min", "temp_avg", "temp_max", "ph_min", "ph_avg", "ph_max", "amp_hours", "avg_current_a",
                "avg_cd_a_dm2", "thickness_um", "alarms", "interlock_trips", "conforming", "nonconformities"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        ld = self.load

        def st(s: SeriesStats | None, k: str) -> str:
            v = None if s is None else getattr(s, k)
            return "" if v is None else f"{v:.3f}"

        def num(v: float | None, fmt: str = ".3f") -> str:
            return "" if v is None else format(v, fmt)

        for s in self.steps:
            w.writerow([
                _text_cell(ld["id"]), _text_cell(ld["part_number"]), ld["quantity"], ld["area_dm2"],
                _text_cell(ld["customer_order"]), _text_cell(ld["recipe_id"]),
                ld["recipe_version"], s.seq, s.tank, "" if s.step_index is None else s.step_index,
                _utc(s.entry_ts), "" if s.exit_ts is None else _utc(s.exit_ts), f"{s.dwell_s:.1f}",
                num(s.dwell_min_s, "g"), num(s.dwell_max_s, "g"), st(s.temperature, "min"), st(s.temperature, "avg"),
                st(s.temperature, "max"), st(s.ph, "min"), st(s.ph, "avg"), st(s.ph, "max"), f"{s.amp_hours:.4f}",
                num(s.avg_current_a), num(s.avg_current_density_a_dm2), num(s.thickness_um), len(s.alarms),
                len(s.interlocks), "yes" if s.conforming else "no", _text_cell(" | ".join(s.nonconformities)),
            ])
        return buf.getvalue()

    def to_html(self) -> str:
        """A printable, self-contained page (no external assets; every text escaped)."""
        e = html.escape
        ld = self.load
        verdict = "CONFORMING" if self.conforming else "NON-CONFORMING"
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Load record {e(str(ld['id']))}</title>",
            "<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;"
            "margin:.5em 0}td,th{border:1px solid #999;padding:2px 6px;text-align:left;font-size:.9em}"
            ".nc{color:#a00;font-weight:bold}.ok{color:#060;font-weight:bold}section{page-break-inside:avoid;"
            "margin-bottom:1.5em}svg{border:1px solid #ccc;margin-right:8px}@media print{a{display:none}}</style>",
            "</head><body>",
            f"<h1>Load {e(str(ld['id']))} &mdash; <span id='verdict' class='{'ok' if self.conforming else 'nc'}'>"
            f"{verdict}</span></h1>",
            "<table id='identity'>",
        ]
        rows = [("Part number", ld["part_number"]), ("Quantity", ld["quantity"]),
                ("Surface area (dm2)", f"{ld['area_dm2']:g}"), ("Customer order", ld["customer_order"]),
                ("Recipe", f"{ld['recipe_id']} v{ld['recipe_version']}"), ("Status", ld["status"]),
                ("Created", f"{_utc(ld['created_ts'])} by {ld['created_by']}"),
                ("Amp-hours", f"{self.amp_hours:.3f}"),
                ("Thickness (µm)", ", ".join(f"{m} {t:.2f}" for m, t in self.thickness_um.items()) or "-"),
                ("Report generated", _utc(self.generated_ts))]
        parts += [f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in rows]
        parts.append("</table>")
        if self.nonconformities:
            parts.append("<h2>Non-conformities</h2><ul id='nonconformities'>")
            parts += [f"<li class='nc'>{e(r)}</li>" for r in self.nonconformities]
            parts.append("</ul>")
        parts.append("<h2>Tanks</h2><table id='steps'><tr><th>#</th><th>Tank</th><th>Entry (UTC)</th>"
                     "<th>Exit (UTC)</th><th>Dwell s (window)</th><th>Temp min/avg/max</th><th>pH min/avg/max</th>"
                     "<th>Ah</th><th>Avg A/dm2</th><th>µm</th><th>OK</th></tr>")
        for s in self.steps:
            dwell_win = "" if s.dwell_min_s is None else f" ({s.dwell_min_s:g}-{s.dwell_max_s:g})"
            parts.append(
                f"<tr><td>{s.seq}</td><td>{e(s.tank_name)}</td><td>{e(_utc(s.entry_ts))}</td>"
                f"<td>{e('' if s.exit_ts is None else _utc(s.exit_ts))}</td><td>{s.dwell_s:.0f}{e(dwell_win)}</td>"
                f"<td>{e(_stats(s.temperature))}</td><td>{e(_stats(s.ph))}</td><td>{s.amp_hours:.3f}</td>"
                f"<td>{e(_fmt(s.avg_current_density_a_dm2))}</td><td>{e(_fmt(s.thickness_um))}</td>"
                f"<td class='{'ok' if s.conforming else 'nc'}'>{'yes' if s.conforming else 'NO'}</td></tr>")
        parts.append("</table>")
        for s in self.steps:
            parts.append(f"<section class='step' id='step-{s.seq}'><h3>{s.seq}. {e(s.tank_name)} ({e(s.tank)})</h3>")
            for r in s.nonconformities:
                parts.append(f"<p class='nc'>{e(r)}</p>")
            windows = {"temperature": s.temperature_window, "ph": s.ph_window}
            for group in TREND_GROUPS:
                pts = s.trends.get(group)
                if pts:
                    parts.append(_svg(group, pts, s.entry_ts, s.exit_ts or pts[-1].ts, windows.get(group)))
            lists = (("Alarms", s.alarms), ("Interlock trips", s.interlocks), ("Doses", s.doses),
                     ("Operator actions", s.operator_actions))
            for title, items in lists:
                if items:
                    parts.append(f"<h4>{e(title)}</h4><ul>")
                    parts += [f"<li>{e(_utc(i['ts']))} {e(str(i.get('source', '')))} {e(str(i.get('state') or ''))} "
                              f"{e(str(i.get('message') or ''))} {e(str(i.get('user') or ''))}</li>" for i in items]
                    parts.append("</ul>")
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f".{int((ts % 1) * 10)}Z"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _stats(s: SeriesStats | None) -> str:
    if s is None or s.min is None or s.avg is None or s.max is None:
        return "-"
    return f"{s.min:.2f} / {s.avg:.2f} / {s.max:.2f}"


def _svg(group: str, pts: Sequence[TrendPoint], t0: float, t1: float, window: tuple[float, float] | None) -> str:
    """A small inline SVG line plot of one quantity over the dwell, window shaded, Bad gaps broken."""
    w, h, ml, mr, mt, mb = 360, 140, 44, 8, 18, 22
    vals = [p.value for p in pts if p.value is not None and p.quality != "bad"]
    lo_hi = list(vals) + (list(window) if window else [])
    if not lo_hi:
        return ""
    lo, hi = min(lo_hi), max(lo_hi)
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    span = max(t1 - t0, 1e-9)

    def x(ts: float) -> float:
        return ml + (w - ml - mr) * (min(max(ts, t0), t1) - t0) / span

    def y(v: float) -> float:
        return mt + (h - mt - mb) * (hi - v) / (hi - lo)

    out = [f"<svg class='trend' data-quantity='{html.escape(group)}' xmlns='http://www.w3.org/2000/svg' "
           f"width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img' "
           f"aria-label='{html.escape(group)} during the dwell'>"]
    if window:
        out.append(f"<rect x='{ml}' y='{y(window[1]):.1f}' width='{w - ml - mr}' "
                   f"height='{max(0.0, y(window[0]) - y(window[1])):.1f}' fill='#dfd' />")
    segments: list[list[str]] = [[]]
    for p in pts:
        if p.value is None or p.quality == "bad" or not math.isfinite(p.value):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{x(p.ts):.1f},{y(p.value):.1f}")
    for seg in segments:
        if seg:
            out.append(f"<polyline fill='none' stroke='#036' stroke-width='1.2' points='{' '.join(seg)}' />")
    unit = _UNITS.get(group, "")
    out.append(f"<text x='2' y='{mt + 4}' font-size='10'>{hi:.3g}</text>")
    out.append(f"<text x='2' y='{h - mb}' font-size='10'>{lo:.3g}</text>")
    out.append(f"<text x='{ml}' y='12' font-size='11'>{html.escape(group)} ({html.escape(unit)})</text>")
    out.append(f"<text x='{ml}' y='{h - 6}' font-size='10'>0 min</text>")
    out.append(f"<text x='{w - mr - 50}' y='{h - 6}' font-size='10'>{span / 60:.1f} min</text>")
    out.append("</svg>")
    return "".join(out)


def _series(samples: Sequence[Sample], t0: float, t1: float) -> tuple[list[Sample], SeriesStats]:
    inside = [s for s in samples if t0 <= _ts(s) <= t1]
    usable = [float(s.value) for s in inside if s.usable and s.value is not None]  # type: ignore[arg-type]
    bad = len(inside) - len(usable)
    if not usable:
        return inside, SeriesStats(0, bad, None, None, None)
    return inside, SeriesStats(len(usable), bad, min(usable), max(usable), sum(usable) / len(usable))


def _ts(s: Sample) -> float:
    return s.source_ts if s.source_ts is not None else s.server_ts


def _window(step: RecipeStep | None, tank: TankConfig, key: str) -> Range | None:
    win = None if step is None else getattr(step, key)
    return win if win is not None else getattr(tank.window, key)


def _event_dict(ev: Event) -> dict[str, Any]:
    return {"ts": ev.ts, "kind": str(ev.kind), "source": ev.source, "state": ev.state, "message": ev.message,
            "priority": ev.priority, "user": ev.user, "value": ev.value}


def build_record(
    load: Load,
    recipe: Recipe | None,
    plant: PlantConfig,
    history: Mapping[str, Sequence[Sample]],
    events: Sequence[Event],
    *,
    now: float,
) -> LoadRecord:
    """The traceability record of a load (finished or still on the line: open visits end at ``now``)."""
    tanks = {t.id: t for t in plant.tanks}
    prefix = plant.line.prefix
    steps: list[StepRecord] = []
    thickness: dict[str, float] = {}
    for seq, visit in enumerate(load.visits, start=1):
        tank = tanks.get(visit.tank)
        if tank is None:  # the config changed since: keep what we know
            steps.append(StepRecord(seq, visit.tank, visit.tank, visit.step_index, visit.entry_ts, visit.exit_ts,
                                    (visit.exit_ts or now) - visit.entry_ts, None, None, str(visit.entry_source),
                                    None if visit.exit_source is None else str(visit.exit_source),
                                    amp_hours=visit.amp_hours, nonconformities=[f"tank {visit.tank!r} unknown"]))
            continue
        steps.append(_step_record(seq, visit, load, recipe, tank, prefix, history, events, now, thickness))
    reasons = [f"{s.seq}. {s.tank}: {r}" for s in steps for r in s.nonconformities]
    if recipe is None:
        reasons.insert(0, f"recipe {load.recipe_id} v{load.recipe_version} not found")
    else:
        done = {v.step_index for v in load.visits if v.step_index is not None and v.exit_ts is not None}
        last = max(done, default=-1)
        upto = len(recipe.steps) if not load.status.active else last + 1
        for i in range(upto):
            if i not in done:
                reasons.append(f"recipe step {i} ({recipe.steps[i].tank}) was not done")
    return LoadRecord(load=load.to_dict(), recipe=None if recipe is None else recipe.to_dict(), steps=steps,
                      nonconformities=reasons, amp_hours=load.amp_hours, thickness_um=thickness, generated_ts=now)


def _step_record(
    seq: int, visit: LoadVisit, load: Load, recipe: Recipe | None, tank: TankConfig, prefix: str,
    history: Mapping[str, Sequence[Sample]], events: Sequence[Event], now: float, thickness: dict[str, float],
) -> StepRecord:
    step = None if recipe is None or visit.step_index is None else recipe.steps[visit.step_index]
    t0, t1 = visit.entry_ts, visit.exit_ts if visit.exit_ts is not None else now
    dwell = t1 - t0
    rec = StepRecord(seq, tank.id, tank.name, visit.step_index, t0, visit.exit_ts, dwell,
                     None if step is None else step.dwell_min_s, None if step is None else step.dwell_max_s,
                     str(visit.entry_source), None if visit.exit_source is None else str(visit.exit_source),
                     amp_hours=visit.amp_hours, unmeasured_s=visit.unmeasured_s)
    nc = rec.nonconformities
    if step is None:
        nc.append("tank is not a step of the recipe at this point (out of sequence)")
    else:
        if visit.exit_ts is not None and dwell < step.dwell_min_s:
            nc.append(f"under-dwell: {dwell:.0f} s < minimum {step.dwell_min_s:g} s")
        if dwell > step.dwell_max_s:
            nc.append(f"over-dwell: {dwell:.0f} s > maximum {step.dwell_max_s:g} s")
    for group, key in (("temperature", "temperature_c"), ("ph", "ph"), ("current", None)):
        if group not in tank.sensors:
            continue
        samples, stats = _series(history.get(tank.pv_tag(prefix, group), ()), t0, t1)
        rec.trends[group] = [TrendPoint(_ts(s), None if s.value is None else float(s.value), s.quality.label)
                             for s in samples]
        if key is None:
            continue
        win = _window(step, tank, key)
        setattr(rec, group, stats)
        if win is None:
            continue
        setattr(rec, f"{group}_window", (win.min, win.max))
        unit = _UNITS[group]
        if stats.count == 0:
            nc.append(f"no valid {group} reading during the dwell: conformance cannot be shown")
            continue
        low = [s for s in samples if s.usable and float(s.value) < win.min]  # type: ignore[arg-type]
        high = [s for s in samples if s.usable and float(s.value) > win.max]  # type: ignore[arg-type]
        if low:
            nc.append(f"{group} below window {win.min:g}..{win.max:g} {unit}: min {stats.min:.2f} "
                      f"({len(low)} sample(s) from {_utc(_ts(low[0]))})")
        if high:
            nc.append(f"{group} above window {win.min:g}..{win.max:g} {unit}: max {stats.max:.2f} "
                      f"({len(high)} sample(s) from {_utc(_ts(high[0]))})")
    if step is not None and step.electrical:
        rec.current_density_setpoint_a_dm2 = (step.current_density_a_dm2 if step.current_density_a_dm2 is not None
                                              else (step.current_a or 0.0) / load.area_dm2)
        if visit.unmeasured_s > 0:
            nc.append(f"current not measured for {visit.unmeasured_s:.0f} s: amp-hours incomplete")
    if dwell > 0:
        rec.avg_current_a = visit.amp_hours * 3600.0 / dwell
        rec.avg_current_density_a_dm2 = rec.avg_current_a / load.area_dm2
    params = deposit_params(tank)
    if params is not None and (visit.amp_hours > 0 or (step is not None and step.electrical)):
        eta = step.efficiency if step is not None and step.efficiency is not None else params.efficiency
        rec.metal, rec.efficiency = params.metal, eta
        rec.thickness_um = thickness_um(params, visit.amp_hours, load.area_dm2, eta)
        thickness[params.metal] = thickness.get(params.metal, 0.0) + rec.thickness_um
    for ev in events:
        if not (t0 <= ev.ts <= t1):
            continue
        if ev.kind is EventKind.LOAD and ev.source == load.id:
            if ev.user:
                rec.operator_actions.append(_event_dict(ev))
            continue
        if ev.tank != tank.id:
            continue
        if ev.kind is EventKind.ALARM or (ev.kind is EventKind.LOAD and ev.data.get("alarm")):
            if ev.kind is EventKind.LOAD and ev.data.get("load") not in (None, load.id):
                continue
            rec.alarms.append(_event_dict(ev))
        elif ev.kind is EventKind.INTERLOCK:
            rec.interlocks.append(_event_dict(ev))
            if ev.state == "tripped":
                nc.append(f"interlock {ev.source} tripped at {_utc(ev.ts)}")
        elif ev.kind is EventKind.DOSE:
            rec.doses.append(_event_dict(ev))
        elif ev.kind is EventKind.AUDIT:
            rec.operator_actions.append(_event_dict(ev))
    return rec



def _text_cell(v: object) -> object:
    """A CSV cell that a spreadsheet will show as text, never evaluate as a formula (OWASP CSV injection)."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v
