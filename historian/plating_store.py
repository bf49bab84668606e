"""SQL persistence of the plating layer (``scada.plating.store.PlatingStore``), SQLite and PostgreSQL.

Tables (created by migration ``0002_plating``; the models here describe them for queries):

* ``recipes``: one row per immutable version, primary key ``(id, version)``, the body as JSON;
* ``loads``: one row per load (identity, recipe version, status);
* ``load_steps``: one row per tank visit of a load (times, sources, amp-hours, dwell flags);
* ``amp_hour_counters``: one row per tank (total Ah, unmeasured time, Ah since each additive's dose).

Timestamps are epoch seconds UTC as ``DOUBLE PRECISION``, like the rest of the historian.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from historian.models import Base
from scada.plating.loads import Load, LoadStatus, LoadVisit
from scada.plating.recipes import Recipe, RecipeBody
from scada.plating.store import CounterRecord, LoadQuery


class RecipeRow(Base):
    __tablename__ = "recipes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    part_number: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_ts: Mapped[float] = mapped_column(Double)
    username: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_recipes_part_number", "part_number"),)


class LoadRow(Base):
    __tablename__ = "loads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part_number: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    area_dm2: Mapped[float] = mapped_column(Double)
    customer_order: Mapped[str] = mapped_column(String(128), default="")
    recipe_id: Mapped[str] = mapped_column(String(64))
    recipe_version: Mapped[int] = mapped_column(Integer)
    created_ts: Mapped[float] = mapped_column(Double)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16))
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    finished_ts: Mapped[float | None] = mapped_column(Double)
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("ix_loads_status", "status"),
        Index("ix_loads_created_ts", "created_ts"),
        Index("ix_loads_part_number", "part_number"),
        Index("ix_loads_customer_order", "customer_order"),
    )


class LoadStepRow(Base):
    __tablename__ = "load_steps"

    load_id: Mapped[str] = mapped_column(String(64), ForeignKey("loads.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    tank: Mapped[str] = mapped_column(String(64))
    step_index: Mapped[int | None] = mapped_column(Integer)
    entry_ts: Mapped[float] = mapped_column(Double)
    entry_source: Mapped[str] = mapped_column(String(16))
    entry_user: Mapped[str | None] = mapped_column(String(64))
    exit_ts: Mapped[float | None] = mapped_column(Double)
    exit_source: Mapped[str | None] = mapped_column(String(16))
    exit_user: Mapped[str | None] = mapped_column(String(64))
    amp_hours: Mapped[float] = mapped_column(Double, default=0.0)
    unmeasured_s: Mapped[float] = mapped_column(Double, default=0.0)
    over_dwell: Mapped[bool] = mapped_column(Boolean, default=False)
    under_dwell: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_load_steps_tank_entry", "tank", "entry_ts"),)


class AmpHourCounterRow(Base):
    __tablename__ = "amp_hour_counters"

    tank: Mapped[str] = mapped_column(String(64), primary_key=True)
    total_ah: Mapped[float] = mapped_column(Double, default=0.0)
    unmeasured_s: Mapped[float] = mapped_column(Double, default=0.0)
    updated_ts: Mapped[float | None] = mapped_column(Double)
    additives: Mapped[dict[str, Any]] = mapped_column(JSON)
    """{additive: {"ah_since_dose": float, "last_dose_ts": float | null}}"""


PLATING_TABLES = [RecipeRow.__table__, LoadRow.__table__, LoadStepRow.__table__, AmpHourCounterRow.__table__]

_LOAD_COLS = ("part_number", "quantity", "area_dm2", "customer_order", "recipe_id", "recipe_version", "created_ts",
              "created_by", "status", "next_step", "finished_ts", "note")


def _load_values(load: Load) -> dict[str, Any]:
    d = load.to_dict()
    return {k: d[k] for k in _LOAD_COLS}


def _step_values(load_id: str, seq: int, v: LoadVisit) -> dict[str, Any]:
    return {"load_id": load_id, "seq": seq, **{k: val for k, val in v.to_dict().items()}}


class SqlPlatingStore:
    """The plating store on the historian database (give it the historian's engine)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # ---------------------------------------------------------------- recipes
    async def add_recipe(self, recipe: Recipe) -> None:
        row = {"id": recipe.id, "version": recipe.version, "part_number": recipe.part_number,
               "body": recipe.body.model_dump(mode="json"), "created_ts": recipe.created_ts,
               "username": recipe.user, "comment": recipe.comment}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(RecipeRow), [row])
        except IntegrityError:
            raise ValueError(f"recipe {recipe.id!r} version {recipe.version} exists already") from None

    async def recipes(self) -> list[Recipe]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(RecipeRow.__table__).order_by(RecipeRow.id, RecipeRow.version))).all()
        return [Recipe(r.id, r.version, RecipeBody.model_validate(r.body), r.created_ts, r.username, r.comment or "")
                for r in rows]

    # ---------------------------------------------------------------- loads
    async def save_load(self, load: Load) -> None:
        values = _load_values(load)
        async with self.engine.begin() as conn:
            res = await conn.execute(update(LoadRow).where(LoadRow.id == load.id).values(**values))
            if res.rowcount == 0:
                await conn.execute(insert(LoadRow), [{"id": load.id, **values}])
            await conn.execute(delete(LoadStepRow).where(LoadStepRow.load_id == load.id))
            if load.visits:
                await conn.execute(insert(LoadStepRow),
                                   [_step_values(load.id, i, v) for i, v in enumerate(load.visits)])

    async def _hydrate(self, conn: AsyncConnection, rows: list[Any]) -> list[Load]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        steps = (await conn.execute(select(LoadStepRow.__table__).where(LoadStepRow.load_id.in_(ids))
                                    .order_by(LoadStepRow.load_id, LoadStepRow.seq))).all()
        by_load: dict[str, list[LoadVisit]] = {}
        for s in steps:
            d = s._asdict()
            by_load.setdefault(d.pop("load_id"), []).append(LoadVisit.from_dict(d))
        out = []
        for r in rows:
            d = r._asdict()
            d["visits"] = []
            load = Load.from_dict(d)
            load.visits = by_load.get(r.id, [])
            out.append(load)
        return out

    async def get_load(self, load_id: str) -> Load | None:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(LoadRow.__table__).where(LoadRow.id == load_id))).all()
            loads = await self._hydrate(conn, list(rows))
        return loads[0] if loads else None

    async def active_loads(self) -> list[Load]:
        active = [s.value for s in LoadStatus if s.active]
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(LoadRow.__table__).where(LoadRow.status.in_(active))
                                       .order_by(LoadRow.created_ts))).all()
            return await self._hydrate(conn, list(rows))

    async def find_loads(self, query: LoadQuery) -> list[Load]:
        q = select(LoadRow.__table__)
        if query.part_number is not None:
            q = q.where(LoadRow.part_number == query.part_number)
        if query.customer_order is not None:
            q = q.where(LoadRow.customer_order == query.customer_order)
        if query.status is not None:
            q = q.where(LoadRow.status == query.status.value)
        if query.since is not None:
            q = q.where(LoadRow.created_ts >= query.since)
        if query.until is not None:
            q = q.where(LoadRow.created_ts < query.until)
        if query.text:
            pat = f"%{query.text.lower()}%"
            q = q.where(or_(LoadRow.id.ilike(pat), LoadRow.part_number.ilike(pat), LoadRow.customer_order.ilike(pat)))
        q = q.order_by(LoadRow.created_ts.desc()).limit(max(1, min(query.limit, 10_000)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            return await self._hydrate(conn, list(rows))

    # ---------------------------------------------------------------- counters
    async def save_counters(self, counters: list[CounterRecord]) -> None:
        async with self.engine.begin() as conn:
            for c in counters:
                adds = {name: {"ah_since_dose": ah, "last_dose_ts": c.last_dose_ts.get(name)}
                        for name, ah in c.ah_since_dose.items()}
                values = {"total_ah": c.total_ah, "unmeasured_s": c.unmeasured_s, "updated_ts": c.updated_ts,
                          "additives": adds}
                res = await conn.execute(update(AmpHourCounterRow).where(AmpHourCounterRow.tank == c.tank)
                                         .values(**values))
                if res.rowcount == 0:
                    await conn.execute(insert(AmpHourCounterRow), [{"tank": c.tank, **values}])

    async def counters(self) -> dict[str, CounterRecord]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(AmpHourCounterRow.__table__))).all()
        out = {}
        for r in rows:
            adds = r.additives or {}
            out[r.tank] = CounterRecord(
                tank=r.tank, total_ah=r.total_ah, unmeasured_s=r.unmeasured_s, updated_ts=r.updated_ts,
                ah_since_dose={k: float(v.get("ah_since_dose") or 0.0) for k, v in adds.items()},
                last_dose_ts={k: float(v["last_dose_ts"]) for k, v in adds.items() if v.get("last_dose_ts") is not None},
            )
        return out
