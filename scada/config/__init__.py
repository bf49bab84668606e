"""Plant configuration: one YAML file, typed, complete or refused (every error at once)."""

from scada.config.alarms import AlarmConfig, AlarmKind, Priority
from scada.config.base import Range, StrictModel
from scada.config.control import LoopConfig, LoopKind, LoopMode
from scada.config.devices import (
    ByteOrder,
    DeviceConfig,
    ModbusRtuDevice,
    ModbusTcpDevice,
    OpcUaDevice,
    WordOrder,
)
from scada.config.interlocks import InterlockConfig
from scada.config.loader import ConfigError, ConfigIssue, cross_check, load_config, parse_config
from scada.config.plant import LineConfig, PlantConfig, ScanConfig
from scada.config.simulation import SimulationConfig
from scada.config.tags import Access, DataType, ModbusAddress, ModbusTable, OpcUaAddress, Scale, TagConfig
from scada.config.tanks import ProcessType, SensorGroupConfig, TankConfig, Voting

__all__ = [
    "Access", "AlarmConfig", "AlarmKind", "ByteOrder", "ConfigError", "ConfigIssue", "DataType",
    "DeviceConfig", "InterlockConfig", "LineConfig", "LoopConfig", "LoopKind", "LoopMode",
    "ModbusAddress", "ModbusRtuDevice", "ModbusTable", "ModbusTcpDevice", "OpcUaAddress",
    "OpcUaDevice", "PlantConfig", "Priority", "ProcessType", "Range", "Scale", "ScanConfig",
    "SensorGroupConfig", "SimulationConfig", "StrictModel", "TagConfig", "TankConfig", "Voting",
    "WordOrder", "cross_check", "load_config", "parse_config",
]
