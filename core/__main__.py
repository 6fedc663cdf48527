"""Command-line interface: ``python -m core {predict,evaluate,fields,zones,labels-from-fields,patches,train,resample,stack,info}``, and the
Earth Engine commands ``ee-status``, ``ee-fetch``, ``ee-export-patches``, ``ee-export-image``, ``ee-tasks``,
``ee-upload`` (:mod:`core.ee.cli`).

Every user mistake ends as one line on stderr and exit status 2; nothing prints a traceback for a
:class:`~core.errors.CropMapError`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.commands import core_command, missing_module_advice  # noqa: E402

try:
    import numpy as np  # noqa: E402

    from core.errors import CropMapError  # noqa: E402
    from core.errors import environment_error as _environment_error  # noqa: E402
    from core.labels import CLASS_MAPS  # noqa: E402
    from core.progress import TqdmProgress, new_bar  # noqa: E402
except ModuleNotFoundError as _missing:  # run by a Python without the project's libraries
    _advice = missing_module_advice(_missing)
    if _advice is None:
        raise
    print(f"error: {_advice}", file=sys.stderr)
    sys.exit(2)


#: config field -> the command-line option that sets it, where the two are spelt differently
_OPTION = {"steps_per_epoch": "--steps", "batch_size": "--batch-size", "learning_rate": "--lr",
           "patch_size": "--patch-size", "val_patches": "--val-patches", "kernel_buffer": "--buffer",
           "count": "--count", "min_valid_fraction": "--min-valid", "epochs": "--epochs", "patience": "--patience",
           "tile": "--tile", "overlap": "--overlap", "seed": "--seed", "threshold": "--threshold", "views": "--views",
           "bn_momentum": "--bn-momentum"}


def print_json(obj: Any) -> None:
    """Print a command's result as JSON, paths and names in their own letters (not "\\u00e7") where the
    output's encoding has them."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    try:
        print(text)
    except UnicodeEncodeError:  # (a terminal or pipe in an encoding without those letters)
        print(json.dumps(obj, indent=2))


def _config(cls, option: dict[str, str] | None = None, **values):
    """``cls(**values)``; a ConfigError names the command-line option (``--lr``), not the field.

    Raises:
        ConfigError: a value is out of range.
    """
    from core.errors import ConfigError

    names = {**_OPTION, **(option or {})}
    try:
        return cls(**values)
    except ConfigError as err:
        # (a field's name, not a quoted value of another: "the 'seed' preset" is no --seed)
        text = re.sub(r"(?<!')\b(" + "|".join(map(re.escape, names)) + r")\b(?!')", lambda m: names[m.group(1)], str(err),
                      count=1)
        raise ConfigError(text) from None


def train_config(args: argparse.Namespace):
    """The :class:`core.config.TrainConfig` of ``train``'s parsed options.

    Raises:
        ConfigError: a value is out of range (named by its option).
    """
    from core.config import TrainConfig

    return _config(
        TrainConfig, preset=args.preset, epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch_size,
        learning_rate=args.lr, patch_size=args.patch_size, val_patches=args.val_patches, patience=args.patience,
        seed=args.seed, init_model=args.init, bn_momentum=args.bn_momentum,
    )


def predict_config(args: argparse.Namespace):
    """The :class:`core.config.PredictConfig` of ``predict``'s parsed options.

    Raises:
        ConfigError: a value is out of range (named by its option).
    """
    from core.config import PredictConfig

    return _config(PredictConfig, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size,
                   threshold=args.threshold, views=args.views)


def patch_config(args: argparse.Namespace):
    """The :class:`core.config.PatchConfig` of ``patches``' parsed options.

    Raises:
        ConfigError: a value is out of range (named by its option).
    """
    from core.config import PatchConfig

    return _config(PatchConfig, {"patch_size": "--size"}, patch_size=args.size, kernel_buffer=args.buffer,
                   count=args.count, seed=args.seed, min_valid_fraction=args.min_valid)


#: each command that loads TensorFlow: its options' checks, made before TensorFlow is loaded (seconds, during
#: which "--threshold 2" waited for its one-line error)
CONFIG_OF = {"train": train_config, "predict": predict_config, "patches": patch_config}


