"""How the recommender's figures depend on what the lock does not record: a sweep of the latent frailty.

The simulator gives every patient a latent frailty (log time, ``patients.frailty_sd``, default 0.5)
that shortens or lengthens every episode and that the simulated clinicians also act on (unmeasured
confounding); the lock never records it. The models issue's targets for the C-index (within 0.03 of
the true risk's) and for the 90% intervals (cover the patient's true value 85-95% of the time) are
measured against a truth that includes it. This benchmark reruns the default recommender (boosted
Cox, IPW, 20 bootstrap refits) on locks simulated with other frailty standard
deviations, everything else in the default configuration, with model seeds 0, 1 and 2 (capture
moves by a few hundredths with the seed), and prints for each the mean and SD over seeds of:

- capture of rwPFS RMST24 and the naive model's;
- Harrell's C of rwPFS, the true risk's C, and the C of a regression fitted to the training lock's
  true RMST24 with the recorded features only (:mod:`linewise.models.truth_ceiling`: a lower bound on what the
  recorded features can carry);
- the intervals' coverage of the patient's true rwPFS RMST24, their mean half-width, the error's
  mean and standard deviation, the half-width that would cover 90% of the errors, and the coverage of
  the intervals of the differences from TBP.

Run: ``.venv/bin/python benchmarks/frailty_sensitivity.py [--frailty-sd 0 0.25 0.5] [--seeds 0 1 2]``
(about 6 minutes per frailty value on 2 cores). Writes ``benchmarks/results/frailty_sensitivity.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from linewise.cli_support import json_safe
from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.models.truth_ceiling import feature_ceiling_c_index
from linewise.simulation.config import SimulationConfig, load_config
from linewise.simulation.simulate import TRUTH_FILE, simulate_lock
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.policy import evaluate_locks, read_truth

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


def _figures(figures: dict[str, Any]) -> dict[str, float]:
    # the interval figures are named without their endpoint suffix here: all are rwPFS RMST24
    return {
        name.removesuffix("_rwpfs_rmst24") if name.startswith("interval") else name: float(figures[name])
        for name in FIGURES
    }


def sweep_point(frailty_sd: float, args: argparse.Namespace) -> dict[str, Any]:
    """Simulate both locks with ``frailty_sd``; return the figures of each model seed, their mean and SD."""
    config = with_frailty(load_config(), frailty_sd)
    by_seed: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        simulate_lock(args.train_patients, 11, base / "train", base / "train_truth", config)
        simulate_lock(args.test_patients, 12, base / "test", base / "test_truth", config)
        for seed in args.seeds:
            started = time.perf_counter()
            figures = evaluate_locks(
                base / "train",
                base / "test",
                base / "test_truth" / TRUTH_FILE,
                family="boosted_cox",
                n_bootstrap=args.bootstrap,
                random_state=seed,
            )
            by_seed[str(seed)] = _figures(figures) | {"evaluation_seconds": time.perf_counter() - started}
        key = session_key(lock_digest(base / "train"))
        train = build_examples(load_lock(base / "train", key))
        test = build_examples(load_lock(base / "test", key))
        ceiling = feature_ceiling_c_index(train, test, read_truth(base / "train_truth" / TRUTH_FILE, key))
    names = list(next(iter(by_seed.values())))
    mean = {name: float(np.mean([f[name] for f in by_seed.values()])) for name in names}
    spread = {
        name: float(np.std([f[name] for f in by_seed.values()], ddof=1)) if len(by_seed) > 1 else math.nan
        for name in names
    }
    mean["c_index_feature_ceiling_rwpfs"] = ceiling
    mean["c_index_gap"] = mean["c_index_true_risk"] - mean["c_index_rwpfs"]
    return {"mean": mean, "sd": spread, "by_model_seed": by_seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frailty-sd", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="model seeds (default 0 1 2)")
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--train-patients", type=int, default=6000)
    parser.add_argument("--test-patients", type=int, default=2000)
    args = parser.parse_args()
    points = {}
    for frailty_sd in args.frailty_sd:
        points[str(frailty_sd)] = point = sweep_point(frailty_sd, args)
        print(f"\nfrailty sd {frailty_sd}, mean (sd) over model seeds {args.seeds}")
        for name, value in point["mean"].items():
            print(f"  {name:34s} {value:.3f} ({point['sd'].get(name, math.nan):.3f})")
    header = f"{'frailty sd':>10} {'capture':>8} {'naive':>6} {'C':>6} {'C true':>7} {'C ceil':>7} "
    header += f"{'cover':>6} {'half':>5} {'err sd':>6} {'needed':>6} {'cover vs TBP':>12}"
    print(f"\nmeans over model seeds {args.seeds}\n" + header)
    for frailty_sd, point in points.items():
        m = point["mean"]
        print(
            f"{frailty_sd:>10} {m['capture_rwpfs_rmst24']:8.3f} {m['naive_capture_rwpfs_rmst24']:6.3f} "
            f"{m['c_index_rwpfs']:6.3f} {m['c_index_true_risk']:7.3f} "
            f"{m['c_index_feature_ceiling_rwpfs']:7.3f} "
            f"{m['interval_coverage_90']:6.3f} {m['interval_width_mean'] / 2:5.2f} "
            f"{m['interval_error_sd']:6.2f} {m['interval_half_width_needed_90']:6.2f} "
            f"{m['interval_coverage_90_vs_tbp']:12.3f}"
        )
    result = {
        "benchmark": "frailty_sensitivity",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"train_patients": args.train_patients, "test_patients": args.test_patients},
        "seeds": {"train": 11, "test": 12, "model": args.seeds},
        "n_bootstrap": args.bootstrap,
        "points": points,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
