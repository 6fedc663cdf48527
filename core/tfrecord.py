"""Reading TFRecord files of float patches: record framing, the Example wire format, batches.

Earth Engine's TFRecord exports (and ``python -m core patches``) hold one ``tf.train.Example``
per patch with one float feature of H x W values per band. This module reads them without
TensorFlow: GZIP streams (detected from their first bytes) are inflated with ISA-L, about twice
zlib's speed; each record's length and data are checked against their CRC32C as TensorFlow's
reader does; and each band's floats are copied straight from the record into a band-last batch,
with no per-example parse, stack and transpose. Files are read by parallel threads (inflating,
checksums and numpy copies release the GIL).
"""

from __future__ import annotations

import os
import queue
import struct
import threading
import zlib
from collections import deque
from contextlib import ExitStack, contextmanager
from typing import BinaryIO, Iterator, Sequence

import google_crc32c
import numpy as np
from isal import igzip, isal_zlib

from core import remotefs
from core.errors import CorruptFileError, CropMapError, InputNotFoundError
from core.threads import background_priority

_GZIP_MAGIC = b"\x1f\x8b"
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
#: Records each file's reader thread holds ready ahead of the consumer.
_DEPTH = 32
#: The longest record read (bytes): far above any patch (a 1,024 x 1,024 px patch of 13 float32 bands
#: is 55 MB), so that a few bytes claiming a huge record (a corrupt file, or a small GZIP stream that
#: unpacks to gigabytes) are refused before memory is taken for them
MAX_RECORD_BYTES = 256 * 2**20
_END = object()


