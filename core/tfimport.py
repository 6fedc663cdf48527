"""Import TensorFlow and Keras without their start-up notices.

TensorFlow 2.21 writes two notices to stderr when it loads ("WARNING: All log messages before
absl::InitializeLog() ..." and "oneDNN custom operations are on ..."), before its logging is set up,
so ``TF_CPP_MIN_LOG_LEVEL`` does not hide them. In the CLI they would turn a one-line error into
five lines. :func:`import_tensorflow` loads TensorFlow with file descriptor 2 captured and passes on
everything else that was written (a real import problem still shows).
"""

from __future__ import annotations

import os
import sys
import tempfile

#: Start-up lines dropped (substrings); everything else written during the import is passed on.
NOTICES = ("All log messages before absl::InitializeLog() is called", "oneDNN custom operations are on")


def import_tensorflow():
    """Import ``tensorflow`` and ``keras`` (once), dropping only :data:`NOTICES` from stderr;
    returns the ``tensorflow`` module.

    Raises:
        ImportError: as the plain import would.
    """
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not any(n in line for n in NOTICES)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
    return tensorflow
