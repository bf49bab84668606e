"""`scada demo` as the README starts it: one command brings up simulator, server and HMI with logins."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> dict:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_demo_starts_prints_logins_serves_live_values_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scada", "demo", "--port", str(port), "--data-dir", str(tmp_path),
         "--sim-modbus-port", "0", "--sim-opcua-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    out = ""
    try:
        deadline = time.monotonic() + 60
        while "Stop with Ctrl-C" not in (out := "".join(lines)):
            assert proc.poll() is None, f"demo exited early:\n{out}"
            assert time.monotonic() < deadline, f"no banner in 60 s:\n{out}"
            time.sleep(0.2)
        assert f"http://127.0.0.1:{port}/" in out
        password = re.search(r"^\s+operator\s+(\S+)$", out, re.M)
        assert password, out
        form = urllib.parse.urlencode({"username": "operator", "password": password.group(1)}).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/auth/token", data=form, timeout=10) as r:
            token = json.loads(r.read())["access_token"]
        tag = f"http://127.0.0.1:{port}/api/tags/line1.nickel.temperature.pv"
        deadline = time.monotonic() + 30
        while (pv := _get(tag, token))["quality"] != "good":
            assert time.monotonic() < deadline, pv
            time.sleep(0.5)
        assert 40 < pv["value"] < 70
        first_ts = pv["server_ts"]
        time.sleep(1.5)
        assert _get(tag, token)["server_ts"] > first_ts  # live, not a frozen number
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, out
    assert (tmp_path / "scada-demo.db").exists()