def _masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data``."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@contextmanager
def open_records(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary stream of a TFRecord file's bytes, inflated when the file is GZIP-compressed.

    Local paths are opened directly; ``gs://`` and other URLs through ``tf.io.gfile``.

    Raises:
        InputNotFoundError: the file does not exist (or, remote, cannot be reached).
        CorruptFileError: a local file that cannot be opened.
    """
    path = str(path)
    with ExitStack() as stack:
        try:
            if remotefs.is_remote(path):
                raw = stack.enter_context(remotefs.open_binary(path))
            else:
                raw = stack.enter_context(open(path, "rb"))
        except FileNotFoundError:
            raise InputNotFoundError(f"TFRecord file not found: {path}") from None
        except OSError as err:
            raise CorruptFileError(f"cannot open {path}: {err.strerror or err}") from None
        head = raw.read(12)
        if not head and path.endswith(".gz"):  # (read as a file of no patches: a copy that failed, unsaid)
            raise CorruptFileError(f"{os.path.basename(path)} is empty (0 bytes), though GZIP-compressed files hold "
                                   "at least a header, even with no patches: copy or export it again")
        # GZIP's magic number, unless the bytes are a plain file's first record header (whose
        # length, e.g. 35615 bytes, can start with the same two bytes): its checksum tells them apart
        gzipped = head[:2] == _GZIP_MAGIC and not (
            len(head) == 12 and _U32.unpack_from(head, 8)[0] == _masked_crc(head[:8]))
        raw.seek(0)
        yield stack.enter_context(igzip.IGzipFile(fileobj=raw, mode="rb")) if gzipped else raw


def iter_records(stream: BinaryIO, name: str) -> Iterator[bytes]:
    """The records of a TFRecord stream, each checked against its length and data checksums.

    Raises:
        CorruptFileError: a record is cut short or fails a checksum (``name`` is the file's name
            in the message).
    """
    def read(n: int) -> bytes:
        try:
            return stream.read(n)
        except EOFError:  # a GZIP stream that ends too soon
            raise CorruptFileError(f"{name} is truncated (its GZIP stream ends too soon); export or copy it again") from None
        except OSError as err:  # gzip.BadGzipFile: not GZIP after all, or a failed GZIP checksum
            raise CorruptFileError(f"{name} is corrupt ({err}); export or copy it again") from None

    first = True
    while True:
        head = read(12)
        if not head:
            return
        if len(head) < 12 and first:  # a few bytes of something else (a GZIP stream is unpacked first)
            raise CorruptFileError(f"{name} is not a TFRecord file (it holds {len(head)} byte(s), less than one record's "
                                   "header); give the .tfrecord.gz files that patches or an Earth Engine export wrote")
        if len(head) < 12:
            raise CorruptFileError(f"{name} is truncated (its last record is cut short); export or copy it again")
        first = False
        (length,) = _U64.unpack_from(head)
        if _U32.unpack_from(head, 8)[0] != _masked_crc(head[:8]):
            raise CorruptFileError(f"{name} is corrupt or not a TFRecord file (a record length fails its checksum)")
        if length > MAX_RECORD_BYTES:
            raise CorruptFileError(f"{name} has a record of {length / 2**20:,.0f} MB, more than any patch holds (at most "
                                   f"{MAX_RECORD_BYTES // 2**20} MB are read); it is corrupt or not patches: export or "
                                   "copy it again")
        data = read(length)
        crc = read(4)
        if len(data) < length or len(crc) < 4:
            raise CorruptFileError(f"{name} is truncated (its last record is cut short); export or copy it again")
        if _U32.unpack(crc)[0] != _masked_crc(data):
            raise CorruptFileError(f"{name} is corrupt (a record fails its checksum); export or copy it again")
        yield data


# ---------------------------------------------------------------- the Example wire format


def _varint(buf: bytes, p: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[p]
        p += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, p
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, start, end of the value) of each field of the message in buf[start:end].

    Raises:
        ValueError, IndexError: the bytes are not a well-formed message.
    """
    p = start
    while p < end:
        key, p = _varint(buf, p)
        number, wire = key >> 3, key & 7
        if wire == 2:
            n, p = _varint(buf, p)
            s, p = p, p + n
        elif wire == 0:
            s = p
            _, p = _varint(buf, p)
        elif wire == 5:
            s, p = p, p + 4
        elif wire == 1:
            s, p = p, p + 8
        else:
            raise ValueError(f"unknown protobuf wire type {wire}")
        if p > end:
            raise ValueError("a field runs past the end of its message")
        yield number, wire, s, p


#: Kinds of a Feature's ``oneof``: field number -> name.
_KINDS = {1: "bytes", 2: "float", 3: "int64"}


def feature_layout(record: bytes) -> dict[str, tuple[str, tuple[int, int, int] | None]]:
    """Where each feature of a serialized ``tf.train.Example`` keeps its values.

    Returns ``{name: (kind, layout)}``; kind is ``"float"``, ``"int64"``, ``"bytes"`` or ``"empty"``,
    and for floats ``layout`` is (offset of the first value, count, stride in bytes): stride 4 for
    packed values, 5 for unpacked ones; ``None`` for another encoding.

    Raises:
        ValueError: the record is not a well-formed Example.
    """
    out: dict[str, tuple[str, tuple[int, int, int] | None]] = {}
    try:
        for num, wire, s, e in _fields(record, 0, len(record)):
            if num != 1 or wire != 2:  # Example.features
                continue
            for num2, wire2, s2, e2 in _fields(record, s, e):  # Features.feature: map entries
                if num2 != 1 or wire2 != 2:
                    continue
                key, value = "", (s2, s2)
                for num3, wire3, s3, e3 in _fields(record, s2, e2):
                    if num3 == 1 and wire3 == 2:
                        key = record[s3:e3].decode("utf-8")
                    elif num3 == 2 and wire3 == 2:
                        value = (s3, e3)
                out[key] = _feature(record, *value)
    except (IndexError, UnicodeDecodeError) as err:
        raise ValueError(f"the record is not a well-formed Example ({err})") from None
    return out


def _feature(record: bytes, start: int, end: int) -> tuple[str, tuple[int, int, int] | None]:
    kind, layout = "empty", None
    for num, wire, s, e in _fields(record, start, end):
        if num in _KINDS and wire == 2:
            kind = _KINDS[num]
            layout = _float_layout(record, s, e) if num == 2 else None
    return kind, layout


def _float_layout(record: bytes, start: int, end: int) -> tuple[int, int, int] | None:
    """(offset, count, stride) of a FloatList's values in ``record[start:end]``; None if unusual."""
    if start == end:
        return start, 0, 4
    if record[start] == 0x0A:  # one packed field
        n, p = _varint(record, start + 1)
        if p + n == end and n % 4 == 0:
            return p, n // 4, 4
        return None
    if record[start] == 0x0D and (end - start) % 5 == 0:  # unpacked: tag + 4 bytes per value
        tags = np.frombuffer(record, np.uint8, end - start, start)[::5]
        if (tags == 0x0D).all():
            return start + 1, len(tags), 5
    return None


def parse_patch(record: bytes, names: Sequence[str], shape: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """One serialized Example -> (H, W, len(names)) float32, rows as stored (no transpose).

    ``out`` receives the values when given (a slot of a batch), so that each band is copied once.

    Raises:
        ValueError: a feature is missing, is not float, or has another number of values.
    """
    h, w = shape
    if out is None:
        out = np.empty((h, w, len(names)), np.float32)
    layout = feature_layout(record)
    for band, name in enumerate(names):
        if name not in layout:
            raise ValueError(f"the records have no feature {name!r} (they have {', '.join(sorted(layout)) or 'none'})")
        kind, where = layout[name]
        if kind != "float":
            raise ValueError(f"feature {name!r} holds {kind} values, not floats")
        if where is None:
            raise ValueError(f"feature {name!r} stores its floats in an encoding this reader does not know")
        offset, count, stride = where
        if count != h * w:
            raise ValueError(f"feature {name!r} holds {count} values, not {h} x {w} = {h * w}")
        values = np.ndarray((count,), "<f4", record, offset, (stride,))
        out[..., band] = values.reshape(h, w)
    return out


# ---------------------------------------------------------------- reading files in parallel


class _FileReader(threading.Thread):
    """Reads one file's records into a bounded queue; errors go into the queue as well."""

    def __init__(self, index: int, path: str, stop: threading.Event, depth: int, background: bool):
        super().__init__(daemon=True, name=f"tfrecord-{index}")
        self.index, self.path, self.stop, self.background = index, path, stop, background
        self.queue: queue.Queue = queue.Queue(maxsize=depth)

    def run(self) -> None:
        if self.background:
            background_priority()
        name = os.path.basename(self.path.rstrip("/")) or self.path
        try:
            with open_records(self.path) as stream:
                for record in iter_records(stream, name):
                    if not self._put(record):
                        return
            self._put(_END)
        except CropMapError as err:
            self._put(err)
        except (EOFError, igzip.BadGzipFile, isal_zlib.error, zlib.error) as err:
            self._put(CorruptFileError(f"{name} is truncated or not a valid GZIP file ({err}); export or copy it again"))
        except OSError as err:
            self._put(CorruptFileError(f"cannot read {name}: {err.strerror or err}"))
        except BaseException as err:  # a bug: handed to the consumer, which raises it with its traceback
            self._put(err)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def iter_file_records(files: Sequence[str], workers: int = 2, interleave: bool = False,
                      background: bool = False) -> Iterator[tuple[int, bytes]]:
    """(index of the file, record) over ``files``, read by ``workers`` threads at once.

    In file order by default; with ``interleave`` the open files take turns, one record each (as
    ``tf.data``'s interleave), so that the threads inflate at the same time. ``background`` lowers
    the threads' priority (:func:`core.threads.background_priority`), for reading while a model
    trains: they then work in its gaps, but lose time to any other busy thread.

    Raises:
        InputNotFoundError, CorruptFileError: as the files are reached.
    """
    stop = threading.Event()
    pending = deque(enumerate(map(str, files)))
    active: deque[_FileReader] = deque()

    def start_next() -> None:
        if pending:
            index, path = pending.popleft()
            reader = _FileReader(index, path, stop, _DEPTH, background)
            reader.start()
            active.append(reader)

    try:
        for _ in range(max(1, workers)):
            start_next()
        while active:
            reader = active[0]
            item = reader.queue.get()
            if item is _END:
                active.popleft()
                start_next()
                continue
            if isinstance(item, BaseException):
                raise item
            yield reader.index, item
            if interleave:
                active.rotate(-1)
    finally:
        stop.set()


#: Byte alignment of the batches: TensorFlow takes an array aligned to 64 bytes without copying it.
_ALIGN = 64


def _aligned_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialized float32 array whose data starts on a :data:`_ALIGN`-byte boundary."""
    nbytes = int(np.prod(shape)) * 4
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start : start + nbytes].view(np.float32).reshape(shape)


def read_batches(
    files: Sequence[str],
    names: Sequence[str],
    shape: tuple[int, int],
    batch_size: int,
    *,
    interleave: bool = False,
    shuffle: int = 0,
    repeat: bool = False,
    seed: int | None = None,
    split_files: bool = False,
    drop_remainder: bool = False,
    workers: int = 2,
    background: bool = False,
) -> Iterator[np.ndarray]:
    """Batches (n, H, W, len(names)) float32 of the patches in ``files``.

    ``shuffle`` > 0 draws records at random from a pool of that many (as ``tf.data``'s shuffle);
    ``repeat`` starts over endlessly, in a new file order each time when shuffling;
    ``split_files`` ends a batch where a file ends (so that an error names one file's batch);
    ``drop_remainder`` drops a last, smaller batch; ``background`` as for :func:`iter_file_records`.

    Raises:
        InputNotFoundError, CorruptFileError: a file is missing, truncated or damaged, or its
            records lack a feature or hold patches of another size (the message names the file).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    order = list(map(str, files))
    pool: list[tuple[str, bytes]] = []
    batch: np.ndarray | None = None
    filled = 0

    def put(path: str, record: bytes) -> None:
        # Parsed here, straight into the batch: one copy of each band (parsing in the reader
        # threads into patches of their own and copying those measured slower).
        nonlocal batch, filled
        if batch is None:
            batch = _aligned_empty((batch_size, h, w, len(names)))
        try:
            parse_patch(record, names, shape, out=batch[filled])
        except ValueError as err:
            raise CorruptFileError(f"cannot read the patches of {os.path.basename(path) or path}: {err}; "
                                   f"expected {h} x {w} patches with features {', '.join(names)}") from None
        filled += 1

    def take() -> np.ndarray:
        nonlocal batch, filled
        out = batch if filled == batch_size else batch[:filled]
        batch, filled = None, 0
        return out

    while True:
        if shuffle and repeat:
            rng.shuffle(order)
        passed, current, seen = list(order), -1, 0
        for index, record in iter_file_records(passed, workers, interleave, background):
            seen += 1
            if split_files and index != current and filled:
                yield take()
            current = index
            item = (passed[index], record)
            if shuffle:
                if len(pool) < shuffle:
                    pool.append(item)
                    continue
                k = int(rng.integers(len(pool)))
                item, pool[k] = pool[k], item
            put(*item)
            if filled == batch_size:
                yield take()
        if not repeat:
            break
        if not seen:
            raise CorruptFileError(f"the TFRecord files hold no records ({len(order)} file(s)); export them again")
    for k in rng.permutation(len(pool)):
        put(*pool[int(k)])
        if filled == batch_size:
            yield take()
    if filled and not drop_remainder:
        yield take()
