#!/usr/bin/env python3
"""Quick start on a fresh machine with only Python 3.11+: creates .venv, installs, runs.

    python3 quickstart.py demo     # simulator + server + web HMI on SQLite, prints the URL and logins
    python3 quickstart.py test     # the whole test suite (extra arguments go to pytest)

Uses only the standard library so it works before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SCADA_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_venv(extras: str) -> Path:
    """Create the venv and install the project (editable) once per pyproject change."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs before the venv exists, on any python3
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    py = BIN / "python"
    if not py.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{extras or 'base'}-{digest}"
    if not stamp.exists():
        target = f".[{extras}]" if extras else "."
        print(f"installing {target} into {VENV} (first run only)", flush=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", target], check=True, cwd=ROOT)
        stamp.touch()
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "test":
        py = ensure_venv("test")
        return subprocess.call([str(py), "-m", "pytest", *rest], cwd=ROOT)
    py = ensure_venv("")
    return subprocess.call([str(BIN / "scada"), "demo", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
