"""How the recommender's figures depend on what the lock does not record: a sweep of the latent frailty.

The simulator gives every patient a latent frailty (log time, ``patients.frailty_sd``, default 0.5)
that shortens or lengthens every episode and that the simulated clinicians also act on (unmeasured
confounding); the lock never records it. The models issue's targets for the C-index (within 0.03 of
the true risk's) and for the 90% intervals (cover the patient's true value 85-95% of the time) are
measured against a truth that includes it. This benchmark reruns the default recommender (boosted
Cox, IPW, 20 bootstrap refits, model seed 0) on locks simulated with other frailty standard
deviations, everything else in the default configuration, and prints for each:

- capture of rwPFS RMST24 and the naive model's;
- Harrell's C of rwPFS, the true risk's C, and the C of a regression fitted to the training lock's
  true RMST24 with the recorded features only (what the lock can carry at all);
- the intervals' coverage of the patient's true rwPFS RMST24, their mean half-width, the error's
  mean and standard deviation, and the half-width that would cover 90% of the errors.

Run: ``.venv/bin/python benchmarks/frailty_sensitivity.py [--frailty-sd 0 0.25 0.5]`` (about 4
minutes per value on 2 cores). Writes ``benchmarks/results/frailty_sensitivity.json``.
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

import pandas as pd
from recommender import feature_oracle_c_index

from features import load_lock
from features.examples import build_examples
from models.recommender import training_decisions
from simulation.config import SimulationConfig, load_config
from simulation.simulate import TRUTH_FILE, simulate_lock
from training.lock_digest import lock_digest, session_key
from training.policy import evaluate_locks

RESULTS = Path(__file__).parent / "results" / "frailty_sensitivity.json"
FIGURES = (
    "capture_rwpfs_rmst24",
    "naive_capture_rwpfs_rmst24",
    "c_index_rwpfs",
    "c_index_true_risk",
    "interval_coverage_90",
    "interval_width_mean_rwpfs_rmst24",
    "interval_error_mean_rwpfs_rmst24",
    "interval_error_sd_rwpfs_rmst24",
    "interval_half_width_needed_90_rwpfs_rmst24",
    "interval_coverage_90_vs_tbp_rwpfs_rmst24",
)


def with_frailty(config: SimulationConfig, frailty_sd: float) -> SimulationConfig:
    """Return ``config`` with another latent frailty standard deviation."""
    patients = config.patients.model_copy(update={"frailty_sd": frailty_sd})
    return config.model_copy(update={"patients": patients})


def sweep_point(frailty_sd: float, args: argparse.Namespace) -> dict[str, Any]:
    """Simulate both locks with ``frailty_sd`` and return the recommender's figures on them."""
    config = with_frailty(load_config(), frailty_sd)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        simulate_lock(args.train_patients, 11, base / "train", base / "train_truth", config)
        simulate_lock(args.test_patients, 12, base / "test", base / "test_truth", config)
        started = time.perf_counter()
        figures = evaluate_locks(
            base / "train",
            base / "test",
            base / "test_truth" / TRUTH_FILE,
            family="boosted_cox",
            n_bootstrap=args.bootstrap,
            random_state=0,
        )
        seconds = time.perf_counter() - started
        key = session_key(lock_digest(base / "train"))
        train = build_examples(load_lock(base / "train", key))
        test = training_decisions(build_examples(load_lock(base / "test", key)))
        train_truth = pd.read_parquet(base / "train_truth" / TRUTH_FILE)
        ceiling = feature_oracle_c_index(train, test, train_truth, key)
    # the interval figures are named without their endpoint suffix here: all are rwPFS RMST24
    point = {
        name.removesuffix("_rwpfs_rmst24") if name.startswith("interval") else name: float(figures[name])
        for name in FIGURES
    }
    point["c_index_feature_oracle_rwpfs"] = ceiling
    point["c_index_gap"] = point["c_index_true_risk"] - point["c_index_rwpfs"]
    point["evaluation_seconds"] = round(seconds, 1)
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frailty-sd", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--train-patients", type=int, default=6000)
    parser.add_argument("--test-patients", type=int, default=2000)
    args = parser.parse_args()
    points = {}
    for frailty_sd in args.frailty_sd:
        points[str(frailty_sd)] = point = sweep_point(frailty_sd, args)
        print(f"\nfrailty sd {frailty_sd} ({point['evaluation_seconds']} s)")
        for name, value in point.items():
            print(f"  {name:34s} {value:.3f}")
    header = f"{'frailty sd':>10} {'capture':>8} {'naive':>6} {'C':>6} {'C true':>7} {'C ceil':>7} "
    header += f"{'cover':>6} {'half':>5} {'err sd':>6} {'needed':>6}"
    print("\n" + header)
    for frailty_sd, p in points.items():
        print(
            f"{frailty_sd:>10} {p['capture_rwpfs_rmst24']:8.3f} {p['naive_capture_rwpfs_rmst24']:6.3f} "
            f"{p['c_index_rwpfs']:6.3f} {p['c_index_true_risk']:7.3f} "
            f"{p['c_index_feature_oracle_rwpfs']:7.3f} "
            f"{p['interval_coverage_90']:6.3f} {p['interval_width_mean'] / 2:5.2f} "
            f"{p['interval_error_sd']:6.2f} {p['interval_half_width_needed_90']:6.2f}"
        )
    result = {
        "benchmark": "frailty_sensitivity",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"train_patients": args.train_patients, "test_patients": args.test_patients},
        "seeds": {"train": 11, "test": 12, "model": 0},
        "n_bootstrap": args.bootstrap,
        "points": points,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
