"""Amp-hour counters per rectifier and additive dosing by amp-hours.

Integration rule (:class:`AmpHourCounter`): trapezoidal on ``(ts, current)`` between consecutive
*usable* samples (Good or Uncertain with a finite value; the source timestamp when the device gave
one, else the server timestamp).

* A Bad sample is not integrated and does not restart the chain: the next usable sample is joined
  to the last usable one -- as long as the gap is at most ``max_gap_s`` (the service uses
  ``max_gap_scans`` x the scan period, default 4 scans). A longer gap is not bridged: that time
  counts as ``unmeasured_s`` (visible in the load's record) and its charge is lost rather than
  guessed. A restart is such a gap: it runs from the time of the last stored update (``resume_ts``)
  to the first sample after the restart.
* A negative current (noise around zero, a reversed shunt) is integrated as 0: the counter never
  runs backwards.

Dosing (:class:`AdditiveDoser`): per additive, ``Ah since the last dose`` accumulates; when it
reaches ``dose_ml / ml_per_kah`` kAh a dose of ``dose_ml`` (a backlog up to ``max_single_ml``) starts
and the pump output is on for ``volume / pump_ml_min`` minutes. The dosed volume's amp-hours are
deducted when the dose *starts*; a dose cut short (interlock, output blocked) credits back what was
not pumped. A server crash mid-dose therefore under-doses rather than doses twice. Each dose is
journalled as ``Event(kind=DOSE)`` with ``state`` ``started`` / ``done`` / ``aborted``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scada.config.tanks import AdditiveConfig
from scada.events import Event, EventKind
from scada.tags import Sample


@dataclass(frozen=True, slots=True)
class Integration:
    """What one sample added: charge (Ah) and the time that could not be integrated (s)."""

    amp_hours: float = 0.0
    unmeasured_s: float = 0.0
    start_ts: float | None = None
    """Start of the interval this sample closed (end = the sample's time)."""
    end_ts: float | None = None


@dataclass
class AmpHourCounter:
    """Totaliser of one tank's rectifier. ``total_ah`` and ``unmeasured_s`` are persisted."""

    tank: str
    max_gap_s: float
    total_ah: float = 0.0
    unmeasured_s: float = 0.0
    updated_ts: float | None = None
    resume_ts: float | None = None
    """After a restart: time up to which the stored total is complete (the gap after it is unmeasured)."""
    _last: tuple[float, float] | None = field(default=None, repr=False)

    def update(self, sample: Sample | None) -> Integration:
        """Integrate one scan's measured current."""
        if sample is None or not sample.usable:
            return Integration()
        ts = sample.source_ts if sample.source_ts is not None else sample.server_ts
        value = sample.value
        assert value is not None
        current = max(0.0, float(value))
        if not math.isfinite(current):
            return Integration()
        last = self._last
        if last is not None and ts <= last[0]:
            return Integration()  # the same sample again (no new reading this scan)
        self._last = (ts, current)
        self.updated_ts = ts
        if last is None:
            resume, self.resume_ts = self.resume_ts, None
            if resume is not None and ts - resume > self.max_gap_s:
                self.unmeasured_s += ts - resume
                return Integration(unmeasured_s=ts - resume, start_ts=resume, end_ts=ts)
            return Integration()
        dt = ts - last[0]
        if dt > self.max_gap_s:
            self.unmeasured_s += dt
            return Integration(unmeasured_s=dt, start_ts=last[0], end_ts=ts)
        ah = (last[1] + current) * 0.5 * dt / 3600.0
        self.total_ah += ah
        return Integration(amp_hours=ah, start_ts=last[0], end_ts=ts)


@dataclass
class DoseState:
    """Persisted per additive: amp-hours since the last dose."""

    ah_since_dose: float = 0.0
    last_dose_ts: float | None = None


@dataclass
class AdditiveDoser:
    """Replenishes one additive of one tank by amp-hours through a dosing-pump output."""

    tank: str
    config: AdditiveConfig
    output_tag: str
    state: DoseState = field(default_factory=DoseState)
    running_since: float | None = None
    run_s: float = 0.0
    volume_ml: float = 0.0

    @property
    def threshold_ah(self) -> float:
        return self.config.dose_ml / self.config.ml_per_kah * 1000.0

    @property
    def running(self) -> bool:
        return self.running_since is not None

    def _ah_of(self, ml: float) -> float:
        return ml / self.config.ml_per_kah * 1000.0

    def step(self, ts: float, amp_hours: float, *, blocked: str | None = None) -> tuple[bool, list[Event]]:
        """Add this scan's charge; return (pump output command, dose events).

        ``blocked``: why the pump may not run now (an interlock acting on it, output write failing); a
        running dose is then aborted and no new one starts.
        """
        self.state.ah_since_dose += max(0.0, amp_hours)
        events: list[Event] = []
        if self.running_since is not None:
            elapsed = ts - self.running_since
            if blocked is not None:
                pumped = min(self.volume_ml, max(0.0, elapsed) / 60.0 * self.config.pump_ml_min)
                self.state.ah_since_dose += self._ah_of(self.volume_ml - pumped)
                events.append(self._event(ts, "aborted", pumped, f"dose of {self.config.name} in {self.tank} aborted "
                                          f"after {pumped:.0f} of {self.volume_ml:.0f} mL: {blocked}"))
                self.running_since = None
                return False, events
            if elapsed >= self.run_s:
                events.append(self._event(ts, "done", self.volume_ml,
                                          f"dosed {self.volume_ml:.0f} mL {self.config.name} into {self.tank}"))
                self.running_since = None
                self.state.last_dose_ts = ts
                return False, events
            return True, events
        if blocked is None and self.state.ah_since_dose >= self.threshold_ah:
            backlog_ml = self.state.ah_since_dose * self.config.ml_per_kah / 1000.0
            cap = self.config.max_single_ml or self.config.dose_ml
            self.volume_ml = min(backlog_ml, cap) if backlog_ml > self.config.dose_ml else self.config.dose_ml
            self.state.ah_since_dose -= self._ah_of(self.volume_ml)
            self.run_s = self.volume_ml / self.config.pump_ml_min * 60.0
            self.running_since = ts
            events.append(self._event(ts, "started", self.volume_ml,
                                      f"dosing {self.volume_ml:.0f} mL {self.config.name} into {self.tank} "
                                      f"({self.run_s:.0f} s)"))
            return True, events
        return False, events

    def _event(self, ts: float, state: str, ml: float, message: str) -> Event:
        data: dict[str, Any] = {"additive": self.config.name, "volume_ml": ml, "planned_ml": self.volume_ml,
                                "run_s": self.run_s, "output": self.output_tag,
                                "ah_since_dose": self.state.ah_since_dose, "ml_per_kah": self.config.ml_per_kah}
        return Event(ts=ts, kind=EventKind.DOSE, source=f"{self.tank}.{self.config.name}", tank=self.tank,
                     state=state, value=ml, message=message, data=data)
