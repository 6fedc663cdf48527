"""core.tfrecord against TensorFlow's own reader and parser, on small generated records."""

import gzip
import os
import struct
import threading

import numpy as np
import pytest
import tensorflow as tf

from core.errors import CorruptFileError, InputNotFoundError
from core.tfrecord import _masked_crc, feature_layout, iter_file_records, open_records, parse_patch, read_batches

NAMES = ["R", "crop"]


def _example(i: int, h: int, w: int) -> bytes:
    rng = np.random.default_rng(i)
    feats = {
        "R": tf.train.Feature(float_list=tf.train.FloatList(value=rng.normal(size=h * w).astype(np.float32))),
        "crop": tf.train.Feature(float_list=tf.train.FloatList(value=np.arange(h * w, dtype=np.float32) + i)),
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def _write(path, records, compression="GZIP"):
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type=compression)) as w:
        for r in records:
            w.write(r)
    return str(path)


def _tf_parse(record: bytes, h: int, w: int) -> np.ndarray:
    spec = {n: tf.io.FixedLenFeature((h, w), tf.float32) for n in NAMES}
    parsed = tf.io.parse_single_example(record, spec)
    return np.stack([parsed[n].numpy() for n in NAMES], axis=-1)


def _frame(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC32C, data, its masked CRC32C."""
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", _masked_crc(head)) + data + struct.pack("<I", _masked_crc(data))


@pytest.mark.parametrize("compression", ["GZIP", ""])
def test_same_arrays_as_tensorflow_bit_for_bit(tmp_path, compression):
    h, w = 5, 7  # not square: a transpose would show
    records = [_example(i, h, w) for i in range(5)]
    path = _write(tmp_path / "a.tfrecord", records, compression)
    got = np.concatenate(list(read_batches([path], NAMES, (h, w), batch_size=2)))
    want = np.stack([_tf_parse(r, h, w) for r in records])
    assert got.shape == (5, h, w, 2) and got.dtype == np.float32
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_unpacked_floats_read_like_packed():
    # proto2-style writers may store a FloatList value by value (tag 0x0d + 4 bytes each)
    values = np.array([1.5, -2.0, 3.25, 0.0, 7.0, 9.5], np.float32)
    flist = b"".join(b"\x0d" + v.tobytes() for v in values)
    feature = b"\x12" + bytes([len(flist)]) + flist
    entry = b"\x0a\x01R" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    record = b"\x0a" + bytes([len(features)]) + features
    assert list(tf.train.Example.FromString(record).features.feature["R"].float_list.value) == list(values)
    assert feature_layout(record)["R"][1][2] == 5
    assert np.array_equal(parse_patch(record, ["R"], (2, 3))[..., 0], values.reshape(2, 3))


def test_fields_of_every_wire_type_are_stepped_over_as_tensorflow_does():
    """Fields the reader does not use (varint, 64-bit and 32-bit ones, as a newer writer may add, and an
    int64 feature beside the bands) are stepped over by their length; the bands read bit for bit."""
    values = np.array([1.5, -2.0, 3.25, 0.0, 7.0, 9.5], np.float32)
    flist = b"\x0a" + bytes([4 * len(values)]) + values.tobytes()  # packed
    feature = b"\x12" + bytes([len(flist)]) + flist + b"\x38\xac\x02"  # + field 7, a varint, after the list
    ints = b"\x1a\x04\x0a\x02\x05\x07"  # an int64 feature (Int64List, packed)
    entries = b""
    for key, value in ((b"R", feature), (b"year", ints)):
        entry = b"\x0a" + bytes([len(key)]) + key + b"\x12" + bytes([len(value)]) + value
        entries += b"\x0a" + bytes([len(entry)]) + entry
    # after the features, fields 2-4 of the Example: a varint, a 64-bit and a 32-bit value (wire types 0, 1, 5)
    record = b"\x0a" + bytes([len(entries)]) + entries + b"\x10\x2a" + b"\x19" + bytes(8) + b"\x25" + bytes(4)
    parsed = tf.train.Example.FromString(record)  # TensorFlow reads it so, unknown fields and all
    assert list(parsed.features.feature["R"].float_list.value) == list(values)
    assert list(parsed.features.feature["year"].int64_list.value) == [5, 7]
    layout = feature_layout(record)
    assert layout["year"] == ("int64", None) and layout["R"][0] == "float"
    assert np.array_equal(parse_patch(record, ["R"], (2, 3))[..., 0], values.reshape(2, 3))
    with pytest.raises(ValueError, match="holds int64 values, not floats"):
        parse_patch(record, ["year"], (1, 2))


def test_feature_errors_say_what_is_wrong(tmp_path):
    path = _write(tmp_path / "a.tfrecord.gz", [_example(0, 4, 4)])
    with pytest.raises(CorruptFileError, match="no feature 'NIR'.*crop, id, R|no feature 'NIR'"):
        list(read_batches([path], ["NIR"], (4, 4), 1))
    with pytest.raises(CorruptFileError, match="'id' holds int64 values"):
        list(read_batches([path], ["id"], (4, 4), 1))
    with pytest.raises(CorruptFileError, match="holds 16 values, not 8 x 8"):
        list(read_batches([path], NAMES, (8, 8), 1))
    with pytest.raises(ValueError):
        feature_layout(b"\x0a\x50\x0a")  # a length past the end


def test_damaged_files_are_refused(tmp_path):
    records = [_example(i, 8, 8) for i in range(3)]
    plain = tmp_path / "plain.tfrecord"
    _write(plain, records, "")
    raw = plain.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF  # inside the second record's data
    cases = {
        "data.tfrecord": (bytes(flipped), "fails its checksum"),
        "length.tfrecord": (b"\x07" + raw[1:], "length fails its checksum"),
        "cut.tfrecord": (raw[:-10], "truncated"),
        "text.tfrecord": (b"this is not a TFRecord file at all", "checksum|truncated"),
        "cut.tfrecord.gz": (gzip.compress(raw)[:-30], "truncated"),
        "bad.tfrecord.gz": (gzip.compress(raw)[:40] + b"\x00" * 200, "truncated|not a valid GZIP|checksum"),
    }
    for name, (data, message) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CorruptFileError, match=message):
            list(read_batches([str(p)], NAMES, (8, 8), 2))
        # TensorFlow's own reader refuses the same files
        compression = "GZIP" if name.endswith(".gz") else ""
        with pytest.raises(tf.errors.OpError):
            list(tf.data.TFRecordDataset(str(p), compression_type=compression))
    with pytest.raises(InputNotFoundError):
        with open_records(tmp_path / "missing.tfrecord.gz"):
            pass


def test_interleave_shuffle_repeat_and_split(tmp_path):
    files = [_write(tmp_path / f"{k}.tfrecord.gz", [_example(10 * k + i, 2, 2) for i in range(3)]) for k in range(2)]
    first = lambda batches: [int(v) for b in batches for v in b[:, 0, 0, 1]]  # noqa: E731 (crop[0, 0] = example id)

    assert first(read_batches(files, NAMES, (2, 2), 4)) == [0, 1, 2, 10, 11, 12]
    assert first(read_batches(files, NAMES, (2, 2), 4, interleave=True)) == [0, 10, 1, 11, 2, 12]
    assert [len(b) for b in read_batches(files, NAMES, (2, 2), 4, split_files=True)] == [3, 3]

    a = first(read_batches(files, NAMES, (2, 2), 4, shuffle=4, seed=3))
    b = first(read_batches(files, NAMES, (2, 2), 4, shuffle=4, seed=3))
    assert a == b and sorted(a) == [0, 1, 2, 10, 11, 12] and a != [0, 1, 2, 10, 11, 12]

    # the pool's records leave it at random: of 100 records through a pool of 16, the first 16 do not all wait
    # for the end (a pool that always gave back its first slot kept 15 of them to the last 15 places), and the
    # files' last batch is short (split at a file's end: 5 + 3 records in batches of 2 give 2, 2, 1, 2, 1)
    many = [_write(tmp_path / "many.tfrecord.gz", [_example(i, 2, 2) for i in range(100)])]
    order = first(read_batches(many, NAMES, (2, 2), 10, shuffle=16, seed=1))
    assert sorted(order) == list(range(100)) and min(order.index(i) for i in range(1, 16)) < 40
    five_three = [_write(tmp_path / f"s{n}.tfrecord.gz", [_example(i, 2, 2) for i in range(n)]) for n in (5, 3)]
    assert [len(b) for b in read_batches(five_three, NAMES, (2, 2), 2, split_files=True)] == [2, 2, 1, 2, 1]

    endless = read_batches(files, NAMES, (2, 2), 4, shuffle=4, repeat=True, seed=0, drop_remainder=True)
    seen = first(next(endless) for _ in range(6))  # 24 patches: about four passes over the 6
    counts = [seen.count(i) for i in (0, 1, 2, 10, 11, 12)]
    assert len(seen) == 24 and min(counts) >= 2 and max(counts) <= 5  # every patch, each pass (4 stay in the pool)
    endless.close()
    plain = first(b for _, b in zip(range(3), read_batches(files, NAMES, (2, 2), 4, repeat=True)))
    assert plain == [0, 1, 2, 10, 11, 12] * 2


def test_empty_files_and_early_stop(tmp_path):
    empty = _write(tmp_path / "empty.tfrecord.gz", [])
    assert list(read_batches([empty], NAMES, (2, 2), 2)) == []
    with pytest.raises(CorruptFileError, match="hold no records"):
        next(read_batches([empty], NAMES, (2, 2), 2, repeat=True))
    assert os.path.getsize(empty) > 0  # (an empty GZIP file has its header)
    # 0 bytes (a copy or download that failed): refused, not read as a file of no patches
    (tmp_path / "failed.tfrecord.gz").write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"^failed\.tfrecord\.gz is empty \(0 bytes\), though GZIP"):
        list(read_batches([tmp_path / "failed.tfrecord.gz"], NAMES, (2, 2), 2))
    (tmp_path / "plain.tfrecord").write_bytes(b"")  # a plain TFRecord file of no records is one
    assert list(read_batches([tmp_path / "plain.tfrecord"], NAMES, (2, 2), 2)) == []
    # a consumer that stops early leaves no reader thread behind (only the readers' threads are counted:
    # TensorFlow's and other tests' threads come and go in the same process)
    def readers():
        return {t for t in threading.enumerate() if t.name.startswith("tfrecord-")}

    big = [_write(tmp_path / f"b{k}.tfrecord.gz", [_example(i, 16, 16) for i in range(100)]) for k in range(3)]
    before = readers()
    it = iter_file_records(big, workers=2)
    next(it)
    started = readers() - before
    assert len(started) == 2  # one per worker, each blocked on its full queue (100 records, 32 held ready)
    it.close()
    for t in started:
        t.join(timeout=5)
    assert not [t.name for t in started if t.is_alive()]


def test_a_folder_named_like_a_record_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "odd.tfrecord.gz"
    folder.mkdir()
    with pytest.raises(CorruptFileError, match="cannot open"):
        list(read_batches([str(folder)], NAMES, (2, 2), 2))


def test_background_readers_lower_their_priority(tmp_path, monkeypatch):
    import core.tfrecord as tfrecord

    path = _write(tmp_path / "a.tfrecord.gz", [_example(0, 2, 2)])
    calls = []
    monkeypatch.setattr(tfrecord, "background_priority", lambda: calls.append(threading.current_thread().name))
    list(read_batches([path], NAMES, (2, 2), 1))
    assert calls == []
    list(read_batches([path], NAMES, (2, 2), 1, background=True))
    assert calls == ["tfrecord-0"]  # in the reader thread, not the caller's


def test_plain_file_whose_first_length_starts_like_gzip(tmp_path):
    """A plain file whose first record is 0x8b1f (35615) bytes long starts with GZIP's magic number
    (1f 8b); the record header's checksum shows it is not GZIP."""
    data = (bytes(range(256)) * 140)[:0x8B1F]
    path = tmp_path / "plain.tfrecord"
    path.write_bytes(_frame(data) * 2)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert [r for _, r in iter_file_records([str(path)])] == [data, data]


def test_a_few_bytes_of_something_else_are_not_called_a_truncated_tfrecord(tmp_path):
    """A short text file named .tfrecord.gz was "truncated (its last record is cut short)"."""
    path = tmp_path / "notes.tfrecord.gz"
    path.write_text("hello\n")
    with pytest.raises(CorruptFileError, match="is not a TFRecord file"):
        list(iter_file_records([str(path)]))


def test_a_record_claiming_gigabytes_is_refused_before_memory_is_taken(tmp_path):
    """A 1 MB GZIP file whose one record claimed 1 GiB took 1 GB of the server's memory to read."""
    import gzip
    import resource

    claim = 2**30
    head = struct.pack("<Q", claim)
    path = tmp_path / "bomb.tfrecord.gz"
    with gzip.open(path, "wb") as f:
        f.write(head + struct.pack("<I", _masked_crc(head)))
        for _ in range(20):  # 320 MB of it: read whole, as it was, it took them
            f.write(bytes(2**24))
    assert path.stat().st_size < 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CorruptFileError, match="bomb.tfrecord.gz has a record of 1,024 MB, more than any patch holds"):
        list(iter_file_records([str(path)]))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2**18  # KB: under 256 MB more


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (payloads under 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def _record_of_r(float_list: bytes, features_extra: bytes = b"", entry_claims: int = 0, tail: bytes = b"") -> bytes:
    """An Example of one feature "R" whose FloatList's bytes are ``float_list``: ``features_extra`` follows the
    map entry in Features, whose length claims ``entry_claims`` bytes more than it has; ``tail`` ends the Example."""
    entry = _field(1, b"R") + _field(2, _field(2, float_list))
    return _field(1, bytes([0x0A, len(entry) + entry_claims]) + entry + features_extra) + tail


def test_float_lists_this_reader_cannot_place_are_refused_not_misread(tmp_path):
    """Hand-built Examples that TensorFlow refuses, or reads otherwise than one run of floats (a list in two
    packed runs, a float beside another field): refused naming the file, never read as other values."""
    values = np.array([1.5, -2.0, 3.25, 0.0, 7.0, 9.5], np.float32)
    cases = {
        # a map entry longer than the Features holding it (the Example goes on after them)
        "past_end": (_record_of_r(_field(1, values[:2].tobytes()), entry_claims=2, tail=b"\x10\x00"), (1, 2)),
        # one list in two packed runs (TensorFlow reads all six; the first run alone is three)
        "two_runs": (_record_of_r(_field(1, values[:3].tobytes()) + _field(1, values[3:].tobytes())), (1, 3)),
        # 6 bytes of packed floats: not whole floats
        "six_bytes": (_record_of_r(_field(1, values[:2].tobytes()[:6])), (1, 1)),
        # unpacked floats, the last cut short (the Example goes on after it)
        "cut_unpacked": (_record_of_r(b"\x0d" + values[:1].tobytes() + b"\x0d" + values[1:2].tobytes()[:2],
                                      tail=b"\x10\x00\x10\x00"), (1, 2)),
        # an unpacked float, then a 32-bit value of another field (TensorFlow reads one float)
        "other_field": (_record_of_r(b"\x0d" + values[:1].tobytes() + b"\x15" + values[1:2].tobytes()), (1, 2)),
    }
    for name, (record, shape) in cases.items():
        path = tmp_path / f"{name}.tfrecord"
        path.write_bytes(_frame(record))
        with pytest.raises(CorruptFileError, match=f"^cannot read the patches of {name}.tfrecord: "):
            list(read_batches([str(path)], ["R"], shape, 1))
    # unknown fields in Features (a newer writer's) are stepped over, as TensorFlow does: the floats read
    record = _record_of_r(_field(1, values[:2].tobytes()), features_extra=b"\x10\x05" + _field(3, b"abc"))
    assert list(tf.train.Example.FromString(record).features.feature["R"].float_list.value) == [1.5, -2.0]
    (tmp_path / "newer.tfrecord").write_bytes(_frame(record))
    [batch] = read_batches([str(tmp_path / "newer.tfrecord")], ["R"], (1, 2), 1)
    np.testing.assert_array_equal(batch[0, ..., 0], [values[:2]])
