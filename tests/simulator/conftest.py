"""A small test line (one nickel tank, one rinse) whose numbers make the physics easy to check."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from scada.config import PlantConfig, parse_config

TEST_LINE_YAML = """
version: 1
line: {name: Test line, prefix: t, estop: t.estop, heartbeat: t.heartbeat, plc_watchdog_tripped: t.wd,
       watchdog_timeout_s: 1.0, ambient_c: 20}
devices:
  - {name: plc, protocol: modbus_tcp, host: 127.0.0.1, port: 15020, unit_id: 1}
  - {name: ua, protocol: opcua, endpoint: "opc.tcp://127.0.0.1:14840/plating/", namespace: "urn:test:sim"}
tags:
  - {name: t.estop, device: plc, modbus: {table: discrete, address: 0, type: bool}}
  - {name: t.wd, device: plc, modbus: {table: discrete, address: 1, type: bool}}
  - {name: t.heartbeat, device: plc, modbus: {table: holding, address: 0, type: uint16}, access: read_write}
  - {name: t.status, device: plc, modbus: {table: holding, address: 5, type: uint16}, description: read-only status}
  - {name: t.ni.temp.a, device: plc, modbus: {table: input, address: 0, type: uint16},
     scale: {raw_min: 4000, raw_max: 20000, eng_min: 0, eng_max: 100}, signal: ma_4_20, unit: degC}
  - {name: t.ni.temp.b, device: plc, modbus: {table: input, address: 1, type: int16},
     scale: {raw_min: 0, raw_max: 1000, eng_min: 0, eng_max: 100}, unit: degC}
  - {name: t.ni.ph.a, device: plc, modbus: {table: input, address: 2, type: float32}, unit: pH}
  - {name: t.ni.ph.b, device: plc, modbus: {table: input, address: 4, type: float32, word_order: little}, unit: pH}
  - {name: t.ni.current, device: plc, modbus: {table: input, address: 6, type: uint16}, unit: A}
  - {name: t.ni.voltage, device: plc, modbus: {table: input, address: 7, type: uint16},
     scale: {raw_min: 0, raw_max: 10000, eng_min: 0, eng_max: 100}, unit: V}
  - {name: t.ni.ah, device: plc, modbus: {table: input, address: 8, type: uint32, byte_order: little},
     scale: {raw_min: 0, raw_max: 100, eng_min: 0, eng_max: 1}, unit: Ah}
  - {name: t.ni.level_low, device: plc, modbus: {table: discrete, address: 10, type: bool}}
  - {name: t.ni.load, device: plc, modbus: {table: discrete, address: 11, type: bool}}
  - {name: t.ni.rect_fault, device: plc, modbus: {table: discrete, address: 12, type: bool}}
  - {name: t.ni.fan_running, device: plc, modbus: {table: discrete, address: 13, type: bool}}
  - {name: t.ni.heater, device: plc, modbus: {table: coil, address: 0, type: bool}, access: read_write}
  - {name: t.ni.acid, device: plc, modbus: {table: coil, address: 1, type: bool}, access: read_write}
  - {name: t.ni.rect_enable, device: plc, modbus: {table: coil, address: 2, type: bool}, access: read_write}
  - {name: t.ni.fan, device: plc, modbus: {table: coil, address: 3, type: bool}, access: read_write}
  - {name: t.ni.rect_sp, device: plc, modbus: {table: holding, address: 10, type: uint16}, access: read_write, unit: A}
  - {name: t.rinse.conductivity, device: ua, opcua: {node: "s=rinse.conductivity", type: double}, unit: uS/cm}
  - {name: t.rinse.valve, device: ua, opcua: {node: "s=rinse.valve", type: boolean}, access: read_write}
tanks:
  - id: ni
    name: Test nickel
    process: watts_nickel
    volume_l: 100
    sensors:
      temperature: {tags: [t.ni.temp.a, t.ni.temp.b], voting: 1oo2}
      ph: {tags: [t.ni.ph.a, t.ni.ph.b], voting: 1oo2}
      current: {tags: [t.ni.current]}
      voltage: {tags: [t.ni.voltage]}
      amp_hours: {tags: [t.ni.ah]}
    inputs: {level_low: t.ni.level_low, load_present: t.ni.load, rectifier_fault: t.ni.rect_fault,
             exhaust_fan_running: t.ni.fan_running}
    outputs: {heater: t.ni.heater, acid_pump: t.ni.acid, rectifier_enable: t.ni.rect_enable,
              rectifier_setpoint: t.ni.rect_sp, exhaust_fan: t.ni.fan}
    simulation:
      thermal: {heater_kw: 3}
      ph: {pump_l_min: 0.05, tau_mix_s: 30}
      rectifier: {i_max_a: 100, ramp_s: 10, r_tank_ohm: 0.05, e_back_v: 2.0, v_max_v: 12}
  - id: rinse
    name: Rinse
    process: rinse
    volume_l: 200
    sensors:
      conductivity: {tags: [t.rinse.conductivity]}
    outputs: {makeup_valve: t.rinse.valve}
"""


def make_line_data() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(TEST_LINE_YAML))


@pytest.fixture
def line_data() -> dict[str, Any]:
    return make_line_data()


@pytest.fixture(scope="session")
def line() -> PlantConfig:
    return parse_config(make_line_data(), "test-line")
