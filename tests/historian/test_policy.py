"""Logging policies: property tests of the error bounds (pure, no database, no clock)."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from historian.policy import Record, Row, TagPolicy, as_row, effective_deadband
from scada.config.tags import TagConfig
from scada.tags import Quality, QualityReason, Sample

values = st.floats(min_value=-1000, max_value=1000, allow_nan=False)
gaps = st.floats(min_value=0.001, max_value=50.0, allow_nan=False)
series = st.lists(st.tuples(gaps, values), min_size=1, max_size=200)
bands = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)


def run(policy: TagPolicy, points: list[tuple[float, float]]) -> tuple[list[tuple[float, float]], list[Record]]:
    t = 1_000.0
    orig: list[tuple[float, float]] = []
    stored: list[Record] = []
    for dt, v in points:
        t += dt
        orig.append((t, v))
        out = policy.offer(Sample.good_value(v, t))
        assert out is not None
        stored += out
    stored += policy.flush()
    return orig, stored


def tol(*xs: float) -> float:
    return 1e-7 * max(1.0, *(abs(x) for x in xs))


@settings(max_examples=300, deadline=None)
@given(series, bands)
def test_swinging_door_every_point_within_bound_of_stored_line(points: list[tuple[float, float]], e: float) -> None:
    orig, stored = run(TagPolicy("t", "swinging_door", deadband=e, max_interval_s=1e12), points)
    ts = [r.ts for r in stored]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert stored[0].ts == orig[0][0] and stored[-1].ts == orig[-1][0]
    exact = dict(orig)
    for r in stored:  # stored rows are original samples, unchanged
        assert exact[r.ts] == r.value
    for t, v in orig:
        i = bisect.bisect_right(ts, t) - 1
        a = stored[i]
        if a.ts == t:
            continue
        b = stored[i + 1]
        assert a.value is not None and b.value is not None
        line = a.value + (b.value - a.value) * (t - a.ts) / (b.ts - a.ts)
        assert abs(v - line) <= e + tol(v, line, a.value, b.value), (t, v, a, b)


def test_swinging_door_compresses_a_noisy_ramp() -> None:
    """A ramp with +-0.1 noise and a 0.5 error bound keeps a few points, not hundreds."""
    noise = [0.1 if i % 2 else -0.1 for i in range(1000)]
    pts = [(1.0, 0.05 * i + noise[i]) for i in range(1000)]
    orig, stored = run(TagPolicy("t", "swinging_door", deadband=0.5, max_interval_s=1e12), pts)
    assert len(stored) <= 5, len(stored)
    on_change = run(TagPolicy("t", "on_change", deadband=0.5, max_interval_s=1e12), pts)[1]
    assert len(stored) < len(on_change) / 10


@settings(max_examples=300, deadline=None)
@given(series, bands, st.floats(min_value=1.0, max_value=200.0))
def test_on_change_within_deadband_and_heartbeat(points: list[tuple[float, float]], band: float, hb: float) -> None:
    orig, stored = run(TagPolicy("t", "on_change", deadband=band, max_interval_s=hb), points)
    ts = [r.ts for r in stored]
    assert ts == sorted(ts)
    for t, v in orig:  # step reconstruction: last stored value at or before t
        r = stored[bisect.bisect_right(ts, t) - 1]
        assert r.value is not None
        assert abs(v - r.value) <= band + tol(v, r.value)
    max_gap = max(dt for dt, _ in points)
    for a, b in zip(stored, stored[1:], strict=False):
        assert b.ts - a.ts <= hb + max_gap + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(gaps, values, st.sampled_from([Quality.GOOD, Quality.UNCERTAIN, Quality.BAD])),
                min_size=1, max_size=100),
       st.sampled_from(["on_change", "swinging_door", "periodic"]))
def test_quality_changes_are_always_stored(points: list[tuple[float, float, Quality]], mode: str) -> None:
    p = TagPolicy("t", mode, deadband=1e6, max_interval_s=1e9, period_s=1e9)
    t = 0.0
    prev: Quality | None = None
    stored: list[Record] = []
    must: list[tuple[float, Quality]] = []
    for dt, v, q in points:
        t += dt
        reason = QualityReason.NONE if q is Quality.GOOD else QualityReason.COMM_FAILURE
        out = p.offer(Sample(value=v, quality=q, server_ts=t, reason=reason))
        assert out is not None
        stored += out
        if q is not prev:
            must.append((t, q))
        prev = q
    got = {(r.ts, r.quality) for r in stored}
    for m in must:
        assert m in got


def test_heartbeat_tick_repeats_a_flat_value() -> None:
    p = TagPolicy("t", "on_change", deadband=0.5, max_interval_s=60)
    assert [r.ts for r in p.offer(Sample.good_value(10.0, 100.0)) or []] == [100.0]
    assert p.offer(Sample.good_value(10.2, 110.0)) == []
    assert p.tick(150.0) == []
    # the held sample is stored first (exact history); the repeat is due max_interval_s after it
    assert [(r.ts, r.value) for r in p.tick(160.0)] == [(110.0, 10.2)]
    assert p.tick(169.0) == []
    assert [(r.ts, r.value) for r in p.tick(170.0)] == [(170.0, 10.2)]
    assert p.tick(200.0) == []
    assert [(r.ts, r.value) for r in p.tick(231.0)] == [(231.0, 10.2)]


def test_periodic_stores_once_per_period() -> None:
    p = TagPolicy("t", "periodic", period_s=10, max_interval_s=60)
    stored: list[Record] = []
    for i in range(100):
        stored += p.offer(Sample.good_value(float(i), 1000.0 + i)) or []
    assert [r.ts for r in stored] == [1000.0 + 10 * k for k in range(10)]


def test_off_stores_nothing_and_out_of_order_is_refused() -> None:
    off = TagPolicy("t", "off")
    assert off.offer(Sample.good_value(1.0, 1.0)) == [] and off.tick(1e9) == []
    p = TagPolicy("t")
    assert p.offer(Sample.good_value(1.0, 10.0))
    assert p.offer(Sample.good_value(2.0, 10.0)) is None
    assert p.offer(Sample.good_value(2.0, 9.0)) is None


def test_booleans_store_every_change_and_non_finite_is_none() -> None:
    def feed(p: TagPolicy) -> list[tuple[float, float | None]]:
        out: list[Record] = []
        for i, v in enumerate([False, False, True, True, False]):
            out += p.offer(Sample.good_value(v, float(i + 1))) or []
        return [(r.ts, r.value) for r in out]

    assert feed(TagPolicy("t", "on_change", deadband=5.0)) == [(1.0, 0.0), (3.0, 1.0), (5.0, 0.0)]
    # swinging door keeps the point before each step so that linear interpolation stays exact
    assert feed(TagPolicy("t", "swinging_door", deadband=5.0)) == [
        (1.0, 0.0), (2.0, 0.0), (3.0, 1.0), (4.0, 1.0), (5.0, 0.0)]
    q = TagPolicy("u")
    r = q.offer(Sample.good_value(float("nan"), 1.0))
    assert r is not None and r[0].value is None


def test_deadband_percent_uses_scale_span() -> None:
    cfg = TagConfig.model_validate({
        "name": "line1.x.temp", "scale": {"raw_min": 0, "raw_max": 1000, "eng_min": 0, "eng_max": 200},
        "device": "plc1", "modbus": {"table": "input", "address": 1},
        "history": {"deadband": 0.1, "deadband_percent": 0.5},
    })
    assert effective_deadband(cfg) == pytest.approx(1.0)
    assert TagPolicy.from_config(cfg).deadband == pytest.approx(1.0)


_mixed_values = st.one_of(values, st.integers(-5, 5), st.booleans(), st.none(),
                          st.sampled_from([float("nan"), float("inf")]))
_steps = st.lists(
    st.tuples(st.floats(min_value=-1.0, max_value=20.0, allow_nan=False), _mixed_values,
              st.sampled_from([Quality.GOOD, Quality.GOOD, Quality.GOOD, Quality.UNCERTAIN, Quality.BAD]),
              st.sampled_from([QualityReason.NONE, QualityReason.NONE, QualityReason.COMM_FAILURE, "none"]),
              st.booleans()),
    min_size=1, max_size=120)


@settings(max_examples=300, deadline=None)
@given(_steps, bands, st.floats(min_value=1.0, max_value=60.0))
def test_inline_fast_path_equals_general_path(steps: list[tuple[float, object, Quality, str, bool]],
                                              band: float, hb: float) -> None:
    """The writer's inlined on_change path stores exactly what the general path stores."""
    fast = TagPolicy("t", "on_change", deadband=band, max_interval_s=hb)
    slow = TagPolicy("t", "on_change", deadband=band, max_interval_s=hb)
    slow._fast = False
    t = 1_000.0
    for dt, v, q, reason, tick in steps:
        t += dt  # dt <= 0 gives out-of-order samples, refused by both
        s = Sample(value=v, quality=q, server_ts=t, reason=reason)  # type: ignore[arg-type]
        out_f: list[Row] = []
        n_f = fast.offer_rows(s, out_f)
        out_s = slow.offer(s)
        assert (None if n_f < 0 else out_f) == (None if out_s is None else [as_row(r) for r in out_s])
        assert n_f < 0 or n_f == len(out_f)
        if tick:
            assert fast.tick(t + hb / 2) == slow.tick(t + hb / 2)
    assert fast.flush() == slow.flush()


def test_plain_numbers_take_the_inline_path() -> None:
    """After the first row, Good floats/ints of on_change never reach the general path."""
    p = TagPolicy("t", "on_change", deadband=0.5, max_interval_s=60)
    out: list[Row] = []
    assert p.offer_rows(Sample.good_value(1.0, 1.0), out) == 1

    def general(*_: object) -> bool:
        raise AssertionError("general path taken")

    p._offer = general  # type: ignore[method-assign]
    assert [p.offer_rows(Sample.good_value(v, 1.0 + i), out) for i, v in enumerate([1.2, 2, 2.1, 3.0], 1)] == [
        0, 1, 0, 1]
    assert out == [("t", 1.0, 1.0, 2, None), ("t", 3.0, 2.0, 2, None), ("t", 5.0, 3.0, 2, None)]
    assert all(type(r[2]) is float for r in out)