def _cmd_train(args: argparse.Namespace) -> int:
    from core.bands import parse_band_spec
    from core.train import command_line, shared_inputs, train

    band_map = parse_band_spec(args.bands)
    if band_map:
        from core.dataset import pair_paths
        from core.patchset import split_sources

        _warn_band_map(band_map, [img for items, flag in ((args.train, "--train"), (args.val, "--val"))
                                  if not split_sources(items, flag) for img, _ in pair_paths(items)])
    cfg = train_config(args)
    bar = new_bar(total=cfg.epochs * cfg.steps_per_epoch, unit="step")

    def progress(ev: dict) -> None:
        if bar.n == 0 and ev["epoch"] > 1:  # a resumed run: its earlier epochs are not steps done at this run's rate
            bar.reset()
            bar.initial = (ev["epoch"] - 1) * ev["steps"]
        bar.n = (ev["epoch"] - 1) * ev["steps"] + ev["step"]
        logs = ev["logs"]
        bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "iou", "val_loss", "val_iou")})
        if ev["event"] == "epoch":
            args.completed = epoch_kept_note(ev["epoch"], ev["epochs"], args.resume, args.overwrite)  # (an interrupt)
            # on stderr with the bar: stdout carries the result (JSON) alone, so that a closed pipe
            # (train ... | head) or a redirection never stops or clutters the run
            bar.write(f"epoch {ev['epoch']}/{ev['epochs']} " + " ".join(f"{k}={v:.4f}" for k, v in sorted(logs.items())),
                      file=sys.stderr)
        bar.refresh()

    cmd = command_line(sys.argv[1:])  # (the card's: without --resume)
    result = train(cfg, args.train, args.val, args.out, label_map=args.label_map, resume=args.resume,
                   overwrite=args.overwrite, progress=progress, command=cmd, pixel_size_m=args.pixel_size_m,
                   band_map=band_map)
    bar.close()
    print_json({"best_model": str(result.best_model), "epochs": result.epochs_done,
                "best_val_loss": result.best_val_loss, "best": result.best_metrics, "stopped": result.stopped})
    from core.card import card_path, load_card

    if card_path(result.best_model).is_file() and load_card(result.best_model).pixel_size_m is None:
        print("note: the training data did not say its pixel size (TFRecord patches and images without a CRS do "
              "not), so the model card does "
              "not either and predictions on another pixel size get no warning; train with --pixel-size-m (30 for "
              "Landsat, 10 for Sentinel-2) to record it", file=sys.stderr)
    shared = shared_inputs(args.train, args.val, args.label_map)  # (after the run: an error stays one line)
    if shared:
        said = ", ".join(shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
        print(f"note: --val reads {said}, which --train reads too, so the best epoch was chosen partly on training "
              "pixels and its validation figures are optimistic; validate on data held out from training (python "
              "-m core patches --test N cuts test patches from a held-out block)", file=sys.stderr)
    print(f"wrote {result.best_model} (the best epoch's model; the run's checkpoints and history.csv beside it); "
          f"next: {core_command('predict', '--image', 'IMAGE.tif', '--model', shlex.quote(str(result.best_model)), '--out', 'DIR')}",
          file=sys.stderr)
    return 0


def _warn_band_map(band_map: dict[str, int] | None, images) -> set[str]:
    """Prints a warning for each of ``images`` whose band names contradict the --bands given (info and
    predict say it with the reader's other warnings); returns the warnings said (a command that prints its
    reader's warnings after the run leaves these out).

    Raises:
        InputNotFoundError, CorruptFileError: an image cannot be read.
    """
    from core.raster import band_map_check

    said: set[str] = set()  # (an image read for --train and --val: said once)
    for image in images:
        for warning in band_map_check(image, band_map):
            if warning not in said:
                said.add(warning)
                print(f"warning: {warning}", file=sys.stderr)
    return said


def _parse_window(text: str | None) -> tuple[int, int, int, int] | None:
    """``"ROW,COL,HEIGHT,WIDTH"`` (whole pixels) -> a tuple; None when not given.

    Raises:
        RegionError: not four whole numbers.
    """
    if not text:
        return None
    from core.errors import RegionError

    try:
        row, col, height, width = (int(v) for v in text.split(","))  # not four, or not whole: ValueError
    except ValueError:
        raise RegionError(f"--window takes four whole numbers of pixels ROW,COL,HEIGHT,WIDTH (e.g. 0,0,512,512), "
                          f"not {text!r}") from None
    return row, col, height, width


#: a --bbox with less than this share of it on the image's pixels is said to be cut to the image (a box
#: typed from the image's edges, to 6 decimals, may reach a hair past them)
BOX_ON_IMAGE = 0.999
#: a --bbox with less than this share of it on the image is refused: a box mistyped (a sign, a digit) that
#: still touches the image ran on a sliver of it
BOX_MOSTLY_OFF = 0.01


def _bbox_text(values: list[str]) -> str:
    """The values given to ``--bbox`` (nargs="+": "W,S,E,N", or "W S E N") as one text for parse_bbox.

    Raises:
        RegionError: a value that is no number, e.g. a path the option took for its own (``--bbox W,S,E,N
            FOLDER``), named.
    """
    from core.bbox import not_numbers
    from core.errors import RegionError

    for value in values:
        if bad := not_numbers(value):
            if "," in value or re.fullmatch(r"[-+]?(\d[\d.]*\S*|nan|inf|infinity)", value, re.IGNORECASE):  # "nan", "13.1°"
                raise RegionError(f"--bbox takes four numbers, west, south, east and north in degrees, and "
                                  f"{bad[0]!r} is not a number (e.g. --bbox=-72.78,-16.65,-72.67,-16.58)")
            raise RegionError(f"--bbox takes four numbers, west, south, east and north, and {value!r} is not one "
                              "of them; put the files before --bbox, or write --bbox=W,S,E,N")
    return ",".join(values)


def _bbox_window(text: str, image: str, doing: str = "predicting") -> tuple[tuple[int, int, int, int], dict]:
    """``--bbox W,S,E,N`` (degrees) -> the pixel window ROW,COL,HEIGHT,WIDTH of ``image`` that covers it,
    and what the summary records of it (the box, whether it was cut to the image, and the share of it
    on the image); a box that
    reaches past the image is cut to it, with a warning that says how much of it the image covers.

    Raises:
        RegionError: not four numbers, not longitude/latitude, an image without a CRS, a box outside it or
            with under 1% of it on the image but not holding all of it (the message gives the image's edges),
            or over under 8 px of it.
        InputNotFoundError, CorruptFileError: the image cannot be read.
    """
    from core.errors import OutsideImageError, RegionError
    from core.raster import grid_of_file
    from core.bbox import box_text, box_within, image_box_bounds, parse_bbox
    from core.region import Region
    from core.region_check import box_advice

    try:
        given = parse_bbox(text)
        grid = grid_of_file(image)
        if not grid.georeferenced:  # (before the numbers are read as degrees: they may be pixels)
            raise RegionError(f"it is in degrees, and {image} has no place on Earth (no CRS); give the pixels "
                              "with --window ROW,COL,HEIGHT,WIDTH instead")
        box_within(given, None, image=False)  # (west < east, said of the 180th meridian: "give xmin < xmax" was not)
        Region.from_bbox(*given, name="--bbox")  # (longitude/latitude)
        bounds = image_box_bounds(grid, image=False)
        box, _ = box_within(given, bounds, image=False)
        region = Region.from_bbox(*box, name="--bbox")
        try:
            w = region.window(grid)
        except OutsideImageError:  # on the image's lon/lat box but beside its pixels (a projected image, turned)
            raise OutsideImageError(f"the box lies outside the image, whose edges are {box_text(bounds, False)} "
                                    "(west, south, east, north; the image is turned against the meridians, so the "
                                    "box must reach its pixels, not only a corner of these)") from None
        # the image's lon/lat box is larger than the image (a projected image is turned against the
        # meridians; across the 180th meridian there is none): the part of the box on its pixels
        on = region.share_on(grid)
    except RegionError as err:
        said = box_advice(str(err), "give")  # (its own note of the order, or of --window, is not said twice)
        order = "" if "west, south, east, north" in said or "--window" in said else " (west, south, east, north in degrees)"
        raise RegionError(f"--bbox: {said}{order}") from None
    from core.config import MIN_REGION_SIDE

    share = on * (box[2] - box[0]) * (box[3] - box[1]) / ((given[2] - given[0]) * (given[3] - given[1]))
    said = f"{share:.0%}" if share >= 0.1 else f"{share * 100:.2g}%"  # (0.08% read "0%")
    whole = (w.height, w.width) == (grid.height, grid.width)  # (a generous box around the image is no mistake)
    if share < BOX_MOSTLY_OFF and not whole:  # (a sign or a digit mistyped: it ran on a sliver, exit 0; said
        # before the sliver's size, which asked for a larger box)
        edges = ", ".join(f"{v:.6f}" for v in image_box_bounds(grid, image=False))
        raise RegionError(f"--bbox has {said} of it on the image, which covers {edges} (west, south, east, north): "
                          "check the box's numbers (a sign or a digit?), or give the box of the part you want")
    if w.height < min(MIN_REGION_SIDE, grid.height) or w.width < min(MIN_REGION_SIDE, grid.width):  # (said of --bbox)
        raise RegionError(f"--bbox covers {w.width} x {w.height} px of the image (columns x rows), under "
                          f"{MIN_REGION_SIDE} px a side: give a larger box (west, south, east, north in degrees)")
    cut = share < BOX_ON_IMAGE
    if cut:
        print(f"warning: --bbox reaches past the image: {doing} the part on it, {said} of the box "
              f"({', '.join(f'{v:.6f}' for v in box)})", file=sys.stderr)
    # (the share too: a summary read later said the box was cut, not that the crop area is of 9% of it)
    return (w.row_off, w.col_off, w.height, w.width), {"bbox": list(given), "bbox_cut_to_image": cut,
                                                       "bbox_share_on_image": round(min(share, 1.0), 4)}


def _cmd_predict(args: argparse.Namespace) -> int:
    from core.files import check_output_dir
    from core.predict import DERIVED_OUTPUTS, predict_image, stale_outputs
    from core.bands import parse_band_spec

    cfg = predict_config(args)
    window = _parse_window(args.window)
    export = _is_mixer(args.image)
    if args.bbox and window is not None:
        from core.errors import ConfigError

        raise ConfigError("--bbox and --window both say what to predict: give one")
    if export:  # (options an export has no use for: said, not left without effect)
        for option, given in (("--window", window is not None), ("--bbox", bool(args.bbox)), ("--bands", args.bands),
                              ("--tile", args.tile is not None), ("--overlap", args.overlap is not None)):
            if given:
                _refuse_for_an_export(option)
    check_output_dir(args.out)
    about = {"bands": args.bands} if args.bands else {}  # (what the outputs were made from, in summary.json)
    if args.bbox:
        window, box = _bbox_window(_bbox_text(args.bbox), args.image)
        about.update(box)
    context = None
    if not export and window is None and not args.no_context:
        from core.sources.base import scene_context

        context = scene_context(args.image)
        if context is not None:
            print(f"predicting with {context.path.name} around the image (the surroundings of the region, as the "
                  "dashboard does); --no-context to predict the image alone", file=sys.stderr)
    derived = [p for _, p in stale_outputs(args.out, DERIVED_OUTPUTS, args.overwrite)]  # (to say they went)
    told: list[str] = []  # warnings said before the run (they came after it, a large scene's hours later)

    def warn(text: str) -> None:
        told.append(text)
        print(f"warning: {text}", file=sys.stderr)

    bar = TqdmProgress("predict", "tile")

    def placed() -> None:  # what an interrupt leaves from the moment the outputs are in place
        args.completed = f"the new outputs in {args.out} were written whole"

    try:
        if export:
            from core.predict_export import predict_export

            summary = predict_export(args.image, args.out, args.model, cfg, overwrite=args.overwrite, progress=bar,
                                     placed=placed)
        else:
            summary = predict_image(args.image, args.out, args.model, cfg, window=window, overwrite=args.overwrite,
                                    progress=bar, band_map=parse_band_spec(args.bands), context=context, about=about,
                                    warn=warn, placed=placed)
    finally:
        bar.close()
    short = {k: summary[k] for k in ("pixels", "valid_pixels", "crop_pixels", "crop_fraction", "crop_area_ha", "threshold", "note")}
    print_json(short)
    for warning in summary.get("warnings", []):
        if warning not in told:
            print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {Path(args.out) / 'probability.tif'}, crop_mask.tif and summary.json", file=sys.stderr)
    if args.bbox:  # (said once it is done: said before, it came above an error such as an output in the way)
        print(f"--bbox: predicted the window {','.join(map(str, window))} (ROW,COL,HEIGHT,WIDTH) of the image",
              file=sys.stderr)
    for old in derived:  # removed with the outputs they described (predict_image's stale)
        if not old.exists():
            print(f"removed {old}: it described the replaced crop mask", file=sys.stderr)
    return 0


#: the files predict writes together (a crop mask's window is read from the summary beside it)
PREDICTION_FILES = ("probability.tif", "crop_mask.tif", "summary.json")


def _not_an_input(out: str | None, **inputs: str | None) -> None:
    """Raises ConfigError when the output file ``out`` is one of the command's input files (with
    --overwrite it would be destroyed before it is read), or one of the files predict wrote beside the
    prediction given (``pred`` or ``mask``): its summary written over, the mask's window in its image
    was lost, and zones were counted from the wrong corner."""
    from core.errors import ConfigError

    if not out:
        return
    for option in ("pred", "mask"):
        given = inputs.get(option)
        if (given and Path(out).name.lower() in PREDICTION_FILES
                and Path(out).resolve().parent == Path(given).resolve().parent):
            raise ConfigError(f"--out {out} is one of the files predict wrote beside --{option} ({', '.join(PREDICTION_FILES)}): "
                              "they belong together; choose another --out")
    if not os.path.exists(out):
        return
    for option, path in inputs.items():
        if path and os.path.exists(path) and os.path.samefile(out, path):
            raise ConfigError(f"--out is the same file as --{option} ({path}); choose another --out")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from core.evaluate import evaluate_files

    _not_an_input(args.out, pred=args.pred, labels=args.labels)
    result = evaluate_files(args.pred, args.labels, args.label_map, out=args.out, overwrite=args.overwrite,
                            label_band=args.label_band)
    print_json(result)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.out or Path(args.pred).with_name('metrics.json')}", file=sys.stderr)
    return 0


