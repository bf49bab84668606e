"""Run the product as a user does: `scada simulate` and `scada run` as separate processes on loopback.

Everything is verified through public surfaces only: the REST API and WebSocket of the server, the
database, and the simulator's wire (Modbus) and control endpoint. Logs of every process are kept under
``test-artifacts/e2e/`` so a failure can be read after the run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-artifacts" / "e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy; raise with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Proc:
    """A child process with its log file; ``kill9`` is a real SIGKILL."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self) -> Proc:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{self.name}-{int(time.time() * 1000)}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "scada", *self.args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 10) -> int | None:
        if not self.popen:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def kill9(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


class Http:
    """Minimal JSON HTTP client on urllib (no event loop needed in sync e2e tests)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: Any = None, *, form: dict[str, str] | None = None,
                timeout: float = 10) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if form is not None:
            from urllib.parse import urlencode

            data = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        ctype_json = raw[:1] in (b"{", b"[")
        return status, (json.loads(raw) if ctype_json else raw.decode(errors="replace"))

    def get(self, path: str, **kw: Any) -> Any:
        status, body = self.request("GET", path, **kw)
        if status != 200:
            raise AssertionError(f"GET {path} -> {status}: {body}")
        return body

    def login(self, username: str, password: str) -> None:
        status, body = self.request("POST", "/api/auth/token", form={"username": username, "password": password})
        if status != 200:
            raise AssertionError(f"login {username} -> {status}: {body}")
        self.token = body["access_token"]


# ---------------------------------------------------------------------------------------------- plant file

EXAMPLE = ROOT / "examples" / "plating-line.yaml"
SCADA = [sys.executable, "-m", "scada"]


def plant_copy(path: Path, modbus_port: int, opcua_port: int,
               tweak: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """Write the example plant to ``path`` with its device ports replaced (hosts stay ``${PLC1_HOST:-..}``).

    ``tweak`` edits the parsed YAML (e.g. a simulation initial value); the device hosts keep the
    environment interpolation the README documents, so the copy is the example plant as a user runs it.
    """
    import yaml

    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    for dev in data["devices"]:
        if dev["protocol"] == "modbus_tcp":
            dev["port"] = modbus_port
        elif dev["protocol"] == "opcua":
            head, tail = dev["endpoint"].rsplit(":", 1)
            dev["endpoint"] = f"{head}:{opcua_port}/{tail.split('/', 1)[1]}"
    if tweak is not None:
        tweak(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tank(data: dict[str, Any], tank_id: str) -> dict[str, Any]:
    return next(t for t in data["tanks"] if t["id"] == tank_id)


def tag_cfg(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["tags"] if t["name"] == name)


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run ``scada ARGS`` to completion; raise with its output on a non-zero exit."""
    r = subprocess.run([*SCADA, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise AssertionError(f"scada {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


USERS = {"engineer": "engineer-pass-123", "operator": "operator-pass-123", "viewer": "viewer-pass-123"}
SECRET = "e2e-secret-key-e2e-secret-key-0123456789abcdef"


def prepare_database(db_url: str) -> None:
    """As the operations doc says: ``scada db upgrade`` then ``scada user add`` for each role."""
    cli("db", "upgrade", "--db", db_url)
    for role, pw in USERS.items():
        cli("user", "add", role, "--role", role, "--password-stdin", "--db", db_url, stdin=pw + "\n")


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class Simulator:
    """``scada simulate`` in its own process; ``ports`` from its JSON ready line."""

    proc: Proc
    ports: dict[str, Any]
    control: Http

    def inject(self, **fault: Any) -> str:
        status, body = self.control.request("POST", "/faults", fault)
        assert status == 200, body
        return body["ids"][0]

    def clear(self, fault_id: str | None = None) -> None:
        status, body = self.control.request("DELETE", f"/faults/{fault_id}" if fault_id else "/faults")
        assert status == 200, body

    def state(self) -> dict[str, Any]:
        return self.control.get("/state")

    def put_load(self, tank_id: str, area_dm2: float | None = None) -> Any:
        body: dict[str, Any] = {"tank": tank_id}
        if area_dm2 is not None:
            body["area_dm2"] = area_dm2
        status, out = self.control.request("POST", "/loads", body)
        assert status == 200, out
        return out

    def remove_load(self, tank_id: str) -> Any:
        status, out = self.control.request("DELETE", f"/loads/{tank_id}")
        assert status == 200, out
        return out

    def read_coils(self, address: int, count: int = 1, unit: int = 1) -> list[bool]:
        return read_coils(self.ports["modbus"], address, count, unit)


def start_simulator(plant: Path, modbus_port: int, opcua_port: int, *, speed: float, seed: int = 1,
                    name: str = "simulator") -> Simulator:
    proc = Proc(name, ["simulate", "--config", str(plant), "--modbus-port", str(modbus_port),
                       "--opcua-port", str(opcua_port), "--control-port", "0", "--speed", str(speed),
                       "--seed", str(seed)]).start()

    def ready() -> dict[str, Any] | None:
        if not proc.alive:
            raise AssertionError(f"simulator exited:\n{proc.log()}")
        for line in proc.log().splitlines():
            if line.startswith("{") and '"ready"' in line:
                return json.loads(line)
        return None

    ports = wait_until(ready, 30, what="the simulator's ready line")
    return Simulator(proc, ports, Http(f"http://127.0.0.1:{ports['control']}"))


@dataclass
class Server:
    """``scada run`` in its own process (restartable with the same arguments)."""

    plant: Path
    db_url: str
    port: int
    buffer: Path
    name: str = "server"
    env: dict[str, str] = field(default_factory=dict)
    proc: Proc | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        self.proc = Proc(self.name, ["run", "--config", str(self.plant), "--db", self.db_url, "--port", str(self.port),
                                     "--buffer", str(self.buffer)],
                         env={"SCADA_SECRET_KEY": SECRET, "SCADA_COOKIE_SECURE": "false", **self.env}).start()
        proc = self.proc

        def ready() -> bool:
            if not proc.alive:
                raise AssertionError(f"server exited:\n{proc.log()}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return False

        wait_until(ready, timeout, interval=0.2, what="/readyz of scada run")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None and self.proc.popen is not None
        return self.proc.popen.pid

    def client(self, role: str = "engineer") -> Http:
        h = Http(self.base)
        h.login(role, USERS[role])
        return h

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill9()


# ---------------------------------------------------------------------------------------------- API helpers


def tank_view(api: Http, tank_id: str) -> dict[str, Any]:
    return api.get(f"/api/tanks/{tank_id}")


def pv(api: Http, tank_id: str, group: str) -> dict[str, Any]:
    return tank_view(api, tank_id)["sensors"][group]["pv"]


def interlock(api: Http, tank_id: str, il_id: str) -> dict[str, Any]:
    return next(i for i in tank_view(api, tank_id)["interlocks"] if i["interlock"] == il_id)


def alarms(api: Http) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in api.get("/api/alarms")}


def tags(api: Http, prefix: str = "") -> dict[str, dict[str, Any]]:
    rows = api.get(f"/api/tags?prefix={prefix}" if prefix else "/api/tags")
    return {t["name"]: t for t in rows}


# ---------------------------------------------------------------------------------------------- the wire


def read_coils(port: int, address: int, count: int = 1, unit: int = 1, host: str = "127.0.0.1") -> list[bool]:
    """Modbus TCP function 1 with a raw socket: what the PLC really drives, independent of our driver."""
    import struct

    with socket.create_connection((host, port), timeout=2) as s:
        s.sendall(struct.pack(">HHHBBHH", 7, 0, 6, unit, 1, address, count))
        head = _recv_exact(s, 7)
        _tid, _pid, length, _unit = struct.unpack(">HHHB", head)
        pdu = _recv_exact(s, length - 1)
    if pdu[0] != 1:
        raise AssertionError(f"Modbus exception reading coil {address}: {pdu.hex()}")
    bits = int.from_bytes(pdu[2:2 + pdu[1]], "little")
    return [bool(bits >> i & 1) for i in range(count)]


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("Modbus peer closed")
        buf += chunk
    return buf


class TcpProxy:
    """A threaded TCP relay that a test can ``cut`` (abort every connection, refuse new ones) and ``restore``."""

    def __init__(self, target: tuple[str, int]) -> None:
        import threading

        self.target = target
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._open = True
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._stop:
            try:
                c, _ = self._listener.accept()
            except OSError:
                return
            if not self._open:
                _abort(c)
                continue
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(c)
                continue
            with self._lock:
                self._socks |= {c, u}
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _abort(s)
            with self._lock:
                self._socks -= {src, dst}

    def cut(self) -> None:
        """The database host goes away: every open connection is reset and new ones are refused."""
        self._open = False
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _abort(s)

    def restore(self) -> None:
        self._open = True

    def close(self) -> None:
        self._stop = True
        self.cut()
        self._listener.close()


def _abort(s: socket.socket) -> None:
    import struct

    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, like a dead host
    except OSError:
        pass
    for op in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):  # shutdown wakes a thread blocked in recv
        try:
            op()
        except OSError:
            pass
