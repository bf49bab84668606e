"""Control endpoint: fault injection and the physical truth over JSON/HTTP on 127.0.0.1 (stdlib only).

Routes (all bodies and answers are JSON)::

    GET    /health              {"ok": true, "sim_time_s": ..., "ports": {...}}
    GET    /state               the physical truth (PlantSimulator.truth())
    GET    /faults              active faults
    POST   /faults              a fault or a list of faults -> {"ids": [...]}
    DELETE /faults              clear every fault -> {"cleared": n}
    DELETE /faults/<id>         clear one fault
    POST   /loads               {"tank": "nickel", "area_dm2": 50} -> a load enters the tank
    DELETE /loads/<tank>        the load leaves (answer: what it received)
    POST   /estop               {"active": true|false}
    POST   /scenario            a scenario (events relative to now)
    GET    /map                 the register map

Bad input answers 400 with ``{"error": "<what was wrong>"}``; the plant keeps running.
:func:`handle` is pure (no sockets) so the routing is unit-tested directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict
from typing import Any

from simulator.faults import FaultError, parse_scenario
from simulator.plant import PlantSimulator

log = logging.getLogger(__name__)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
MAX_BODY = 1_000_000


def handle(sim: PlantSimulator, method: str, path: str, body: Any, ports: dict[str, int | None] | None = None,
           ) -> tuple[int, Any]:
    """Route one request; returns (HTTP status, JSON-able answer)."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    try:
        if parts == ["health"] and method == "GET":
            return 200, {"ok": True, "sim_time_s": sim.sim_s, "speed": sim.speed, "ports": ports or {}}
        if parts == ["state"] and method == "GET":
            return 200, sim.truth()
        if parts == ["map"] and method == "GET":
            return 200, [asdict(r) for r in sim.register_map()]
        if parts[:1] == ["faults"]:
            if method == "GET" and len(parts) == 1:
                return 200, sim.active_faults()
            if method == "POST" and len(parts) == 1:
                items = body if isinstance(body, list) else [body]
                ids = [sim.inject(f) for f in items]
                return 200, {"ids": ids}
            if method == "DELETE":
                return 200, {"cleared": sim.clear_faults(parts[1] if len(parts) > 1 else None)}
        if parts[:1] == ["loads"]:
            if method == "POST" and len(parts) == 1:
                if not isinstance(body, dict) or "tank" not in body:
                    raise FaultError("tank: a load needs 'tank' (and optionally 'area_dm2')")
                area = body.get("area_dm2")
                sim.put_load(str(body["tank"]), None if area is None else float(area))
                return 200, {"ok": True}
            if method == "DELETE" and len(parts) == 2:
                return 200, {"load": sim.remove_load(parts[1])}
        if parts == ["estop"] and method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
                raise FaultError("active: e-stop needs {'active': true|false}")
            sim.set_estop(body["active"])
            return 200, {"estop": sim.estop}
        if parts == ["scenario"] and method == "POST":
            sim.load_scenario(parse_scenario(body))
            return 200, {"ok": True}
    except (FaultError, ValueError, TypeError) as e:
        return 400, {"error": str(e)}
    return 404, {"error": f"no route {method} {path}"}


class ControlServer:
    """Minimal HTTP/1.1 server (one request per connection) around :func:`handle`."""

    def __init__(self, sim: PlantSimulator, host: str = "127.0.0.1", port: int = 0,
                 ports: dict[str, int | None] | None = None) -> None:
        self.sim = sim
        self.host = host
        self.requested_port = port
        self.port = 0
        self.ports = ports if ports is not None else {}
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, answer = 500, {"error": "internal error"}
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1").strip()
            method, path, *_ = line.split(" ") + ["", ""]
            length = 0
            while True:
                h = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1").strip()
                if not h:
                    break
                k, _, v = h.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if length > MAX_BODY:
                status, answer = 400, {"error": "body too large"}
            else:
                raw = await reader.readexactly(length) if length else b""
                try:
                    body = json.loads(raw) if raw.strip() else None
                except json.JSONDecodeError as e:
                    status, answer = 400, {"error": f"body is not JSON: {e}"}
                else:
                    status, answer = handle(self.sim, method.upper(), path, body, self.ports)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            status, answer = 400, {"error": "malformed HTTP request"}
        except Exception:  # noqa: BLE001 - never let a request kill the endpoint
            log.exception("control endpoint: request failed")
        try:
            data = json.dumps(answer, default=str).encode()
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
