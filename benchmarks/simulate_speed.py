"""How long ``simulate_lock`` takes, stage by stage, with its peak memory, for small and large locks.

Each size runs in a fresh subprocess so that peak RSS belongs to that size alone. Prints the figures
and writes them to ``benchmarks/results/simulate_speed.json``, keeping earlier rows of other sizes.

Run: ``.venv/bin/python benchmarks/simulate_speed.py --patients 6000 100000``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "simulate_speed.json"


def _one_run(patients: int, seed: int) -> dict[str, object]:
    """Simulate once in this process and return the timings (called in a subprocess)."""
    from linewise.simulation.config import load_config
    from linewise.simulation.simulate import simulate_lock

    stages: dict[str, float] = {}
    started: dict[str, float] = {}

    def on_stage(name: str) -> None:
        now = time.perf_counter()
        for previous, began in started.items():
            stages.setdefault(previous, round(now - began, 3))
        started[name] = now

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        summary = simulate_lock(
            patients, seed, Path(folder) / "lock", Path(folder) / "truth", load_config(), on_stage=on_stage
        )
        total = time.perf_counter() - start
        for previous, began in started.items():
            stages.setdefault(previous, round(time.perf_counter() - began, 3))
    return {
        "seconds": round(total, 3),
        "stages": stages,
        "rows": summary.rows,
        "truth_rows": summary.truth_rows,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[6000])
    parser.add_argument("--repeats", type=int, default=3, help="runs per size (seeds 1..repeats)")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one_run(*args.child)))
        return
    rows = []
    for patients in args.patients:
        runs = []
        for seed in range(1, args.repeats + 1):
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(patients), str(seed)],
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
        row = {
            "patients": patients,
            "runs": len(runs),
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs),
            "median_stage_seconds": {
                stage: statistics.median(r["stages"][stage] for r in runs) for stage in runs[0]["stages"]
            },
            "truth_rows": runs[0]["truth_rows"],
            "lock_rows": runs[0]["rows"],
        }
        rows.append(row)
        print(
            f"{patients:>7} patients: median {row['median_seconds']:.1f} s over {len(runs)} runs, "
            f"peak RSS {row['peak_rss_mib_max']:.0f} MiB, stages {row['median_stage_seconds']}"
        )
    measured = {row["patients"] for row in rows}
    if RESULTS.is_file():  # keep earlier sizes measured separately (a 100,000-patient run takes minutes)
        earlier = json.loads(RESULTS.read_text()).get("results", [])
        rows = sorted(
            [r for r in earlier if r["patients"] not in measured] + rows, key=lambda r: r["patients"]
        )
    report = {
        "benchmark": "simulate_speed",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "targets": {"6000_patients_seconds": 20, "100000_patients_seconds": 300},
        "results": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
