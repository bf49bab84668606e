"""Redundancy groups: validate every probe, then vote them into one process value with diagnostics.

Schemes (channels that are Good after validation and not excluded take part in the vote):

* ``2oo3`` -- median of three; a probe further than ``discrepancy`` from the median for longer than
  ``discrepancy_delay_s`` is excluded and flagged. Two left: their average (Good, ``degraded``, NE 107 M);
  if those two disagree beyond the delay, the ``safe_direction`` one as Uncertain ``discrepancy``.
  One left: that one, Uncertain, ``degraded``. None: Bad.
* ``1oo2`` -- the ``safe_direction`` channel (``high``: max, ``low``: min, ``none``: average); a
  disagreement beyond the delay raises the discrepancy flag and makes the value Uncertain. One left:
  Uncertain ``degraded``.
* ``2oo2`` -- the opposite pick (``high``: min, so both must exceed a trip limit), same discrepancy rule.
* ``1oo1`` -- the validated probe as is.

When no channel is Good but some are usable (Uncertain: a spike hold, a saturated loop), the group
votes those and says Uncertain, so a step seen by every probe is not turned into Bad.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from scada.config.tags import TagConfig
from scada.config.tanks import SensorGroupConfig, Voting
from scada.tags import NE107, Quality, QualityReason, Sample, Value
from scada.validation import DEFAULT_MAX_HOLD_SCANS, ProbeResult, ProbeValidator

_COMM_REASONS = {QualityReason.COMM_FAILURE, QualityReason.NOT_CONNECTED, QualityReason.WAITING_FOR_INITIAL_DATA}


@dataclass(frozen=True, slots=True)
class ProbeDiagnostic:
    """What the HMI shows for one probe of a group."""

    tag: str
    value: Value
    quality: Quality
    reason: QualityReason
    detail: str
    ne107: NE107
    excluded: bool
    deviation: float | None
    """Distance from the voted value (``None`` when either is unusable)."""
    flags: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, object]:
        return {
            "tag": self.tag, "value": self.value, "quality": self.quality.label, "reason": str(self.reason),
            "detail": self.detail, "ne107": str(self.ne107), "excluded": self.excluded,
            "deviation": self.deviation, "flags": sorted(self.flags),
        }


@dataclass(frozen=True, slots=True)
class VoteResult:
    """Output of one group for one scan: the validated PV plus per-probe diagnostics."""

    group: str
    voting: Voting
    pv: Sample
    good: int
    """Channels that took part in the vote."""
    degraded: bool
    discrepancy: bool
    probes: tuple[ProbeDiagnostic, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        return {
            "group": self.group, "voting": self.voting.value, "pv": self.pv.to_dict(), "good": self.good,
            "degraded": self.degraded, "discrepancy": self.discrepancy,
            "probes": [p.to_dict() for p in self.probes],
        }


def median3(a: float, b: float, c: float) -> float:
    """Mid-of-three (MIDOF3)."""
    return min(max(a, b), max(b, c), max(a, c))


def _pick(values: list[float], direction: str) -> float:
    if direction == "high":
        return max(values)
    if direction == "low":
        return min(values)
    return sum(values) / len(values)


class GroupVoter:
    """Validation and voting state of one sensor group (timers for discrepancy and exclusion)."""

    def __init__(
        self,
        name: str,
        group: SensorGroupConfig,
        tags: Mapping[str, TagConfig] | None = None,
        *,
        max_hold_scans: int = DEFAULT_MAX_HOLD_SCANS,
    ) -> None:
        self.name = name
        self.group = group
        tags = tags or {}
        self.validators = [
            ProbeValidator(tags.get(t, t), group, max_hold_scans=max_hold_scans) for t in group.tags
        ]
        self._dev_since: dict[str, float | None] = {t: None for t in group.tags}
        self._excluded: dict[str, bool] = {t: False for t in group.tags}
        self._pair_since: float | None = None
        self._pair_key: tuple[str, ...] = ()

    # ------------------------------------------------------------------ steps

    def _frozen(self, results: list[ProbeResult]) -> list[ProbeResult]:
        """A still probe is frozen when every usable partner moved over the same window."""
        if self.group.frozen is None:
            return results
        out = []
        for i, r in enumerate(results):
            if r.still and r.sample.usable:
                partners = [p for j, p in enumerate(results) if j != i and p.sample.usable]
                if len(results) == 1 or (partners and all(p.moving for p in partners)):
                    fz = self.group.frozen
                    s = r.sample.with_quality(
                        Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE,
                        f"frozen: no change beyond {fz.epsilon:g} over {fz.window_s:g} s"
                        + (" while the redundant probes move" if partners else ""),
                    )
                    r = replace(r, sample=replace(s, ne107=NE107.OUT_OF_SPECIFICATION),
                                flags=r.flags | {"frozen"})
            out.append(r)
        return out

    def _exclusions(self, results: list[ProbeResult], now: float) -> None:
        """2oo3 deviation check: a probe away from the median for longer than the delay is excluded."""
        d = self.group.discrepancy
        good = [r for r in results if r.sample.good]
        if d is None or len(good) < 3:
            for r in results:
                if not r.sample.good:
                    self._dev_since[r.tag] = None
                    self._excluded[r.tag] = False
            if len(good) < 3:
                for r in good:
                    self._dev_since[r.tag] = None
                    self._excluded[r.tag] = False
            return
        m = median3(*(float(r.sample.value) for r in good))  # type: ignore[arg-type]
        for r in good:
            dev = abs(float(r.sample.value) - m)  # type: ignore[arg-type]
            if dev > d:
                since = self._dev_since[r.tag]
                if since is None:
                    self._dev_since[r.tag] = since = now
                if now - since >= self.group.discrepancy_delay_s:
                    self._excluded[r.tag] = True
            else:
                self._dev_since[r.tag] = None
                self._excluded[r.tag] = False

    def _pair_disagrees(self, pair: list[ProbeResult], now: float) -> bool:
        d = self.group.discrepancy
        key = tuple(r.tag for r in pair)
        if key != self._pair_key:
            self._pair_key = key
            self._pair_since = None
        if d is None:
            return False
        a, b = (float(r.sample.value) for r in pair)  # type: ignore[arg-type]
        if abs(a - b) <= d:
            self._pair_since = None
            return False
        if self._pair_since is None:
            self._pair_since = now
        return now - self._pair_since >= self.group.discrepancy_delay_s

    def vote(self, samples: Mapping[str, Sample], now: float) -> VoteResult:
        """Validate every probe sample (missing ones are Bad) and vote them, at scan time ``now``."""
        results = []
        for v in self.validators:
            raw = samples.get(v.name)
            if raw is None:
                raw = Sample.bad(QualityReason.CONFIG_ERROR, 0.0, f"no sample for {v.name!r}")
            results.append(v.validate(raw, now))
        results = self._frozen(results)
        n = len(results)
        if n == 1:
            r = results[0]
            diag = self._diag(r, r.sample.value if r.sample.usable else None, excluded=False)
            pv = r.sample
            return VoteResult(self.name, self.group.voting, pv, int(pv.good), False, False, (diag,))

        self._exclusions(results, now)
        voters = [r for r in results if r.sample.good and not self._excluded[r.tag]]
        fallback = False
        if not voters:
            voters = [r for r in results if r.sample.usable and not self._excluded[r.tag]]
            fallback = True
        if not voters:
            self._pair_since = None
            reasons = {r.sample.reason for r in results}
            reason = QualityReason.COMM_FAILURE if reasons <= _COMM_REASONS else QualityReason.SENSOR_FAILURE
            if reasons == {QualityReason.WAITING_FOR_INITIAL_DATA}:
                reason = QualityReason.WAITING_FOR_INITIAL_DATA
            ts = max(r.sample.server_ts for r in results)
            pv = Sample(value=None, quality=Quality.BAD, server_ts=ts, reason=reason, ne107=NE107.FAILURE,
                        detail=f"no usable channel of {n}: " + "; ".join(
                            f"{r.tag} {r.sample.reason}" + (f" ({r.sample.detail})" if r.sample.detail else "")
                            for r in results))
            diags = tuple(self._diag(r, None, excluded=self._excluded[r.tag]) for r in results)
            return VoteResult(self.name, self.group.voting, pv, 0, True, False, diags)

        vals = [float(r.sample.value) for r in voters]  # type: ignore[arg-type]
        direction = self.group.safe_direction
        degraded = len(voters) < n
        discrepancy = any(self._excluded.values())
        quality = Quality.UNCERTAIN if fallback else Quality.GOOD
        reason = QualityReason.SENSOR_NOT_ACCURATE if fallback else QualityReason.NONE
        ne107 = NE107.OUT_OF_SPECIFICATION if fallback else (NE107.MAINTENANCE_REQUIRED if degraded else NE107.OK)
        detail = "no Good channel: voted the Uncertain ones" if fallback else ""
        if len(voters) >= 3:
            value = median3(*vals)
        elif len(voters) == 2:
            if self._pair_disagrees(voters, now):
                discrepancy = True
                quality, reason, ne107 = Quality.UNCERTAIN, QualityReason.DISCREPANCY, NE107.OUT_OF_SPECIFICATION
                value = _pick(vals, direction)
                detail = (f"channels disagree by {abs(vals[0] - vals[1]):g} "
                          f"(> {self.group.discrepancy:g} for {self.group.discrepancy_delay_s:g} s); "
                          f"using the {direction if direction != 'none' else 'average'} one")
            elif self.group.voting is Voting.ONE_OO_TWO:
                value = _pick(vals, direction)
            elif self.group.voting is Voting.TWO_OO_TWO:
                value = _pick(vals, {"high": "low", "low": "high"}.get(direction, "none"))
            else:
                value = sum(vals) / 2
            if degraded and quality is Quality.GOOD:
                detail = f"degraded: {len(voters)} of {n} channels"
        else:
            self._pair_since = None
            value = vals[0]
            quality = Quality.UNCERTAIN
            if reason is QualityReason.NONE:
                reason = QualityReason.SENSOR_NOT_ACCURATE
            ne107 = NE107.OUT_OF_SPECIFICATION
            detail = f"degraded: only {voters[0].tag} is usable (1 of {n} channels)"
        used = voters
        pv = Sample(
            value=value, quality=quality, server_ts=max(r.sample.server_ts for r in used),
            source_ts=min((r.sample.source_ts for r in used if r.sample.source_ts is not None), default=None),
            reason=reason, ne107=ne107, detail=detail,
        )
        diags = tuple(self._diag(r, value, excluded=self._excluded[r.tag]) for r in results)
        return VoteResult(self.name, self.group.voting, pv, len(voters), degraded, discrepancy, diags)

    def _diag(self, r: ProbeResult, voted: Value, *, excluded: bool) -> ProbeDiagnostic:
        dev = None
        if voted is not None and r.sample.usable:
            dev = abs(float(r.sample.value) - float(voted))  # type: ignore[arg-type]
        flags = set(r.flags)
        if excluded:
            flags.add("excluded")
        elif self._dev_since.get(r.tag) is not None:
            flags.add("deviating")
        return ProbeDiagnostic(
            tag=r.tag, value=r.sample.value, quality=r.sample.quality, reason=r.sample.reason,
            detail=r.sample.detail or ("excluded: deviates from the median" if excluded else ""),
            ne107=r.sample.ne107, excluded=excluded, deviation=dev, flags=frozenset(flags),
        )

