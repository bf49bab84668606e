"""Per-probe sensor validation: a small state machine per probe, data in and data out.

Each scan the raw driver sample of one probe goes through, in order:

1. driver quality: Bad stays Bad (reason passed through); a missing or non-finite value is Bad;
2. NAMUR NE 43 on ``signal: ma_4_20`` tags (loop current from ``Sample.raw`` through the tag scale):
   < 3.6 mA or > 21.0 mA -> Bad ``sensor_failure`` (NE 107 F); 3.6-3.8 and 20.5-21.0 mA (the gaps
   between measurement and failure limits) -> Bad; 3.8-4.0 and 20.0-20.5 mA -> Uncertain, saturated
   (NE 107 S);
3. physical range (``group.range``) -> Bad ``out_of_range``;
4. rate of change: a step faster than ``rate_limit_per_s`` since the last accepted value is a spike:
   the sample is rejected and the last good value is held as Uncertain, for at most ``max_hold_scans``
   scans; a step that persists longer is real and is accepted (re-baselined), flagged Uncertain once;
5. stillness for the frozen check (the group decides, because "frozen" only means something while
   the redundant partners move; see :mod:`scada.voting`).

numpy does not pay here: the windows hold a few hundred points per probe and the sliding min/max is
kept with monotonic deques in O(1) per sample, which beats converting to arrays every scan.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from scada.config.tags import TagConfig
from scada.config.tanks import SensorGroupConfig
from scada.tags import NE107, Quality, QualityReason, Sample

NE43_FAIL_LOW_MA = 3.6
NE43_MEAS_LOW_MA = 3.8
NE43_FAIL_HIGH_MA = 21.0
NE43_MEAS_HIGH_MA = 20.5

DEFAULT_MAX_HOLD_SCANS = 3
MIN_RATE_WINDOW_S = 1.0
"""The rate limit is judged over at least this long: on fast scans (e.g. an extra scan 15 ms after
the last on a digital-input change) one quantisation step of a x10 integer would otherwise read as
several degC per second and be rejected as a spike."""


def loop_current_ma(tag: TagConfig, sample: Sample) -> float | None:
    """The 4-20 mA loop current of a sample: from ``raw`` when the driver kept it, else from the value."""
    if tag.scale is None:
        return None
    s = tag.scale
    raw = sample.raw
    if raw is None:
        if not isinstance(sample.value, int | float) or isinstance(sample.value, bool):
            return None
        raw = s.to_raw(float(sample.value))
    return 4.0 + 16.0 * (float(raw) - s.raw_min) / (s.raw_max - s.raw_min)


@dataclass(frozen=True, slots=True)
class Ne43Verdict:
    quality: Quality
    reason: QualityReason
    ne107: NE107
    detail: str


def ne43_check(ma: float) -> Ne43Verdict | None:
    """Classify a loop current per NAMUR NE 43; ``None`` when it is a normal measurement (4..20 mA)."""
    if ma < NE43_FAIL_LOW_MA:
        return Ne43Verdict(Quality.BAD, QualityReason.SENSOR_FAILURE, NE107.FAILURE,
                           f"NE 43 failure low: {ma:.2f} mA < {NE43_FAIL_LOW_MA} mA (wire break?)")
    if ma > NE43_FAIL_HIGH_MA:
        return Ne43Verdict(Quality.BAD, QualityReason.SENSOR_FAILURE, NE107.FAILURE,
                           f"NE 43 failure high: {ma:.2f} mA > {NE43_FAIL_HIGH_MA} mA")
    if ma < NE43_MEAS_LOW_MA:
        return Ne43Verdict(Quality.BAD, QualityReason.SENSOR_FAILURE, NE107.FAILURE,
                           f"NE 43: {ma:.2f} mA is between the failure limit and the measurement limit")
    if ma > NE43_MEAS_HIGH_MA:
        return Ne43Verdict(Quality.BAD, QualityReason.SENSOR_FAILURE, NE107.FAILURE,
                           f"NE 43: {ma:.2f} mA is between the measurement limit and the failure limit")
    if ma < 4.0:
        return Ne43Verdict(Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE, NE107.OUT_OF_SPECIFICATION,
                           f"NE 43 saturated low: {ma:.2f} mA")
    if ma > 20.0:
        return Ne43Verdict(Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE, NE107.OUT_OF_SPECIFICATION,
                           f"NE 43 saturated high: {ma:.2f} mA")
    return None


class SlidingRange:
    """Min and max of the values seen over the last ``window_s`` seconds, O(1) amortised per sample."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._first_ts: float | None = None
        self._mins: deque[tuple[float, float]] = deque()
        self._maxs: deque[tuple[float, float]] = deque()

    def clear(self) -> None:
        self._first_ts = None
        self._mins.clear()
        self._maxs.clear()

    def add(self, ts: float, x: float) -> None:
        if self._first_ts is None:
            self._first_ts = ts
        while self._mins and self._mins[-1][1] >= x:
            self._mins.pop()
        self._mins.append((ts, x))
        while self._maxs and self._maxs[-1][1] <= x:
            self._maxs.pop()
        self._maxs.append((ts, x))
        cut = ts - self.window_s
        while self._mins and self._mins[0][0] < cut:
            self._mins.popleft()
        while self._maxs and self._maxs[0][0] < cut:
            self._maxs.popleft()

    def full(self, now: float) -> bool:
        """True once the history covers a whole window."""
        return self._first_ts is not None and now - self._first_ts >= self.window_s

    def spread(self) -> float:
        if not self._mins:
            return 0.0
        return self._maxs[0][1] - self._mins[0][1]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Validated sample of one probe plus what the checks found (``flags``: ``spike``, ``saturated``...)."""

    tag: str
    sample: Sample
    raw_sample: Sample
    flags: frozenset[str] = frozenset()
    still: bool = False
    """No change beyond epsilon over a full frozen window (the group turns this into ``frozen``)."""
    moving: bool = False
    """Changed beyond epsilon over a full frozen window."""


class ProbeValidator:
    """Validation state of one probe: last accepted value, spike hold counter, stillness window."""

    def __init__(
        self,
        tag: TagConfig | str,
        group: SensorGroupConfig,
        *,
        max_hold_scans: int = DEFAULT_MAX_HOLD_SCANS,
    ) -> None:
        self.tag = tag if isinstance(tag, TagConfig) else None
        self.name = tag.name if isinstance(tag, TagConfig) else tag
        self.group = group
        self.max_hold_scans = max_hold_scans
        self.last_good: float | None = None
        self.last_good_ts: float | None = None
        self.held_scans = 0
        self.window = SlidingRange(group.frozen.window_s) if group.frozen else None

    def reset(self) -> None:
        self.last_good = None
        self.last_good_ts = None
        self.held_scans = 0
        if self.window:
            self.window.clear()

    def _bad(self, raw: Sample, reason: QualityReason, detail: str,
             ne107: NE107 = NE107.FAILURE, flags: frozenset[str] = frozenset()) -> ProbeResult:
        self.held_scans = 0
        if self.window:
            self.window.clear()
        s = replace(raw, quality=Quality.BAD, reason=reason, detail=detail, ne107=ne107)
        return ProbeResult(self.name, s, raw, flags)

    def validate(self, raw: Sample, now: float) -> ProbeResult:
        """Apply every check to one driver sample taken at scan time ``now`` (monotonic seconds)."""
        if raw.quality is Quality.BAD:
            ne = raw.ne107 if raw.ne107 is not NE107.OK else NE107.FAILURE
            self.held_scans = 0
            if self.window:
                self.window.clear()
            return ProbeResult(self.name, replace(raw, ne107=ne), raw, frozenset({"driver_bad"}))
        v = raw.value
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
            return self._bad(raw, QualityReason.SENSOR_FAILURE, f"not a finite number: {v!r}",
                             flags=frozenset({"not_finite"}))
        x = float(v)
        quality = raw.quality
        reason = raw.reason
        ne107 = raw.ne107
        detail = raw.detail
        flags: set[str] = set()
        if self.tag is not None and self.tag.signal == "ma_4_20":
            ma = loop_current_ma(self.tag, raw)
            verdict = ne43_check(ma) if ma is not None else None
            if verdict is not None:
                if verdict.quality is Quality.BAD:
                    return self._bad(raw, verdict.reason, verdict.detail, verdict.ne107,
                                     frozenset({"ne43_failure"}))
                quality, reason, ne107, detail = verdict.quality, verdict.reason, verdict.ne107, verdict.detail
                flags.add("saturated")
        rng = self.group.range
        if rng is not None and not rng.contains(x):
            return self._bad(raw, QualityReason.OUT_OF_RANGE,
                             f"{x:g} outside the physical range {rng.min:g}..{rng.max:g}",
                             flags=frozenset({"out_of_range"}))
        rate = self.group.rate_limit_per_s
        if rate is not None and self.last_good is not None and self.last_good_ts is not None:
            dt = now - self.last_good_ts
            step = abs(x - self.last_good)
            if step > rate * max(dt, MIN_RATE_WINDOW_S) and step > 0:
                if self.held_scans < self.max_hold_scans:
                    self.held_scans += 1
                    held = Sample(
                        value=self.last_good, quality=Quality.UNCERTAIN, server_ts=raw.server_ts,
                        source_ts=raw.source_ts, reason=QualityReason.LAST_KNOWN_VALUE, raw=raw.raw,
                        ne107=NE107.OUT_OF_SPECIFICATION,
                        detail=f"spike rejected: {x:g} is a step of {step:g} in {dt:g} s "
                               f"(limit {rate:g}/s); holding last good {self.last_good:g} "
                               f"({self.held_scans}/{self.max_hold_scans})",
                    )
                    return ProbeResult(self.name, held, raw, frozenset({"spike", *flags}))
                flags.add("step_accepted")
                quality = Quality.UNCERTAIN
                reason = QualityReason.SENSOR_NOT_ACCURATE
                ne107 = NE107.OUT_OF_SPECIFICATION
                detail = f"step of {step:g} persisted {self.held_scans} scans: accepted as real"
        self.held_scans = 0
        self.last_good = x
        self.last_good_ts = now
        still = moving = False
        if self.window is not None and self.group.frozen is not None:
            self.window.add(now, x)
            if self.window.full(now):
                spread = self.window.spread()
                still = spread <= self.group.frozen.epsilon
                moving = not still
        if x == v and type(v) is float and quality is raw.quality and reason is raw.reason and detail == raw.detail:
            s = raw  # the common Good path: no copy
        else:
            s = replace(raw, value=x, quality=quality, reason=reason, ne107=ne107, detail=detail)
        return ProbeResult(self.name, s, raw, frozenset(flags), still=still, moving=moving)
