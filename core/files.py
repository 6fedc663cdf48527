"""Writing output files so that a failure leaves nothing behind and a reader never sees half a file."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from core.errors import ConfigError, OutputExistsError

def safe_stem(name: str, default: str) -> str:
    """The stem of an uploaded file's name (a Windows or POSIX path) made safe for a path: letters,
    digits, ``.``, ``_`` and ``-`` only, at most 100 characters; ``default`` when nothing is left."""
    stem = Path(Path(name.replace("\\", "/")).name).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:100] or default


#: Largest file accepted from a dashboard upload (images, labels, models); the server's own cap
#: (.streamlit/config.toml maxUploadSize) is the same.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def limit_text(n_bytes: int) -> str:
    """An upload's size or limit in MB of 2**20 bytes, as the dashboard's upload boxes (Streamlit's
    "200MB") give them: one size read "210 MB" in an error and "200 MB" in the box."""
    text = f"{n_bytes / 2**20:.1f}"
    return f"{text[:-2] if text.endswith('.0') else text} MB"  # (50.3 MB over a 50 MB limit: not "50 MB")


def size_text(n_bytes: int) -> str:
    """``n_bytes`` for people: GB from 1 GB, MB, or kB under 0.1 MB (a small region read "0.0 MB")."""
    if n_bytes >= 1e9:
        return f"{n_bytes / 1e9:.1f} GB"
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 100_000 else f"{max(n_bytes / 1e3, 0.1):.1f} kB"


def check_free_space(path: str | os.PathLike, needed: int, what: str, fix: str) -> None:
    """Refuse to start writing ``what`` (``needed`` bytes at least) at ``path`` (a file, or a folder to write
    into) where its disk has less free space, rather than fail when the disk is full.

    Raises:
        ConfigError: saying how much is needed and free, and ``fix``.
    """
    import shutil

    where = Path(path).absolute()  # a folder written into (its own disk: it may be a mount), or a file's folder
    folder = next((p for p in (where, *where.parents) if p.is_dir()), Path("/"))
    usage = shutil.disk_usage(folder)
    if usage.total == 0:  # (no disk: /proc and the like, which the writing then refuses with its own words)
        return
    free = usage.free
    if needed > free:
        raise ConfigError(f"{what} would take at least {size_text(needed)} and {folder} has {size_text(free)} free; "
                          f"{fix}")


def _link_to_nothing(path: Path) -> Path | None:
    """``path`` or the nearest of its parents that does not exist, where it is a symbolic link to nothing (a
    folder gone, a disk not mounted): an output cannot be made there; else None."""
    for p in (path, *path.parents):
        if p.exists():
            return None
        if p.is_symlink():
            return p
    return None


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` if it is not a folder (so ``path`` cannot be made), else None."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


#: Names a GeoTIFF output may end in (a crop mask or an image named ``.png`` was written as a TIFF).
GEOTIFF_SUFFIXES = (".tif", ".tiff")


def check_output_file(
    path: str | os.PathLike, overwrite: bool = False, option: str = "--out", kind: tuple[str, tuple[str, ...]] | None = None
) -> Path:
    """Check that a file can be written at ``path`` (given as ``option``); returns it as a Path.

    ``kind`` is (what the file holds, the name endings it may have), e.g. ``("a GeoTIFF", GEOTIFF_SUFFIXES)``.

    Raises:
        ConfigError: ``path`` is a folder, a file stands where one of its folders would be, or its name
            does not end as ``kind`` says.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise ConfigError(f"{blocker} is a file, so {path} cannot be written under it; choose another output path")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name")
    if kind is not None and path.suffix.lower() not in kind[1]:
        raise ConfigError(f"{path}: {option} is written as {kind[0]}; give a name ending in "
                          f"{' or '.join(kind[1])}, such as {path.with_suffix(kind[1][0]).name}")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it or choose another {option}")
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """Check that ``path`` is, or can be made, a folder for outputs; returns it as a Path.

    Raises:
        ConfigError: ``path`` is a file, a file stands where one of its folders would be, a new folder would
            be named as a file (:data:`FILE_SUFFIXES`), or it (or a folder above it) is a link to nothing.
    """
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise ConfigError(f"{blocker} is a file, so the folder {path} cannot be made; choose another output folder")
    link = _link_to_nothing(path)
    if link is not None:  # (making it failed with "File exists", of no file the user could see)
        raise ConfigError(f"{link} is a link to {os.readlink(link)}, which does not exist; make that folder, or "
                          "choose another output folder")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file; give a folder for the outputs")
    if not path.exists() and path.suffix.lower() in FILE_SUFFIXES:  # (predict --out crop.tif made a folder crop.tif/)
        name = path
        while name.suffix.lower() in FILE_SUFFIXES:  # (out.tfrecord.gz: out, not out.tfrecord, refused again)
            name = name.with_suffix("")
        raise ConfigError(f"{path} is named as a {path.suffix} file, but the outputs go in a folder (of several "
                          f"files); give a folder name, e.g. {name}")
    return path


