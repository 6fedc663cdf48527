"""Starting the dashboard and a headless Chromium (shared by the browser tests and benchmarks/bench_ui.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = os.environ.get("CROPMAP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
MAP_FRAME = "iframe[title='streamlit_folium.st_folium']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard(workdir: Path, extra_env: dict | None = None, timeout: float = 90) -> Iterator[tuple[str, float]]:
    """Run ``streamlit run app.py`` on a free localhost port; yields (url, seconds until healthy)."""
    port = free_port()
    env = dict(os.environ, CROPMAP_WORKDIR=str(workdir), TF_CPP_MIN_LOG_LEVEL="2", USE_FOLIUM="1",
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **(extra_env or {}))
    log = open(workdir / "streamlit.log", "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited: {(workdir / 'streamlit.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("streamlit did not become healthy")
            time.sleep(0.2)
        yield url, time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def browser_page(viewport=(1500, 1200)) -> Iterator[tuple[object, list[str]]]:
    """A Playwright page in Debian chromium; yields (page, urls of every request made)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            requests: list[str] = []
            page.on("request", lambda req: requests.append(req.url))
            yield page, requests
        finally:
            browser.close()


def external_requests(urls: list[str]) -> list[str]:
    """Requests to anything but localhost (data: and blob: URLs are local)."""
    out = []
    for u in urls:
        parsed = urlparse(u)
        if parsed.scheme in ("data", "blob", "about", "chrome", "chrome-extension"):
            continue
        if parsed.hostname not in LOCAL_HOSTS:
            out.append(u)
    return out


def map_frame(page):
    """The frame locator of the (last) map on the page."""
    return page.frame_locator(MAP_FRAME).last


def wait_map_layers(page, count: int, timeout: float = 120_000) -> None:
    """Wait until the map shows at least ``count`` image overlays, all loaded."""
    frame = map_frame(page)
    frame.locator(".leaflet-container").wait_for(state="visible", timeout=timeout)
    frame.locator(f".leaflet-image-layer >> nth={count - 1}").wait_for(state="attached", timeout=timeout)


def open_region_page(page, url: str) -> None:
    """Open the dashboard and wait for its Region page to be drawn and idle (the sample scene on its map)."""
    page.goto(url)
    page.get_by_role("heading", name="Region").wait_for(timeout=60_000)
    wait_map_layers(page, 1)
    wait_script_idle(page)


def goto_page(page, title: str) -> None:
    """Open a dashboard page from the sidebar navigation."""
    page.get_by_role("link", name=title).first.click()
    page.get_by_role("heading", name=title.split(". ", 1)[-1]).first.wait_for(timeout=60_000)


def wait_script_idle(page, timeout: float = 120_000) -> None:
    """Wait until Streamlit has finished the current run: no "Running" status, no stale elements.

    Screenshots taken earlier show greyed-out, out-of-date content.
    """
    page.wait_for_function(
        """() => !document.querySelector("[data-testid='stStatusWidget'] [data-testid='stStatusWidgetRunningIcon']")
                 && !document.querySelector("[data-stale='true']")""",
        timeout=timeout,
    )


def jobs_report(workdir: Path, page=None) -> str:
    """What the dashboard's training jobs under ``workdir`` recorded (status, cancel flag, the end of
    the log) and, given ``page``, the text of its progress bars: for the message of a failed wait."""
    lines = []
    for job in sorted((workdir / "jobs").glob("*/")):
        try:
            st = json.loads((job / "status.json").read_text())
            said = ", ".join(f"{k} {st.get(k)!r}" for k in ("state", "message", "epoch", "epochs", "step", "pid"))
        except (OSError, ValueError) as err:
            said = f"no readable status.json ({err})"
        lines.append(f"{job.name}: cancel flag {'set' if (job / 'cancel').exists() else 'not set'}; {said}")
        log = job / "log.txt"
        if log.exists():
            lines.append("  log: " + log.read_text(errors="replace")[-600:].replace("\n", " | "))
    if page is not None:
        lines.append("progress: " + " / ".join(page.locator("[data-testid='stProgress']").all_inner_texts()))
    return "\n".join(lines) or "no training job"


def snapshot(page, path, **kw) -> None:
    """Screenshot once Streamlit is idle and the page has painted (``kw``: page.screenshot's)."""
    wait_script_idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), **kw)
