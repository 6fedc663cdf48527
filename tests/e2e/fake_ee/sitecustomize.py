"""Browser tests only: a fake Earth Engine inside the dashboard's server process.

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``; the browser test puts this
folder there and sets ``CROPMAP_FAKE_EE=1``. Credentials, ``getMapId``, ``getInfo``,
``computePixels`` and the task list are faked; the ``ee`` expressions are built for real against
the algorithm list shipped in the earthengine-api wheel. Nothing here runs without the variable.
"""

import os

if os.environ.get("CROPMAP_FAKE_EE") == "1":
    import json
    import sys
    from pathlib import Path

    ROOT = Path(__file__).resolve().parents[3]
    sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "ee")]

    import ee
    from ee import _cloud_api_utils

    with open(Path(ee.__file__).parent / "tests" / "algorithms.json", encoding="utf-8") as fh:
        _algorithms = _cloud_api_utils.convert_algorithms(json.load(fh))
    ee.data._install_cloud_api_resource = lambda: None
    ee.data.getAlgorithms = lambda: _algorithms
    ee.Initialize(None, "", project="p")

    from core.ee import auth, tiles
    from core.ee import tasks as T
    from fake_ee_ops import FakeOps, fake_compute, op

    _ready = auth.EEStatus(True, "p", "test", "Earth Engine ready: project p (fake, browser test)")
    auth.status = lambda *a, **k: _ready
    auth.initialize = lambda *a, **k: _ready
    # tiles from a closed local port: the browser asks for them and gets nothing, offline
    tiles._default_get_map_id = lambda image, vis: {"url": "http://127.0.0.1:9/ee-tiles/{z}/{x}/{y}"}
    ee.data.computeValue = lambda obj: {"count": 7, "dates": [1104537600000, 1167523200000]}
    ee.data.computePixels = fake_compute([])
    _ops = FakeOps({"A": [op("A", "RUNNING", description="camana_train_000")],
                    "B": [op("B", "FAILED", description="camana_test_000", error="User memory limit exceeded.")]})
    T.EEOperationsClient = lambda: _ops
