"""`kept app` end to end in a real browser: the command serves the page, Playwright drives the
system chromium (``apt-get install chromium``; Playwright's own browser download is not needed).

Skipped with the reason when Gradio, Playwright or a chromium is missing. Set ``KEPT_CHROMIUM``
to a browser binary to use another one, and ``KEPT_APP_SCREENSHOT`` to a PNG path to keep the
screenshot of the page after a comparison.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("gradio", reason="kept app needs the app extra: pip install -e '.[app]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (dev extra)")
CHROMIUM = os.environ.get("KEPT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("app_log") / "server.log"
    env = {**os.environ, "KEPT_CACHE": str(tmp_path_factory.mktemp("app_cache"))}
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "kept.cli", "app", "--checkpoint", str(tiny_run),
                                 "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"kept app did not start:\n{log.read_text()}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_compare_two_recordings_in_the_browser(server, tiny_run, tmp_path):
    bad = tmp_path / "renamed.mp4"
    bad.write_text("a text file, not a video")
    good = tmp_path / "good.npy"
    np.save(good, np.load(tiny_run.parent / "tiny" / "keypoints" / "squat_09.npy"))
    requested = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda r: requested.append(r.url))
            page.goto(server)
            page.locator("#compare").click()
            scores = page.locator("#scores")
            sync_api.expect(scores).to_contain_text("is better", timeout=60_000)
            sync_api.expect(scores).to_contain_text("squat_00")
            plot = page.locator("#plot_angles img")
            sync_api.expect(plot).to_be_visible(timeout=30_000)
            assert plot.evaluate("img => img.naturalWidth") > 500
            page.get_by_role("tab", name="differences").click()
            sync_api.expect(page.locator("#plot_residual img")).to_be_visible()
            sync_api.expect(page.locator("#table")).to_contain_text("deg")
            sync_api.expect(page.locator("#archive")).to_contain_text("kept-compare")
            page.screenshot(path=os.environ.get("KEPT_APP_SCREENSHOT") or str(tmp_path / "page.png"), full_page=True)

            page.get_by_label("upload two files (videos or keypoints)").check()
            page.locator("#file_a input[type=file]").set_input_files(str(bad))
            page.locator("#file_b input[type=file]").set_input_files(str(good))
            sync_api.expect(page.locator("#file_a")).to_contain_text("renamed", timeout=30_000)
            sync_api.expect(page.locator("#file_b")).to_contain_text("good", timeout=30_000)
            page.locator("#compare").click()
            status = page.locator("#status")
            sync_api.expect(status).to_contain_text("Cannot compare", timeout=60_000)
            sync_api.expect(status).to_contain_text("cannot open video")
            assert "Traceback" not in status.inner_text()

            page.get_by_label("recordings of the run's dataset").check()  # the page keeps working
            page.locator("#compare").click()
            sync_api.expect(status).to_be_empty(timeout=60_000)
            sync_api.expect(scores).to_contain_text("squat_00", timeout=60_000)
            sync_api.expect(page.locator("#caption_angles")).to_contain_text("joint angles")
        finally:
            browser.close()
    hosts = {urlparse(u).netloc for u in requested if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {urlparse(server).netloc}, f"the page called out of the machine: {hosts}"