def _cmd_fields(args: argparse.Namespace) -> int:
    from core.fields import write_fields

    out = args.out or str(Path(args.mask).with_name("crop_fields.geojson"))
    _not_an_input(out, mask=args.mask)
    done = write_fields(args.mask, out, args.min_pixels, args.overwrite)
    print_json(done)
    print(f"wrote {done['out']}", file=sys.stderr)  # (as every command that writes says where)
    return 0


def _cmd_labels_from_fields(args: argparse.Namespace) -> int:
    from core.field_labels import write_field_labels

    _not_an_input(args.out, fields=args.fields, image=args.image)
    done = write_field_labels(args.fields, args.image, args.out, args.property, args.overwrite)
    print_json({k: v for k, v in done.items() if k != "warnings"})
    for warning in done["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {done['out']}", file=sys.stderr)
    return 0


def _for_labels(args: argparse.Namespace, *options: str) -> None:
    """Refuse ``options`` (argparse names) given without ``--labels``, which they are for (they were
    ignored without a word, a misspelled --label-map too).

    Raises:
        ConfigError: one of them is set (off its default) and no labels are.
    """
    from core.errors import ConfigError

    if args.labels:
        return
    defaults = {"label_map": "cdl"}
    for name in options:
        if getattr(args, name, None) not in (None, defaults.get(name)):
            raise ConfigError(f"--{name.replace('_', '-')} is for --labels; give the labels file too")


