"""``scada simulate`` / ``scada sim-fault`` and the control endpoint (routing pure; one real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scada.config import PlantConfig
from simulator.cli import register
from simulator.control import handle
from simulator.plant import PlantSimulator


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def test_print_map_reads_like_a_plc_register_table(example_config_path: Path) -> None:
    res = CliRunner().invoke(_app(), ["simulate", "--config", str(example_config_path), "--print-map"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "TAG" in out and "TABLE" in out and "WORDS" in out and "SCALING" in out
    row = next(line for line in out.splitlines() if line.startswith("line1.nickel.temp.a "))
    for cell in ("input", "300", "30301", "uint16", "4000..20000 -> 0..100 (4-20 mA)", "nickel temperature probe a"):
        assert cell in row
    row = next(line for line in out.splitlines() if line.startswith("line1.nickel.ph.b "))
    assert "306-307" in row and "little" in row
    assert "line1.rinse1.conductivity" in out and "s=rinse1.conductivity" in out


def test_simulate_refuses_a_bad_config_naming_the_key(tmp_path: Path, example_config_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(example_config_path.read_text().replace("volume_l: 1000", "volume_l: -1000"))
    res = CliRunner().invoke(_app(), ["simulate", "--config", str(bad), "--print-map"])
    assert res.exit_code == 1
    assert "volume_l" in res.output


def test_simulate_refuses_a_bad_scenario(tmp_path: Path, example_config_path: Path) -> None:
    sc = tmp_path / "s.yaml"
    sc.write_text("events:\n  - {at_s: 5, do: load, tank: nowhere}\n")
    res = CliRunner().invoke(_app(), ["simulate", "--config", str(example_config_path), "--scenario", str(sc),
                                      "--print-map"])
    assert res.exit_code == 2 and "nowhere" in res.output


def test_control_routes(line: PlantConfig) -> None:
    sim = PlantSimulator(line, watchdog=False)
    assert handle(sim, "POST", "/faults", {"kind": "offset", "tag": "t.ni.ph.a", "amplitude": 1})[0] == 200
    status, faults = handle(sim, "GET", "/faults", None)
    assert status == 200 and faults[0]["kind"] == "offset"
    assert handle(sim, "POST", "/faults", {"kind": "offset"})[0] == 400
    assert handle(sim, "POST", "/loads", {"tank": "ni", "area_dm2": 12})[0] == 200
    assert handle(sim, "GET", "/state", None)[1]["tanks"]["ni"]["load"]["area_dm2"] == 12
    assert handle(sim, "DELETE", "/loads/ni", None)[1]["load"]["area_dm2"] == 12
    assert handle(sim, "POST", "/estop", {"active": True})[1] == {"estop": True}
    assert handle(sim, "DELETE", "/faults", None)[1] == {"cleared": 1}
    assert handle(sim, "DELETE", "/faults/zzz", None)[0] == 400
    assert handle(sim, "POST", "/scenario", [{"at_s": 1, "do": "estop_release"}])[0] == 200
    assert handle(sim, "GET", "/nope", None)[0] == 404
    json.dumps(handle(sim, "GET", "/state", None)[1])  # serialisable


@pytest.mark.e2e
def test_simulate_process_with_control_endpoint_and_sim_fault(example_config_path: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "sc.json"
    scenario.write_text(json.dumps([{"at_s": 0, "do": "load", "tank": "nickel", "area_dm2": 40}]))
    cmd = [sys.executable, "-c", "from scada.cli import main; main()", "simulate", "--config",
           str(example_config_path), "--modbus-port", "0", "--no-opcua", "--control-port", "0", "--speed", "20",
           "--scenario", str(scenario)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["ready"] and ready["modbus"] > 0 and ready["opcua"] is None
        url = f"http://127.0.0.1:{ready['control']}"
        runner, app = CliRunner(), _app()
        res = runner.invoke(app, ["sim-fault", "--control", url, "open_circuit", "--tag", "line1.nickel.temp.a"])
        assert res.exit_code == 0, res.output
        fid = json.loads(res.output)["ids"][0]
        res = runner.invoke(app, ["sim-fault", "--control", url, "comm_slow", "-p", "delay_s=0.5"])
        assert res.exit_code == 0, res.output
        time.sleep(0.2)
        res = runner.invoke(app, ["sim-fault", "--control", url, "--state"])
        state = json.loads(res.output)
        assert state["tanks"]["nickel"]["load"]["area_dm2"] == 40
        assert {f["kind"] for f in state["faults"]} == {"open_circuit", "comm_slow"}
        res = runner.invoke(app, ["sim-fault", "--control", url, "--id", fid])
        assert json.loads(res.output) == {"cleared": 1}
        res = runner.invoke(app, ["sim-fault", "--control", url, "stuck"])
        assert res.exit_code == 2 and "tag" in res.output
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
