"""Offline Earth Engine for tests: the wheel's algorithm list, no credentials, no sockets."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # the look-up of Earth Engine's host before initialising belongs with ee.Initialize, which the tests
    # replace: found (test_ee_auth tests the look-up itself, with a lookup of its own)
    from core.ee import auth

    monkeypatch.setattr(auth, "_check_servers_found", lambda *a, **k: None)
    # and no secrets file of the machine's (~/.streamlit/secrets.toml) reaches the command line's tests
    monkeypatch.setattr(auth, "secrets_paths", lambda: [])


@pytest.fixture(scope="session")
def ee_offline():
    """``ee`` initialised against the algorithm list shipped in the wheel (ee/tests/algorithms.json)."""
    import ee
    from ee import _cloud_api_utils, _state

    path = Path(ee.__file__).parent / "tests" / "algorithms.json"
    with open(path, encoding="utf-8") as fh:
        algorithms = _cloud_api_utils.convert_algorithms(json.load(fh))
    saved = (ee.data.getAlgorithms, ee.data._install_cloud_api_resource)
    ee.Reset()
    ee.data._install_cloud_api_resource = lambda: None
    ee.data.getAlgorithms = lambda: algorithms
    ee.Initialize(None, "", project="p")
    yield ee
    ee.data.getAlgorithms, ee.data._install_cloud_api_resource = saved
    ee.Reset()
    _state.reset_state()


def _canonical(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


@pytest.fixture
def golden():
    """``golden(name, obj)``: compare ``obj`` (JSON-able) with tests/ee/golden/<name>.json.

    ``UPDATE_GOLDEN=1`` (re)writes the file instead, and fails the test (a file written is not checked).
    """

    def check(name: str, obj) -> None:
        path = GOLDEN_DIR / f"{name}.json"
        text = _canonical(obj)
        if os.environ.get("UPDATE_GOLDEN") == "1" or not path.exists():
            if os.environ.get("UPDATE_GOLDEN") != "1":
                pytest.fail(f"golden file {path.name} is missing; run with UPDATE_GOLDEN=1 once and review it")
            GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            # written, not compared: failed, so that UPDATE_GOLDEN=1 left set (in CI) cannot pass every graph
            pytest.fail(f"{path.name} written (UPDATE_GOLDEN=1): review it, then run without UPDATE_GOLDEN")
        expected = path.read_text(encoding="utf-8")
        assert text == expected, f"{name}: graph differs from {path.name} (rerun with UPDATE_GOLDEN=1 if intended)"

    return check


@pytest.fixture
def graph(ee_offline):
    """``graph(obj)``: the Cloud-API expression graph of an ee object, as a dict."""

    def encode(obj) -> dict:
        return ee_offline.serializer.encode(obj, for_cloud_api=True)

    return encode
