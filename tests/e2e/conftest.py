"""Browser-test fixtures: a running dashboard, a Chromium page, screenshots in test-artifacts/.

With ``CI=true`` nothing is skipped: a missing chromium, Playwright or shipped model fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import CHROMIUM, ROOT, browser_page, dashboard

ARTIFACTS = ROOT / "test-artifacts"


def _require(ok: bool, why: str) -> None:
    """A missing prerequisite fails the browser test (never a skip); `make test` installs chromium."""
    if not ok:
        pytest.fail(f"browser test prerequisite missing: {why} (run `make test`, which installs chromium)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture()
def model_env(request) -> dict:
    """The browser test runs the shipped weights; their absence is a failure."""
    from core.card import DEFAULT_MODEL_PATH

    _require(DEFAULT_MODEL_PATH.exists(), f"shipped weights {DEFAULT_MODEL_PATH} missing")
    return {}


@pytest.fixture()
def app_url(tmp_path, model_env):
    with dashboard(tmp_path, model_env) as (url, _):
        yield url


@pytest.fixture()
def page():
    _require(Path(CHROMIUM).exists(), f"{CHROMIUM} missing (apt-get install -y chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _require(False, "the playwright package is not installed")
    with browser_page() as (pg, requests):
        pg.requests = requests
        pg.console_errors = []  # the text of every console error, for tests that look at them
        pg.on("console", lambda msg: pg.console_errors.append(msg.text) if msg.type == "error" else None)
        yield pg
