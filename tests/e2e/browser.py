"""The web HMI in Debian's chromium (Playwright, sync API) against a real ``scada run``.

Launch arguments as in tests/hmi/test_browser.py; screenshots go to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import USERS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_or_skip() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("SCADA_REQUIRE_BROWSER") == "1":
            pytest.fail("SCADA_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install -y chromium)")
        pytest.skip("/usr/bin/chromium not installed (apt-get install -y chromium)")


class OperatorFlow:
    def __init__(self, page: Any, base: str, shots: Path, prefix: str) -> None:
        self.page, self.base, self.shots, self.prefix = page, base, shots, prefix

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{self.prefix}-{name}.png"), full_page=True)

    def login(self, user: str = "operator") -> None:
        pg = self.page
        pg.goto(self.base + "/")
        pg.wait_for_selector("#login")
        pg.fill("#username", user)
        pg.fill("#password", USERS[user])
        pg.click("#login-submit")
        pg.wait_for_selector("#overview .tank")

    def overview(self) -> None:
        """Live values change on the overview and the connection indicator says live."""
        pg = self.page
        sel = '#overview [data-tank="nickel"] [data-tag="line1.nickel.temperature.pv"] .num'
        pg.wait_for_selector(sel)
        first = pg.text_content(sel)
        pg.wait_for_function(
            "([s, v]) => { const e = document.querySelector(s); return e && e.textContent !== v; }",
            arg=[sel, first], timeout=15_000)
        pg.wait_for_selector("#conn.live")
        self.shot("overview")

    def setpoint(self, loop: str, value: float) -> None:
        pg = self.page
        tank_id = loop.split(".")[0]
        pg.click(f'#overview [data-tank="{tank_id}"]')
        pg.wait_for_selector(f'tr.loop[data-loop="{loop}"]')
        pg.fill(f'input.sp-input[data-loop="{loop}"]', f"{value:g}")
        pg.click(f'button.apply[data-loop="{loop}"]')
        pg.wait_for_selector(f'td.sp-now[data-loop="{loop}"]:has-text("{value:g}")')
        self.shot("tank")

    def ack(self, alarm_id: str) -> None:
        """Open the alarm page, press Ack on ``alarm_id`` and see the row turn acknowledged."""
        pg = self.page
        pg.click('nav a[data-nav="alarms"]')
        pg.wait_for_selector(f'tr.alarm[data-alarm="{alarm_id}"].unacked')
        pg.click(f'button.ack[data-alarm="{alarm_id}"]')
        pg.wait_for_selector(f'tr.alarm[data-alarm="{alarm_id}"].acked')
        self.shot("alarms")


@contextlib.contextmanager
def operator_session(base: str, artifacts: Path, *, prefix: str, user: str = "operator") -> Iterator[OperatorFlow]:
    from playwright.sync_api import sync_playwright

    artifacts.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text)
                    if m.type == "error" and "Failed to load resource" not in m.text else None)
            page.set_default_timeout(10_000)
            flow = OperatorFlow(page, base, artifacts, prefix)
            flow.login(user)
            yield flow
        finally:
            browser.close()
    assert not errors, errors
