"""`scada run` refuses unsafe or inconsistent starts with a message and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plating-line.yaml"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k not in ("SCADA_SECRET_KEY", "SCADA_DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "scada", "run", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**e, **(env or {})})


def test_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    r = run("--config", str(EXAMPLE), "--db", url, "--port", "1")
    assert r.returncode == 2
    assert "scada db upgrade" in r.stderr and "Traceback" not in r.stderr


def test_refuses_a_public_bind_without_a_secret_key() -> None:
    r = run("--config", str(EXAMPLE), "--host", "0.0.0.0")
    assert r.returncode == 2 and "SCADA_SECRET_KEY" in r.stderr


def test_refuses_a_broken_config(tmp_path: Path) -> None:
    bad = tmp_path / "plant.yaml"
    bad.write_text(EXAMPLE.read_text().replace("volume_l: 1000", "volume_l: -1", 1))
    r = run("--config", str(bad))
    assert r.returncode == 1 and "volume_l" in r.stderr and "Traceback" not in r.stderr
