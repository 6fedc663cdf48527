"""The dashboard's work folder and its layout: one place that says where each kind of file it keeps
goes (scenes cut from sources, uploads, training jobs, models, predictions, sessions, exports)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError

#: The environment variable that names the work folder.
WORKDIR_ENV = "CROPMAP_WORKDIR"
#: What a training job was started with, in its folder (``core.jobs.JOB_FILE``)
JOB_SPEC = "job.json"


@dataclass(frozen=True)
class WorkDir:
    """The folders under ``root``; each is made when it is first written to, not here."""

    root: Path

    @classmethod
    def from_env(cls, default: Path) -> "WorkDir":
        """The work folder :data:`WORKDIR_ENV` names (``default`` where unset or empty: an empty value
        was the current folder, which filled the checkout with sessions/ and scenes/), made if missing.

        Raises:
            ConfigError: it cannot be made (a path under a file, a folder without permission).
        """
        path = Path(os.environ.get(WORKDIR_ENV, "").strip() or default)
        if path.exists() and not path.is_dir():  # (mkdir said "File exists", as if it were a folder already)
            raise ConfigError(f"the dashboard's work folder {path} is a file, not a folder; set {WORKDIR_ENV} to a "
                              "folder this server can write, and start it again")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"the dashboard's work folder {path} cannot be made ({err.strerror or err}); set "
                              f"{WORKDIR_ENV} to a folder this server can write, and start it again") from None
        return cls(path)

    @property
    def jobs(self) -> Path:
        """Training jobs (one folder each: core.jobs)."""
        return self.root / "jobs"

    @property
    def models(self) -> Path:
        """Models uploaded, and copies of a running training's best checkpoint."""
        return self.root / "models"

    @property
    def predictions(self) -> Path:
        """Each prediction's probability (``<key>.npy``), pruned when no session has shown it for long."""
        return self.root / "predictions"

    @property
    def sessions(self) -> Path:
        """What a browser reload brings back, by the URL's session id (``<id>.json``)."""
        return self.root / "sessions"

    @property
    def scenes(self) -> Path:
        """Scenes cut or downloaded for regions, by a key of their source and region."""
        return self.root / "scenes"

    @property
    def uploads(self) -> Path:
        """Images and labels uploaded on the Region page."""
        return self.root / "uploads"

    @property
    def exports(self) -> Path:
        """Earth Engine image exports read into GeoTIFFs, by a key of their mixer's path."""
        return self.root / "exports"

    @property
    def patches(self) -> Path:
        """Training and test patches cut on the Data page."""
        return self.root / "patches"

    @property
    def ee_upload(self) -> Path:
        """Predictions written for an upload to Earth Engine."""
        return self.root / "ee_upload"


def prune_scenes(work: WorkDir, age_s: float, now: float | None = None) -> list[Path]:
    """Remove the scenes (:attr:`WorkDir.scenes`) not used for ``age_s`` seconds (their folder's time,
    which the dashboard sets when it uses one), except those a training job was started on (named
    in a ``job.json`` under :attr:`WorkDir.jobs`: its Resume reads them again). Each a copy of its
    region cut from a source, up to a few hundred MB: without it they filled a long-running
    server's disk; one needed again is cut (or downloaded) again. Best effort: a folder that cannot
    be read or removed is left. Returns the folders removed."""
    return _prune_unused(work, work.scenes, age_s, now)


def prune_exports(work: WorkDir, age_s: float, now: float | None = None) -> list[Path]:
    """As :func:`prune_scenes`, for the Earth Engine image exports assembled into GeoTIFFs
    (:attr:`WorkDir.exports`, each as large as its export; the dashboard marks one used while it is
    a session's source): one needed again is assembled again from its export."""
    return _prune_unused(work, work.exports, age_s, now)


def _prune_unused(work: WorkDir, folder_of: Path, age_s: float, now: float | None) -> list[Path]:
    """Remove the folders of ``folder_of`` unchanged for ``age_s`` seconds that no job.json names."""
    import shutil
    import time

    cutoff = (time.time() if now is None else now) - age_s
    try:
        old = [p for p in folder_of.iterdir() if p.is_dir() and p.stat().st_mtime < cutoff]
    except OSError:
        return []
    if not old:
        return []
    named = ""
    for spec in work.jobs.glob(f"*/{JOB_SPEC}"):
        if spec.parent.name.startswith("."):  # (a job being deleted, or one whose deletion broke off)
            continue
        try:
            named += spec.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    removed = []
    for folder in old:
        # by the folder's name (a hash of its source and region: unique), whichever way the path was
        # written (a work folder named relative or absolute, through a link)
        if folder.name in named:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


#: the names of what a write under way keeps hidden until it is done (core.files.temp_name's ``.*.tmp``,
#: staging folders): one older than a day was left by a server killed mid-write
LEFTOVER = re.compile(r"\..*\.tmp|\.(ee-fetch|scene|upload|deleting|predict|patches|export|replaced)-.*|\..*\.save-.*")


def prune_leftovers(work: WorkDir, age_s: float, now: float | None = None) -> list[Path]:
    """Remove what writes broken off by a killed server left in the work folder, unchanged for ``age_s``
    seconds (never one under way: those take minutes): temporary files and staging folders
    (:data:`LEFTOVER`, up to three levels down), and training folders that never got their ``job.json``
    (a start killed while it split the region). Hidden and never listed, but each as large as what it
    was writing. Best effort. Returns what was removed."""
    import shutil
    import time

    cutoff = (time.time() if now is None else now) - age_s
    found = [p for depth in ("*/.*", "*/*/.*", "*/*/*/.*") for p in work.root.glob(depth) if LEFTOVER.fullmatch(p.name)]
    found += [p for p in work.jobs.glob("job-*") if p.is_dir() and not (p / JOB_SPEC).exists()]
    removed = []
    for path in found:
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed
