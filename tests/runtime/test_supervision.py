"""A background task of the server that dies is restarted and an alarm names it (no sockets needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scada.config import PlantConfig
from scada.runtime import TASK_FAILED, Runtime


async def test_dead_task_is_restarted_and_alarmed(plant: PlantConfig, tmp_path: Path) -> None:
    rt = Runtime(plant, db_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", buffer_path=tmp_path / "b.sqlite")

    async def boom() -> None:
        raise RuntimeError("disk on fire")

    rt._tasks.append(asyncio.create_task(boom(), name="event-pump"))
    await asyncio.sleep(0.01)
    rt._check_tasks(now=1000.0)
    status = rt.alarms.status(TASK_FAILED)
    assert status.active and "disk on fire" in status.message
    names = [t.get_name() for t in rt._tasks]
    assert names == ["event-pump"] and not rt._tasks[0].done()  # restarted, running
    rt._check_tasks(now=1001.0)
    assert not rt.alarms.status(TASK_FAILED).active  # healthy again; stays on the list until acknowledged
    for t in rt._tasks:
        t.cancel()
    await asyncio.gather(*rt._tasks, return_exceptions=True)
