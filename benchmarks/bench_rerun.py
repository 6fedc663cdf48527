"""Server time of one Predict-page rerun after a threshold change, without a browser (Streamlit's
AppTest): the whole sample scene, the shipped model, eight threshold values. Prints one JSON line.

    .venv/bin/python benchmarks/bench_rerun.py [REPOSITORY]   # default: this one

Give another checkout (e.g. a ``git worktree`` of an earlier commit, with ``.venv`` linked) to compare.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    os.chdir(root)
    sys.path[:0] = [str(root), str(root / "tests")]
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as work:
        os.environ["CROPMAP_WORKDIR"] = work
        at = AppTest.from_file(str(root / "app.py"), default_timeout=600)
        at.session_state["model_path"] = str(root / "assets" / "models" / "crop_unet_light.keras")
        at.switch_page("pages/predict.py").run()
        at.button[0].click().run()  # Predict (the whole sample is the default region)
        times = []
        for value in (0.45, 0.55, 0.40, 0.60, 0.35, 0.65, 0.30, 0.70):
            at.slider(key="w_threshold").set_value(value)
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
        if at.exception:
            raise SystemExit(f"the page failed: {at.exception}")
    times.sort()
    print(json.dumps({"repository": str(root), "rerun_median_s": round(times[len(times) // 2], 3),
                      "rerun_min_s": round(times[0], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