#: Name endings of files, not folders: a new output folder so named is a mistake (``predict --out crop.tif``).
FILE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".json", ".geojson", ".csv", ".keras", ".gz",
                           ".tfrecord", ".zip"})


@contextmanager
def made_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Create the folder ``path`` (and missing parents) for the block; if the block raises, remove
    again the folders it created, when they are empty.

    Raises:
        ConfigError: see :func:`check_output_dir`.
    """
    path = check_output_dir(path)
    created = missing_folders(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        remove_empty(created)
        raise


def missing_folders(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first (what making it makes)."""
    return [p for p in (path, *path.parents) if not p.exists()]


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first, as :func:`missing_folders` lists them) while they are empty:
    the first that is not (or is gone) is kept, and the folders above it."""
    for p in folders:
        try:
            p.rmdir()
        except OSError:
            break


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (its folder created) to write to; when the block ends
    without an error the temporary file replaces ``path``, otherwise it is deleted (with the folders
    made for it).

    Raises:
        ConfigError: ``path`` is a folder, or a file stands where one of its folders would be.
    """
    path = check_output_file(path, overwrite=True)
    tmp = temp_name(path)
    with made_dir(path.parent):
        try:
            yield tmp
            synced(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextmanager
def replacing_all(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """:func:`replacing` for files that belong together (an image and its labels): yield a temporary
    path beside each; when the block ends without an error they replace their files all at once or
    not at all (:func:`move_into_place`), otherwise they are deleted with the folders made for them.

    Raises:
        ConfigError: as :func:`replacing`; OSError: a move failed (everything put back as it was).
    """
    from contextlib import ExitStack

    finals = [check_output_file(p, overwrite=True) for p in paths]
    tmps = [temp_name(p) for p in finals]
    with ExitStack() as folders:
        for final in finals:
            folders.enter_context(made_dir(final.parent))
        try:
            yield tmps
            with staging_dir(finals[0].parent, prefix=".replaced-") as aside:
                move_into_place(list(zip(tmps, finals)), aside)
        except BaseException:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
            raise


def synced(path: str | os.PathLike) -> None:
    """Make sure the bytes of the file ``path`` (of each file under a folder) are on the disk, before it
    is renamed into place: after a crash of the machine, a file renamed before its bytes were written
    out can come back empty under its final name (a stored prediction, a scene's image, a checkpoint)."""
    import errno

    path = Path(path)
    for p in (path.rglob("*") if path.is_dir() else (path,)):
        if p.is_file() and not p.is_symlink():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            except OSError as err:  # a file system (or a system) that cannot sync a file opened to read:
                if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):  # as before, unsynced
                    raise
            finally:
                os.close(fd)


def temp_name(path: str | os.PathLike) -> Path:
    """A hidden temporary name beside ``path``, unique to the call: writers of the same file at once
    (two sessions of the dashboard are threads of one process) never share one."""
    import uuid

    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def taken_mark(path: str | os.PathLike) -> Path:
    """The mark left beside a stored upload (or a copy made of it) that a later upload of the same file
    took: a refusal of the upload that stored it (:func:`core.sources.local.discard_uploads`) keeps it."""
    return Path(path).parent / f".{Path(path).name}.taken"


def write_bytes_whole(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`replacing`: readers find the file whole or not at
    all, and a failed write leaves nothing behind. Returns ``path``.

    Raises:
        ConfigError: as :func:`replacing`; OSError: the write or the rename failed.
    """
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextmanager
def staging_dir(out_dir: str | os.PathLike, prefix: str = ".predict-") -> Iterator[Path]:
    """Yield a temporary folder inside ``out_dir`` (made if needed) for outputs that are moved into
    place when complete; the temporary folder is always removed, and on failure so are the folders
    made for it (:func:`made_dir`).

    Raises:
        ConfigError: see :func:`check_output_dir`.
    """
    import shutil
    import tempfile

    with made_dir(out_dir) as folder:
        tmpdir = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
        try:
            yield tmpdir
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def move_into_place(moves: Sequence[tuple[str | os.PathLike | None, str | os.PathLike]],
                    aside: str | os.PathLike, replace: bool = True, done: Callable[[], None] | None = None) -> None:
    """Move each finished ``(staged, final)`` file or folder onto its final path (``staged`` None:
    only remove what stands there), all of them or none: what stands at a final path is first kept
    in the folder ``aside`` (on the same file system, e.g. the staging folder; a file as a second
    link, so that it stays in place until the new one replaces it in one step and a reader never
    finds it missing), and if a move fails or the process is interrupted, the moves made are undone
    and what stood there is put back; on success it is deleted. Readers see each file whole, old or
    new.

    With ``replace`` False, nothing is moved if a final path of a staged file exists by now (another
    run into the same folder that finished first: its outputs are not replaced unasked).

    ``done()`` is called once every move is made, before anything can undo them: an interrupt
    before it returns puts everything back, one after it leaves the new files (e.g. a command line's
    note of what an interrupt leaves).

    Raises:
        OSError: the move that failed (after everything was put back as it was); OutputExistsError:
            ``replace`` False and a final path taken.
    """
    if not replace:
        taken = [Path(final) for staged, final in moves if staged is not None and os.path.lexists(final)]
        if taken:
            from core.errors import OutputExistsError

            raise OutputExistsError(f"{taken[0]} was written meanwhile (by another run into the same folder?); "
                                    "nothing of this run was kept; choose another output folder, or pass --overwrite")
    # each step is noted before it is taken (an interrupt can come just after a step, before the
    # next line), and the undoing looks at what was done
    placed: list[tuple[Path, Path]] = []
    kept: list[tuple[Path, Path]] = []
    for staged, _ in moves:  # all on the disk before the first rename (not between renames: new and old outputs side by side longer)
        if staged is not None:
            synced(staged)
    try:
        for i, (staged, final) in enumerate(moves):
            final = Path(final)
            if os.path.lexists(final):
                keep = Path(aside) / f".old-{i}-{final.name}"
                if staged is not None and final.is_file() and not final.is_symlink():
                    _second_link(final, keep)  # noted after: a copy that failed half-way is not put back
                    kept.append((keep, final))
                else:  # a folder, a link, or a file to remove: moved out of the way
                    kept.append((keep, final))
                    os.replace(final, keep)
            if staged is not None:
                placed.append((Path(staged), final))
                os.replace(staged, final)
        if done is not None:
            done()
    except BaseException:
        restored = {final for keep, final in kept if os.path.lexists(keep)}
        for staged, final in placed:
            moved = not os.path.lexists(staged)
            # a file put back below replaces the new one in one step
            if moved and (final not in restored or (final.is_dir() and not final.is_symlink())):
                _remove(final)
        for keep, final in kept:
            if os.path.lexists(keep):
                os.replace(keep, final)
                _remove(keep)  # (still there when it was a second link of the file it replaced)
        raise
    for keep, _ in kept:  # replaced for good
        _remove(keep)


def _second_link(path: Path, link: Path) -> None:
    """``link`` becomes a second name of the file ``path`` (a copy where hard links are not supported)."""
    import shutil

    try:
        os.link(path, link)
    except OSError:
        try:
            shutil.copy2(path, link)
        except BaseException:
            link.unlink(missing_ok=True)
            raise


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
