"""TFRecord reading and parsing against the 2019 notebook's per-example pipeline.

    python benchmarks/bench_parse.py [--patches 256] [--size 256] [--files 4]

Notebook: ``TFRecordDataset(files, "GZIP")``, ``parse_single_example`` per record, ``tf.stack`` of
the bands and a transpose, then ``batch``. Core: :func:`core.tfrecord.read_batches` (ISA-L inflate,
two files at a time in threads, each band copied straight from the record into a band-last batch),
as numpy batches and as the ``tf.data`` source that ``core.dataset.tfrecord_dataset`` builds on.
For reference, TensorFlow's batched ``parse_example`` (what core used before) in the same run.
Every pipeline gives the same (n, H, W, bands) arrays; the script checks them bit for bit.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from common import ROOT, save, timeit

SAMPLE = ROOT / "assets" / "sample"


def main() -> None:
    import tensorflow as tf

    from core.config import PatchConfig
    from core.patches import LABEL, sample_patches
    from core.bands import FEATURE_BANDS
    from core.tfrecord import read_batches

    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--files", type=int, default=4, help="GZIP files (exports arrive as several)")
    ap.add_argument("--sweep", type=int, nargs="*", default=[128, 64, 32],
                    help="smaller patch sizes, same number of floats in all: where per-record overhead matters")
    args = ap.parse_args()
    names = [*FEATURE_BANDS, LABEL]
    shape = (args.size, args.size)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "p.tfrecord.gz"
        sample_patches(SAMPLE / "sample_rgbn.tif", SAMPLE / "sample_cdl.tif", "cdl",
                       PatchConfig(patch_size=args.size, count=args.patches), path)
        records = list(tf.data.TFRecordDataset(str(path), compression_type="GZIP").as_numpy_iterator())
        files = []
        per_file = (args.patches + args.files - 1) // args.files
        for k in range(args.files):
            files.append(str(Path(d) / f"part{k}.tfrecord.gz"))
            with tf.io.TFRecordWriter(files[-1], tf.io.TFRecordOptions(compression_type="GZIP")) as w:
                for rec in records[k * per_file : (k + 1) * per_file]:
                    w.write(rec)
        notebook_parse, tf_batch_parse = _tf_parsers(names, shape)
        raw = tf.constant(records)  # in memory: one string tensor, built once

        def notebook(parallel=None):
            return tf.data.Dataset.from_tensor_slices(raw).map(notebook_parse, num_parallel_calls=parallel).batch(args.batch)

        def tf_batched():
            return tf.data.Dataset.from_tensor_slices(raw).batch(args.batch).map(tf_batch_parse, num_parallel_calls=tf.data.AUTOTUNE)

        def core_in_memory():
            return _core_parse(records, names, shape, args.batch)

        def files_notebook():
            ds = tf.data.TFRecordDataset(files, compression_type="GZIP").map(notebook_parse, num_parallel_calls=5)
            return ds.batch(args.batch)

        def files_tf_batched():
            ds = tf.data.Dataset.from_tensor_slices(files).interleave(
                lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"), cycle_length=len(files),
                num_parallel_calls=tf.data.AUTOTUNE)
            return ds.batch(args.batch).map(tf_batch_parse, num_parallel_calls=tf.data.AUTOTUNE)

        def files_core():
            return read_batches(files, names, shape, args.batch, interleave=True)

        def files_core_tf():
            spec = tf.TensorSpec((None, *shape, len(names)), tf.float32)
            return tf.data.Dataset.from_generator(files_core, output_signature=spec).prefetch(2)

        variants = {
            "notebook_per_example": notebook,  # sequential map, as a plain reading of the notebook
            "notebook_per_example_parallel5": lambda: notebook(5),  # num_parallel_calls=5 (the EE demo's setting)
            "tf_batch_parse_example": tf_batched,  # batched parse_example + relayout (core before 2026-11-30)
            "core_parse": core_in_memory,  # core.tfrecord.parse_patch into batch slots, one thread
            "files_notebook": files_notebook,
            "files_tf_batch_parse_example": files_tf_batched,
            "files_core": files_core,  # numpy batches
            "files_core_tf": files_core_tf,  # the same as a tf.data source (tensors), as training reads it
        }
        want = _collect(notebook())
        for name, fn in variants.items():
            got = _collect(fn())
            if "files" in name and name != "files_notebook":  # interleaved: the same patches, another order
                got, ref = _sorted(got), _sorted(want)
            else:
                ref = want
            assert got.shape == ref.shape and np.array_equal(got.view(np.uint32), ref.view(np.uint32)), name
        res = {}
        for name, fn in variants.items():
            best = timeit(lambda: _drain(fn()), repeat=5)
            res[name] = {"seconds": best, "patches_per_s": args.patches / best}
        sec = {k: v["seconds"] for k, v in res.items()}
        res["speedup_files"] = sec["files_notebook"] / sec["files_core_tf"]
        res["speedup_files_numpy"] = sec["files_notebook"] / sec["files_core"]
        res["speedup_files_tf_batch"] = sec["files_notebook"] / sec["files_tf_batch_parse_example"]
        res["speedup_parse"] = sec["notebook_per_example"] / sec["core_parse"]
        res["speedup_parse_tf_batch"] = sec["notebook_per_example"] / sec["tf_batch_parse_example"]
        res["patches"], res["size"], res["batch"], res["files"] = args.patches, args.size, args.batch, args.files
        res["by_size"] = [{"size": args.size, "patches": args.patches, "notebook_s": sec["notebook_per_example"],
                           "core_s": sec["core_parse"], "speedup": res["speedup_parse"]}]
        for size in args.sweep:
            res["by_size"].append(sweep(size, args.patches * (args.size // size) ** 2, args.batch, names, Path(d)))
        save("parse", res)


def _tf_parsers(names, shape):
    """The notebook's per-example parse (stack, transpose) and TensorFlow's batched parse_example."""
    import tensorflow as tf

    columns = {n: tf.io.FixedLenFeature(shape, tf.float32) for n in names}

    def notebook_parse(example):
        f = tf.io.parse_single_example(example, columns)
        return tf.transpose(tf.stack([f[n] for n in names], axis=0), [1, 2, 0])

    def tf_batch_parse(serialized):
        f = tf.io.parse_example(serialized, columns)
        return tf.transpose(tf.stack([f[n] for n in names], axis=1), [0, 2, 3, 1])

    return notebook_parse, tf_batch_parse


def _core_parse(records, names, shape, batch):
    """core.tfrecord.parse_patch over in-memory records, into (batch, H, W, bands) arrays."""
    from core.tfrecord import parse_patch

    for start in range(0, len(records), batch):
        part = records[start : start + batch]
        out = np.empty((len(part), *shape, len(names)), np.float32)
        for i, rec in enumerate(part):
            parse_patch(rec, names, shape, out=out[i])
        yield out


def _drain(batches) -> int:
    return sum(int(b.shape[0]) for b in batches)


def _collect(batches) -> np.ndarray:
    return np.concatenate([np.asarray(b) for b in batches])


def _sorted(a: np.ndarray) -> np.ndarray:
    keys = [a[i].tobytes()[:4096] for i in range(len(a))]
    return a[sorted(range(len(a)), key=keys.__getitem__)]


def sweep(size: int, patches: int, batch: int, names: list[str], folder: Path) -> dict:
    """Notebook vs core.tfrecord.parse_patch, in memory, for patches of ``size`` px (same floats in total)."""
    import tensorflow as tf

    from core.config import PatchConfig
    from core.patches import sample_patches

    path = folder / f"sweep{size}.tfrecord.gz"
    sample_patches(SAMPLE / "sample_rgbn.tif", SAMPLE / "sample_cdl.tif", "cdl",
                   PatchConfig(patch_size=size, count=patches), path)
    records = list(tf.data.TFRecordDataset(str(path), compression_type="GZIP").as_numpy_iterator())
    raw = tf.constant(records)
    shape = (size, size)
    notebook_parse, _ = _tf_parsers(names, shape)

    def notebook():
        return tf.data.Dataset.from_tensor_slices(raw).map(notebook_parse).batch(batch)

    assert np.array_equal(_collect(notebook()), _collect(_core_parse(records, names, shape, batch)))
    row = {"size": size, "patches": patches, "batch": batch,
           "notebook_s": timeit(lambda: _drain(notebook()), repeat=5),
           "core_s": timeit(lambda: _drain(_core_parse(records, names, shape, batch)), repeat=5)}
    row["speedup"] = row["notebook_s"] / row["core_s"]
    return row


if __name__ == "__main__":
    main()
