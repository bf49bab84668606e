"""HMI API benchmark (FakeRuntime-based: the example plant in memory, no PLC, no database).

1. p99 latency of ``GET /api/tags`` (every tag, ~90 values) at a fixed 200 requests/s (open loop:
   latency counts from the scheduled send time, so queueing shows). In-run baseline: ``GET /healthz``
   at the same rate.
2. WebSocket fan-out: 1 000 tag updates/s (200 tags x 5 Hz) published into the TagStore, 50 clients
   each subscribed to all 200 tags; end-to-end delay (publish -> client) and frames per client. A
   scan-like task at the plant's 0.25 s period measures its own lateness meanwhile; baseline: the same
   lateness with no clients.

The server runs in a child process (uvicorn, one event loop, like ``scada run``); the clients in this
one. Usage: ``python bench/bench_api.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-key-bench-secret-key-0123456789"
N_TAGS = 200
RATE_HZ = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# ---------------------------------------------------------------- server process


def _serve(port: int, publish: bool, conn) -> None:  # noqa: ANN001
    import uvicorn

    from hmi import HmiSettings, create_app
    from hmi.fake_runtime import FakeRuntime
    from hmi.ports import Role, UserRecord
    from scada.config import load_config
    from scada.tags import Sample

    async def main() -> None:
        rt = FakeRuntime(load_config(ROOT / "examples" / "plating-line.yaml"), history_s=600)
        rt.users["bench"] = UserRecord(1, "bench", "x", Role.VIEWER, 0.0)
        names = [f"bench.t{i:03d}" for i in range(N_TAGS)]
        if publish:
            rt.tags.declare(names)
        app = create_app(rt, HmiSettings(secret_key=SECRET))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        lateness: list[float] = []
        stop = asyncio.Event()

        async def scan() -> None:  # the scan's timing, as the engine would see it
            period = rt.plant.scan.period_s
            nxt = time.monotonic()
            while not stop.is_set():
                nxt += period
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                lateness.append(time.monotonic() - nxt)
                rt.step(period)

        async def publisher() -> None:  # 1 000 updates/s in 10 ms batches
            batch = int(N_TAGS * RATE_HZ / 100)
            i = 0
            nxt = time.monotonic()
            while not stop.is_set():
                nxt += 0.01
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
                now = time.time()
                rt.tags.publish({names[(i + k) % N_TAGS]: Sample.good_value(now, now) for k in range(batch)})
                i += batch

        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for "started"
            await asyncio.sleep(0.01)
        tasks = [asyncio.create_task(scan())]
        if publish:
            tasks.append(asyncio.create_task(publisher()))
        conn.send("ready")
        await asyncio.to_thread(conn.recv)  # "measure": reset the lateness record
        lateness.clear()
        await asyncio.to_thread(conn.recv)  # "stop"
        stop.set()
        await asyncio.gather(*tasks)
        conn.send({"lateness": lateness, "dropped": app.state.ctx.ws_dropped})
        server.should_exit = True
        await task

    asyncio.run(main())


class Server:
    def __init__(self, publish: bool) -> None:
        self.port = _free_port()
        self.parent, child = mp.Pipe()
        self.proc = mp.get_context("fork").Process(target=_serve, args=(self.port, publish, child), daemon=True)

    def __enter__(self) -> Server:
        self.proc.start()
        assert self.parent.poll(30), "server did not start"
        assert self.parent.recv() == "ready"
        return self

    def measure(self) -> None:
        self.parent.send("measure")

    def finish(self) -> dict:
        self.parent.send("stop")
        assert self.parent.poll(30)
        return self.parent.recv()

    def __exit__(self, *exc: object) -> None:
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()


def _token() -> str:
    from hmi.ports import Role
    from hmi.security import TokenCodec

    return TokenCodec(SECRET, 3600).issue("bench", Role.VIEWER)[0]


# ---------------------------------------------------------------- 1. REST latency


async def _open_loop(base: str, path: str, rate: float, duration: float, headers: dict[str, str]) -> tuple[list[float], int]:
    """Open-loop GETs over a pool of raw keep-alive HTTP/1.1 connections (a light client, so the
    server, not the client, is what is measured on a shared 2-core machine)."""
    host, port = base.removeprefix("http://").split(":")
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    request = head.encode()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))
    lat: list[float] = []
    errors = 0
    t0 = time.monotonic()
    n = int(rate * duration)

    async def one(i: int) -> None:
        nonlocal errors
        due = t0 + i / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        reader, writer = await pool.get()
        writer.write(request)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        lat.append(time.monotonic() - due)
        if b" 200 " not in status:
            errors += 1
        pool.put_nowait((reader, writer))

    await asyncio.gather(*(one(i) for i in range(n)))
    while not pool.empty():
        _, w = pool.get_nowait()
        w.close()
    return lat, errors


def bench_rest(duration: float) -> list[tuple[str, ...]]:
    rows = []
    headers = {"Authorization": f"Bearer {_token()}"}
    with Server(publish=False) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        asyncio.run(_open_loop(base, "/api/tags", 50, 1.0, headers))  # warm up
        srv.measure()
        for label, path in (("GET /healthz (baseline)", "/healthz"), ("GET /api/tags", "/api/tags")):
            lat, errors = asyncio.run(_open_loop(base, path, 200, duration, headers))
            ms = [x * 1000 for x in lat]
            rows.append((label, "200", str(len(ms)), f"{_pct(ms, 50):.1f}", f"{_pct(ms, 99):.1f}",
                         f"{max(ms):.1f}", str(errors)))
        res = srv.finish()
    late = [x * 1000 for x in res["lateness"]]
    rows.append(("scan lateness during the REST runs", "", str(len(late)), f"{_pct(late, 50):.1f}",
                 f"{_pct(late, 99):.1f}", f"{max(late):.1f}", ""))
    return rows


# ---------------------------------------------------------------- 2. WebSocket fan-out


async def _clients(port: int, n: int, duration: float) -> tuple[list[float], list[int], int]:
    from websockets.asyncio.client import connect

    delays: list[float] = []
    frames = [0] * n
    failed = 0
    tok = _token()

    async def client(i: int) -> None:
        nonlocal failed
        try:
            async with connect(f"ws://127.0.0.1:{port}/api/ws?token={tok}", max_size=2**22) as ws:
                await ws.send(json.dumps({"type": "subscribe", "tags": ["bench.*"]}))
                end = time.monotonic() + duration
                while time.monotonic() < end:
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                    except TimeoutError:
                        continue
                    if msg["type"] == "tags":
                        frames[i] += 1
                        now = time.time()
                        if i % 10 == 0:  # sample the delay on a fifth of the clients
                            delays.extend(now - v["value"] for v in msg["values"].values() if isinstance(v["value"], float))
        except Exception:  # noqa: BLE001 - counted, reported
            failed += 1

    await asyncio.gather(*(client(i) for i in range(n)))
    return delays, frames, failed


def bench_ws(duration: float, n_clients: int) -> list[tuple[str, ...]]:
    rows = []
    for clients in (0, n_clients):
        with Server(publish=True) as srv:
            srv.measure()
            if clients:
                delays, frames, failed = asyncio.run(_clients(srv.port, clients, duration))
            else:
                time.sleep(duration)
                delays, frames, failed = [], [], 0
            res = srv.finish()
        late = [x * 1000 for x in res["lateness"]]
        d = [x * 1000 for x in delays]
        fps = statistics.mean(frames) / duration if frames else 0.0
        rows.append((f"{clients} clients", f"{fps:.1f}", f"{_pct(d, 50):.0f}" if d else "-",
                     f"{_pct(d, 99):.0f}" if d else "-", f"{_pct(late, 50):.1f}", f"{_pct(late, 99):.1f}",
                     f"{max(late):.1f}", str(res["dropped"] + failed)))
    return rows


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds (CI smoke pass)")
    args = ap.parse_args()
    dur = 2.0 if args.quick else 15.0
    rest = bench_rest(dur)
    print("\nREST, open loop at 200 requests/s (latency from the scheduled send time, ms)")
    print(_table(("request", "rate/s", "n", "p50 ms", "p99 ms", "max ms", "errors"), rest))
    ws = bench_ws(dur, 50)
    print(f"\nWebSocket fan-out: {int(N_TAGS * RATE_HZ)} tag updates/s, every client subscribed to all {N_TAGS} tags")
    print(_table(("clients", "frames/s per client", "delay p50 ms", "delay p99 ms", "scan lateness p50 ms",
                  "scan lateness p99 ms", "max ms", "dropped"), ws))
    print("\n(FakeRuntime-based: no PLC and no database in the loop; the scan task only steps the fake process.)")


if __name__ == "__main__":
    main()
