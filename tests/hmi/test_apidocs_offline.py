"""The API docs page works on an offline plant network: every asset from the package, strict CSP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_uses_only_local_assets(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    html = r.text
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs and all(s.startswith("/") for s in srcs), srcs
    assert "<script>" not in html  # no inline script
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp
    for s in srcs:
        assert client.get(s).status_code == 200, s
    assert client.get("/openapi.json").json()["info"]["title"]


async def test_docs_render_in_a_browser(hmi_docs_url: str, artifacts_dir) -> None:  # noqa: ANN001
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = await browser.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(hmi_docs_url + "/docs")
        await page.wait_for_selector(".opblock-summary-path", timeout=15000)
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/tags" in p for p in paths), paths[:5]
        await page.screenshot(path=str(artifacts_dir / "apidocs.png"))
        await browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
