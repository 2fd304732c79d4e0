"""The simulator against every published target: ``linewise calibrate`` on locks of several seeds.

Simulates a PALMARES-2-sized lock (6,000 patients, the bundled configuration) for each seed, runs
:func:`linewise.simulation.calibration.calibrate` on it and its truth, prints how many targets fall
inside their ranges, and writes every target's simulated figure to
``benchmarks/results/calibration.json``. ``benchmarks/doc_tables.py`` turns that file into the table
of ``docs/simulation.md``.

Run: ``.venv/bin/python benchmarks/calibration.py [--patients 6000] [--seeds 7 11 23]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from linewise.cli_support import json_safe
from linewise.simulation.calibration import calibrate
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

RESULTS = Path(__file__).parent / "results" / "calibration.json"


def _one_seed(patients: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="linewise-calibration-") as folder:
        lock, truth = Path(folder) / "lock", Path(folder) / "truth"
        simulate_lock(patients, seed, lock, truth, load_config())
        start = time.perf_counter()
        results = calibrate(lock, truth)
        seconds = time.perf_counter() - start
    targets = [
        {key: json_safe(value) for key, value in result.to_dict().items() if key != "note"}
        for result in results
    ]
    return {
        "seed": seed,
        "calibrate_seconds": round(seconds, 1),
        "inside": sum(result.within is True for result in results),
        "outside": sum(result.within is False for result in results),
        "not_judged": sum(result.within is None for result in results),
        "targets": targets,
    }


def main() -> None:
    """Simulate, calibrate, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        run = _one_seed(args.patients, seed)
        runs.append(run)
        outside = [t["id"] for t in run["targets"] if t["within"] is False]
        print(
            f"seed {seed}: {run['inside']} inside, {run['outside']} outside"
            + (f" ({', '.join(outside)})" if outside else "")
            + f", {run['not_judged']} not judged; calibrate {run['calibrate_seconds']} s"
        )
    report = {
        "benchmark": "calibration",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"patients": args.patients},
        "seeds": args.seeds,
        "runs": runs,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
