"""The `scada` CLI as an integrator uses it: real subprocesses, exit codes, messages on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plating-line.yaml"


def scada(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scada", *args], capture_output=True, text=True, timeout=60)


def test_check_config_ok() -> None:
    r = scada("check-config", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "10 tanks" in r.stdout


def test_check_config_broken_copy_lists_every_wrong_key(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("volume_l: 1000", "volume_l: -1", 1)
    text = text.replace("    port: 15020\n", "    port: 15020\n    colour: blue\n", 1)
    text = text.replace("trip_when: [level_low], acts_on: [heater], bypassable: false}",
                        "trip_when: [level_lo], acts_on: [heater], bypassable: false}", 1)
    bad = tmp_path / "broken.yaml"
    bad.write_text(text)
    r = scada("check-config", str(bad))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "devices[0].colour: unknown key" in r.stderr
    assert ".volume_l:" in r.stderr
    # Model errors come first; once they are fixed the dangling reference is reported too.
    text2 = text.replace("volume_l: -1", "volume_l: 1000", 1).replace("    colour: blue\n", "", 1)
    bad.write_text(text2)
    r = scada("check-config", str(bad))
    assert r.returncode == 1 and "'level_lo' is not a sensor group" in r.stderr
    assert f"{bad}:" in r.stderr


def test_check_config_malformed_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tanks: [\n")
    r = scada("check-config", str(bad))
    assert r.returncode == 1 and "not valid YAML" in r.stderr and "Traceback" not in r.stderr


def test_config_schema_is_json_schema() -> None:
    r = scada("config-schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["type"] == "object" and "tanks" in schema["properties"]


def test_version() -> None:
    r = scada("--version")
    assert r.returncode == 0 and r.stdout.startswith("scada ")
