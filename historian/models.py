"""Table models of the historian database (SQLAlchemy 2). The schema itself is created and changed
only by the Alembic migrations in ``historian/migrations``; these models describe it for queries.

Timestamps are ``DOUBLE PRECISION`` epoch seconds, UTC, on both backends: one schema, one set of
queries, exact bucket arithmetic. The views ``v_samples`` and ``v_events`` add readable times and
tag names for people who query the database directly (see docs/historian.md).
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
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class TagRow(Base):
    """Tag metadata (name, unit, description, logging policy). ``samples.tag_id`` points here."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    unit: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    history_mode: Mapped[str] = mapped_column(String(20), default="on_change")
    deadband: Mapped[float | None] = mapped_column(Double)
    retention_days: Mapped[float | None] = mapped_column(Double)
    auto_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_ts: Mapped[float] = mapped_column(Double)


class SampleRow(Base):
    """One stored sample. Primary key (tag_id, ts): clustered per tag and time on SQLite
    (WITHOUT ROWID) and the per-tag range index on PostgreSQL (plus a BRIN index on ts)."""

    __tablename__ = "samples"

    tag_id: Mapped[int] = mapped_column(Integer, ForeignKey("tags.id"), primary_key=True)
    ts: Mapped[float] = mapped_column(Double, primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)
    quality: Mapped[int] = mapped_column(SmallInteger)
    """0 bad, 1 uncertain, 2 good (scada.tags.Quality)."""
    reason: Mapped[str | None] = mapped_column(String(40))
    """scada.tags.QualityReason value, NULL for plain Good."""

    __table_args__ = (
        Index("ix_samples_ts_brin", "ts", postgresql_using="brin").ddl_if(dialect="postgresql"),
        {"sqlite_with_rowid": False},
    )


class EventRow(Base):
    """Alarm journal, audit trail, logins, interlock trips, system events, doses, load moves."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str | None] = mapped_column(String(32), unique=True)
    """Idempotency key so that store-and-forward never stores an event twice."""
    ts: Mapped[float] = mapped_column(Double)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    tank: Mapped[str | None] = mapped_column(String(64))
    area: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Double)
    username: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_events_ts", "ts"),
        Index("ix_events_kind_ts", "kind", "ts"),
        Index("ix_events_tank_ts", "tank", "ts"),
        Index("ix_events_priority_ts", "priority", "ts"),
        Index("ix_events_state_ts", "state", "ts"),
        Index("ix_events_source_ts", "source", "ts"),
    )


class UserRow(Base):
    """HMI users. Passwords are stored only as hashes (the HMI hashes them)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    created_ts: Mapped[float] = mapped_column(Double)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
