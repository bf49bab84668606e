"""Northbound MQTT publisher: what it costs the scan, how much it delivers, how late.

Needs Mosquitto on 127.0.0.1:1883 (``SCADA_TEST_MQTT=host:port`` to override). Three runs:

1. Scan cost: ``TagStore.publish`` of every tag changing, without any subscriber (the in-run baseline),
   then with the publisher attached (connected), then with the broker unreachable (values coalesce).
2. Throughput: N tags all changing every 10 ms for a few seconds at ``max_rate_hz`` 10; messages the
   broker delivered to a subscriber per second, QoS 0 and QoS 1, plus the process CPU share.
3. Latency: one tag changing 20 times a second at ``max_rate_hz`` 100; store.publish -> subscriber p50/p99.

    .venv/bin/python bench/bench_mqtt.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402

from drivers.mqtt import MqttPublisher  # noqa: E402
from scada.config.northbound import MqttConfig  # noqa: E402
from scada.tags import Sample, TagStore  # noqa: E402

HOST, _, _P = os.environ.get("SCADA_TEST_MQTT", "127.0.0.1:1883").partition(":")
PORT = int(_P or 1883)


def cfg(prefix: str, port: int = PORT, **kw: object) -> MqttConfig:
    return MqttConfig(host=HOST, port=port, topic_prefix=prefix, client_id=f"bench-{uuid.uuid4().hex[:8]}",
                      retain=False, reconnect_min_s=0.2, reconnect_max_s=0.5, **kw)  # type: ignore[arg-type]


def tags(n: int) -> list[str]:
    return [f"line1.t{i // 20}.s{i % 20}.pv" for i in range(n)]


async def scan_cost(n: int, scans: int) -> list[tuple[str, float]]:
    names = tags(n)
    out: list[tuple[str, float]] = []
    for label in ("no subscriber (baseline)", "publisher connected", "broker unreachable"):
        store = TagStore()
        store.declare(names)
        pub = None
        if label != "no subscriber (baseline)":
            port = PORT if label == "publisher connected" else 1  # nothing listens on port 1
            pub = MqttPublisher(cfg(f"bench/{uuid.uuid4().hex[:8]}", port=port), store)
            await pub.start()
            await asyncio.sleep(0.3)
        total = 0.0
        for k in range(scans):
            changes = {t: Sample.good_value(float(k), time.time()) for t in names}
            t0 = time.perf_counter()
            store.publish(changes)
            total += time.perf_counter() - t0
            await asyncio.sleep(0.01)  # the publisher's turn, as between scans
        if pub is not None:
            await pub.stop()
        out.append((label, total / scans * 1e6))
    return out


_SUB = """
import asyncio, sys, time, aiomqtt
async def main(host, port, topic, qos, secs):
    n = 0
    async with aiomqtt.Client(host, int(port)) as c:
        await c.subscribe(topic, qos=int(qos))
        print("ready", flush=True)
        async def count():
            nonlocal n
            async for _ in c.messages:
                n += 1
        t = asyncio.create_task(count())
        await asyncio.sleep(float(secs))
        t.cancel()
    print(n, flush=True)
asyncio.run(main(*sys.argv[1:]))
"""


async def throughput(n: int, seconds: float, qos: int) -> tuple[float, float, float, object]:
    """Delivered rate counted by a subscriber in its own process (it must not share our event loop)."""
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    store = TagStore()
    names = tags(n)
    store.declare(names)
    pub = MqttPublisher(cfg(prefix, qos=qos, max_rate_hz=10.0), store)
    await pub.start()
    await asyncio.sleep(0.5)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SUB, HOST, str(PORT), f"{prefix}/tags/#", str(qos), str(seconds),
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    await proc.stdout.readline()  # ready
    published0 = int(pub.status()["published"])  # type: ignore[call-overload]
    cpu0, t0 = time.process_time(), time.monotonic()
    k = 0
    while time.monotonic() - t0 < seconds:
        k += 1
        store.publish({t: Sample.good_value(float(k), time.time()) for t in names})
        await asyncio.sleep(0.01)
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    sent = int(pub.status()["published"]) - published0  # type: ignore[call-overload]
    got = int((await proc.stdout.readline()).strip() or 0)
    await proc.wait()
    await pub.stop()
    return sent / wall, got / wall, 100.0 * cpu / wall, pub.status()["dropped"]


async def latency(samples: int) -> tuple[float, float]:
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    store = TagStore()
    sent: dict[float, float] = {}
    lat: list[float] = []
    async with aiomqtt.Client(HOST, PORT, identifier=f"bench-sub-{uuid.uuid4().hex[:6]}") as sub:
        await sub.subscribe(f"{prefix}/tags/#")

        async def read() -> None:
            async for m in sub.messages:
                v = json.loads(m.payload)["value"]  # type: ignore[arg-type]
                if v in sent:
                    lat.append(time.perf_counter() - sent[v])

        reader = asyncio.create_task(read())
        pub = MqttPublisher(cfg(prefix, max_rate_hz=100.0), store)
        await pub.start()
        await asyncio.sleep(0.5)
        for k in range(samples):
            sent[float(k)] = time.perf_counter()
            store.publish({"line1.a.temp": Sample.good_value(float(k), time.time())})
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        await pub.stop()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    lat.sort()
    return statistics.median(lat) * 1e3, lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3


async def main(quick: bool) -> None:
    n = 500 if quick else 2000
    print(f"\n1. scan cost: TagStore.publish of {n} changed tags (us per call)\n")
    rows = await scan_cost(n, 20 if quick else 100)
    base = rows[0][1]
    print("| case | us/publish | x baseline |\n|---|---:|---:|")
    for label, us in rows:
        print(f"| {label} | {us:.0f} | {us / base:.2f} |")

    secs = 2.0 if quick else 8.0
    print(f"\n2. throughput: {n} tags changing every 10 ms, max_rate_hz 10 (ceiling {n * 10} msg/s), {secs:g} s\n")
    print("| qos | published msg/s | delivered msg/s | % of ceiling | server CPU % of one core | dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    for qos in (0, 1):
        sent, rate, cpu, dropped = await throughput(n, secs, qos)
        print(f"| {qos} | {sent:.0f} | {rate:.0f} | {100 * rate / (n * 10):.0f} | {cpu:.0f} | {dropped} |")

    p50, p99 = await latency(40 if quick else 200)
    print("\n3. latency store.publish -> subscriber, one tag at 20 changes/s\n")
    print(f"| p50 ms | p99 ms |\n|---:|---:|\n| {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    asyncio.run(main(ap.parse_args().quick))
