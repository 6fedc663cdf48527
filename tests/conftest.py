"""Shared fixtures: real data cut from the sample scene, georeferenced fixtures, small models."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("USE_FOLIUM", "1")  # before geemap is first imported

import pytest
from rasterio.windows import Window

from testdata import SAMPLE_IMAGE, SAMPLE_LABELS, cut


#: where a test may connect: this machine (the dashboard under test, its browser); nothing else
LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


@pytest.fixture(autouse=True)
def _only_this_machine(monkeypatch):
    """A test that opens a connection to another machine (a basemap tile, Earth Engine's host, a
    model download) fails, here as in CI, where no network is to be relied on; tests/ee refuses
    every connection."""
    import socket

    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def local(address) -> bool:
        return not isinstance(address, tuple) or address[0] in LOOPBACK  # (a Unix socket's path: local)

    def refuse(address):
        raise AssertionError(f"a test tried to connect to {address!r}, not this machine: tests run offline")

    def checked_connect(self, address):
        return connect(self, address) if local(address) else refuse(address)

    def checked_connect_ex(self, address):
        return connect_ex(self, address) if local(address) else refuse(address)

    def checked_getaddrinfo(host, *args, **kwargs):
        return getaddrinfo(host, *args, **kwargs) if host in LOOPBACK else refuse(host)

    monkeypatch.setattr(socket.socket, "connect", checked_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", checked_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", checked_getaddrinfo)


@pytest.fixture(autouse=True)
def _own_work_folder(monkeypatch, tmp_path):
    """Every test's dashboard work folder is its own: a page run without one wrote its session into the
    checkout's outputs/dashboard (or a developer's CROPMAP_WORKDIR), and read what earlier runs left there."""
    monkeypatch.setenv("CROPMAP_WORKDIR", str(tmp_path / "work"))


@pytest.fixture(autouse=True)
def _no_frozen_objects_between_tests():
    """The dashboard freezes the objects alive once TensorFlow is loaded (pages.components.cached.
    freeze_long_lived): in the test process that would keep every earlier test's cyclic garbage."""
    import gc

    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory) -> tuple[Path, Path]:
    """A real 320 x 288 window of the sample scene (image, CDL labels)."""
    d = tmp_path_factory.mktemp("scene")
    win = Window(200, 300, 320, 288)
    return cut(SAMPLE_IMAGE, d / "small_rgbn.tif", win), cut(SAMPLE_LABELS, d / "small_cdl.tif", win)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """An untrained light U-Net saved with a real card (normalization from the sample scene)."""
    import keras

    from core.bands import FEATURE_BANDS
    from core.dataset import compute_normalization, load_scenes
    from core.card import ModelCard
    from core.model import build_unet, save_model

    norm = compute_normalization(load_scenes([f"{SAMPLE_IMAGE}:{SAMPLE_LABELS}"]))
    keras.utils.set_random_seed(0)  # the same weights in every run: a test sees the same prediction each time
    model = build_unet("light")
    card = ModelCard(preset="light", bands=FEATURE_BANDS, normalization=norm, notes="untrained, for tests")
    return save_model(model, card, tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.fixture()
def swir_model_path(tiny_model_path, tmp_path) -> Path:
    """The tiny model with a card naming SWIR1 where ours have NDVI: a model trained on other bands
    (5 inputs like ours, so only its card tells it apart)."""
    import json
    import shutil

    from core.card import card_path

    path = Path(shutil.copy(tiny_model_path, tmp_path / "swir.keras"))
    card = json.loads(card_path(tiny_model_path).read_text())
    card["bands"] = ["R", "G", "B", "NIR", "SWIR1"]
    card_path(path).write_text(json.dumps(card))
    return path


@pytest.fixture(scope="session")
def shipped():
    """The shipped weights (the real trained model)."""
    from core.model import load_model

    return load_model()


@pytest.fixture()
def fake_map(monkeypatch, tmp_path):
    """The dashboard's map component replaced by an :class:`apptest.FakeMap` (what it records and returns),
    a work folder of the test's own, and Streamlit's caches cleared around the test."""
    import streamlit as st

    from apptest import FakeMap
    from pages.components import mapview

    fake = FakeMap()
    monkeypatch.setattr(mapview, "_st_folium", fake)
    monkeypatch.setenv("CROPMAP_WORKDIR", str(tmp_path / "work"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield fake
    st.cache_data.clear()
    st.cache_resource.clear()
