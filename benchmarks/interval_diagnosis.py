"""Why the 90% intervals miss the simulator's patient-level truth: error by option, against interval width.

Trains the default recommender (boosted Cox, IPW) on a simulated 6,000-patient lock (seed 11) and
compares, on a 2,000-patient lock (seed 12), each supported option's predicted rwPFS RMST24 with the
patient's true value (ground truth, which includes the latent frailty). For each option it prints
the mean error (predicted minus true: a bias that weighting on recorded features cannot remove when
treatment choice also depends on the latent frailty), the error's standard deviation, the mean
half-width of the 90% interval and its coverage.

Run: ``.venv/bin/python benchmarks/interval_diagnosis.py [--bootstrap 20]`` (a few minutes on 2 cores).
Writes ``benchmarks/results/interval_diagnosis.json``.
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

import numpy as np
import pandas as pd

from linewise.features import load_lock
from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES, build_examples
from linewise.models.candidates import OPTIONS, training_decisions
from linewise.models.recommender import TreatmentRecommender
from linewise.simulation.config import load_config
from linewise.simulation.simulate import TRUTH_FILE, simulate_lock
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.policy import read_truth

RESULTS = Path(__file__).parent / "results" / "interval_diagnosis.json"
MATCH = [*KEYS, "candidate", "local_therapy"]


def _table(model: TreatmentRecommender, decisions: pd.DataFrame) -> pd.DataFrame:
    predictions = model.predict_options(decisions[list(FEATURES)].to_numpy(float))
    table = decisions[list(KEYS)].loc[decisions.index.repeat(len(OPTIONS))].reset_index(drop=True)
    table["candidate"] = [o.candidate for o in OPTIONS] * len(decisions)
    table["local_therapy"] = [o.local_therapy for o in OPTIONS] * len(decisions)
    table["estimate"] = predictions.summary["pfs_rmst24"].ravel()
    table["lower"] = predictions.lower["pfs_rmst24"].ravel()
    table["upper"] = predictions.upper["pfs_rmst24"].ravel()
    table["support"] = predictions.support.ravel()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=20, help="bootstrap refits (default 20)")
    parser.add_argument("--train-patients", type=int, default=6000)
    parser.add_argument("--test-patients", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        simulate_lock(args.train_patients, 11, base / "train", base / "train_truth", load_config())
        simulate_lock(args.test_patients, 12, base / "test", base / "test_truth", load_config())
        # the key evaluate_locks derives: the same examples, in the same order, so the same model
        key = session_key(lock_digest(base / "train"))
        train = build_examples(load_lock(base / "train", key))
        test = training_decisions(build_examples(load_lock(base / "test", key)))
        truth = read_truth(base / "test_truth" / TRUTH_FILE, key)
    truth = truth[[*MATCH, "pfs_rmst24"]].rename(columns={"pfs_rmst24": "true"})
    started = time.perf_counter()
    model = TreatmentRecommender(n_bootstrap=args.bootstrap, random_state=0).fit(train)
    fit_seconds = time.perf_counter() - started
    table = _table(model, test)
    truth = truth.astype({column: table[column].dtype for column in ("line_number", "decision_day")})
    joined = table.merge(truth, on=MATCH, how="inner", validate="one_to_one")
    if len(joined) != len(table):
        raise SystemExit(f"truth matched {len(joined)} of {len(table)} rows")
    rows = joined[joined["support"]].assign(
        error=lambda f: f["estimate"] - f["true"],
        half_width=lambda f: (f["upper"] - f["lower"]) / 2.0,
        covered=lambda f: (f["lower"] <= f["true"]) & (f["true"] <= f["upper"]),
    )
    by_option = (
        rows.groupby(["candidate", "local_therapy"])
        .agg(
            rows=("error", "size"),
            mean_error=("error", "mean"),
            error_sd=("error", "std"),
            half_width=("half_width", "mean"),
            coverage=("covered", "mean"),
        )
        .reset_index()
    )
    overall = {
        "rows": len(rows),
        "mean_error": float(rows["error"].mean()),
        "error_sd": float(rows["error"].std()),
        "half_width": float(rows["half_width"].mean()),
        "coverage": float(rows["covered"].mean()),
        # the smallest half-width that covers at least 90%, as interval_half_width_needed_90
        "half_width_needed_for_90": float(np.quantile(rows["error"].abs(), 0.9, method="inverted_cdf")),
    }
    print(f"fit {fit_seconds:.1f} s; rwPFS RMST24 of supported options, predicted minus true (months):")
    print(by_option.round(3).to_string(index=False))
    print("overall:", json.dumps({k: round(v, 3) for k, v in overall.items()}))
    result: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"train_patients": args.train_patients, "test_patients": args.test_patients},
        "seeds": {"train": 11, "test": 12, "model": 0},
        "n_bootstrap": args.bootstrap,
        "fit_seconds": fit_seconds,
        "overall": overall,
        "by_option": by_option.to_dict("records"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