def _cmd_zones(args: argparse.Namespace) -> int:
    from core.zones import write_zones

    if args.out:
        _not_an_input(args.out, pred=args.pred, zones=args.zones, labels=args.labels)
    _for_labels(args, "label_map", "label_band")
    result = write_zones(args.pred, args.zones, args.out, args.overwrite, args.labels, args.label_map, args.label_band)
    print_json(result["zones"])
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if result["out"]:
        print(f"wrote {result['out']}", file=sys.stderr)
    return 0


def _cmd_resample(args: argparse.Namespace) -> int:
    from core.bands import parse_band_spec
    from core.resample import resample_files

    _for_labels(args, "labels_out", "label_map")
    band_map = parse_band_spec(args.bands)
    said = _warn_band_map(band_map, [args.image])  # (before the run; the reader's warnings after it repeat it)
    if args.labels and not args.labels_out:
        args.labels_out = str(Path(args.out).with_name(Path(args.out).stem + "_labels.tif"))
    done = resample_files(args.image, args.out, args.pixel_size, args.labels, args.labels_out, args.label_map,
                          band_map, args.overwrite)
    print_json(done)
    for warning in done["warnings"]:
        if warning not in said:
            print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {done['image']}" + (f" and {done['labels']}" if done["labels"] else ""), file=sys.stderr)
    return 0


