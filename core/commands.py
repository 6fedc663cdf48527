"""How the command line names its own commands in the next steps it prints, so that they can be
copied and run as they are."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def python_command(executable: str | None = None, cwd: str | os.PathLike | None = None) -> str:
    """The Python that runs this command (``executable``, default ``sys.executable``), as a shell in
    ``cwd`` (default: the current folder) would run it: ``python`` where that is the one on the PATH
    (an activated virtual environment), a path relative to ``cwd`` where it lies under it (the project's
    ``.venv/bin/python``), else its whole path. Not resolved: a virtual environment's ``python`` is a
    link to the system's, whose libraries differ."""
    exe = os.path.abspath(executable or sys.executable)
    here = Path(os.path.abspath(cwd or os.getcwd()))
    on_path = shutil.which("python")
    if on_path and os.path.abspath(on_path) == exe:
        return "python"
    try:
        return shlex.quote(str(Path(exe).relative_to(here)))
    except ValueError:
        return shlex.quote(exe)


def core_command(*words: str) -> str:
    """``python -m core WORDS...`` as :func:`python_command` names the Python; ``words`` are put in as
    they are (quote paths with :func:`shlex.quote`)."""
    return " ".join([python_command(), "-m", "core", *words])
