"""Fakes of Earth Engine calls for the tests: batch operations (the injectable client of
core.ee.tasks) and ``computePixels``."""

from __future__ import annotations

import numpy as np


class FakeResp(dict):
    """An HTTP response as googleapiclient's HttpError takes it."""

    def __init__(self, status: int):
        super().__init__(status=str(status))
        self.status = status
        self.reason = "x"


def http_error(status: int, message: str = ""):
    """googleapiclient's HttpError of ``status`` with ``message`` as its body."""
    from googleapiclient.errors import HttpError

    return HttpError(FakeResp(status), message.encode())


#: The fake's class codes (left half, right half): GLC-FCS30D irrigated cropland and bare areas,
#: which are crop and not crop in the CDL, GLC30 and GLC-FCS30D class maps alike.
CODES = (20, 200)
#: Crop and not-crop codes of the products whose legends differ (the request's expression names
#: the product), so that the codes fit the label map they are read with.
PRODUCT_CODES = {"GOOGLE/DYNAMICWORLD": (4, 7), "ESA/WorldCover": (40, 60)}

#: A code the GLC-FCS30D class map reads as no data (its fill value).
FILL = 250


def _codes_for(expression) -> tuple[int, int]:
    import json

    text = json.dumps(expression.serialize()) if hasattr(expression, "serialize") else str(expression)
    return next((codes for key, codes in PRODUCT_CODES.items() if key in text), CODES)


def fake_compute(requests: list, edges: bool = False):
    """A ``computePixels`` that records each request and returns structured arrays of its grid:
    labels crop (1) in the left half (class codes :data:`CODES`), reflectances 0.05 x band number,
    NIR 0.4. With ``edges``, each tile's first label row is no data (255, or the fill code) and the
    last five pixels of its last composite row are masked (-9999)."""

    def compute(req):
        requests.append(req)
        w, h = req["grid"]["dimensions"]["width"], req["grid"]["dimensions"]["height"]
        bands = req["bandIds"]
        if bands in (["label"], ["class"]):
            crop, other, nodata, dtype = (1, 0, 255, "u1") if bands == ["label"] else (*_codes_for(req["expression"]), FILL, "<i2")
            out = np.full((h, w), other, dtype=[(bands[0], dtype)])
            out[bands[0]][:, : w // 2] = crop
            if edges:
                out[bands[0]][0, :] = nodata
            return out
        out = np.zeros((h, w), dtype=[(b, "<f4") for b in bands])
        for i, b in enumerate(bands):
            out[b] = 0.05 * (i + 1)
        out["NIR"] = 0.4
        if edges:
            for b in bands:
                out[b][-1, -5:] = -9999.0  # masked in the composite
        return out

    return compute


def op(task_id: str, state: str, description: str = "d", error: str | None = None, created: str = "2026-01-01T00:00:00Z") -> dict:
    o = {
        "name": f"projects/p/operations/{task_id}",
        "metadata": {"@type": "type.googleapis.com/google.earthengine.v1.OperationMetadata", "state": state,
                     "description": description, "type": "EXPORT_FEATURES", "createTime": created,
                     "destinationUris": ["https://console.cloud.google.com/storage/browser/b/x/"]},
    }
    if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
        o["done"] = True
    if error:
        o["error"] = {"code": 3, "message": error}
    return o


class FakeOps:
    """Scripted states per task id; records cancellations."""

    def __init__(self, script: dict[str, list[dict]]):
        self.script = {k: list(v) for k, v in script.items()}
        self.cancelled: list[str] = []

    def list_operations(self):
        return [v[0] for v in self.script.values()]

    def get_operation(self, name):
        seq = self.script[name.rsplit("/", 1)[-1]]
        return seq.pop(0) if len(seq) > 1 else seq[0]

    def cancel_operation(self, name):
        tid = name.rsplit("/", 1)[-1]
        self.cancelled.append(tid)
        description = self.script[tid][0]["metadata"]["description"] if tid in self.script else "d"
        self.script[tid] = [op(tid, "CANCELLING", description=description)]


class FakeStorage:
    """A ``google.cloud.storage`` client that keeps each uploaded file's bytes in ``uploaded`` (by gs:// URI),
    lists them (``list_blobs``, recorded in ``listed``) and deletes them (recorded in ``deleted``)."""

    def __init__(self, files=()):
        self.uploaded: dict[str, bytes] = {uri: b"" for uri in files}
        self.listed: list[str] = []
        self.deleted: list[str] = []

    def list_blobs(self, bucket, prefix=""):
        from types import SimpleNamespace

        self.listed.append(f"gs://{bucket}/{prefix}")
        start = f"gs://{bucket}/"
        return [SimpleNamespace(name=uri[len(start):]) for uri in sorted(self.uploaded)
                if uri.startswith(start + prefix)]

    def bucket(self, name):
        storage = self

        class Blob:
            def __init__(self, path):
                self.path = path

            def delete(self):
                uri = f"gs://{name}/{self.path}"
                if uri not in storage.uploaded:
                    from google.api_core.exceptions import NotFound

                    raise NotFound(f"No such object: {uri}")
                del storage.uploaded[uri]
                storage.deleted.append(uri)

            def upload_from_filename(self, filename, if_generation_match=None):
                uri = f"gs://{name}/{self.path}"
                if if_generation_match == 0 and uri in storage.uploaded:  # as Cloud Storage: 412
                    from google.api_core.exceptions import PreconditionFailed

                    raise PreconditionFailed(f"At least one of the pre-conditions you specified did not hold: {uri}")
                with open(filename, "rb") as fh:
                    storage.uploaded[f"gs://{name}/{self.path}"] = fh.read()

        class Bucket:
            def blob(self, path):
                return Blob(path)

        return Bucket()


class FakeAssets:
    """``ee.data.getAsset`` over the assets in ``existing`` (name -> EarthEngineAsset dict); any other
    name is refused as Earth Engine refuses a missing asset."""

    def __init__(self, existing: dict | None = None):
        self.existing = dict(existing or {})
        self.asked: list[str] = []

    def __call__(self, name):
        import ee

        self.asked.append(name)
        if name not in self.existing:
            raise ee.EEException(f"Asset '{name}' does not exist or doesn't allow this operation.")
        return {"name": name, **self.existing[name]}


def image_asset(w: float, s: float, e: float, n: float, band: str = "crop_probability") -> dict:
    """getAsset's answer for an image over the box (west, south, east, north)."""
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {"type": "IMAGE", "bands": [{"id": band, "dataType": {"precision": "INT"}}],
            "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {"threshold": 0.5}}