def _cmd_stack(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from core.stack import BandFiles, find_band_files, stack_bands

    box_text = _bbox_text(args.bbox) if args.bbox else None  # (first: --bbox takes a folder after it for its own)
    given = {b: p for b, p in {"R": args.red, "G": args.green, "B": args.blue, "NIR": args.nir}.items() if p}
    if given and (len(given) < 4 or args.inputs):
        missing = [f"--{n}" for b, n in (("R", "red"), ("G", "green"), ("B", "blue"), ("NIR", "nir")) if b not in given]
        raise ConfigError("give either the download's files (or folder) or all four of --red, --green, --blue and "
                          "--nir" + (f" (missing: {', '.join(missing)})" if missing and not args.inputs else
                                     ", not some of each"))
    if not given and not args.inputs:
        raise ConfigError("give the download's band files or their folder (or --red, --green, --blue and --nir)")
    # (files given by role are opened, and a missing one or one that is not a raster said so, by stack_bands)
    bands = BandFiles({b: Path(p) for b, p in given.items()}, "files", None) if given else find_band_files(args.inputs)
    window, box = (None, {})
    if box_text:
        window, box = _bbox_window(box_text, str(bands.files["R"]), "writing")
    done = stack_bands(bands, args.out, window, args.overwrite)
    print_json({**done, **box})
    for warning in done["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {done['out']}; next: {core_command('predict', '--image', shlex.quote(done['out']), '--out', 'DIR')}",
          file=sys.stderr)
    return 0


def _cmd_patches(args: argparse.Namespace) -> int:
    from core.errors import ConfigError
    from core.files import check_output_file
    from core.patches import RECORD_SUFFIX, sample_patches
    from core.bands import parse_band_spec
    from core.raster import grid_of_file

    cfg = patch_config(args)
    band_map = parse_band_spec(args.bands)
    _warn_band_map(band_map, [args.image])
    bar = TqdmProgress("patches", "patch")

    def summary(s) -> dict:
        return {"path": str(s.path), "patches": s.count, "side": s.config.full_size,
                "kernel_buffer": s.config.kernel_buffer, "crop_fraction": round(s.crop_fraction, 4)}

    if args.test is not None:  # --out is a folder: train + test files, test from a held-out block
        from core.files import check_output_dir
        from core.patchset import crop_share_gap, cut_train_test

        if str(args.out).endswith(RECORD_SUFFIX):
            raise ConfigError(f"with --test, --out is a folder (train{RECORD_SUFFIX} and test{RECORD_SUFFIX} go in "
                              f"it), not a patches file: give a folder name such as {Path(args.out).parent / 'patches'}")
        check_output_dir(args.out)
        try:
            made = cut_train_test(args.image, args.labels, args.label_map, args.out, cfg, args.test,
                                  overwrite=args.overwrite, band_map=band_map, progress=bar)
        finally:
            bar.close()
        nxt = core_command("train", "--train", shlex.quote(str(made.train.path)), "--val",
                           shlex.quote(str(made.test.path)), "--patch-size", str(cfg.patch_size), "--out", "runs/NAME")
        size = grid_of_file(args.image).pixel_size_m()
        if size is not None:  # patches do not carry it, and the model card needs it for its pixel size warning
            nxt += f" --pixel-size-m {size:.3g}"
        print_json({"train": summary(made.train), "test": summary(made.test), "note": made.note,
                    "train_with": nxt})
        gap = crop_share_gap(made.train.crop_fraction, made.test.crop_fraction)  # (as the Data page says it)
        for warning in (*(f"training patches: {w}" for w in made.train.warnings),
                        *(f"test patches: {w}" for w in made.test.warnings), *([gap] if gap else [])):
            print(f"warning: {warning}", file=sys.stderr)
        print(f"wrote {made.train.path} and {made.test.path}", file=sys.stderr)
        return 0
    _not_an_input(args.out, image=args.image, labels=args.labels)
    check_output_file(args.out, args.overwrite)
    try:
        s = sample_patches(args.image, args.labels, args.label_map, cfg, args.out, overwrite=args.overwrite,
                           band_map=band_map, progress=bar)
    finally:
        bar.close()
    print_json(summary(s))
    for warning in s.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {s.path}", file=sys.stderr)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    """Prints the image's size, CRS and band names, then the bands R, G, B and NIR and their scales;
    an image whose bands cannot be told apart is still described before its error (exit 2)."""
    from core.bands import INPUT_BANDS, parse_band_spec
    from core.errors import BandError
    from core.raster import ImageReader, file_bands, grid_of_file

    if _is_mixer(args.image):  # an Earth Engine image export, as predict takes it
        return _export_info(args)
    g, names = grid_of_file(args.image), file_bands(args.image)
    info = {"image": str(args.image), "width": g.width, "height": g.height, "crs": g.crs,
            "georeferenced": g.georeferenced, "transform": list(g.transform), "band_names": list(names)}
    try:
        reader = ImageReader(args.image, parse_band_spec(args.bands))
    except BandError:
        print_json({**info, "bands": None})
        raise
    with reader as r:
        area = None if g.crs is None else g.pixel_area_ha()
        info.update({"bands": r.band_index, "scale": r.scale, "scales": dict(zip(INPUT_BANDS, map(float, r.scales))),
                     "offsets": dict(zip(INPUT_BANDS, map(float, r.offsets))),
                     "pixel_area_ha": None if area is None else float(np.mean(area)), "warnings": list(r.warnings)})
    print_json(info)
    for warning in info["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _refuse_for_an_export(option: str) -> None:
    """Raises ConfigError: ``option`` (--window, --bbox, --bands, --tile, --overlap) has no meaning for an Earth
    Engine export."""
    from core.errors import ConfigError

    if option in ("--tile", "--overlap"):
        raise ConfigError(f"{option} works on GeoTIFF images only: an Earth Engine export is predicted patch by patch "
                          "as exported (its patchDimensions, overlapping by its kernelSize); leave it out")
    raise ConfigError(f"{option} works on GeoTIFF images only, not on an Earth Engine export (*mixer.json, "
                      "whose patches name their bands); leave it out" +
                      (", or export only the region you want" if option in ("--window", "--bbox") else ""))


def _export_info(args: argparse.Namespace) -> int:
    from core.patches import export_count_warning, export_files, export_patch_count, export_reflectance, read_mixer
    from core.bands import INPUT_BANDS

    if args.bands:
        _refuse_for_an_export("--bands")
    mixer = read_mixer(args.image)
    g = mixer.grid
    scales, offsets, warnings = export_reflectance(args.image)  # as predict reads it
    count = export_patch_count(args.image)  # (a missing last file: said here, not after a whole prediction)
    warnings = [*warnings, *filter(None, [export_count_warning(mixer, count)])]
    print_json({"image": str(args.image), "kind": "earth engine image export", "width": g.width,
                "height": g.height, "crs": g.crs, "georeferenced": g.georeferenced, "transform": list(g.transform),
                "patch": {"width": mixer.patch[0], "height": mixer.patch[1]}, "patches": mixer.total_patches,
                "patches_in_files": count,
                "patches_per_row": mixer.patches_per_row, "files": export_files(args.image),
                "scales": dict(zip(INPUT_BANDS, map(float, scales))),
                "offsets": dict(zip(INPUT_BANDS, map(float, offsets))), "warnings": list(warnings)})
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one worth showing (not None or False) and its help
    does not give it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every command's parser (subparsers take the parser's class): defaults in the help, and an
    argument mistake in one line, as every other mistake (argparse prints the usage too)."""

    def __init__(self, *args, formatter_class=_HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str):
        if "--start/--start-date: expected one argument" in message:  # the export commands' start flag of old
            message += " (--start is the composite's first date, YYYY-MM-DD; --submit starts export tasks)"
        elif "expected one argument" in message:
            message += " (a value that starts with '-' is written --option=VALUE, e.g. --window=-10,0,256,256)"
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Crop mapping with a U-Net: patches, training, prediction, evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a U-Net on image/label pairs or TFRecord patches")
    t.add_argument("--train", nargs="+", required=True,
                   help="folders of *_rgbn.tif + *_cdl.tif, IMAGE:LABELS pairs, or TFRecord patches (Earth Engine's "
                        "training export or `patches`: files, folders, globs, gs:// paths)")
    t.add_argument("--val", nargs="+", required=True, help="validation data, same forms as --train "
                   "(patches: their centre --patch-size px)")
    t.add_argument("--out", required=True, help="run folder (checkpoints, history)")
    t.add_argument("--label-map", default="cdl", type=str.lower, help=f"class map of image label rasters: {LABEL_MAPS} (patches carry "
                   "1/0/255 labels)")
    t.add_argument("--bands", default=None, help="1-based band numbers of R,G,B,NIR when the images do not name "
                   "them (every IMAGE:LABELS pair of --train and --val)")
    t.add_argument("--preset", default="light", type=str.lower, help="model preset: light (default) or seed")
    t.add_argument("--epochs", type=int, default=20, help="passes of --steps batches each")
    t.add_argument("--steps", type=int, default=50, help="steps per epoch")
    t.add_argument("--batch-size", type=int, default=16, help="patches per training step")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate at the start (cosine decay to 2%% of it)")
    t.add_argument("--patch-size", type=int, default=256, help="side of the training patches in px (a multiple of 16)")
    t.add_argument("--val-patches", type=int, default=96,
                   help="validation patches to use (a random choice of them); 0 = all")
    t.add_argument("--patience", type=int, default=6, help="stop after this many epochs without a lower validation loss")
    t.add_argument("--seed", type=int, default=0, help="random seed (patch choice, augmentation, weights)")
    t.add_argument("--init", default=None, metavar="MODEL.keras",
                   help="fine-tune: start from this model's weights and normalization (its preset must match --preset)")
    t.add_argument("--bn-momentum", type=float, default=0.9, metavar="M",
                   help="BatchNormalization's moving-average momentum while training (default 0.9, PyTorch's; "
                        "Keras' 0.99 lags behind in runs of a few hundred steps)")
    t.add_argument("--pixel-size-m", "--pixel-size", dest="pixel_size_m", type=float, default=None, metavar="M",
                   help="ground size of the training pixels, recorded in the model card (default: from the images' "
                        "CRS; give it for images without one) so that prediction can warn about other resolutions")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    t.add_argument("--overwrite", action="store_true", help="start again in an existing --out")
    t.set_defaults(func=_cmd_train)

    p = sub.add_parser("predict", help="predict crop probability and a crop mask for an image")
    p.add_argument("--image", required=True, help="GeoTIFF with bands R,G,B,NIR, or an Earth Engine image export's *mixer.json")
    p.add_argument("--model", default=None, help="a .keras model with its .json card (default: the shipped weights)")
    p.add_argument("--out", required=True, help="output folder for probability.tif, crop_mask.tif, summary.json")
    p.add_argument("--threshold", type=float, default=0.5, help="the probability (0-1) at or above which a pixel is crop (default 0.5 = 50%%); probabilities are first rounded to whole percent, as probability.tif stores them, so 0.496 counts as 50%% and is crop")
    p.add_argument("--window", default=None, help="ROW,COL,HEIGHT,WIDTH: predict only this pixel window (the image around it gives the model context, so it is predicted as in the whole image); at least 8 px on each side, or all of a smaller image")
    p.add_argument("--bbox", default=None, nargs="+", metavar="W,S,E,N",
                   help="predict only the pixels of a georeferenced image that cover this box, west, south, east, "
                        "north in degrees (--bbox -72.78,-16.65,-72.67,-16.58, --bbox=W,S,E,N or --bbox W S E N, "
                        "as the ee- commands take it); instead of --window")
    p.add_argument("--bands", default=None, help="1-based band numbers of R,G,B,NIR when the file does not name them")
    p.add_argument("--no-context", action="store_true",
                   help="for the image.tif of a fetched scene (Earth Engine or the dashboard's): predict it alone, not "
                        "with the context.tif around it that the dashboard's prediction uses")
    p.add_argument("--tile", type=int, default=None, help="tile side in px, a multiple of 16 (default: 512, or the "
                                                           "model's fixed size)")
    p.add_argument("--overlap", type=int, default=None, help="overlap between tiles in px, a multiple of 16 (default: "
                                                              "a quarter tile)")
    p.add_argument("--batch-size", type=int, default=None, help="tiles per model call (default: by tile size)")
    p.add_argument("--views", type=int, default=1, metavar="N",
                   help="average the model over N views of each tile: 1 (default), 2, 4 (mirrored) or 8 (mirrored "
                        "and turned); smoother and slightly more accurate, N times slower")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_cmd_predict)

    e = sub.add_parser("evaluate", help="compare a crop mask with a label raster")
    e.add_argument("--pred", required=True, help="crop_mask.tif written by predict")
    e.add_argument("--labels", required=True, help="label raster on the same grid")
    e.add_argument("--label-map", default="cdl", type=str.lower, help=f"class map of the labels: {LABEL_MAPS}")
    e.add_argument("--label-band", default=None, help="band name (or 1-based number) of the labels in a multi-band file")
    e.add_argument("--out", default=None, help="JSON file to write (default: metrics.json beside --pred)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    e.set_defaults(func=_cmd_evaluate)

    from core.fields import MIN_FIELD_PIXELS

    f = sub.add_parser("fields", help="trace the crop areas of a crop mask into GeoJSON polygons (lon/lat): connected groups of crop pixels (fields that touch are one polygon)")
    f.add_argument("--mask", required=True, help="crop_mask.tif written by predict (a georeferenced image's)")
    f.add_argument("--out", default=None, help="GeoJSON file to write (default: crop_fields.geojson beside --mask)")
    f.add_argument("--min-pixels", type=int, default=MIN_FIELD_PIXELS,
                   help=f"leave out groups of fewer crop pixels (speckle; default {MIN_FIELD_PIXELS})")
    f.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    f.set_defaults(func=_cmd_fields)

    z = sub.add_parser("zones", help="crop area in each field, farm or district of a GeoJSON file (one row per feature)")
    z.add_argument("--pred", required=True, help="crop_mask.tif written by predict")
    z.add_argument("--zones", required=True, help="GeoJSON of the zones: lon/lat polygons, or image columns and rows "
                   "with \"crs\": \"image\" for an image without a CRS; each feature is a zone, named by its "
                   "name (or Name, NAME, label, id) property")
    z.add_argument("--labels", default=None, help="also compare with this label raster in each zone (its crop, IoU, "
                   "F1), placed as evaluate places it")
    z.add_argument("--label-map", default="cdl", type=str.lower, help=f"class map of --labels: {LABEL_MAPS}")
    z.add_argument("--label-band", default=None, help="band name (or 1-based number) of the labels in a multi-band file")
    z.add_argument("--out", default=None, help="also write the table to this .csv or .json file")
    z.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    z.set_defaults(func=_cmd_zones)

    b = sub.add_parser("labels-from-fields", help="burn a GeoJSON of surveyed fields, each with its class in a "
                                                  "property, onto an image's grid as a label raster")
    b.add_argument("--fields", required=True, help="GeoJSON of the fields (polygons in lon/lat, or image columns and "
                   "rows with \"crs\": \"image\" for an image without a CRS)")
    b.add_argument("--image", required=True, help="the image the labels are for (its grid is the labels')")
    b.add_argument("--out", required=True, help="label GeoTIFF to write (int16 class codes, -1 = no label)")
    b.add_argument("--property", default=None, help="the fields' property that holds their class: 1 / 0 (crop / not "
                   "crop; then --label-map binary) or a product's code (default: the only such property, or one "
                   "named crop, class, code, ...)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    b.set_defaults(func=_cmd_labels_from_fields)

    s = sub.add_parser("patches", help="sample training patches into a TFRecord file (Earth Engine layout)")
    s.add_argument("--image", required=True, help="GeoTIFF with bands R, G, B, NIR")
    s.add_argument("--labels", required=True, help="land-cover raster on the image's grid")
    s.add_argument("--label-map", default="cdl", type=str.lower, help=f"class map of the labels: {LABEL_MAPS}")
    s.add_argument("--out", required=True, help="output .tfrecord.gz file (with --test: a folder)")
    s.add_argument("--count", type=int, default=100, help="training patches to cut (at random places)")
    s.add_argument("--test", type=int, default=None, metavar="N",
                   help="also cut N test patches from a held-out block: --out is then a folder that receives "
                        "train.tfrecord.gz and test.tfrecord.gz, as Earth Engine's training export")
    s.add_argument("--size", "--patch-size", dest="size", type=int, default=256, help="patch side in pixels")
    s.add_argument("--buffer", "--kernel", dest="buffer", type=int, default=0,
                   help="context margin: extra image pixels on each side of each patch (Earth Engine's kernel buffer)")
    s.add_argument("--min-valid", type=float, default=0.5, help="minimum fraction of valid pixels in a patch")
    s.add_argument("--bands", default=None, help="1-based band numbers of R,G,B,NIR when the file does not name them")
    s.add_argument("--seed", type=int, default=0, help="random seed of the patch places")
    s.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    s.set_defaults(func=_cmd_patches)

    r = sub.add_parser("resample", help="average an image (and give each new pixel the class covering most of it in its labels) to "
                                        "larger pixels, e.g. 10 m Sentinel-2 to the shipped model's 30 m (to "
                                        "smaller ones, each pixel is split: no detail is added)")
    r.add_argument("--image", required=True, help="georeferenced GeoTIFF with bands R, G, B, NIR (a CRS in metres)")
    r.add_argument("--out", required=True, help="GeoTIFF to write: R, G, B, NIR reflectance 0-1 (float32, NaN = no data)")
    r.add_argument("--pixel-size", "--pixel-size-m", dest="pixel_size", type=float, default=30.0, help="new pixel size in metres (default 30, the shipped "
                                                                  "model's)")
    r.add_argument("--labels", default=None, help="label raster on the image's grid, resampled with it")
    r.add_argument("--labels-out", default=None, help="where the labels go (default: OUT's name + _labels.tif)")
    r.add_argument("--label-map", default="cdl", type=str.lower, help=f"class map of the labels: {LABEL_MAPS}")
    r.add_argument("--bands", default=None, help="1-based band numbers of R,G,B,NIR when the file does not name them")
    r.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    r.set_defaults(func=_cmd_resample)

    k = sub.add_parser("stack", help="stack the band files of a Landsat Collection 2 Level-2 or Sentinel-2 L2A "
                                     "download into one R, G, B, NIR GeoTIFF (clouds masked: Landsat's QA_PIXEL, "
                                     "Sentinel-2's SCL)")
    k.add_argument("inputs", nargs="*", metavar="FILE_OR_FOLDER",
                   help="the download's band files (..._SR_B4.TIF ..., ..._B04_10m.jp2 ...) or their folder")
    for role, flag in (("R", "--red"), ("G", "--green"), ("B", "--blue"), ("NIR", "--nir")):
        k.add_argument(flag, default=None, help=f"the {role} band's file, for files named otherwise (all four)")
    k.add_argument("--out", required=True, help="GeoTIFF to write (bands R, G, B, NIR, 0 = no data)")
    k.add_argument("--bbox", default=None, nargs="+", metavar="W,S,E,N",
                   help="write only the pixels that cover this box, west, south, east, north in degrees (a scene is "
                        "7,700 x 7,800 px; the dashboard takes regions of up to 16.8 million px, 4,096 x 4,096, and uploads up to 200 MB)")
    k.add_argument("--overwrite", action="store_true", help="replace an existing output")
    k.set_defaults(func=_cmd_stack)

    i = sub.add_parser("info", help="describe an image: size, CRS, bands, scale")
    i.add_argument("--image", required=True, help="GeoTIFF to describe, or an Earth Engine image export's *mixer.json")
    i.add_argument("--bands", default=None, help="1-based band numbers of R,G,B,NIR when the file does not name them")
    i.set_defaults(func=_cmd_info)

    from core.ee.cli import add_commands as _add_ee_commands  # imports no ee at module load
    _add_ee_commands(sub)
    return parser


#: The label maps, for help texts.
LABEL_MAPS = ", ".join(sorted(CLASS_MAPS))

#: Commands that load TensorFlow (the others start faster without it).
NEEDS_TENSORFLOW = ("train", "predict", "patches")


class _Signalled(KeyboardInterrupt):
    """A command ended by a signal (its number in ``signum``)."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


#: the signals that have ended this command (see :func:`_interrupt`)
_RECEIVED: list[int] = []


def _interrupt(signum, _frame) -> None:
    """SIGTERM / SIGHUP (a kill, a timeout, a closed terminal) end a command as Ctrl-C does, so
    that its temporary files are removed; the exit status is 128 + the signal's number, as a shell
    reports a command the signal stopped (143 for SIGTERM; Ctrl-C: 130). The signal is noted: one
    that lands inside TensorFlow's code comes out of it as another exception (a SystemError, once in
    about 20 Ctrl-Cs of a prediction), which is still an interruption, not a traceback."""
    _RECEIVED.append(signum)
    raise _Signalled(signum)


def _is_mixer(image: str) -> bool:
    """Whether ``--image`` names an Earth Engine export's mixer (a .json file; Earth Engine names it
    ``*mixer.json``, a browser's copy may be ``... mixer (1).json``), not a GeoTIFF."""
    return Path(image).suffix.lower() == ".json"


#: what to do when a command runs out of memory, in its own options (by command; others: the default)
MEMORY_ADVICE = {
    "predict": "use a smaller region (--window), a smaller --tile or --batch-size",
    "predict-export": "use a smaller --batch-size or fewer --views",  # (an export takes no --window or --tile)
    "train": "use a smaller --batch-size or --patch-size, or fewer --val-patches",
    "patches": "cut fewer patches (--count) or smaller ones (--size)",
    "resample": "resample a smaller image (e.g. cut it with gdal_translate -srcwin)",
    "ee-fetch": "fetch a smaller region, or export it (ee-export-image)",
}


def environment_error(err: BaseException, command: str | None = None) -> str | None:
    """:func:`core.errors.environment_error` with ``command``'s advice for running out of memory."""
    return _environment_error(err, MEMORY_ADVICE.get(command or "", "use a smaller region or image"))


def _quiet_rasterio() -> None:
    """Leave out rasterio's warnings about a file without a geotransform (several lines of warning
    text per file read or written): such an image is taken in image coordinates, and summary.json's
    note says so."""
    from rasterio.errors import NotGeoreferencedWarning

    warnings.simplefilter("ignore", NotGeoreferencedWarning)


def _negative_lists_joined(argv: list[str]) -> list[str]:
    """``--bbox -72.8,-16.7,...`` as ``--bbox=-72.8,-16.7,...``: argparse takes a value that starts
    with '-' (a western or southern coordinate) for an option and says "expected at least one argument"."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--bbox" and re.match(r"-\d|-\.\d", arg) and "," in arg:
            out[-1] = f"--bbox={arg}"
        else:
            out.append(arg)
    return out


def _refuse_empty_values(command: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exits (one line, status 2) where an option was given an empty value: ``--out ""`` (an unset
    shell variable) wrote into the current folder."""
    for action in command._actions:
        value = getattr(args, action.dest, None) if action.option_strings else None
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values) and value != action.default:
            command.error(f"{action.option_strings[0]} is empty; give it a value (an unset shell variable?)")


