"""``gs://`` (and other remote) paths through TensorFlow's file system, its failures as project errors.

``tf.io.gfile`` raises ``tf.errors.OpError`` subclasses when Cloud Storage cannot be reached (no
network, no credentials TensorFlow can use, no access to the bucket). Every remote call in ``core``
goes through here, so a user sees one clear line instead of a TensorFlow traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from core.errors import InputNotFoundError, first_line


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL (``gs://...``) rather than a local path."""
    return "://" in str(path)


def _gfile():
    from core.tfimport import import_tensorflow

    import_tensorflow()
    import tensorflow as tf

    return tf.io.gfile


@contextmanager
def storage_errors(path: str) -> Iterator[None]:
    """Turn a TensorFlow file-system failure on ``path`` into :class:`InputNotFoundError`.

    Raises:
        InputNotFoundError: the path does not exist or cannot be reached, with what to check.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.NotFoundError:
        raise InputNotFoundError(f"{path} not found; check the bucket and the path") from None
    except tf.errors.OpError as err:
        raise InputNotFoundError(
            f"cannot read {path} ({first_line(err)}); check the network, that the path is right, and that this machine "
            "has Cloud Storage credentials with access to the bucket (gcloud auth application-default login, "
            "or GOOGLE_APPLICATION_CREDENTIALS)"
        ) from None


def exists(path: str) -> bool:
    """``tf.io.gfile.exists``. Raises: InputNotFoundError (see :func:`storage_errors`)."""
    gfile = _gfile()
    with storage_errors(path):
        return bool(gfile.exists(path))


def isdir(path: str) -> bool:
    """``tf.io.gfile.isdir``. Raises: InputNotFoundError (see :func:`storage_errors`)."""
    gfile = _gfile()
    with storage_errors(path):
        return bool(gfile.isdir(path))


def glob(pattern: str) -> list[str]:
    """``tf.io.gfile.glob``. Raises: InputNotFoundError (see :func:`storage_errors`)."""
    gfile = _gfile()
    with storage_errors(pattern):
        return list(gfile.glob(pattern))


def version(path: str) -> tuple[int, int]:
    """(size in bytes, modification time in ns) of a file, local or remote: a file written anew has
    another. Raises: InputNotFoundError (see :func:`storage_errors`)."""
    if not is_remote(path):
        import os

        try:
            st = os.stat(path)
        except OSError:
            raise InputNotFoundError(f"{path} not found") from None
        return st.st_size, st.st_mtime_ns
    gfile = _gfile()
    with storage_errors(path):
        st = gfile.stat(path)
    return int(st.length), int(st.mtime_nsec)


def read_bytes(path: str) -> bytes:
    """The whole file. Raises: InputNotFoundError (see :func:`storage_errors`)."""
    gfile = _gfile()
    with storage_errors(path), gfile.GFile(path, "rb") as f:
        return f.read()


def open_binary(path: str):
    """A binary read stream (``tf.io.gfile.GFile``); a missing file raises at once.

    Raises:
        InputNotFoundError (see :func:`storage_errors`).
    """
    if not exists(path):
        raise InputNotFoundError(f"{path} not found; check the bucket and the path")
    gfile = _gfile()
    with storage_errors(path):
        stream = gfile.GFile(path, "rb")
        stream.read(0)  # GFile opens lazily: make an unreadable file fail here
        return stream
