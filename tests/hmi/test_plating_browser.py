"""The plating pages in a real browser (Debian's chromium via Playwright) against in-process uvicorn.

An engineer writes a recipe in the editor (a refusal first, with its key path shown), creates a load
whose customer order is markup, moves it into the nickel tank and out again once the dwell timer is in
its window, then opens the load's page and the printable report: the dwell row and the SVG plots are
there, the markup stays text, and the report loads under the strict CSP without a violation (the page
fixture fails on any console error). Skips without /usr/bin/chromium unless SCADA_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hmi import HmiSettings, create_app
from hmi.fake_runtime import FakeRuntime
from hmi.ports import Actor, NewLoad, Role
from scada.config import PlantConfig

from .conftest import SECRET, add_users, free_port_local, serve
from .test_browser import ARGS, CHROMIUM, _login, _need_browser

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
async def hmi(plant: PlantConfig, password_hashes: dict[str, str]) -> AsyncIterator[tuple[str, FakeRuntime]]:
    _need_browser()
    rt = FakeRuntime(plant, history_s=60.0)
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
        assert not errors, errors  # includes Content-Security-Policy violations


async def test_recipe_load_and_report(page, hmi: tuple[str, FakeRuntime], artifacts_dir: Path) -> None:  # noqa: ANN001
    base, rt = hmi
    # a second part whose part number and order are markup, put on the line through the port
    port = rt.plating_port
    assert port is not None
    eng = Actor("setup", Role.ENGINEER)
    xbody = {"part_number": XSS, "steps": [{"tank": "chrome", "dwell_min_s": 60, "dwell_max_s": 600}]}
    assert (await port.save_recipe("x-part", xbody, eng, XSS)).ok
    assert (await port.create_load(NewLoad(XSS, 1, 5.0, XSS, id="XSS-1"), eng)).ok
    await _login(page, base, "engineer")

    # recipe editor: a window outside the tank's process window is refused with its key path
    await page.click('nav a[data-nav="recipes"]')
    await page.fill("#new-recipe-id", "ni-rack")
    await page.click('form button:has-text("New recipe")')
    await page.wait_for_selector("#recipe-steps tr.step")
    await page.fill("#recipe-part", "PN-7")
    row = "#recipe-steps tr.step"
    await page.select_option(f"{row} select.f-tank", "nickel")
    for key, value in (("dwell_min_s", "2"), ("dwell_max_s", "600"), ("current_density_a_dm2", "4"),
                       ("temperature_c.min", "40"), ("temperature_c.max", "58")):
        await page.fill(f'{row} input[data-key="{key}"]', value)
    await page.click("#recipe-save")
    await page.wait_for_selector('#recipe-issues li[data-path="steps[0].temperature_c"]')
    assert "outside the process window" in await page.text_content("#recipe-issues")
    assert await page.locator(f'{row} input[data-key="temperature_c.min"].invalid').count() == 1
    await page.screenshot(path=str(artifacts_dir / "plating-recipe-refused.png"), full_page=True)
    await page.fill(f'{row} input[data-key="temperature_c.min"]', "52")
    await page.fill("#recipe-comment", "first release")
    await page.click("#recipe-save")
    await page.wait_for_selector('#recipe-saved:has-text("version 1")')
    assert rt.plating.recipes()[0].body.steps[0].temperature_c.min == 52  # type: ignore[union-attr]
    await page.screenshot(path=str(artifacts_dir / "plating-recipe.png"), full_page=True)

    # a new load (markup in the customer order), into the nickel tank, out once the dwell is in its window
    await page.click('nav a[data-nav="loads"]')
    await page.fill("#new-part_number", "PN-7")
    await page.fill("#new-quantity", "24")
    await page.fill("#new-area_dm2", "20")
    await page.fill("#new-customer_order", XSS)
    await page.fill("#new-id", "RACK-7")
    await page.click("#new-load-submit")
    waiting = '#waiting-loads tr[data-load="RACK-7"]'
    await page.wait_for_selector(f'{waiting} td.order:has-text("<img")')
    assert "<img" in await page.text_content('#waiting-loads tr[data-load="XSS-1"]')
    await page.select_option(f"{waiting} select.enter-tank", "nickel")
    await page.click(f"{waiting} button.enter")
    nickel = '#line-loads tr[data-tank="nickel"][data-load="RACK-7"]'
    await page.wait_for_selector(f"{nickel}.dwell-short")
    await page.wait_for_selector(f"{nickel}.dwell-in_window", timeout=15_000)
    assert "0:02 .. 10:00" in await page.text_content(f"{nickel} .window")
    await page.screenshot(path=str(artifacts_dir / "plating-loads.png"), full_page=True)
    await page.click(f"{nickel} button.leave")
    await page.wait_for_selector('#line-loads tr[data-tank="nickel"].empty')

    # the load's page: the dwell row and the SVG trends of the dwell
    await page.goto(base + "/#/load/RACK-7")
    step = '#record-steps tr.step[data-tank="nickel"]'
    await page.wait_for_selector(step)
    dwell = await page.text_content(f"{step} td.dwell")
    assert "0:02 .. 10:00" in dwell, dwell
    await page.wait_for_selector('section.step-trends svg.trend[data-quantity="temperature"] path.avg')
    assert await page.text_content("#record-identity") and XSS in await page.text_content("#record-identity")
    await page.screenshot(path=str(artifacts_dir / "plating-load-page.png"), full_page=True)

    # the printable report: served HTML, strict CSP, no script, inline SVG plots, markup escaped
    resp = await page.goto(base + "/api/loads/RACK-7/report")
    assert resp is not None and resp.status == 200
    assert "unsafe-inline" not in resp.headers["content-security-policy"]
    await page.wait_for_selector("#verdict")
    rows = await page.locator("#steps tr").all_text_contents()
    assert any("Watts bright nickel" in r for r in rows), rows
    assert await page.locator('svg.trend[data-quantity="temperature"] polyline').count() >= 1
    assert await page.locator("#identity td", has_text="<img").count() == 1
    assert await page.evaluate("() => getComputedStyle(document.querySelector('#verdict')).fontWeight") == "700"
    await page.screenshot(path=str(artifacts_dir / "plating-report.png"), full_page=True)
    assert await page.evaluate("() => window.__xss") is None
    assert await page.evaluate("() => document.querySelectorAll('img').length") == 0

    # the history search finds it; the markup is still text
    await page.goto(base + "/#/history")
    await page.fill("#hist-part", "PN-7")
    await page.click('#history-search button[type="submit"]')
    await page.wait_for_selector('#history-rows tr[data-load="RACK-7"] td.order:has-text("<img")')
    await page.fill("#hist-part", "")
    await page.click('#history-search button[type="submit"]')
    await page.wait_for_selector('#history-rows tr[data-load="XSS-1"] td.part:has-text("<img")')
    await page.click('nav a[data-nav="recipes"]')
    await page.wait_for_selector('#recipe-rows tr[data-recipe="x-part"] td.part:has-text("<img")')
    await page.goto(base + "/#/load/XSS-1")
    await page.wait_for_selector('#record-identity td:has-text("<img")')
    assert await page.evaluate("() => window.__xss") is None
    assert await page.evaluate("() => document.querySelectorAll('main img').length") == 0
