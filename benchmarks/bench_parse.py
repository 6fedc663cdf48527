"""Batch TFRecord parsing against the 2019 notebook's per-example pipeline.

    python benchmarks/bench_parse.py [--patches 256] [--size 256]

Notebook: ``parse_single_example`` per record, then ``tf.stack`` of the bands and a transpose.
Here: ``batch`` first, then one ``parse_example`` for the whole batch (core.patches.parse_batch).
Both read the same GZIP file written from the sample scene and produce (n, H, W, bands) batches.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import ROOT, save, timeit

SAMPLE = ROOT / "assets" / "sample"


def main() -> None:
    import tensorflow as tf

    from core.config import PatchConfig
    from core.patches import LABEL, parse_batch, sample_patches
    from core.raster import FEATURE_BANDS

    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--files", type=int, default=4, help="GZIP files for the end-to-end comparison")
    ap.add_argument("--sweep", type=int, nargs="*", default=[128, 64, 32],
                    help="smaller patch sizes, same number of floats in all: where per-record overhead matters")
    args = ap.parse_args()
    names = [*FEATURE_BANDS, LABEL]
    shape = (args.size, args.size)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.tfrecord.gz"
        sample_patches(SAMPLE / "sample_rgbn.tif", SAMPLE / "sample_cdl.tif", "cdl",
                       PatchConfig(patch_size=args.size, count=args.patches), path)
        # Decompress once into memory so that both pipelines measure parsing, not GZIP.
        raw = list(tf.data.TFRecordDataset(str(path), compression_type="GZIP").as_numpy_iterator())
        raw = tf.constant(raw)  # one string tensor, built once: the timings measure parsing only
        columns = {n: tf.io.FixedLenFeature(shape, tf.float32) for n in names}

        def notebook_parse(example):
            """The 2019 notebook: one example, bands stacked first, then transposed to band-last."""
            f = tf.io.parse_single_example(example, columns)
            return tf.transpose(tf.stack([f[n] for n in names], axis=0), [1, 2, 0])

        def notebook(parallel=None):
            ds = tf.data.Dataset.from_tensor_slices(raw).map(notebook_parse, num_parallel_calls=parallel).batch(args.batch)
            return sum(int(b.shape[0]) for b in ds)

        def batched(parallel=tf.data.AUTOTUNE):
            ds = tf.data.Dataset.from_tensor_slices(raw).batch(args.batch)
            ds = ds.map(lambda s: parse_batch(s, names, shape), num_parallel_calls=parallel)
            return sum(int(b.shape[0]) for b in ds)

        def band_major(parallel=tf.data.AUTOTUNE):
            # the parse alone, band planes as parse_example gives them, no relayout to band-last
            ds = tf.data.Dataset.from_tensor_slices(raw).batch(args.batch)
            ds = ds.map(lambda s: tf.io.parse_example(s, columns), num_parallel_calls=parallel)
            return sum(int(b[names[0]].shape[0]) for b in ds)

        def strings_only(parallel=tf.data.AUTOTUNE):
            # no parsing at all: what tf.data's batching of the serialized records costs by itself
            ds = tf.data.Dataset.from_tensor_slices(raw).batch(args.batch)
            return sum(int(b.shape[0]) for b in ds)

        # End to end from GZIP files, as exports arrive (several files): the notebook reads its file
        # list one file after another; core.dataset.tfrecord_dataset interleaves parallel reads.
        files = []
        per_file = (args.patches + args.files - 1) // args.files
        for k in range(args.files):
            files.append(str(Path(d) / f"part{k}.tfrecord.gz"))
            with tf.io.TFRecordWriter(files[-1], tf.io.TFRecordOptions(compression_type="GZIP")) as w:
                for rec in raw[k * per_file : (k + 1) * per_file].numpy():
                    w.write(rec)

        def notebook_files():
            ds = tf.data.TFRecordDataset(files, compression_type="GZIP").map(notebook_parse, num_parallel_calls=5)
            ds = ds.batch(args.batch)
            return sum(int(b.shape[0]) for b in ds)

        def core_files():
            ds = tf.data.Dataset.from_tensor_slices(files).interleave(
                lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"), cycle_length=min(4, len(files)),
                num_parallel_calls=tf.data.AUTOTUNE)
            ds = ds.batch(args.batch).map(lambda s: parse_batch(s, names, shape), num_parallel_calls=tf.data.AUTOTUNE)
            return sum(int(b.shape[0]) for b in ds)

        assert notebook() == batched() == band_major() == strings_only() == notebook_files() == core_files() == args.patches
        first = list(tf.data.Dataset.from_tensor_slices(raw).batch(args.batch).map(lambda s: parse_batch(s, names, shape)).take(1))[0]
        ref = tf.io.parse_single_example(raw[0], columns)
        assert all(bool(tf.reduce_all(first[0, ..., k] == ref[n])) for k, n in enumerate(names))  # same arrays, no transpose
        res = {}
        variants = {
            "notebook_per_example": notebook,  # sequential map, as a plain reading of the notebook
            "notebook_per_example_parallel5": lambda: notebook(5),  # num_parallel_calls=5 (the EE demo's setting)
            "batch_parse_example_sequential": lambda: batched(None),
            "batch_parse_example": batched,  # what core.dataset.tfrecord_dataset does (AUTOTUNE)
            "batch_parse_only_band_major": band_major,  # not usable as model input: shows the relayout's cost
            "batch_strings_only": strings_only,  # no parse: the floor that batching the records sets
            "files_notebook": notebook_files,
            "files_core_interleaved": core_files,
        }
        for name, fn in variants.items():
            best = timeit(fn, repeat=5)
            res[name] = {"seconds": best, "patches_per_s": args.patches / best}
        res["speedup_vs_parallel5"] = res["notebook_per_example_parallel5"]["seconds"] / res["batch_parse_example"]["seconds"]
        res["speedup"] = res["notebook_per_example"]["seconds"] / res["batch_parse_example"]["seconds"]
        res["speedup_files"] = res["files_notebook"]["seconds"] / res["files_core_interleaved"]["seconds"]
        res["patches"], res["size"], res["batch"], res["files"] = args.patches, args.size, args.batch, args.files
        res["by_size"] = [sweep_row(args.size, args.patches, args.batch, res)]
        for size in args.sweep:
            res["by_size"].append(sweep(size, args.patches * (args.size // size) ** 2, args.batch, names, Path(d)))
        save("parse", res)


def sweep_row(size: int, patches: int, batch: int, res: dict) -> dict:
    return {"size": size, "patches": patches, "batch": batch,
            "notebook_s": res["notebook_per_example"]["seconds"], "batch_s": res["batch_parse_example"]["seconds"],
            "speedup": res["notebook_per_example"]["seconds"] / res["batch_parse_example"]["seconds"]}


def sweep(size: int, patches: int, batch: int, names: list[str], folder: Path) -> dict:
    """Notebook vs core.patches.parse_batch, in memory, for patches of ``size`` px (same floats in total)."""
    import tensorflow as tf

    from core.config import PatchConfig
    from core.patches import parse_batch, sample_patches

    path = folder / f"sweep{size}.tfrecord.gz"
    sample_patches(SAMPLE / "sample_rgbn.tif", SAMPLE / "sample_cdl.tif", "cdl",
                   PatchConfig(patch_size=size, count=patches), path)
    raw = tf.constant(list(tf.data.TFRecordDataset(str(path), compression_type="GZIP").as_numpy_iterator()))
    shape = (size, size)
    columns = {n: tf.io.FixedLenFeature(shape, tf.float32) for n in names}

    def notebook_parse(example):
        f = tf.io.parse_single_example(example, columns)
        return tf.transpose(tf.stack([f[n] for n in names], axis=0), [1, 2, 0])

    def notebook():
        return sum(int(b.shape[0]) for b in tf.data.Dataset.from_tensor_slices(raw).map(notebook_parse).batch(batch))

    def batched():
        ds = tf.data.Dataset.from_tensor_slices(raw).batch(batch)
        return sum(int(b.shape[0]) for b in ds.map(lambda s: parse_batch(s, names, shape), num_parallel_calls=tf.data.AUTOTUNE))

    assert notebook() == batched() == patches
    row = {"size": size, "patches": patches, "batch": batch, "notebook_s": timeit(notebook, repeat=5), "batch_s": timeit(batched, repeat=5)}
    row["speedup"] = row["notebook_s"] / row["batch_s"]
    return row


if __name__ == "__main__":
    main()
