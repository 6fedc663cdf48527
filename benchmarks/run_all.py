"""Run every benchmark one after another (a quiet machine gives comparable ratios), then print the
core section of RESULTS.md.

    python benchmarks/run_all.py [--skip-schedule]

The preset schedule (light and seed trained for the same short schedule) trained for 20 minutes in the last run
(RESULTS.md), more with its evaluation;
the rest about 15.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True, cwd=HERE.parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])  # (--help, or a typo, runs nothing)
    parser.add_argument("--skip-schedule", action="store_true",
                        help="leave out the preset schedule (light and seed trained alike, 20 minutes of training in the last run)")
    args = parser.parse_args(argv)
    run(str(HERE / "bench_presets.py"), "--only", "throughput")
    if not args.skip_schedule:
        run(str(HERE / "bench_presets.py"), "--only", "schedule")
    run(str(HERE / "bench_predict.py"))
    run(str(HERE / "bench_backdrop.py"))
    run(str(HERE / "bench_views.py"))
    run(str(HERE / "bench_parse.py"))
    run(str(HERE / "bench_train_input.py"))
    run(str(HERE / "bench_fields.py"))
    run(str(HERE / "bench_burn.py"))
    run(str(HERE / "bench_memory.py"))
    run(str(HERE / "bench_evaluate.py"))
    run(str(HERE / "bench_stack.py"))
    run(str(HERE / "bench_exports.py"))
    run(str(HERE / "bench_layers.py"))
    run(str(HERE / "bench_data_page.py"))
    run(str(HERE / "bench_predict_quality.py"))
    run(str(HERE / "bench_ee.py"))
    run(str(HERE / "bench_ui.py"))
    run(str(HERE / "bench_rerun.py"))
    run(str(HERE / "report.py"))


if __name__ == "__main__":
    main()
