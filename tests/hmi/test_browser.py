"""The web HMI in a real browser (Debian's chromium via Playwright) against in-process uvicorn.

Skips when /usr/bin/chromium is absent, unless SCADA_REQUIRE_BROWSER=1 (CI), then fails.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hmi import HmiSettings, create_app
from hmi.fake_runtime import FakeRuntime
from scada.config import PlantConfig, parse_config
from scada.tags import Quality, QualityReason

from .conftest import PASSWORDS, SECRET, add_users, free_port_local, serve

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
XSS = '<img src=x onerror="window.__xss=1">'


def _need_browser() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("SCADA_REQUIRE_BROWSER") == "1":
            pytest.fail("SCADA_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install -y chromium)")
        pytest.skip("/usr/bin/chromium not installed (apt-get install -y chromium); set SCADA_REQUIRE_BROWSER=1 to fail")


def _xss_plant(example_config_path: Path) -> PlantConfig:
    """The example plant with markup in a tank name, a tag description and an alarm message."""
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(example_config_path.read_text()))
    for tank in data["tanks"]:
        if tank["id"] == "nickel":
            tank["name"] = f"Nickel {XSS}"
            for alarm in tank["alarms"]:
                if alarm["id"] == "ph_limits":
                    alarm["message"] = f"pH {XSS}"
    for tag in data["tags"]:
        if tag["name"] == "line1.nickel.temp.a":
            tag["description"] = XSS
    return parse_config(data)


@pytest.fixture
async def hmi(example_config_path: Path, password_hashes: dict[str, str]) -> AsyncIterator[tuple[str, FakeRuntime]]:
    _need_browser()
    rt = FakeRuntime(_xss_plant(example_config_path), history_s=1800.0)
    add_users(rt, password_hashes)
    app = create_app(rt, HmiSettings(secret_key=SECRET))
    rt.start(period_s=0.25)
    try:
        async with serve(app, free_port_local()) as host:
            yield f"http://{host}", rt
    finally:
        await rt.stop()


@pytest.fixture
async def page(hmi: tuple[str, FakeRuntime]):  # noqa: ANN201
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        ctx = await browser.new_context(viewport={"width": 1024, "height": 768})  # a tablet in landscape
        pg = await ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(m.text)
              if m.type == "error" and "Failed to load resource" not in m.text else None)
        pg.set_default_timeout(10_000)
        yield pg
        await browser.close()
        assert not errors, errors


async def _login(page, base: str, user: str = "operator") -> None:  # noqa: ANN001
    await page.goto(base + "/")
    await page.fill("#username", user)
    await page.fill("#password", PASSWORDS[user])
    await page.click("#login-submit")
    await page.wait_for_selector("#overview .tank")


async def test_operator_flow(page, hmi: tuple[str, FakeRuntime], artifacts_dir: Path) -> None:  # noqa: ANN001
    base, rt = hmi
    await page.goto(base + "/")
    await page.wait_for_selector("#login")
    await page.screenshot(path=str(artifacts_dir / "hmi-login.png"))
    await _login(page, base)
    # live values change on the overview
    sel = '#overview [data-tank="nickel"] [data-tag="line1.nickel.temperature.pv"] .num'
    first = await page.text_content(sel)
    await page.wait_for_function(
        "([s, v]) => { const e = document.querySelector(s); return e && e.textContent !== v; }", arg=[sel, first]
    )
    await page.wait_for_selector("#conn.live")
    await page.screenshot(path=str(artifacts_dir / "hmi-overview.png"), full_page=True)

    # the tank page: change a setpoint and see it applied
    await page.click('#overview [data-tank="nickel"]')
    await page.wait_for_selector('tr.loop[data-loop="nickel.temp"]')
    await page.wait_for_selector('[data-trend="temperature"] svg path.avg')
    await page.fill('input.sp-input[data-loop="nickel.temp"]', "57.5")
    await page.click('button.apply[data-loop="nickel.temp"]')
    await page.wait_for_selector('td.sp-now[data-loop="nickel.temp"]:has-text("57.5")')
    assert rt.loops[("nickel", "temp")].setpoint == 57.5
    assert ("nickel.temp.sp", 57.5, "operator") in rt.writes
    # beyond the operator limit: refused with the limit in the message, nothing written
    await page.fill('input.sp-input[data-loop="nickel.temp"]', "63")
    await page.click('button.apply[data-loop="nickel.temp"]')
    await page.wait_for_selector('tr.loop[data-loop="nickel.temp"] .msg:has-text("50..60")')
    assert rt.loops[("nickel", "temp")].setpoint == 57.5
    await page.screenshot(path=str(artifacts_dir / "hmi-tank.png"), full_page=True)

    # acknowledge an alarm
    await page.click('nav a[data-nav="alarms"]')
    await page.wait_for_selector('tr.alarm[data-alarm="nickel.ph_limits"].unacked')
    await page.click('button.ack[data-alarm="nickel.ph_limits"]')
    await page.wait_for_selector('tr.alarm[data-alarm="nickel.ph_limits"].acked')
    assert rt.alarms["nickel.ph_limits"].acked
    await page.wait_for_selector('#journal-rows td:has-text("acknowledged")')
    await page.screenshot(path=str(artifacts_dir / "hmi-alarms.png"), full_page=True)

    await page.click('nav a[data-nav="audit"]')
    await page.wait_for_selector('#audit-rows td:has-text("loop.setpoint nickel.temp")')
    await page.screenshot(path=str(artifacts_dir / "hmi-audit.png"), full_page=True)


async def test_bad_and_stale_values_do_not_look_live(page, hmi: tuple[str, FakeRuntime], artifacts_dir: Path) -> None:  # noqa: ANN001
    base, rt = hmi
    rt.force("line1.nickel.temp.b", Quality.BAD, QualityReason.COMM_FAILURE, value=55.0, detail="plc1 timeout")
    await _login(page, base)
    await page.goto(base + "/#/tank/nickel")
    probe = '[data-probe="line1.nickel.temp.b"] .val'
    await page.wait_for_selector(f"{probe}.q-bad")
    text = await page.text_content(probe)
    assert "BAD" in text and "comm failure" in text and "55" not in text
    await page.screenshot(path=str(artifacts_dir / "hmi-bad-probe.png"), full_page=True)
    # the live connection goes away: every value turns stale
    await rt.stop()
    await page.evaluate("() => document.body.classList.add('stale')")  # what Live does on close
    assert await page.evaluate("() => getComputedStyle(document.querySelector('.val'), '::after').content") == '"stale"'


async def test_stored_xss_renders_as_text(page, hmi: tuple[str, FakeRuntime], artifacts_dir: Path) -> None:  # noqa: ANN001
    base, rt = hmi
    # a failed login with markup as the user name lands in the audit trail
    import httpx

    async with httpx.AsyncClient(base_url=base) as c:
        await c.post("/api/auth/login", json={"username": XSS, "password": "whatever-123"})
    await _login(page, base, "engineer")
    await page.goto(base + "/#/tank/nickel")
    await page.wait_for_selector("#tank-name")
    await page.wait_for_function("() => document.querySelector('#tank-name').textContent.includes('<img')")
    await page.goto(base + "/#/alarms")
    await page.wait_for_selector('tr.alarm[data-alarm="nickel.ph_limits"] td:has-text("<img")')
    await page.fill('input[aria-label="shelve reason nickel.ph_limits"]', XSS)
    await page.click('tr.alarm[data-alarm="nickel.ph_limits"] button.shelve')
    await page.wait_for_selector('tr.alarm[data-alarm="nickel.ph_limits"].st-shelved')
    await page.goto(base + "/#/audit")
    await page.wait_for_selector('#audit-rows td.comment:has-text("<img")')
    await page.wait_for_selector('#audit-rows td.user:has-text("<img")')
    await page.screenshot(path=str(artifacts_dir / "hmi-xss.png"), full_page=True)
    assert await page.evaluate("() => window.__xss") is None
    assert await page.evaluate("() => document.querySelectorAll('main img').length") == 0
