"""Fixtures shared by every test package: example config, free ports, a private PostgreSQL database.

PostgreSQL tests use the server on 127.0.0.1:5432 (override with SCADA_TEST_POSTGRES_URL, a
``postgresql://`` URL of a database the user may CREATE DATABASE from). Each test session creates its
own database and drops it afterwards, so parallel runs never collide. Where the server is absent
the tests skip with the reason -- unless SCADA_REQUIRE_POSTGRES=1 (set by .ci/run), then they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scada.config import PlantConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "examples" / "plating-line.yaml"
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1 (bind to 0, read it back)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def example_config_path() -> Path:
    return EXAMPLE_CONFIG


@pytest.fixture(scope="session")
def plant() -> PlantConfig:
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _pg_admin_url() -> str:
    return os.environ.get("SCADA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """Name of a fresh, empty PostgreSQL database for this test session (dropped afterwards)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    admin = _pg_admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except Exception as e:  # noqa: BLE001 - any failure means "no server here"
        if os.environ.get("SCADA_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable at {admin}: {e}")
        pytest.skip(f"PostgreSQL not reachable at {admin}: {e}")
    name = f"scada_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url(postgres_database: str) -> str:
    """SQLAlchemy async URL (asyncpg) of the session's private database."""
    base = _pg_admin_url().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{postgres_database}"
