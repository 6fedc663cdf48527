"""The suite runs offline: a test that connects to another machine fails (tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest


def test_a_connection_to_another_machine_fails_the_test():
    with pytest.raises(AssertionError, match="not this machine"):
        socket.create_connection(("tile.openstreetmap.org", 443), timeout=1)
    with pytest.raises(AssertionError, match="not this machine"):
        socket.socket().connect(("8.8.8.8", 53))


def test_this_machine_can_be_reached():  # (the dashboard under test, its browser)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=1).close()
