"""Prediction over an Earth Engine image export (TFRecord patches + mixer JSON).

Each record is a patch plus ``kernelSize`` of context (half on each side); the model sees the
whole buffered patch and only the central patch is kept, so neighbouring patches meet without
seams. The result is placed by the mixer (georeferenced from its projection) and written exactly
like :func:`core.predict.predict_image` writes a GeoTIFF prediction. The export's values go through
the same scale detection, checks and conversion as a GeoTIFF's (:func:`core.patches.export_reflectance`,
:func:`core.reflectance.valid_pixels`, :func:`core.reflectance.to_features`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from core.config import PredictConfig
from core.errors import ConfigError, ModelMismatchError, NoDataError
from core.files import move_into_place, staging_dir
from core.predict import (DERIVED_OUTPUTS, ModelRunner, ProgressFn, _summary, _write_outputs, prediction_outputs,
                          provenance_tags, stale_outputs)
from core.bands import FEATURE_BANDS, INPUT_BANDS
from core.reflectance import stored_ceiling, to_features, valid_pixels


class ExportPredictor:
    """Yields probability strips (one row of patches at a time) from an image export.

    Raises (on creation):
        InputNotFoundError, CorruptFileError: missing or damaged export;
        InvalidDataError: its values are not reflectance; ModelMismatchError: the model does not fit;
        ConfigError: 8 views of patches that are not square.
    """

    def __init__(self, mixer_path, loaded, batch_size: int = 8, views: int = 1):
        from core.card import check_bands
        from core.patches import _infer_kernel, export_files, export_reflectance, read_mixer

        check_bands(loaded.card, FEATURE_BANDS)
        self.mixer_path = mixer_path
        self.mixer = read_mixer(mixer_path)
        self.kernel = _infer_kernel(export_files(mixer_path)[0], "R", self.mixer.patch)
        self.loaded = loaded
        if views > 4 and self.mixer.patch[0] != self.mixer.patch[1]:
            raise ConfigError(f"8 views need square patches, this export's are {self.mixer.patch[0]} x "
                              f"{self.mixer.patch[1]} px; use 4 views")
        self.runner = ModelRunner(loaded.model, batch_size, views)
        width, height = (d + self.kernel for d in self.mixer.patch)
        size = f"{width} px" if width == height else f"{width} x {height} px"
        fixed = self.runner.fixed_size
        if fixed is not None and (width, height) != (fixed, fixed):
            example = f" (e.g. --patch {fixed - 64} --kernel 32)" if fixed >= 80 else ""
            raise ModelMismatchError(
                f"the export's patches are {size} with their buffer but the model takes {fixed} px: export the image "
                f"again with patch + 2 x kernel = {fixed}{example}, Earth Engine's patchDimensions + kernelSize, or "
                "predict with a model that takes any size (the shipped one does)")
        if width % 16 or height % 16:
            raise ModelMismatchError(
                f"buffered patches of {size} do not fit a U-Net (it needs multiples of 16): export the image again with "
                "a --kernel that makes patch + 2 x kernel a multiple of 16 (Earth Engine's patchDimensions + kernelSize)")
        #: suspect but possible values, as a GeoTIFF's reader finds them (in the summary's warnings)
        self.scales, self.offsets, self.warnings = export_reflectance(mixer_path, self.kernel)
        self.ceiling = stored_ceiling(self.scales, self.offsets)

    def strips(self, read, height: int, width: int, progress: ProgressFn | None = None):
        from core.patches import iter_export_patches

        m, half = self.mixer, self.kernel // 2
        pw, ph = m.patch
        row = np.full((ph, width), np.nan, np.float32)
        current = 0
        what = f"the image export {Path(str(self.mixer_path)).name}"
        if progress:  # the total from the start (a bar shows it before the first batch is done)
            progress(0, m.total_patches)
        for first, batch in iter_export_patches(self.mixer_path, INPUT_BANDS, self.kernel, batch_size=self.runner.batch_size):
            raws = batch.transpose(0, 3, 1, 2)  # band-first views, as a GeoTIFF window is read
            valid = [valid_pixels(raw, None, what, ceiling=self.ceiling) for raw in raws]
            x = np.stack([self.loaded.card.normalization.apply(to_features(raw, v, self.scales, self.offsets, what), v)
                          for raw, v in zip(raws, valid)])
            probs = self.runner(x)
            for k, (p, v) in enumerate(zip(probs, valid)):
                i = first + k
                r, c = divmod(i, m.patches_per_row)
                if r != current:
                    yield current * ph, row
                    row = np.full((ph, width), np.nan, np.float32)
                    current = r
                core_p = p[half : half + ph, half : half + pw]
                core_v = v[half : half + ph, half : half + pw]
                row[:, c * pw : (c + 1) * pw] = np.where(core_v, core_p, np.nan)
                if progress:
                    progress(i + 1, m.total_patches)
        yield current * ph, row


def predict_export(mixer_path, out_dir, model_path=None, config: PredictConfig = PredictConfig(), overwrite: bool = False,
                   progress: ProgressFn | None = None, loaded=None, stale: Sequence[str] = DERIVED_OUTPUTS,
                   placed=None) -> dict:
    """Predict an image export (``*-mixer.json`` + TFRecords, local or gs://) into ``out_dir``; with
    ``overwrite``, the files named in ``stale`` there go with the outputs they replace, and ``placed()``
    is called as the outputs are in place (as for :func:`core.predict.predict_image`).

    Raises the same errors as :func:`core.predict.predict_image`, plus CorruptFileError for bad records.
    """
    from core.card import model_files
    from core.model import check_model_files, load_model
    from core.patches import export_files, mixer_file, read_mixer

    mixer_path = mixer_file(mixer_path)  # (a pattern, PREFIX*mixer.json: found once, and the summary names the file)
    read_mixer(mixer_path)  # the export's own mistakes (a bad or renamed mixer) before "--overwrite"
    export_files(mixer_path)
    if loaded is None:
        check_model_files(model_path)
    outputs, summary_path = prediction_outputs(out_dir, overwrite, [mixer_path, *model_files(model_path)], stale)
    t0 = time.time()
    loaded = loaded or load_model(model_path)
    pred = ExportPredictor(mixer_path, loaded, config.batch_size or 4, config.views)
    grid = pred.mixer.grid
    with staging_dir(out_dir) as tmpdir:  # a failed run leaves no folder it made
        stats = _write_outputs(pred, None, grid, tmpdir, config.threshold, progress,
                               tags=provenance_tags(mixer_path, loaded.path, loaded.card, config.views))
        if stats["valid_pixels"] == 0:
            raise NoDataError("the image export holds no valid pixels; nothing was written")

        class _Win:
            row_off = col_off = 0
            height, width = grid.height, grid.width

        summary = _summary(mixer_path, grid, _Win, config, loaded, stats, time.time() - t0, pred.warnings)
        summary["source"] = "earth engine image export (mixer)"
        summary["kernel"] = pred.kernel
        (tmpdir / "summary.json").write_text(json.dumps(summary, indent=2))
        move_into_place([*stale_outputs(out_dir, stale, overwrite),
                         (tmpdir / "probability.cog.tif", outputs["probability"]),
                         (tmpdir / "crop_mask.cog.tif", outputs["crop_mask"]), (tmpdir / "summary.json", summary_path)],
                        tmpdir, replace=overwrite, done=placed)
    return summary
