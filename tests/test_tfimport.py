"""core.tfimport: TensorFlow's start-up notices stay out of the CLI's stderr, nothing else does."""

import subprocess
import sys

from testdata import ROOT


def _stderr(code: str) -> str:
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stderr


def test_notices_dropped_other_output_kept():
    plain = _stderr("import keras")  # what a plain import prints (the reason for the module)
    quiet = _stderr("from core.tfimport import import_tensorflow; import_tensorflow(); import sys; "
                    "print('after', file=sys.stderr)")
    assert quiet == "after\n"
    # something else written during the import still reaches the user: shown with the oneDNN notice, which
    # TensorFlow prints on CPUs where it turns oneDNN on (AVX-512 here before; an AVX2 machine prints none)
    kept = _stderr("import os, sys; from core import tfimport; tfimport.NOTICES = tfimport.NOTICES[:1]; "
                   "tfimport.import_tensorflow()")
    assert ("oneDNN" in kept) == ("oneDNN" in plain) and "absl::InitializeLog" not in kept
