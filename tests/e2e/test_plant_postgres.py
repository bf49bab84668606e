"""The whole product on PostgreSQL: database outage and return, ``kill -9`` of the server and restart.

``scada run`` reaches PostgreSQL through a TCP relay the test can cut (every connection reset, new
ones refused) and restore: the database host going away, as a user would see it. Verification is
through the API, the WebSocket, SQL on the ``samples``/``events``/``amp_hour_counters`` tables and
the simulator.

"Lost" is precise here: the historian stores a probe sample when it differs from the last *stored*
value by more than the tag's deadband (docs/historian.md). We record every sample the server
published for two probes over the WebSocket (the probes change every poll, 4 Hz < the 10 Hz frame
rate, so no sample is coalesced away) and check, across the outage, that every stored row is one
of those samples (nothing invented or duplicated) and that every sample not stored lies within the
deadband of the stored value before it (nothing lost).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .harness import (
    Http,
    Server,
    Simulator,
    TcpProxy,
    alarms,
    free_port,
    interlock,
    plant_copy,
    prepare_database,
    pv,
    start_simulator,
    wait_until,
)
from .plants import SPEED, accelerated

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

AFTER_RESTART: dict[str, str] = {}  # what test_kill9_restart_restores_state saw after the restart
WATCHED = {"line1.nickel.temp.a": 0.05, "line1.nickel.ph.a": 0.01}  # tag -> deadband (example plant)


class WsRecorder:
    """Every value the server publishes for ``tags``, in a background thread."""

    def __init__(self, base: str, token: str, tags: list[str]) -> None:
        self.url = base.replace("http", "ws") + f"/api/ws?token={token}"
        self.tags = tags
        self.samples: dict[str, dict[float, dict[str, Any]]] = {t: {} for t in tags}
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, open_timeout=5) as ws:
                ws.send(json.dumps({"type": "subscribe", "tags": self.tags}))
                while not self._stop.is_set():
                    try:
                        msg = json.loads(ws.recv(timeout=0.5))
                    except TimeoutError:
                        continue
                    if msg["type"] == "tags":
                        for name, v in msg["values"].items():
                            self.samples[name][v["server_ts"]] = v
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class PgLine:
    def __init__(self, sim: Simulator, server: Server, proxy: TcpProxy, dsn: str, plant: dict[str, Any]) -> None:
        self.sim, self.server, self.proxy, self.dsn, self.plant = sim, server, proxy, dsn, plant
        self.api: Http = server.client("engineer")

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as c:
            return c.execute(query, args).fetchall()

    def samples(self, tag: str, start: float, end: float) -> list[tuple[float, float | None, int]]:
        return self.sql("SELECT s.ts, s.value, s.quality FROM samples s JOIN tags t ON t.id = s.tag_id "
                        "WHERE t.name = %s AND s.ts >= %s AND s.ts <= %s ORDER BY s.ts", tag, start, end)

    def historian(self) -> dict[str, Any]:
        return self.api.get("/api/status")["historian"]


@pytest.fixture(scope="module")
def pg_line(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[PgLine]:
    d = tmp_path_factory.mktemp("e2e-pg")
    mb, ua = free_port(), free_port()
    plant_path = plant_copy(d / "plant.yaml", mb, ua, accelerated)
    prepare_database(postgres_url)
    host_port = postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy((host, int(port)))
    via_proxy = postgres_url.replace(f"@{host_port}/", f"@127.0.0.1:{proxy.port}/")
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    sim = start_simulator(plant_path, mb, ua, speed=SPEED, name="pg-simulator")
    server = Server(plant_path, via_proxy, free_port(), d / "buffer.db", name="pg-server")
    try:
        server.start()
        yield PgLine(sim, server, proxy, dsn, yaml.safe_load(plant_path.read_text()))
    finally:
        server.stop()
        sim.proc.stop()
        proxy.close()


def tank_view_interlocks(api: Http, tank_id: str) -> list[dict[str, Any]]:
    return api.get(f"/api/tanks/{tank_id}")["interlocks"]


def test_samples_and_events_reach_postgresql(pg_line: PgLine) -> None:
    wait_until(lambda: len(pg_line.samples("line1.nickel.temperature.pv", time.time() - 30, time.time())) > 5, 10,
               what="voted temperature samples in PostgreSQL")
    started = pg_line.sql("SELECT count(*) FROM events WHERE kind = 'system' AND message = 'server started'")
    assert started[0][0] == 1


def test_database_outage_loses_and_duplicates_nothing(pg_line: PgLine) -> None:
    line = pg_line
    rec = WsRecorder(line.server.base, line.api.token or "", list(WATCHED))
    try:
        time.sleep(3)
        t_cut = time.time()
        line.proxy.cut()
        wait_until(lambda: not line.historian()["db_ok"] or line.historian()["buffer_rows"] > 0, 10,
                   what="the historian noticing the outage")
        wait_until(lambda: line.historian()["buffer_rows"] > 0, 10, what="rows going to the local buffer")
        wait_until(lambda: alarms(line.api).get("system.historian_buffering", {}).get("active"), 10,
                   what="the historian-buffering alarm")
        # the plant is unaffected: the scan runs and the PVs stay Good while the database is away
        assert pv(line.api, "nickel", "temperature")["quality"] == "good"
        time.sleep(max(0.0, 8 - (time.time() - t_cut)))
        t_restore = time.time()
        line.proxy.restore()

        def drained() -> bool:
            h = line.historian()
            return bool(h["db_ok"] and h["buffer_rows"] == 0 and not h["flags"])

        wait_until(drained, 30, interval=0.5, what="the buffer forwarded and the historian healthy")
        time.sleep(2.5)  # the samples published before the stop below are flushed
    finally:
        rec.stop()
    assert rec.error is None, rec.error
    assert line.historian()["counters"]["forwarded"] > 0
    t_end = max(max(s) for s in rec.samples.values()) - 1.5
    for tag, deadband in WATCHED.items():
        seen = rec.samples[tag]
        ws_ts = sorted(t for t in seen if t_cut - 2 <= t <= t_end)
        assert len(ws_ts) > 4 * (t_end - t_cut) * 0.8, f"{tag}: only {len(ws_ts)} samples seen over the WebSocket"
        rows = line.samples(tag, ws_ts[0], ws_ts[-1])
        stored = {ts: value for ts, value, _q in rows}
        assert len(stored) == len(rows), f"{tag}: duplicate (tag, ts) rows"
        outage_rows = [ts for ts in stored if t_cut <= ts <= t_restore]
        assert len(outage_rows) >= 4, f"{tag}: {len(outage_rows)} rows stored for the {t_restore - t_cut:.0f} s outage"
        unknown = [ts for ts in stored if ts not in seen]
        assert not unknown, f"{tag}: stored rows that were never published: {unknown[:5]}"
        before = line.sql("SELECT s.value FROM samples s JOIN tags t ON t.id = s.tag_id WHERE t.name = %s "
                          "AND s.ts < %s ORDER BY s.ts DESC LIMIT 1", tag, ws_ts[0])
        last = before[0][0] if before else None
        lost = []
        for ts in ws_ts:
            v = seen[ts]["value"]
            if ts in stored:
                last = stored[ts]
            elif last is None or abs(v - last) > deadband + 1e-9:
                lost.append((ts, v, last))
        assert not lost, f"{tag}: {len(lost)} samples beyond the deadband were not stored, e.g. {lost[:3]}"


def test_kill9_restart_restores_state(pg_line: PgLine) -> None:
    """kill -9 mid-run: active and acknowledged alarms, a latched interlock and the amp-hour counter
    come back; samples lost are bounded by the flush interval. (Loads: no load API yet, see report.)"""
    line, api = pg_line, pg_line.api
    line.sim.put_load("nickel")  # the rectifier runs on load_present: amp-hours accumulate
    # a latched interlock: the soak probe opens, then comes back (the trip stays latched)
    fid = line.sim.inject(kind="open_circuit", tag="line1.soak.temp.a")
    wait_until(lambda: interlock(api, "soak", "over_temp")["status"] in ("tripped", "latched"), 5, what="soak trip")
    line.sim.clear(fid)
    wait_until(lambda: interlock(api, "soak", "over_temp")["status"] == "latched", 5, what="soak latched")
    # active alarms, one acknowledged: both pH probes read 1.0 high with the dosing loop in manual
    # (limit alarms are true from the first scan after a restart; on-delay 10 s)
    status, body = api.request("PUT", "/api/loops/nickel.ph/mode", {"mode": "manual"})
    assert status == 200, body
    offsets = [line.sim.inject(kind="offset", tag=t, amplitude=1.0) for t in ("line1.nickel.ph.a", "line1.nickel.ph.b")]
    wait_until(lambda: alarms(api).get("nickel.ph_limits.hh", {}).get("active"), 20, what="pH HH alarm")
    status, body = line.server.client("operator").request("POST", "/api/alarms/nickel.ph_limits.h/ack",
                                                          {"comment": "e2e"})
    assert status == 200, body

    def ah_stored() -> float:
        rows = line.sql("SELECT total_ah FROM amp_hour_counters WHERE tank = 'nickel'")
        return float(rows[0][0]) if rows else 0.0

    wait_until(lambda: ah_stored() > 0.2, 40, interval=0.5, what="nickel amp-hours persisted")
    before_alarms = {k: (a["state"], a["acked"]) for k, a in alarms(api).items()}
    before_ah = ah_stored()
    latched_before = {f"{i['id']}" for t in api.get("/api/tanks") for i in tank_view_interlocks(api, t["id"])
                      if i["status"] == "latched"}
    assert "soak.over_temp" in latched_before
    assert before_alarms["nickel.ph_limits.h"] == ("ack_active", True)
    assert before_alarms["nickel.ph_limits.hh"] == ("unack_active", False)
    assert before_alarms["soak.interlock.over_temp"] == ("unack_active", False)

    pid = line.server.pid
    t_kill = time.time()
    line.server.kill9()
    last_ts = line.sql("SELECT max(ts) FROM samples")[0][0]
    lost_s = t_kill - last_ts
    assert lost_s <= 1.0 + 0.25 + 0.5, f"{lost_s:.2f} s of samples lost (flush 1 s + poll 0.25 s + margin)"

    line.server.start()
    assert line.server.pid != pid
    api = line.api = line.server.client("engineer")
    for key in latched_before:
        tank_id, il_id = key.split(".", 1)
        AFTER_RESTART[key] = interlock(api, tank_id, il_id)["status"]
    time.sleep(1.0)  # on-delays of conditions that are still true
    after = {k: (a["state"], a["acked"]) for k, a in alarms(api).items()}
    # (a latched interlock's own alarm follows the interlock: checked by the next test)
    latched_alarms = {f"{k.split('.', 1)[0]}.interlock.{k.split('.', 1)[1]}" for k in latched_before}
    changed = {k: (v, after.get(k)) for k, v in before_alarms.items() if after.get(k) != v and k not in latched_alarms}
    assert not changed, f"alarm states not restored (before, after): {changed}"
    t_restart = time.time()
    wait_until(lambda: line.sql("SELECT updated_ts FROM amp_hour_counters WHERE tank = 'nickel'")[0][0] > t_restart,
               30, interval=0.5, what="amp-hour counter persisted after the restart")
    assert ah_stored() >= before_ah, f"amp-hours went back from {before_ah} to {ah_stored()}"
    # samples flow again into PostgreSQL
    wait_until(lambda: line.sql("SELECT max(ts) FROM samples")[0][0] > t_restart, 10, what="new samples")

    for fid in offsets:
        line.sim.clear(fid)
    status, body = api.request("PUT", "/api/loops/nickel.ph/mode", {"mode": "auto"})
    assert status == 200, body
    line.sim.remove_load("nickel")
    if interlock(api, "soak", "over_temp")["status"] == "latched":
        status, body = line.server.client("operator").request("POST", "/api/interlocks/soak.over_temp/reset", {})
        assert status == 200, body
    assert interlock(api, "soak", "over_temp")["status"] == "healthy"


def test_latched_interlock_survives_restart() -> None:
    """The soak over_temp trip latched before the kill -9 must still be latched after the restart."""
    assert AFTER_RESTART, "runs after test_kill9_restart_restores_state"
    assert AFTER_RESTART == dict.fromkeys(AFTER_RESTART, "latched")