#: the options (argparse names) that name files or folders the command reads, and those it writes
INPUT_PATHS = frozenset({"image", "labels", "model", "pred", "mask", "zones", "fields", "init", "train", "val", "red",
                         "green", "blue", "nir", "inputs", "prediction"})
OUTPUT_PATHS = frozenset({"out", "labels_out"})
#: a path that starts with the shell's home folder (``~``, ``~/x``, ``~user/x``), which the shell left as it was
_HOME = re.compile(r"~[^/]*(/|$)")


def _refuse_unexpanded_paths(command: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exits (one line, status 2) where a path starts with ``~`` that the shell did not expand (``--out=~/x``,
    or ``"~/my data/x"`` in quotes: the shell expands it only at the start of a word), which named a folder
    "~" in the current folder, made there for an output ("wrote ~/x" then pointed to the home folder); and
    where an output is ``-``, which made a file or folder named "-" (the commands write files, not to stdout).
    An input named so that exists is read as it is named."""
    for action in command._actions:
        if action.dest not in INPUT_PATHS | OUTPUT_PATHS:
            continue
        value = getattr(args, action.dest, None)
        label = f"{action.option_strings[0]} " if action.option_strings else ""  # (stack's files: their names)
        for given in value if isinstance(value, list) else [value]:
            if not isinstance(given, str):
                continue
            output = action.dest in OUTPUT_PATHS
            if output and given == "-":
                command.error(f"{label}is '-': this command writes files, not to the standard output (it prints its "
                              "result there anyway); give a path (./- for one named '-')")
            # (IMAGE:LABELS pairs of train: each part is a path)
            parts = given.split(":") if action.dest in ("train", "val") else [given]
            unexpanded = [p for p in parts if _HOME.match(p) and (output or not os.path.exists(p))]
            if not unexpanded:
                continue
            expanded = ":".join(os.path.expanduser(p) if p in unexpanded else p for p in parts)
            folder = unexpanded[0].split("/")[0]
            command.error(f"{label}{given}: the shell did not expand '~' to your home folder (it does so only at the "
                          f"start of a word, not after '=' nor in quotes), so it names a folder '{folder}' in the "
                          "current folder; give " + (expanded if expanded != given else "the full path"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(_negative_lists_joined(sys.argv[1:] if argv is None else list(argv)))
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if extra:  # told by the command's own parser, so that the message points to its --help
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    _refuse_empty_values(commands[args.command], args)
    _refuse_unexpanded_paths(commands[args.command], args)
    _RECEIVED.clear()
    # a signal the caller ignores stays ignored: `nohup python -m core train ... &` (SIGHUP ignored) went on
    # dying when the terminal closed, and a background shell's SIGINT is ignored too
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if threading.current_thread() is threading.main_thread() and signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        with warnings.catch_warnings():
            _quiet_rasterio()
            if args.command in NEEDS_TENSORFLOW:
                from core.tfimport import import_tensorflow

                CONFIG_OF[args.command](args)  # (a value out of range said at once, not after TensorFlow's start)

                import_tensorflow()  # without its start-up notices, so that an error stays one line
            return args.func(args)
    except CropMapError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        return _interrupted(args, err.signum if isinstance(err, _Signalled) else signal.SIGINT)
    except BrokenPipeError:  # the output's reader stopped reading (python -m core info ... | head): no error of ours
        try:  # so that Python's flush of stdout at exit fails no more
            fd = sys.stdout.fileno()
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        except (AttributeError, OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command stopped by a closed pipe
    except ModuleNotFoundError as err:  # a Python without the project's libraries (numpy alone is common)
        text = missing_module_advice(err)
        if text is None:  # (a module of the project's own: a bug)
            raise
        print(f"error: {text}", file=sys.stderr)
        return 2
    except Exception as err:
        if _RECEIVED:  # the interruption, turned into another exception by the code it landed in
            return _interrupted(args, _RECEIVED[0])
        export = args.command == "predict" and _is_mixer(args.image)
        text = environment_error(err, "predict-export" if export else args.command)
        if text is None:
            raise
        print(f"error: {text}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupted(args: argparse.Namespace, signum: int) -> int:
    """Say that the command was interrupted and what it leaves; the exit status for ``signum``."""
    note = getattr(args, "completed", None) or interrupted_note(args.command, getattr(args, "overwrite", False),
                                                                getattr(args, "resume", False))
    print(f"error: interrupted; {note}", file=sys.stderr)
    return 128 + signum


def interrupted_note(command: str, overwrite: bool = False, resume: bool = False) -> str:
    """What an interrupted (Ctrl-C) ``command`` (run with ``--overwrite``, ``--resume`` or not) has
    left, for its one-line message; a training that had finished an epoch says
    :func:`epoch_kept_note` instead."""
    if command == "train" and resume:
        return "no further epoch had finished; the run is kept as it was: run the same command again"
    if command == "train" and overwrite:
        return "no epoch had finished, so the run it was replacing is left as it was: run the same command again"
    if command == "train":
        return "no epoch had finished, so the run left nothing: run the same command again"
    if command in ("ee-export-patches", "ee-export-image", "ee-upload", "ee-tasks"):
        return "Earth Engine tasks already started keep running (python -m core ee-tasks lists them)"
    return "no output was written or replaced"


def epoch_kept_note(epoch: int, epochs: int, resume: bool, overwrite: bool) -> str:
    """What a training interrupted after finishing ``epoch`` (of ``epochs``) has kept, and how to go on."""
    how = "the same command" if resume else (
        "the same command, --resume in place of --overwrite" if overwrite else "the same command and --resume")
    return f"epoch {epoch} of {epochs} had finished and is kept, with those before it: continue with {how}"


if __name__ == "__main__":
    status = main()
    if status >= 128:  # interrupted: out now, without waiting at exit for a request under way in another thread
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
