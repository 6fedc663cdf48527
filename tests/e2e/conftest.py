"""Browser-test fixtures: a running dashboard, a Chromium page, screenshots in test-artifacts/.

With ``CI=true`` nothing is skipped: a missing chromium, Playwright or shipped model fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.helpers import CHROMIUM, ROOT, browser_page, dashboard

ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"browser test prerequisite missing: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture()
def model_env(request) -> dict:
    """Shipped weights if present; outside CI an untrained test model stands in."""
    from core.model import DEFAULT_MODEL_PATH

    if DEFAULT_MODEL_PATH.exists():
        return {}
    _require(False, f"shipped weights {DEFAULT_MODEL_PATH} missing") if IN_CI else None
    tiny = request.getfixturevalue("tiny_model_path")
    return {"CROPMAP_SHIPPED_MODEL": str(tiny)}


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
        yield pg
