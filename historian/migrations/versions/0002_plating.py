"""Plating layer: recipe versions, loads with their tank visits, amp-hour counters.

Revision ID: 0002_plating
Revises: 0001_initial
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_plating"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipes",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("part_number", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", "version", name="pk_recipes"),
    )
    op.create_index("ix_recipes_part_number", "recipes", ["part_number"])
    op.create_table(
        "loads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("part_number", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("area_dm2", sa.Double, nullable=False),
        sa.Column("customer_order", sa.String(128), nullable=False, server_default=""),
        sa.Column("recipe_id", sa.String(64), nullable=False),
        sa.Column("recipe_version", sa.Integer, nullable=False),
        sa.Column("created_ts", sa.Double, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_step", sa.Integer, nullable=False, server_default="0"),
        sa.Column("finished_ts", sa.Double, nullable=True),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("area_dm2 > 0", name="ck_loads_area_positive"),
        sa.CheckConstraint("quantity > 0", name="ck_loads_quantity_positive"),
    )
    op.create_index("ix_loads_status", "loads", ["status"])
    op.create_index("ix_loads_created_ts", "loads", ["created_ts"])
    op.create_index("ix_loads_part_number", "loads", ["part_number"])
    op.create_index("ix_loads_customer_order", "loads", ["customer_order"])
    op.create_table(
        "load_steps",
        sa.Column("load_id", sa.String(64), sa.ForeignKey("loads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("tank", sa.String(64), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=True),
        sa.Column("entry_ts", sa.Double, nullable=False),
        sa.Column("entry_source", sa.String(16), nullable=False),
        sa.Column("entry_user", sa.String(64), nullable=True),
        sa.Column("exit_ts", sa.Double, nullable=True),
        sa.Column("exit_source", sa.String(16), nullable=True),
        sa.Column("exit_user", sa.String(64), nullable=True),
        sa.Column("amp_hours", sa.Double, nullable=False, server_default="0"),
        sa.Column("unmeasured_s", sa.Double, nullable=False, server_default="0"),
        sa.Column("over_dwell", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("under_dwell", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("load_id", "seq", name="pk_load_steps"),
    )
    op.create_index("ix_load_steps_tank_entry", "load_steps", ["tank", "entry_ts"])
    op.create_table(
        "amp_hour_counters",
        sa.Column("tank", sa.String(64), primary_key=True),
        sa.Column("total_ah", sa.Double, nullable=False, server_default="0"),
        sa.Column("unmeasured_s", sa.Double, nullable=False, server_default="0"),
        sa.Column("updated_ts", sa.Double, nullable=True),
        sa.Column("additives", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("amp_hour_counters")
    op.drop_index("ix_load_steps_tank_entry", table_name="load_steps")
    op.drop_table("load_steps")
    for ix in ("ix_loads_customer_order", "ix_loads_part_number", "ix_loads_created_ts", "ix_loads_status"):
        op.drop_index(ix, table_name="loads")
    op.drop_table("loads")
    op.drop_index("ix_recipes_part_number", table_name="recipes")
    op.drop_table("recipes")
