"""The service over a store: restart mid-load keeps the load, its amp-hours and the counters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from scada.config import PlantConfig
from scada.events import Event
from scada.plating import (
    InMemoryPlatingStore,
    LoadQuery,
    LoadRequest,
    LoadStatus,
    PlatingService,
    PlatingStore,
)
from scada.tags import Sample

T0 = 1_700_000_000.0
CUR = "line1.nickel.current.pv"
PRESENT = "line1.nickel.load_present"


class FakeTrace:
    def __init__(self) -> None:
        self.hist: dict[str, list[Sample]] = {}
        self.journal: list[Event] = []

    async def samples(self, tags: Sequence[str], start: float, end: float) -> Mapping[str, Sequence[Sample]]:
        return {t: [s for s in self.hist.get(t, []) if start <= s.server_ts <= end] for t in tags}

    async def events(self, start: float, end: float) -> Sequence[Event]:
        return [e for e in self.journal if start <= e.ts <= end]


async def run_restart_scenario(plant: PlantConfig, store: PlatingStore, body: dict[str, Any]) -> None:
    """Shared by the in-memory and the SQL store tests."""
    journal: list[Event] = []
    svc = PlatingService(plant, store, sink=journal.append)
    await svc.open()
    res = await svc.save_recipe("ni-cr", body, user="eng", ts=T0)
    assert res.ok, res.reason
    body2 = {**body, "description": "v2"}
    assert (await svc.save_recipe("ni-cr", body2, user="eng", ts=T0 + 1)).recipe.version == 2  # type: ignore[union-attr]
    assert (await svc.create_load(LoadRequest("PN-100", 5, 50.0, "SO-9", id="R1"), user="op", ts=T0)).ok
    svc.line.dosers["nickel"][0].state.ah_since_dose = 123.0
    svc.scan({PRESENT: Sample.good_value(False, T0)}, T0)
    for k in range(1, 401):  # 100 s at 200 A
        ts = T0 + k * 0.25
        svc.scan({PRESENT: Sample.good_value(True, ts), CUR: Sample.good_value(200.0, ts)}, ts)
        await svc.flush(ts)
    assert await svc.flush(T0 + 100, force=True)
    ah_before = svc.tracker.loads["R1"].amp_hours
    assert ah_before == pytest.approx(200 * 99.75 / 3600, rel=1e-6)  # first current sample at T0+0.25
    assert any(e.kind.value == "audit" for e in journal)

    # --- crash and restart: a new service on the same store
    svc2 = PlatingService(plant, store)
    await svc2.open()
    load = svc2.tracker.load_in("nickel")
    assert load is not None and load.id == "R1" and load.recipe_version == 2
    assert load.amp_hours == pytest.approx(ah_before)
    assert svc2.line.counters["nickel"].total_ah == pytest.approx(ah_before + 0.0, rel=1e-6)
    assert svc2.line.dosers["nickel"][0].state.ah_since_dose == pytest.approx(123.0 + ah_before)
    assert svc2.line.rectifier_current_a("nickel") == pytest.approx(200.0)
    # the input still says present: no new entry; 100 s more, then it leaves
    for k in range(0, 401):
        ts = T0 + 110 + k * 0.25
        svc2.scan({PRESENT: Sample.good_value(True, ts), CUR: Sample.good_value(200.0, ts)}, ts)
    svc2.scan({PRESENT: Sample.good_value(False, T0 + 211)}, T0 + 211)
    await svc2.flush(T0 + 211, force=True)
    load = await store.get_load("R1")
    assert load is not None and len(load.visits) == 1 and load.visits[0].exit_ts == T0 + 211
    # the 10 s restart gap was not bridged, it shows as unmeasured time
    assert load.amp_hours == pytest.approx(200 * 199.75 / 3600, rel=1e-6)
    assert load.visits[0].unmeasured_s == pytest.approx(10.0)
    assert load.status is LoadStatus.IN_TRANSIT
    assert [ld.id for ld in await store.find_loads(LoadQuery(text="so-9"))] == ["R1"]
    assert await store.find_loads(LoadQuery(part_number="nope")) == []
    versions = [(r.id, r.version) for r in await store.recipes()]
    assert versions == [("ni-cr", 1), ("ni-cr", 2)]
    with pytest.raises(ValueError):
        await store.add_recipe((await store.recipes())[0])

    trace = FakeTrace()
    rec = await svc2.record("R1", trace, now=T0 + 300)
    assert rec is not None and rec.load["id"] == "R1"
    assert rec.amp_hours == pytest.approx(load.amp_hours)
    assert not rec.conforming  # no temperature history given, under-dwell, restart gap
    assert any("current not measured for 10 s" in r for r in rec.nonconformities)
    assert await svc2.record("nope", trace, now=T0) is None


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PlatingStore]:
    """The same scenario on the in-memory store and on the SQL store migrated to head (both backends)."""
    if request.param == "memory":
        yield InMemoryPlatingStore()
        return
    from historian import make_engine, upgrade
    from historian.plating_store import SqlPlatingStore

    schema = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'plating.db'}"
    else:
        import psycopg

        base: str = request.getfixturevalue("postgres_url")
        plain = base.replace("postgresql+asyncpg://", "postgresql://", 1)
        schema = f"plating_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}?search_path={schema}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield SqlPlatingStore(engine)
    finally:
        await engine.dispose()
        if schema is not None:
            with psycopg.connect(plain, autocommit=True) as c:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_restart_mid_load(plant: PlantConfig, body: dict[str, Any], store: PlatingStore) -> None:
    await run_restart_scenario(plant, store, body)


async def test_store_failure_is_retried_not_raised(plant: PlantConfig, body: dict[str, Any]) -> None:
    class Flaky(InMemoryPlatingStore):
        fail = True

        async def save_counters(self, counters: Any) -> None:
            if self.fail:
                raise ConnectionError("database down")
            await super().save_counters(counters)

    store = Flaky()
    svc = PlatingService(plant, store)
    await svc.open()
    assert not await svc.flush(T0, force=True)
    assert svc.store_error is not None and "database down" in svc.store_error
    store.fail = False
    assert await svc.flush(T0 + 1, force=True) and svc.store_error is None
    assert "nickel" in await store.counters()
