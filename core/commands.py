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
    link to the system's, whose libraries differ. Never raises."""
    exe = os.path.abspath(executable or sys.executable)
    try:
        here = Path(os.path.abspath(cwd or os.getcwd()))
    except OSError:  # (the current folder removed meanwhile: the whole path, after the work is done)
        return shlex.quote(exe)
    on_path = shutil.which("python")
    if on_path and os.path.abspath(on_path) == exe:
        return "python"
    try:
        relative = str(Path(exe).relative_to(here))
    except ValueError:
        return shlex.quote(exe)
    # (a name without a folder is looked up on the PATH, another Python: ./python3 is this one)
    return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")


def missing_module_advice(err: ModuleNotFoundError, executable: str | None = None,
                          prefix: str | None = None) -> str | None:
    """One line for a library missing from the Python that runs a command (``executable``, default
    ``sys.executable``; ``prefix``: its environment, default ``sys.prefix``): the project's own
    ``.venv`` lacking it (a failed install) is told to install the requirements, another Python to
    run the project's. None for a module of the project itself (``core``: a bug, whose traceback counts).
    Never raises."""
    name = err.name or ""
    if name == "core" or name.startswith("core."):
        return None
    env = Path(os.path.abspath(prefix or sys.prefix))
    if env.name == ".venv" and (env.parent / "core" / "__main__.py").is_file():
        return f"{err}: the project's .venv lacks it; install the requirements again (make venv, or .venv/bin/python -m pip install -r requirements.txt)"
    return (f"{err} in this Python ({python_command(executable)}); run the command with the project's Python: "
            ".venv/bin/python -m core ... (make venv creates .venv)")


def core_command(*words: str) -> str:
    """``python -m core WORDS...`` as :func:`python_command` names the Python; ``words`` are put in as
    they are (quote paths with :func:`shlex.quote`). Never raises."""
    return " ".join([python_command(), "-m", "core", *words])
