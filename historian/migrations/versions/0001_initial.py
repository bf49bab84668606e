"""Initial historian schema: tags, samples, events, users and the readable views.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("unit", sa.String(32), nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("history_mode", sa.String(20), nullable=False, server_default="on_change"),
        sa.Column("deadband", sa.Double, nullable=True),
        sa.Column("retention_days", sa.Double, nullable=True),
        sa.Column("auto_registered", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_ts", sa.Double, nullable=False),
    )
    op.create_table(
        "samples",
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("tags.id"), nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("quality", sa.SmallInteger, nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("tag_id", "ts", name="pk_samples"),
        sqlite_with_rowid=False,
    )
    if pg:
        # block-range index: tiny, makes time-only scans (retention, "all tags in this hour") cheap
        op.create_index("ix_samples_ts_brin", "samples", ["ts"], postgresql_using="brin")
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(32), nullable=True, unique=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("tank", sa.String(64), nullable=True),
        sa.Column("area", sa.String(64), nullable=True),
        sa.Column("priority", sa.String(16), nullable=True),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("data", sa.JSON, nullable=True),
    )
    for col in ("ts",):
        op.create_index(f"ix_events_{col}", "events", [col])
    for col in ("kind", "tank", "priority", "state", "source"):
        op.create_index(f"ix_events_{col}_ts", "events", [col, "ts"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    if pg:
        time_s, time_e = "to_timestamp(s.ts)", "to_timestamp(e.ts)"
    else:
        time_s = "strftime('%Y-%m-%dT%H:%M:%fZ', s.ts, 'unixepoch')"
        time_e = "strftime('%Y-%m-%dT%H:%M:%fZ', e.ts, 'unixepoch')"
    op.execute(
        f"CREATE VIEW v_samples AS SELECT t.name AS tag, {time_s} AS time, s.ts, s.value, "
        "s.quality, CASE s.quality WHEN 2 THEN 'good' WHEN 1 THEN 'uncertain' ELSE 'bad' END AS quality_label, "
        "s.reason, t.unit FROM samples s JOIN tags t ON t.id = s.tag_id"
    )
    op.execute(
        f"CREATE VIEW v_events AS SELECT e.id, {time_e} AS time, e.ts, e.kind, e.source, e.message, e.tank, "
        "e.area, e.priority, e.state, e.value, e.username, e.comment, e.data FROM events e"
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS v_events")
    op.execute("DROP VIEW IF EXISTS v_samples")
    op.drop_table("users")
    op.drop_table("events")
    op.drop_table("samples")
    op.drop_table("tags")
