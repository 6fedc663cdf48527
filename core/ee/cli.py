"""Earth Engine commands for the CLI (``python -m core ee-...``).

The whole Earth Engine -> TensorFlow -> Earth Engine workflow from a shell::

    python -m core ee-status
    python -m core ee-fetch --preset camana --out runs/camana            # image.tif + labels.tif
    python -m core ee-export-patches --preset camana --dest gcs:BUCKET/crops --name camana [--submit]
    python -m core ee-export-image --preset camana --dest gcs:BUCKET/crops --name camana [--submit]
    python -m core ee-tasks [--active] | --cancel ID | --wait ID... [--timeout S]
    python -m core ee-upload --prediction OUT/probability.tif --gcs gs://BUCKET/p.tif --asset projects/P/assets/NAME

Every command builds on the functions of :mod:`core.ee` (no recipe is repeated here). ``ee`` is
never imported when this module is imported (the parser is built without it); each command
imports what it needs. In every command ``--start``/``--end`` (or ``--start-date``/``--end-date``)
are the composite's dates; the export commands are dry runs unless ``--submit`` starts their tasks.
User mistakes are :class:`~core.errors.CropMapError` subclasses, which
``core.__main__.main`` prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from dataclasses import asdict, replace
from typing import Any, Sequence

from core.commands import core_command
from core.progress import TqdmProgress
from core.ee.upload import PYRAMIDING

LABEL_PRODUCTS = ("worldcover", "dynamicworld", "glcfcs30d", "cdl", "asset")


# ----------------------------------------------------------------------------- helpers



#: export config fields -> the options that set them, for the configs' messages
_EXPORT_OPTIONS = {"patch_size": "--patch", "kernel_buffer": "--kernel", "points_per_task": "--points-per-task",
                   "max_file_mb": "--max-file-mb", "train_points": "--train-points", "test_points": "--test-points"}


def _export_config(cls: type, **values: Any) -> Any:
    """``cls(**values)`` (an export config); a ConfigError names the options (``--kernel``), not the fields.

    Raises:
        ConfigError: a value is out of range.
    """
    from core.errors import ConfigError

    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(_optioned(str(err), _EXPORT_OPTIONS)) from None


#: the composite's fields and the options that set them (their messages name the fields)
_COMPOSITE_OPTIONS = {"sensor": "--sensor", "start": "--start", "end": "--end", "max_cloud": "--max-cloud",
                      "scale": "--scale", "crs": "--crs"}


def _optioned(text: str, names: dict[str, str]) -> str:
    """A config's message with its field names (``max_cloud``) as the options that set them (``--max-cloud``)."""
    text = text.replace("leave crs empty", "leave out crs")
    return re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group(1)], text)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str, ensure_ascii=False))  # (a path in its own letters)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``W,S,E,N`` in degrees -> a tuple.

    Raises:
        RegionError: not four numbers, west >= east, south >= north, or outside lon/lat ranges.
    """
    from core.errors import RegionError
    from core.bbox import parse_bbox as four_numbers

    try:  # the numbers read as predict --bbox and the Region page's box read them (never evaluated)
        w, s, e, n = four_numbers(str(text))
    except RegionError:
        raise RegionError(f"--bbox takes four numbers WEST,SOUTH,EAST,NORTH in degrees (e.g. -72.78,-16.65,-72.67,-16.58), "
                          f"got {text!r}") from None
    if not (-180 <= w < e <= 180):
        # a box a few degrees wide across the 180th meridian (Fiji, Chukotka), not west and east swapped
        across = -180 <= e < w <= 180 and (e - w) % 360 <= 10
        raise RegionError(f"--bbox: west {w:g} and east {e:g} must be longitudes -180..180 with west < east"
                          + ("; give a region across the 180th meridian as two boxes, one on each side, in two commands "
                             f"(e.g. {w:g},{s:g},180,{n:g} and -180,{s:g},{e:g},{n:g})" if across else ""))
    if not (-90 <= s < n <= 90):
        raise RegionError(f"--bbox: south {s:g} and north {n:g} must be latitudes -90..90 with south < north")
    return w, s, e, n


def parse_destination(text: str):
    """``gcs:BUCKET[/PREFIX]`` (or ``gs://...``) or ``drive:FOLDER`` -> a Destination (see core.ee.export).

    Raises:
        ConfigError: any other form, or a bad bucket/prefix.
    """
    from core.ee.export import parse_destination as parse

    return parse(text, flag="--dest")


def _points(text: str, flag: str) -> tuple[int, int]:
    """``N`` (N per class) or ``NOT_CROP,CROP`` -> (not crop, crop)."""
    from core.errors import ConfigError

    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 0:
        raise ConfigError(f"{flag} takes a count per class (N) or NOT_CROP,CROP counts, got {text!r}")
    return values[0], values[1]


def _region(args: argparse.Namespace) -> tuple[Any, dict]:
    """(preset or None, lon/lat GeoJSON Polygon) from --preset / --bbox."""
    from core.ee.composites import bbox_geojson, region_geometry
    from core.ee.presets import get_preset

    if getattr(args, "bbox", None):
        text = ",".join(args.bbox) if isinstance(args.bbox, (list, tuple)) else str(args.bbox)
        return None, region_geometry(bbox_geojson(*parse_bbox(text)))
    preset = get_preset(args.preset)
    return preset, region_geometry(preset.geojson)


def _keep_span(changes: dict, start: str, end: str) -> None:
    """With --start alone (or --end alone), the other date as far from it as in the preset's (or the
    default) dates: --start 2022-05-01 alone was refused, "--end 2020-12-31 is before --start", with an
    end the user never typed. A date that is no date is left for the composite's own check."""
    import datetime as dt

    if ("start" in changes) == ("end" in changes):
        return
    day = dt.timedelta(days=1)

    def months_on(date: dt.date, n: int) -> dt.date:  # (the same day n months on; a month's last day at most)
        y, m = divmod(date.year * 12 + date.month - 1 + n, 12)
        last = ((dt.date(y + (m + 1) // 12, (m + 1) % 12 + 1, 1)) - day).day
        return dt.date(y, m + 1, min(date.day, last))

    try:
        first, after = dt.date.fromisoformat(start), dt.date.fromisoformat(end) + day
        # whole months (a year: 2020-01-01..2020-12-31) stay whole months, so that a year's labels go with a
        # year's imagery (365 days on from 2021-01-01 ended on 2022-01-01, a day into the next year)
        months = (after.year - first.year) * 12 + after.month - first.month if first.day == after.day == 1 else None
        if "start" in changes:
            given = dt.date.fromisoformat(str(changes["start"]))
            changes["end"] = ((months_on(given, months) if months else given + (after - first)) - day).isoformat()
        else:
            given = dt.date.fromisoformat(str(changes["end"])) + day
            changes["start"] = (months_on(given, -months) if months else given - (after - first)).isoformat()
    except (ValueError, OverflowError):
        return


def _composite(args: argparse.Namespace, preset: Any):
    """The preset's composite (or the defaults for a --bbox) with the options given applied."""
    from core.ee.composites import CompositeConfig
    from core.errors import ConfigError

    changes = {k: v for k, v in (("sensor", args.sensor), ("start", args.start_date), ("end", args.end_date),
                                 ("max_cloud", args.max_cloud), ("scale", args.scale), ("crs", args.crs)) if v is not None}
    if "sensor" in changes:
        changes["sensor"] = str(changes["sensor"]).upper()
    from core.ee.composites import composite_note

    base = preset.composite if preset is not None else CompositeConfig()
    _keep_span(changes, base.start, base.end)
    try:
        composite = replace(base, **changes) if changes else base
    except ConfigError as err:
        raise ConfigError(_optioned(str(err), _COMPOSITE_OPTIONS)) from None
    if (note := composite_note(composite)) is not None:
        print(f"note: {note}", file=sys.stderr)
    if args.max_cloud is not None and args.max_cloud < 1:  # (as a fraction, as --threshold takes one: 0.2 is 0.2%)
        print(f"warning: --max-cloud is in percent: {args.max_cloud:g} keeps scenes with under {args.max_cloud:g}% "
              f"cloud cover (for {args.max_cloud * 100:g}%, give --max-cloud {args.max_cloud * 100:g})", file=sys.stderr)
    return composite


#: the options that describe a user's asset as labels (``--labels asset``), by argparse name
_ASSET_OPTIONS = ("asset_id", "crop_values", "nodata_values")


def _labels(args: argparse.Namespace, preset: Any, composite: Any):
    """The label recipe: --labels (with --label-year), else the preset's, else WorldCover; None for 'none'.

    Raises:
        ConfigError: --asset-id, --crop-values or --nodata-values without --labels asset (they were ignored
            without a word, and the preset's labels fetched in place of the asset named); the asset's own
            mistakes (as :class:`core.ee.labels.LabelConfig`).
    """
    from core.ee.labels import LabelConfig, labels_note
    from core.errors import ConfigError

    product = getattr(args, "labels", None)
    given = [f"--{name.replace('_', '-')}" for name in _ASSET_OPTIONS if getattr(args, name, None) is not None]
    if given and product != "asset":
        raise ConfigError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for --labels asset; give "
                          f"--labels asset too, or leave {'it' if len(given) == 1 else 'them'} out")
    if product == "none":
        return None
    if product is None:
        if preset is not None and args.label_year is None and composite == preset.composite:
            return preset.labels
        # the preset's product, for the dates given (its label year follows the composite's)
        product = preset.labels.product if preset is not None else "worldcover"
    year = args.label_year
    if product == "asset":  # LabelConfig says what is missing
        def values(option: str) -> tuple[str, ...]:
            return tuple(v.strip() for v in (getattr(args, option, None) or "").split(",") if v.strip())

        return LabelConfig("asset", asset_id=getattr(args, "asset_id", None), crop_values=values("crop_values"),
                           nodata_values=values("nodata_values"))
    if product == "dynamicworld" and year is None:
        return LabelConfig(product, start=composite.start, end=composite.end)
    if product in ("glcfcs30d", "cdl") and year is None:
        year = composite.year
    labels = LabelConfig(product, year=year)
    if (note := labels_note(labels, composite)) is not None:
        print(f"note: {note}", file=sys.stderr)
    return labels


def _initialize(args: argparse.Namespace):
    """Initialise Earth Engine (no prompts); returns the ok EEStatus.

    Raises:
        EENotConfiguredError: no credentials / project (the message says what to set).
    """
    from core.ee import auth

    _connecting()
    return auth.initialize(project=getattr(args, "project", None), secrets=auth.read_secrets_files())


def _connecting() -> None:
    """On a terminal, says that Earth Engine is being reached: without a network that takes 30-50 s
    before its error, which was a silent wait (a pipe or a log gets nothing, as a progress bar)."""
    if sys.stderr.isatty():
        print("connecting to Earth Engine...", file=sys.stderr, flush=True)


def tasks_client(args: argparse.Namespace):
    """The batch-task client (``ee.data`` operations) after initialising Earth Engine."""
    from core.ee.tasks import EEOperationsClient

    _initialize(args)
    return EEOperationsClient()


def storage_client(args: argparse.Namespace, project: str | None):
    """A Cloud Storage client using the same credentials as Earth Engine (their scopes cover storage), found
    in the same places, the app's secrets files included (:func:`_initialize`).

    Raises:
        EENotConfiguredError: no credentials.
    """
    from core.ee import auth
    from core.ee.upload import default_storage_client

    return default_storage_client(project, secrets=auth.read_secrets_files())


def _export_place(args: argparse.Namespace, status: Any, dest: Any, kind: str) -> tuple[list[str], Any]:
    """The files of an earlier export of ``--name`` in Cloud Storage (:func:`core.ee.export.check_export_place`):
    a dry run warns of them, ``--submit`` refuses them unless ``--overwrite``; returns the files to delete before
    the tasks start and the storage client that found them (None: none was made).

    Raises:
        OutputExistsError: files are there, with ``--submit`` and without ``--overwrite``.
    """
    from core.ee.export import check_export_place

    made: list[Any] = []

    def client() -> Any:
        made.append(storage_client(args, status.project))
        return made[0]

    warnings: list[str] = []
    found = check_export_place(dest, args.name, kind, client, args.overwrite or not args.submit, warnings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if found and not args.submit:
        print(f"warning: {dest.uri(args.name)}/ already holds {len(found)} file(s) of an earlier export of this name "
              f"(e.g. {found[0]}): --submit refuses to write over them unless --overwrite (which deletes them first)",
              file=sys.stderr)
    return found, (made[0] if made else None)


def _print_table(infos: Sequence[Any]) -> None:
    if not infos:
        print("no tasks")
        return
    rows = [(t.id, t.state, t.description, " ".join(t.error_message.split())) for t in infos]
    head = ("ID", "STATE", "DESCRIPTION", "ERROR")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    print(fmt.format(*head).rstrip())
    for r in rows:
        print(fmt.format(*r).rstrip())


def _job_view(job: Any) -> dict:
    """An unstarted export job as JSON: what it writes and its request options (no expression)."""
    config = {k: v for k, v in dict(job.task.config).items() if k != "expression"}
    return {"description": job.description, "split": job.split, "index": job.index, "points": job.points,
            "destination": job.uri_prefix, "task_type": str(getattr(job.task.task_type, "name", job.task.task_type)),
            "config": config}


# ----------------------------------------------------------------------------- commands


def cmd_status(args: argparse.Namespace) -> int:
    from core.ee import auth
    from core.errors import EarthEngineError

    _connecting()
    try:
        st = auth.status(project=args.project, secrets=auth.read_secrets_files())
    except EarthEngineError as err:  # (a damaged secrets file: a status, as every other set-up mistake)
        st = auth.EEStatus(False, args.project, "none", str(err))
    _print_json(asdict(st))  # ok, project, method, message: never key material
    return 0 if (st.ok or not args.strict) else 1


def cmd_fetch(args: argparse.Namespace) -> int:
    from core.errors import ConfigError, OutputExistsError
    from core.sources.earthengine import EarthEngineSource

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    preset, geometry = _region(args)
    composite = _composite(args, preset)
    labels = _labels(args, preset, composite)
    from core.files import check_output_dir

    out = check_output_dir(args.out)  # a file given as --out is said before credentials are needed
    if not args.overwrite:
        existing = [p for p in (out / "image.tif", out / "labels.tif") if p.exists()]
        if existing:
            raise OutputExistsError(f"{existing[0]} already exists; choose another --out or pass --overwrite")
    same = preset is not None and composite == preset.composite and labels == preset.labels
    src = EarthEngineSource(composite, labels, preset=preset.key if same else None, project=args.project,
                            max_workers=args.workers, overwrite=args.overwrite, initialize=lambda: _initialize(args))
    src.labels = labels  # exactly what was asked (None: image only)
    check = src.check_region(geometry)  # local: a bad region fails before any credentials are needed
    if not check.ok:
        from core.errors import RegionError

        raise RegionError(check.message)
    ready, why = src.available()  # initialises Earth Engine once (the source keeps the status)
    if not ready:
        from core.ee.errors import EENotConfiguredError

        raise EENotConfiguredError(why)
    bar = TqdmProgress("ee-fetch", "request")
    try:
        scene = src.fetch(geometry, out, progress=bar)
    finally:
        bar.close()
    extra = scene.extra
    _print_json({"image": str(scene.image_path), "labels": str(scene.labels_path) if scene.labels_path else None,
                 "label_map": scene.label_map, "title": scene.title, "attribution": scene.attribution,
                 "crs": extra.get("crs"), "scale": extra.get("scale"), "grid": extra.get("grid"),
                 "scenes": extra.get("scenes"), "label_product": extra.get("label_product"),
                 "codes": str(scene.image_path.parent / extra["codes"]) if extra.get("codes") else None,
                 "class_map": extra.get("class_map"),
                 "region": check.message, "requests": extra.get("requests"), "seconds": extra.get("seconds")})
    print(f"next: {core_command('predict', '--image', shlex.quote(str(scene.image_path)), '--out', shlex.quote(str(out / 'prediction')))}",
          file=sys.stderr)
    return 0


def cmd_export_patches(args: argparse.Namespace) -> int:
    from core.ee.composites import require_scenes
    from core.ee.export import (UNCOUNTED_POINTS, PatchExportConfig, SampleConfig, check_export_name, check_sample_points,
                                check_task_count, delete_export_files, patches_past_region, start_jobs,
                                training_export_jobs)

    preset, geometry = _region(args)
    composite = _composite(args, preset)
    labels = _labels(args, preset, composite)
    dest = parse_destination(args.dest)
    check_export_name(args.name)  # before credentials are needed
    sample = _export_config(SampleConfig, train_points=_points(args.train_points, "--train-points"),
                            test_points=_points(args.test_points, "--test-points"), seed=args.seed)
    patches = _export_config(PatchExportConfig, patch_size=args.patch, kernel_buffer=args.kernel,
                             points_per_task=args.points_per_task)
    check_task_count(sample, patches)  # before credentials are needed
    if (small := patches_past_region(composite, geometry, patches)) is not None:
        print(f"warning: {small}", file=sys.stderr)
    status = _initialize(args)
    jobs = training_export_jobs(composite, labels, geometry, dest, name=args.name, sample=sample, patches=patches)
    earlier, storage = _export_place(args, status, dest, "patches")
    summary = {"name": args.name, "composite": asdict(composite), "labels": asdict(labels),
               "selectors": patches.selectors, "patch_size": patches.patch_size, "kernel_buffer": patches.kernel_buffer,
               "patchDimensions": [patches.full_size, patches.full_size],
               "train_points": list(sample.train_points), "test_points": list(sample.test_points)}
    if not args.submit:
        _print_json({**summary, "dry_run": True, "tasks": [_job_view(j) for j in jobs]})
        print(f"dry run: {len(jobs)} export task(s) not started; add --submit to start them", file=sys.stderr)
        return 0
    require_scenes(composite, geometry)  # (an export of none failed after its time in Earth Engine's queue)
    summary["points_found"] = check_sample_points(composite, labels, geometry, sample)  # (before any task starts)
    if summary["points_found"] is None:
        print(f"warning: {UNCOUNTED_POINTS}", file=sys.stderr)
    delete_export_files(earlier, storage)  # (--overwrite: the earlier export's files, once nothing else can fail first)
    started = start_jobs(jobs)
    _print_json({**summary, "dry_run": False, "tasks": started})
    print("follow them with: " + core_command("ee-tasks", "--wait", *(s["id"] for s in started)), file=sys.stderr)
    return 0


def cmd_export_image(args: argparse.Namespace) -> int:
    from core.ee.composites import require_scenes
    from core.ee.export import ImageExportConfig, check_export_name, delete_export_files, image_export_job, start_jobs

    preset, geometry = _region(args)
    composite = _composite(args, preset)
    dest = parse_destination(args.dest)
    check_export_name(args.name)  # before credentials are needed
    image_cfg = _export_config(ImageExportConfig, patch_size=args.patch, kernel_buffer=args.kernel,
                               max_file_mb=args.max_file_mb)
    status = _initialize(args)
    job = image_export_job(composite, geometry, dest, name=args.name, image_cfg=image_cfg)
    earlier, storage = _export_place(args, status, dest, "image")
    summary = {"name": args.name, "composite": asdict(composite), "bands": list(image_cfg.bands),
               "formatOptions": image_cfg.format_options, "patchDimensions": image_cfg.format_options["patchDimensions"],
               "kernelSize": image_cfg.format_options.get("kernelSize", [0, 0]),
               "mixer": f"{job.uri_prefix}*mixer.json",
               # the region's box grown by the kernel buffer, then to whole patches (Earth Engine drops
               # patches that do not fit whole)
               "grid": {"crs": job.grid.crs, "transform": list(job.grid.transform), "width": job.grid.width,
                        "height": job.grid.height, "region_width": job.grid.region_width,
                        "region_height": job.grid.region_height, "region_col": job.grid.region_col,
                        "region_row": job.grid.region_row}}
    if not args.submit:
        _print_json({**summary, "dry_run": True, "tasks": [_job_view(job)]})
        print("dry run: the image export was not started; add --submit to start it", file=sys.stderr)
        return 0
    require_scenes(composite, geometry)  # (an export of none failed after its time in Earth Engine's queue)
    delete_export_files(earlier, storage)  # (--overwrite: the earlier export's files, once nothing else can fail first)
    started = start_jobs([job])
    _print_json({**summary, "dry_run": False, "tasks": started})
    g = job.grid
    print(f"when it completes, copy the files locally and run: {core_command('predict')} --image <folder>/<...>mixer.json "
          f"--out OUT  (then ee-upload); follow it with: {core_command('ee-tasks', '--wait', started[0]['id'])}. The export "
          f"is {g.width} x {g.height} px, the region's box with context around it, grown to whole patches (the box is "
          f"its {g.region_width} x {g.region_height} px from column {g.region_col}, row {g.region_row}), and the "
          "prediction covers all of it: for the crop area "
          "of the region alone, fetch it (ee-fetch) and predict that", file=sys.stderr)
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from core.ee import tasks as T
    from core.errors import EarthEngineError

    if args.wait:  # told before Earth Engine is contacted
        T.check_polling(args.poll, args.timeout, names=("--poll", "--timeout"))
    T.check_limit(args.limit, "--limit")
    client = tasks_client(args)
    refused: list[str] = []
    if args.cancel:  # each asked for: one unknown id (a typo) no longer hid that the others were cancelled, or not tried
        infos = []
        for tid in args.cancel:
            try:
                infos.append(T.cancel_task(tid, client))
            except EarthEngineError as err:
                refused.append(f"{tid}: {err}")
    elif args.wait:
        bar = TqdmProgress("ee-tasks", "task")
        try:
            infos = T.wait_for(args.wait, client, poll_seconds=args.poll, timeout=args.timeout, progress=bar)
        finally:
            bar.close()
    else:
        infos = T.list_tasks(client, active_only=args.active, limit=args.limit)
    if infos or not refused:
        if args.json:
            _print_json(T.task_rows(infos))
        else:
            _print_table(infos)
    if refused:
        raise EarthEngineError(f"{len(refused)} of the {len(args.cancel)} tasks could not be cancelled"
                               + (" (the others are listed above)" if infos else "") + ": " + "; ".join(refused))
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from core.ee import tasks as T
    from core.ee.upload import UploadConfig, check_probability_file, cog_uri, prediction_file, upload_prediction

    cfg = UploadConfig(gcs_uri=args.gcs, asset_id=args.asset, pyramiding=args.pyramiding, overwrite=args.overwrite)
    if args.wait:
        T.check_polling(args.poll, args.timeout, names=("--poll", "--timeout"))
    check_probability_file(prediction_file(args.prediction))  # a local mistake is told before Earth Engine is contacted
    st = _initialize(args)
    task_id, asset = upload_prediction(args.prediction, cfg, storage_client(args, st.project), project=st.project)
    out = {"task_id": task_id, "asset": asset, "gcs": cog_uri(cfg.gcs_uri, asset), "band": cfg.band}
    if args.wait:
        bar = TqdmProgress("ingestion", "task")
        try:
            (info,) = T.wait_for([task_id], tasks_client(args), poll_seconds=args.poll, timeout=args.timeout, progress=bar)
        finally:
            bar.close()
        out["state"] = info.state
    _print_json(out)
    if not args.wait:
        print(f"ingestion started; follow it with: {core_command('ee-tasks', '--wait', task_id)}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------- parser


def _add_project(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=None, help="Cloud project registered for Earth Engine (default: EE_PROJECT or the credentials')")


def _add_region(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--preset", type=str.lower, help="a named region with its recipes (camana)")
    g.add_argument("--bbox", nargs="+", metavar="W,S,E,N",
                   help="WEST,SOUTH,EAST,NORTH in degrees, e.g. --bbox -72.8,-16.7,-72.6,-16.5 (or --bbox=W,S,E,N, "
                        "or --bbox W S E N)")


def _add_composite(p: argparse.ArgumentParser) -> None:
    """Composite options (``--start`` is the first date in every command; exports start with ``--submit``)."""
    p.add_argument("--sensor", default=None, help="L5, L7, L8, L9 or S2 (default: the preset's, else L8)")
    p.add_argument("--start", "--start-date", dest="start_date", default=None, help="first date YYYY-MM-DD (default: the preset's, else 2020-01-01; "
                   "given --end alone, as long before it as the default dates)")
    p.add_argument("--end", "--end-date", dest="end_date", default=None, help="last date YYYY-MM-DD, inclusive (default: the "
                   "preset's, else 2020-12-31; given --start alone, as long after it as the default dates)")
    p.add_argument("--max-cloud", type=float, default=None, help="keep scenes with cloud cover under this %% (above 0, at most 100; default 20)")
    p.add_argument("--scale", "--pixel-size", "--pixel-size-m", dest="scale", type=float, default=None,
                   help="pixel size in metres (default: the sensor's; also spelt --pixel-size, as resample names it)")
    p.add_argument("--crs", default=None, help="EPSG:XXXX (default: the UTM zone of the region)")


def _add_labels(p: argparse.ArgumentParser, allow_none: bool) -> None:
    choices = LABEL_PRODUCTS + (("none",) if allow_none else ())
    p.add_argument("--labels", choices=choices, default=None, type=str.lower,
                   help="label product (default: the preset's, else worldcover)" + ("; none: image only" if allow_none else ""))
    p.add_argument("--label-year", type=int, default=None, help="year of the label map (default: the year the composite starts)")
    p.add_argument("--asset-id", default=None, help="--labels asset: your image asset, e.g. users/me/glc30")
    p.add_argument("--crop-values", default=None,
                   help="--labels asset: the class value(s) that mean crop, comma-separated (the 2019 notebook's GLC30: 10)")
    p.add_argument("--nodata-values", default=None,
                   help="--labels asset: the class value(s) that mean no data (never trained on or scored), "
                        "comma-separated, e.g. GLC30's 0,255; masked pixels are no data anyway; every other value is "
                        "not crop")


def add_commands(sub: Any) -> None:
    """Add the ee-* commands to the CLI's subparsers (imports no ``ee``)."""
    s = sub.add_parser("ee-status", help="Earth Engine: show whether it is configured (project, credentials kind)")
    _add_project(s)
    s.add_argument("--strict", action="store_true", help="exit 1 when Earth Engine is not ready")
    s.set_defaults(func=cmd_status)

    f = sub.add_parser("ee-fetch", help="Earth Engine: download a region's composite (image.tif) and labels (labels.tif)")
    _add_region(f)
    _add_composite(f)
    _add_labels(f, allow_none=True)
    f.add_argument("--out", required=True, help="output folder for image.tif, labels.tif, codes.tif, context.tif, scene.json")
    f.add_argument("--workers", type=int, default=8, help="parallel computePixels requests")
    f.add_argument("--overwrite", action="store_true", help="replace image.tif/labels.tif in --out")
    _add_project(f)
    f.set_defaults(func=cmd_fetch)

    x = sub.add_parser("ee-export-patches", help="Earth Engine: TFRecord export of training/test patches (dry run unless --submit)")
    _add_region(x)
    _add_composite(x)
    _add_labels(x, allow_none=False)
    x.add_argument("--dest", required=True, help="gcs:BUCKET/PREFIX or drive:FOLDER")
    x.add_argument("--name", required=True, help="export name (folder under the prefix, task descriptions)")
    x.add_argument("--train-points", default="275", help="training points per class: N or NOT_CROP,CROP (default 275)")
    x.add_argument("--test-points", default="50", help="test points per class: N or NOT_CROP,CROP (default 50)")
    x.add_argument("--patch", "--patch-size", dest="patch", type=int, default=256,
                   help="patch side in pixels (multiple of 16)")
    x.add_argument("--kernel", "--buffer", dest="kernel", type=int, default=0,
                   help="kernel buffer: extra context pixels on each side")
    x.add_argument("--points-per-task", type=int, default=100, help="points per export task")
    x.add_argument("--seed", type=int, default=0, help="random seed of the sample points")
    x.add_argument("--submit", action="store_true", help="start the tasks (default: a dry run that prints their "
                   "configuration)")
    x.add_argument("--overwrite", action="store_true", help="replace the files of an earlier export of this --name in "
                   "Cloud Storage (deleted before the tasks start); without it, --submit refuses to write over them")
    _add_project(x)
    x.set_defaults(func=cmd_export_patches)

    i = sub.add_parser("ee-export-image", help="Earth Engine: TFRecord image export for prediction (patches + mixer; dry run unless --submit)")
    _add_region(i)
    _add_composite(i)
    i.add_argument("--dest", required=True, help="gcs:BUCKET/PREFIX or drive:FOLDER")
    i.add_argument("--name", required=True, help="export name")
    i.add_argument("--patch", "--patch-size", dest="patch", type=int, default=256,
                   help="patchDimensions side in pixels (multiple of 16)")
    i.add_argument("--kernel", "--buffer", dest="kernel", type=int, default=32, help="kernel buffer each side, a multiple of 8 (patch + 2 x kernel must be a multiple of 16 to "
                   "predict the export); Earth Engine's kernelSize is twice this")
    i.add_argument("--max-file-mb", type=int, default=100, help="max size of one exported file")
    i.add_argument("--submit", action="store_true", help="start the task (default: a dry run that prints its "
                   "configuration)")
    i.add_argument("--overwrite", action="store_true", help="replace the files of an earlier export of this --name in "
                   "Cloud Storage (deleted before the task starts); without it, --submit refuses to write over them")
    _add_project(i)
    i.set_defaults(func=cmd_export_image)

    t = sub.add_parser("ee-tasks", help="Earth Engine: list, cancel or wait for batch tasks")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--cancel", nargs="+", metavar="ID", help="cancel these tasks")
    g.add_argument("--wait", nargs="+", metavar="ID", help="wait until these tasks finish (fails on FAILED/CANCELLED)")
    t.add_argument("--active", action="store_true", help="list only READY/RUNNING tasks")
    t.add_argument("--limit", type=int, default=None, help="list at most this many tasks")
    t.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds (the tasks keep running)")
    t.add_argument("--poll", type=float, default=30.0, help="with --wait: seconds between polls")
    t.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_project(t)
    t.set_defaults(func=cmd_tasks)

    u = sub.add_parser("ee-upload", help="Earth Engine: upload a prediction (probability.tif) to Cloud Storage and ingest it as an asset")
    u.add_argument("--prediction", required=True, help="probability.tif written by predict (or its folder)")
    u.add_argument("--gcs", required=True, help="gs://BUCKET/path.tif (or a gs:// folder)")
    u.add_argument("--asset", required=True, help="projects/PROJECT/assets/NAME (or NAME with --project)")
    u.add_argument("--pyramiding", default="MEAN", type=str.upper, choices=PYRAMIDING,
                   help="how Earth Engine makes the asset's coarser levels: MEAN (default, for probability), MODE, MIN, "
                        "MAX, SAMPLE or MEDIAN")
    u.add_argument("--overwrite", action="store_true", help="replace an existing Cloud Storage file and asset")
    u.add_argument("--wait", action="store_true", help="wait for the ingestion task to finish")
    u.add_argument("--timeout", type=float, default=None, help="with --wait: give up after this many seconds")
    u.add_argument("--poll", type=float, default=15.0, help="with --wait: seconds between polls")
    _add_project(u)
    u.set_defaults(func=cmd_upload)
