"""Plant simulator: plating-line physics and a PLC program behind real Modbus TCP and OPC UA servers.

Public API (see docs/simulator.md)::

    sim = PlantSimulator(plant_config, speed=50, seed=1)
    async with SimulatorServers(sim, modbus_port=0, opcua_port=None, control_port=0) as servers: ...
    sim.inject(fault) / sim.clear_faults() / sim.put_load(tank, area_dm2) / sim.remove_load(tank) / sim.truth()
"""

from simulator.faults import (
    Fault,
    FaultError,
    FaultKind,
    Scenario,
    load_scenario,
    parse_fault,
    parse_scenario,
)
from simulator.plant import PlantSimulator
from simulator.servers import SimulatorServers

__all__ = [
    "Fault", "FaultError", "FaultKind", "PlantSimulator", "Scenario", "SimulatorServers", "load_scenario",
    "parse_fault", "parse_scenario",
]
