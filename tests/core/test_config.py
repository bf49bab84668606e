"""Every plant-config validation rule: the happy path and each error, with the key path it names."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scada.config import ConfigError, PlantConfig, load_config, parse_config
from scada.config.tags import Scale

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plating-line.yaml"
BASE: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())


def _tank(data: dict[str, Any], tank_id: str) -> dict[str, Any]:
    return next(t for t in data["tanks"] if t["id"] == tank_id)


def _tank_index(tank_id: str) -> int:
    return next(i for i, t in enumerate(BASE["tanks"]) if t["id"] == tank_id)


def _tag(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["tags"] if t["name"] == name)


def _tag_index(name: str) -> int:
    return next(i for i, t in enumerate(BASE["tags"]) if t["name"] == name)


def issues_for(mutate: Callable[[dict[str, Any]], None]) -> dict[str, str]:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "plant.yaml")
    return {i.path: i.message for i in exc.value.issues}


def test_example_plant_loads_with_every_section() -> None:
    plant = load_config(EXAMPLE)
    assert isinstance(plant, PlantConfig)
    nickel = plant.tank("nickel")
    assert nickel.sensors["temperature"].voting.value == "2oo3"
    assert len(nickel.sensors["temperature"].tags) == 3
    assert len(nickel.sensors["ph"].tags) == 2
    assert {"heater", "acid_pump", "rectifier_enable", "rectifier_setpoint"} <= set(nickel.outputs)
    assert plant.tank("chrome").inputs["exhaust_fan_running"] == "line1.chrome.exhaust.running"
    assert [t.id for t in plant.ordered_tanks()][:3] == ["soak", "rinse1", "ecleaner"]
    assert plant.tag("line1.nickel.ph.b").modbus.word_order.value == "little"
    assert nickel.pv_tag(plant.line.prefix, "temperature") == "line1.nickel.temperature.pv"


def test_config_is_frozen() -> None:
    plant = load_config(EXAMPLE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        plant.tanks[0].volume_l = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d.update(colour="red"), "colour", "unknown key"),
        (lambda d: _tank(d, "nickel").update(volumne_l=3), f"tanks[{_tank_index('nickel')}].volumne_l", "unknown key"),
        (lambda d: _tank(d, "nickel").update(volume_l=-5), f"tanks[{_tank_index('nickel')}].volume_l", "greater than 0"),
        (lambda d: _tank(d, "nickel").update(volume_l="lots"), f"tanks[{_tank_index('nickel')}].volume_l", "number"),
        (lambda d: d["devices"][0].update(port=70000), "devices[0].port", "65535"),
        (lambda d: d["devices"][0].update(protocol="profibus"), "devices[0]", "protocol"),
        (lambda d: _tag(d, "line1.soak.heater").update(name="Line1 Soak"), f"tags[{_tag_index('line1.soak.heater')}].name", "tag name"),
        (lambda d: _tag(d, "line1.soak.heater")["modbus"].update(type="int16"),
         f"tags[{_tag_index('line1.soak.heater')}].modbus", "type must be 'bool'"),
        (lambda d: _tag(d, "line1.soak.temp.a").update(scale={"raw_min": 0, "raw_max": 0, "eng_min": 0, "eng_max": 1}),
         f"tags[{_tag_index('line1.soak.temp.a')}].scale", "divide by zero"),
        (lambda d: _tag(d, "line1.soak.temp.a").pop("scale") and _tag(d, "line1.soak.temp.a").update(signal="ma_4_20"),
         f"tags[{_tag_index('line1.soak.temp.a')}]", "needs 'scale'"),
        (lambda d: _tag(d, "line1.nickel.rect.setpoint").update(operator_limits={"min": 0, "max": 5000}),
         f"tags[{_tag_index('line1.nickel.rect.setpoint')}]", "inside limits"),
        (lambda d: _tag(d, "line1.nickel.temp.a").update(access="read_write"),
         f"tags[{_tag_index('line1.nickel.temp.a')}]", "read-only"),
        (lambda d: _tag(d, "line1.nickel.temp.a").pop("device"), f"tags[{_tag_index('line1.nickel.temp.a')}]", "needs 'device'"),
        (lambda d: d["devices"][1].update(security_policy="Basic256Sha256"), "devices[1]", "both be"),
        (lambda d: d["devices"][1].update(username="op"), "devices[1]", "password_env"),
        (lambda d: _tank(d, "nickel")["sensors"]["temperature"].update(voting="1oo2"),
         f"tanks[{_tank_index('nickel')}].sensors.temperature", "needs 2 tag"),
        (lambda d: _tank(d, "nickel")["loops"][0].pop("pid"), f"tanks[{_tank_index('nickel')}].loops[0]", "'pid' section"),
        (lambda d: _tank(d, "nickel")["loops"][0]["setpoint"].update(initial=99),
         f"tanks[{_tank_index('nickel')}].loops[0].setpoint", "outside limits"),
        (lambda d: _tank(d, "nickel")["interlocks"][1].update(trip_when=["temperature >> 5"]),
         f"tanks[{_tank_index('nickel')}].interlocks[1].trip_when", "cannot read condition"),
        (lambda d: _tank(d, "nickel")["alarms"][0].update(h=70),
         f"tanks[{_tank_index('nickel')}].alarms[0]", "ordered"),
        (lambda d: _tank(d, "nickel")["window"].update(temperature_c={"min": 60, "max": 50}),
         f"tanks[{_tank_index('nickel')}].window.temperature_c", "greater than max"),
    ],
    ids=[
        "unknown-top-key", "unknown-tank-key", "negative-volume", "wrong-type", "port-range", "bad-protocol",
        "bad-tag-name", "coil-not-bool", "zero-scale", "signal-without-scale", "operator-limits-outside",
        "write-input-table", "address-without-device", "opcua-security-pair", "opcua-user-no-password",
        "voting-count", "loop-missing-params", "setpoint-outside", "condition-syntax", "alarm-order",
        "window-reversed",
    ],
)
def test_model_errors_name_the_key_path(mutate: Callable[[dict[str, Any]], None], path: str, fragment: str) -> None:
    issues = issues_for(mutate)
    assert path in issues, f"expected an issue at {path}, got {issues}"
    assert fragment in issues[path]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d["tags"].append(dict(_tag(d, "line1.soak.heater"))),
         f"tags[{len(BASE['tags'])}].name", "duplicate name"),
        (lambda d: d["devices"].append(dict(d["devices"][0])), "devices[2].name", "duplicate name"),
        (lambda d: d["tanks"].append(copy.deepcopy(_tank(d, "rinse1"))), f"tanks[{len(BASE['tanks'])}].id", "duplicate id"),
        (lambda d: _tag(d, "line1.soak.heater").update(device="plc9"),
         f"tags[{_tag_index('line1.soak.heater')}].device", "unknown device 'plc9'"),
        (lambda d: _tag(d, "line1.soak.heater").update(device="ua1"),
         f"tags[{_tag_index('line1.soak.heater')}].modbus", "not Modbus"),
        (lambda d: _tag(d, "line1.nickel.temp.b")["modbus"].update(address=300),
         f"tags[{_tag_index('line1.nickel.temp.b')}].modbus.address", "overlaps"),
        (lambda d: _tag(d, "line1.nickel.ph.a")["modbus"].update(address=305),
         f"tags[{_tag_index('line1.nickel.ph.b')}].modbus.address", "overlaps"),
        (lambda d: _tank(d, "nickel")["sensors"]["temperature"]["tags"].__setitem__(1, "line1.nickel.temp.z"),
         f"tanks[{_tank_index('nickel')}].sensors.temperature.tags[1]", "unknown tag"),
        (lambda d: _tank(d, "nickel")["outputs"].update(heater="line1.nickel.temp.a"),
         f"tanks[{_tank_index('nickel')}].outputs.heater", "access is 'read'"),
        (lambda d: _tank(d, "nickel")["loops"][0].update(pv="conductivity"),
         f"tanks[{_tank_index('nickel')}].loops[0].pv", "no sensor group"),
        (lambda d: _tank(d, "nickel")["loops"][0].update(output="chiller"),
         f"tanks[{_tank_index('nickel')}].loops[0].output", "no output"),
        (lambda d: _tank(d, "nickel")["loops"].append(copy.deepcopy(_tank(d, "nickel")["loops"][0])),
         f"tanks[{_tank_index('nickel')}].loops[3].id", "duplicate id"),
        (lambda d: _tank(d, "nickel")["interlocks"][1].update(trip_when=["flux_capacitor > 3"]),
         f"tanks[{_tank_index('nickel')}].interlocks[1].trip_when[0]", "not a sensor group"),
        (lambda d: _tank(d, "nickel")["interlocks"][1].update(trip_when=["level_low disagree"]),
         f"tanks[{_tank_index('nickel')}].interlocks[1].trip_when[0]", "needs a sensor group"),
        (lambda d: _tank(d, "nickel")["interlocks"][1].update(acts_on=["laser"]),
         f"tanks[{_tank_index('nickel')}].interlocks[1].acts_on[0]", "no output"),
        (lambda d: _tank(d, "nickel")["interlocks"][0].update(bypassable=True),
         f"tanks[{_tank_index('nickel')}].interlocks[0].bypassable", "must not be bypassable"),
        (lambda d: _tank(d, "nickel")["interlocks"][4].update(bypassable=True),
         f"tanks[{_tank_index('nickel')}].interlocks[4].bypassable", "must not be bypassable"),
        (lambda d: _tank(d, "nickel")["alarms"][0].update(source="viscosity"),
         f"tanks[{_tank_index('nickel')}].alarms[0].source", "not a sensor group"),
        (lambda d: d["line"].update(heartbeat="line1.estop"), "line.heartbeat", "access is 'read'"),
        (lambda d: d["line"].update(estop="line1.nope"), "line.estop", "unknown tag"),
        (lambda d: d["line"]["tank_order"].append("zinc"), f"line.tank_order[{len(BASE['line']['tank_order'])}]", "unknown tank"),
        (lambda d: _tank(d, "nickel")["sensors"].update(nickel={"tags": ["line1.nickel.heater"]})
         or d["tags"].append({"name": "line1.nickel.nickel.pv"}),
         f"tanks[{_tank_index('nickel')}].sensors.nickel", "clashes"),
    ],
    ids=[
        "dup-tag", "dup-device", "dup-tank", "dangling-device", "protocol-mismatch", "overlap-same-start",
        "overlap-float32", "dangling-sensor-tag", "output-not-writable", "loop-pv", "loop-output", "dup-loop",
        "interlock-ref", "disagree-non-group", "interlock-acts-on", "dry-fire-bypass", "estop-bypass",
        "alarm-source", "heartbeat-readonly", "estop-dangling", "tank-order", "derived-clash",
    ],
)
def test_cross_reference_errors(mutate: Callable[[dict[str, Any]], None], path: str, fragment: str) -> None:
    issues = issues_for(mutate)
    assert path in issues, f"expected an issue at {path}, got {issues}"
    assert fragment in issues[path]


def test_bits_of_one_register_may_share_it() -> None:
    data = copy.deepcopy(BASE)
    data["tags"] += [
        {"name": "line1.status.b0", "device": "plc1", "modbus": {"table": "input", "address": 900, "type": "bit", "bit": 0}},
        {"name": "line1.status.b1", "device": "plc1", "modbus": {"table": "input", "address": 900, "type": "bit", "bit": 1}},
    ]
    parse_config(data)
    data["tags"][-1]["modbus"]["bit"] = 0
    with pytest.raises(ConfigError, match="overlaps"):
        parse_config(data)


def test_every_error_is_reported_at_once() -> None:
    def many(d: dict[str, Any]) -> None:
        d["devices"][0]["port"] = 0
        _tank(d, "nickel")["volume_l"] = 0
        _tank(d, "chrome")["bogus"] = 1

    assert len(issues_for(many)) == 3

    def refs(d: dict[str, Any]) -> None:
        _tag(d, "line1.soak.heater")["device"] = "nope"
        _tank(d, "nickel")["loops"][0]["pv"] = "nope"
        d["line"]["estop"] = "line1.nope"

    assert len(issues_for(refs)) == 3


def test_yaml_errors_carry_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "plant.yaml"
    bad.write_text("devices:\n  - name: plc1\n    protocol: [modbus_tcp\n")
    with pytest.raises(ConfigError) as exc:
        load_config(bad)
    text = str(exc.value)
    assert str(bad) in text and "not valid YAML" in text


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "plant.yaml"
    f.write_text("line:\n  name: a\n  name: b\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    issue = exc.value.issues[0]
    assert issue.path == "line.name" and "duplicate key" in issue.message and issue.line == 3


def test_line_numbers_point_into_the_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("volume_l: 1000", "volume_l: -1000", 1)
    f = tmp_path / "plant.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    issue = exc.value.issues[0]
    assert issue.line is not None
    assert "volume_l" in text.splitlines()[issue.line - 1]


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(f)


def test_scale_round_trip() -> None:
    s = Scale(raw_min=4000, raw_max=20000, eng_min=0, eng_max=100)
    assert s.to_eng(12000) == pytest.approx(50.0)
    assert s.to_raw(s.to_eng(7331)) == pytest.approx(7331)


def test_configuration_doc_reference_is_current() -> None:
    from scada.config.reference import splice

    doc = (EXAMPLE.parents[1] / "docs" / "configuration.md").read_text()
    assert splice(doc) == doc, "run: python -m scada.config.reference --write docs/configuration.md"


def test_environment_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = EXAMPLE.read_text().replace("host: 127.0.0.1", "host: ${PLC1_HOST:-127.0.0.1}", 1)
    text = text.replace("port: 15020", "port: ${PLC1_PORT:-15020}", 1)
    f = tmp_path / "plant.yaml"
    f.write_text(text)
    assert load_config(f).device("plc1").host == "127.0.0.1"
    monkeypatch.setenv("PLC1_HOST", "simulator")
    monkeypatch.setenv("PLC1_PORT", "502")
    plc = load_config(f).device("plc1")
    assert plc.host == "simulator" and plc.port == 502
    f.write_text(text.replace("${PLC1_HOST:-127.0.0.1}", "${NO_SUCH_VAR_X}"))
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert exc.value.issues[0].path == "devices[0].host" and "NO_SUCH_VAR_X" in exc.value.issues[0].message


def test_every_config_key_is_documented() -> None:
    from scada.config.reference import _models

    undocumented = [f"{m.__name__}.{n}" for m in _models(PlantConfig) for n, f in m.model_fields.items()
                    if not f.description]
    assert undocumented == [], "add a docstring under each field: it becomes docs/configuration.md"
