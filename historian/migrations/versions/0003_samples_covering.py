"""Samples: the primary key index also carries value and quality (PostgreSQL).

Why: rows arrive in time order for all tags, so on PostgreSQL one tag's day is spread over
nearly every heap page of that day (100 tags: a 1-day trend read ~500 MB of heap). With
``INCLUDE (value, quality)`` the trend and aggregate queries are index-only scans of one
contiguous key range. The insert autovacuum threshold is lowered so the visibility map
(which index-only scans need) follows the writer. SQLite needs nothing: ``samples`` is
``WITHOUT ROWID``, already clustered by (tag_id, ts).

Revision ID: 0003_samples_covering
Revises: 0002_plating
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003_samples_covering"
down_revision = "0002_plating"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE samples DROP CONSTRAINT pk_samples, "
               "ADD CONSTRAINT pk_samples PRIMARY KEY (tag_id, ts) INCLUDE (value, quality)")
    op.execute("ALTER TABLE samples SET (autovacuum_vacuum_insert_scale_factor = 0.02)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE samples RESET (autovacuum_vacuum_insert_scale_factor)")
    op.execute("ALTER TABLE samples DROP CONSTRAINT pk_samples, ADD CONSTRAINT pk_samples PRIMARY KEY (tag_id, ts)")
