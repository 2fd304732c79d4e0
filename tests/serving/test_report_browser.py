"""The tumour-board report in a real headless Chromium (Playwright): offline, visible, not blank, a PDF.

The page itself, its numbers and the command line are checked without a browser in ``test_report.py``.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linewise.models.candidates import OPTIONS

# ---- a real browser ---------------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Debian's chromium is not installed: the report's browser tests need it. Run `make test` "
            "(it installs chromium with apt-get as root) or `sudo apt-get install -y chromium`.",
            pytrace=False,
        )
    return found


def _not_blank(png: bytes, min_colours: int) -> tuple[int, float]:
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    spread = float(pixels.std())
    assert colours > min_colours and spread > 10.0, f"{colours} colours, spread {spread:.1f}"
    return colours, spread


@pytest.mark.slow
def test_the_report_renders_offline_in_chromium(html: str, tmp_path: Path) -> None:
    from playwright.sync_api import Route, sync_playwright

    executable = _chromium()
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    url = path.as_uri()
    attempts: list[str] = []
    requested: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            attempts.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.route("**/*", guard)
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url, wait_until="load")
            rows = page.locator("#ranked-table tbody tr")
            assert rows.count() == len(OPTIONS)
            for i in range(rows.count()):
                assert rows.nth(i).is_visible()
            for selector in ("#ranked-table", "#curves svg", "#waterfall svg", "#timeline svg", "#warnings"):
                element = page.locator(selector).first
                assert element.is_visible(), selector
                box = element.bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 50, (selector, box)
            assert page.locator("#curves path.curve").count() >= 2 * 2
            assert page.locator("#waterfall g.step rect").count() >= 2
            _not_blank(page.screenshot(full_page=True), min_colours=50)
            _not_blank(page.locator("#curves").screenshot(), min_colours=20)
            pdf = page.pdf(format="A4", print_background=True)
        finally:
            browser.close()
    assert attempts == []
    assert set(requested) <= {url}
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 2
