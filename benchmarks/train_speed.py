"""How long ``linewise train`` takes on a 6,000-patient lock: selection, 20 bootstrap refits, logging.

A lock of the default scenario (6,000 patients, seed 41) is simulated once; then ``linewise train`` runs
on it ``--repeats`` times as a new process, each with a fresh MLflow store in a temporary folder and the
bundled configuration (``training/default.yaml``: three candidate settings, six learners and an ensemble
judged by their cross-fitted policy value, the winner refitted with 20 bootstrap refits, the naive twin, the
test-part assessment, the run, the model card and the registered model). The wall time of each process
is measured from outside.

Run: ``.venv/bin/python benchmarks/train_speed.py [--patients 6000] [--repeats 1]`` (about 4 minutes per
repeat on 2 cores). Writes ``benchmarks/results/train_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import numpy as np

from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

RESULTS: Final = Path(__file__).parent / "results" / "train_speed.json"
#: The issue's target (seconds).
TARGET_SECONDS: Final = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    linewise = Path(sys.executable).with_name("linewise")
    seconds, chosen = [], []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        simulate_lock(args.patients, 41, base / "lock", base / "truth", load_config())
        for repeat in range(args.repeats):
            store = base / f"store-{repeat}"
            store.mkdir()
            environment = os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}"}
            started = time.perf_counter()
            finished = subprocess.run(
                [str(linewise), "train", str(base / "lock"), "--json"],
                capture_output=True,
                text=True,
                cwd=store,
                env=environment,
                check=False,
            )
            seconds.append(time.perf_counter() - started)
            if finished.returncode != 0:
                raise SystemExit(f"linewise train failed:\n{finished.stderr[-2000:]}")
            chosen.append(json.loads(finished.stdout)["metrics"])
            print(f"repeat {repeat}: {seconds[-1]:.1f} s", flush=True)
    median = float(np.median(seconds))
    print(
        f"linewise train, {args.patients:,} patients: median {median:.1f} s "
        f"(target under {TARGET_SECONDS:.0f} s)"
    )
    result = {
        "benchmark": "train_speed",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"patients": args.patients, "repeats": args.repeats},
        "seconds": seconds,
        "median_seconds": median,
        "target_seconds": TARGET_SECONDS,
        "under_target": median < TARGET_SECONDS,
        "dr_rwpfs_rmst24_model": [m["dr_rwpfs_rmst24_model"] for m in chosen],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
