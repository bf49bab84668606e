"""The same plant as OPC UA nodes (asyncua): a folder per tank, engineering values and units.

Address space (namespace URI = the OPC UA device's ``namespace`` in the config, else
``urn:plating-scada:simulator``)::

    Objects/<line prefix>/<tank id>/<tag name>      NodeId ns=<idx>;s=<tag name>
    Objects/<line prefix>/line/<line signal tag>

Every tag bound to a tank (probes, switches, outputs) is a variable named by its tag, with an
``EngineeringUnits`` property. Tags addressed over OPC UA in the config additionally get their
configured node id (``s=rinse1.conductivity`` → ``ns=<idx>;s=rinse1.conductivity``) with the
configured variant type; those that are outputs are writable and drive the plant. A probe with an
open or shorted wire reads ``BadSensorFailure``.

This is the only simulator module that imports asyncua.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from asyncua import Server, ua

from scada.config import OpcUaDevice, TagConfig
from simulator.codec import Signal
from simulator.plant import PlantSimulator

DEFAULT_NAMESPACE = "urn:plating-scada:simulator"
_VT = {"double": ua.VariantType.Double, "float": ua.VariantType.Float, "int16": ua.VariantType.Int16,
       "int32": ua.VariantType.Int32, "uint16": ua.VariantType.UInt16, "uint32": ua.VariantType.UInt32,
       "boolean": ua.VariantType.Boolean}
_INTS = {ua.VariantType.Int16, ua.VariantType.Int32, ua.VariantType.UInt16, ua.VariantType.UInt32}


@dataclass
class _Var:
    tag: str
    nodeid: ua.NodeId
    vt: ua.VariantType
    writable: bool
    last: Any = None


def _string_id(node: str) -> str | None:
    """The ``s=`` part of a node id written ``s=...`` or ``ns=<x>;s=...``."""
    m = re.search(r"(?:^|;)s=(.+)$", node)
    return m.group(1) if m else None


class OpcUaPlcServer:
    """asyncua server serving the simulator's values; opcua-addressed outputs are writable."""

    def __init__(self, sim: PlantSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self.host = host
        self.requested_port = port
        self.port = 0
        dev = next((d for d in sim.plant.devices if isinstance(d, OpcUaDevice)), None)
        self.namespace = (dev.namespace if dev and dev.namespace else None) or DEFAULT_NAMESPACE
        m = re.match(r"opc\.tcp://[^/]+(/.*)?$", dev.endpoint) if dev else None
        self.path = (m.group(1) if m and m.group(1) else "/plating/") if dev else "/plating/"
        self.server: Server | None = None
        self.idx = 0
        self._vars: list[_Var] = []

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        logging.getLogger("asyncua").setLevel(logging.ERROR)
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.requested_port}{self.path}")
        server.set_server_name("Plating line simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.idx = await server.register_namespace(self.namespace)
        await self._build(server)
        await server.start()
        self.server = server
        bserver: Any = server.bserver
        self.port = bserver._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def _build(self, server: Server) -> None:
        sim, idx = self.sim, self.idx
        plant = sim.plant
        root = await server.nodes.objects.add_folder(ua.NodeId(plant.line.prefix, idx),
                                                   ua.QualifiedName(plant.line.prefix, idx))
        folders: dict[str, Any] = {}
        for tank in plant.tanks:
            folders[tank.id] = await root.add_folder(ua.NodeId(f"{plant.line.prefix}.{tank.id}", idx),
                                                   ua.QualifiedName(tank.id, idx))
        line_folder = await root.add_folder(ua.NodeId(f"{plant.line.prefix}.line", idx),
                                             ua.QualifiedName("line", idx))
        owner: dict[str, str] = {}
        for name, b in {**sim.probes, **sim.inputs, **sim.outputs}.items():
            owner[name] = b.tank
        used: set[str] = set()
        for tag in plant.tags:
            folder = folders.get(owner.get(tag.name, "")) if tag.name in owner else None
            if folder is None:
                if tag.name in (plant.line.estop, plant.line.heartbeat, plant.line.plc_watchdog_tripped):
                    folder = line_folder
                else:
                    continue
            vt = ua.VariantType.Boolean if tag.is_boolean else ua.VariantType.Double
            await self._add(folder, tag, tag.name, vt, writable=False, used=used)
            if tag.opcua is not None:
                sid = _string_id(tag.opcua.node)
                if sid and sid not in used:
                    cvt = _VT[tag.opcua.type] if tag.opcua.type else vt
                    await self._add(folder, tag, sid, cvt, writable=tag.writable, used=used)

    async def _add(self, folder: Any, tag: TagConfig, sid: str, vt: ua.VariantType, *, writable: bool,
                   used: set[str]) -> None:
        used.add(sid)
        nodeid = ua.NodeId(sid, self.idx)
        value = self._convert(self.sim.values.get(tag.name, False if vt == ua.VariantType.Boolean else 0.0), vt)
        var = await folder.add_variable(nodeid, ua.QualifiedName(sid, self.idx), ua.Variant(value, vt))
        if tag.unit:
            eu = ua.EUInformation(NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact", UnitId=-1,
                                  DisplayName=ua.LocalizedText(tag.unit), Description=ua.LocalizedText(tag.unit))
            await var.add_property(self.idx, "EngineeringUnits", eu)
        if tag.description:
            await var.write_attribute(ua.AttributeIds.Description,
                                      ua.DataValue(ua.Variant(ua.LocalizedText(tag.description))))
        if writable:
            await var.set_writable()
        self._vars.append(_Var(tag.name, nodeid, vt, writable, value))

    @staticmethod
    def _convert(v: Any, vt: ua.VariantType) -> Any:
        if vt == ua.VariantType.Boolean:
            return bool(v)
        if vt in _INTS:
            return int(round(float(v)))
        return float(v)

    def pull_outputs(self) -> None:
        """Writable (output) nodes → the simulator, before its scan."""
        if self.server is None:
            return
        for var in self._vars:
            if var.writable:
                dv = self.server.read_attribute_value(var.nodeid)
                v = dv.Value.Value if dv.Value is not None else None
                if v is not None:
                    self.sim.opcua_outputs[var.tag] = v
                    var.last = v

    async def push(self) -> None:
        """The simulator's values → every node (only what changed)."""
        server = self.server
        if server is None:
            return
        sim = self.sim
        for var in self._vars:
            if var.writable:
                v: Any = sim.opcua_outputs.get(var.tag, var.last)
                if v is None:
                    continue
                v = self._convert(v, var.vt)
                if v != var.last:  # the PLC forced it (watchdog)
                    var.last = v
                    await server.write_attribute_value(var.nodeid, ua.DataValue(ua.Variant(v, var.vt)))
                continue
            signal = sim.signals.get(var.tag, Signal.OK)
            raw = sim.values.get(var.tag)
            if raw is None:
                continue
            v = self._convert(raw, var.vt)
            key = (v, signal)
            if key == var.last:
                continue
            var.last = key
            if signal is Signal.OK:
                dv = ua.DataValue(ua.Variant(v, var.vt))
            else:
                dv = ua.DataValue(ua.Variant(v, var.vt), StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
            await server.write_attribute_value(var.nodeid, dv)
