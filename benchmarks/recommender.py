"""The recommender against ground truth, and how fast it fits and scores: the figures of the models issue.

Simulates a 6,000-patient training lock (seed 11) and a 2,000-patient test lock with its truth
(seed 12; both seeds differ from the lock used to choose the design), then:

0. the test truth's OS is estimated from ``--test-os-draws`` Monte Carlo courses per decision and
   option (default 1,024) instead of the simulator's default 16, whose noise (standard error about
   1.5 months per option) is larger than the true differences between options; the lock and the
   rwPFS truth do not depend on it (they come from other random streams);

1. runs :func:`linewise.training.policy.evaluate_locks` (the figures of ``linewise evaluate-policy --json``,
   adjusted and naive) for boosted Cox with each model seed of ``--seeds`` (default 0, 1, 2: capture
   moves by a few hundredths with the seed, so the checks use the mean) and for the forest once;
2. times fitting the propensity model and both families' rwPFS and OS models on the training examples
   (no bootstrap), and, apart, the default recommender with its bootstrap replicates;
3. times scoring and explaining every option of one decision, for 200 test decisions;
4. fits a regression to the training lock's *true* rwPFS RMST24 and reports its C-index on the test
   outcomes: the most the recorded features can reach, beside the C-index of the true risk.

Prints the figures and writes them, with the machine and the targets, to
``benchmarks/results/recommender.json``.

Run: ``.venv/bin/python benchmarks/recommender.py`` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from linewise.cli_support import json_safe
from linewise.features import load_lock
from linewise.features.examples import FEATURES, build_examples
from linewise.models.candidates import option_index, training_decisions
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.recommender import TreatmentRecommender
from linewise.models.truth_ceiling import feature_ceiling_c_index
from linewise.simulation.config import SimulationConfig, load_config
from linewise.simulation.simulate import TRUTH_FILE, simulate_lock
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.policy import evaluate_locks, read_truth

RESULTS = Path(__file__).parent / "results" / "recommender.json"
COVERAGE_RANGE: tuple[float, float] = (0.85, 0.95)
TARGETS: dict[str, Any] = {
    "capture_rwpfs_rmst24_min": 0.6,
    "interval_coverage_90_range": list(COVERAGE_RANGE),
    "c_index_gap_max": 0.03,
    "fit_seconds_max": 60.0,
    "score_and_explain_ms_max": 50.0,
}
HEADLINE = (
    "capture_rwpfs_rmst24",
    "naive_capture_rwpfs_rmst24",
    "value_model_rwpfs_rmst24",
    "value_observed_rwpfs_rmst24",
    "value_oracle_rwpfs_rmst24",
    "value_always_tbp_rwpfs_rmst24",
    "value_best_single_rwpfs_rmst24",
    "tbp_switch_agreement_rwpfs_rmst24",
    "rank_correlation_rwpfs_rmst24",
    "interval_coverage_90",
    "c_index_rwpfs",
    "c_index_true_risk",
    "capture_os_rmst24",
    "naive_capture_os_rmst24",
    "value_model_os_rmst24",
    "naive_value_model_os_rmst24",
    "value_observed_os_rmst24",
    "value_oracle_os_rmst24",
    "value_best_single_os_rmst24",
    "rank_correlation_within_os_rmst24",
    "naive_rank_correlation_within_os_rmst24",
    "truth_spread_os_rmst24",
    "truth_standard_error_os_rmst24",
    "truth_signal_spread_os_rmst24",
)


def _checks(figures: dict[str, Any]) -> dict[str, bool]:
    low, high = COVERAGE_RANGE
    return {
        "capture_at_least_0.6": figures["capture_rwpfs_rmst24"] >= TARGETS["capture_rwpfs_rmst24_min"],
        "capture_above_naive": figures["capture_rwpfs_rmst24"] > figures["naive_capture_rwpfs_rmst24"],
        "coverage_85_to_95": low <= figures["interval_coverage_90"] <= high,
        "c_index_within_0.03_of_true_risk": abs(figures["c_index_rwpfs"] - figures["c_index_true_risk"])
        <= TARGETS["c_index_gap_max"],
    }


def _fit_seconds(train: Any, repeats: int) -> dict[str, float]:
    decisions = training_decisions(train)
    X = decisions[list(FEATURES)].to_numpy(float)
    observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
    times: dict[str, list[float]] = {"propensity": [], "boosted_cox": [], "random_survival_forest": []}
    for _ in range(repeats):
        start = time.perf_counter()
        OptionPropensityModel().fit(X, observed)
        times["propensity"].append(time.perf_counter() - start)
        for family in ("boosted_cox", "random_survival_forest"):
            start = time.perf_counter()
            TreatmentRecommender(family, n_bootstrap=0).fit(train)
            times[family].append(time.perf_counter() - start)
    return {name: round(statistics.median(values), 2) for name, values in times.items()}


def main() -> None:
    """Simulate, evaluate, time, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-patients", type=int, default=6000)
    parser.add_argument("--test-patients", type=int, default=2000)
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--forest-bootstrap", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--test-os-draws", type=int, default=1024, help="Monte Carlo courses behind the test truth's OS"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="model seeds of the boosted Cox evaluation"
    )
    args = parser.parse_args()
    config = load_config()
    try:  # validated like a YAML file would be (1 to 4,096 courses)
        test_config = SimulationConfig.model_validate(
            {**config.model_dump(), "truth": {"os_draws": args.test_os_draws}}
        )
    except ValidationError as err:
        parser.error(f"--test-os-draws: {err.errors()[0]['msg']}")
    report: dict[str, Any] = {
        "benchmark": "recommender",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {
            "train_patients": args.train_patients,
            "test_patients": args.test_patients,
            "test_truth_os_draws": args.test_os_draws,
        },
        "seeds": {"train": 11, "test": 12},
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        simulate_lock(args.train_patients, 11, base / "train", base / "train-truth", config)
        simulate_lock(args.test_patients, 12, base / "test", base / "test-truth", test_config)
        evaluations: dict[str, Any] = {}
        runs = [("boosted_cox", args.bootstrap, seed) for seed in args.seeds]
        runs.append(("random_survival_forest", args.forest_bootstrap, args.seeds[0]))
        for family, bootstrap, seed in runs:
            start = time.perf_counter()
            truth = base / "test-truth" / TRUTH_FILE
            figures = evaluate_locks(
                base / "train", base / "test", truth, family=family, n_bootstrap=bootstrap, random_state=seed
            )
            figures["evaluation_seconds"] = round(time.perf_counter() - start, 1)
            figures["checks"] = _checks(figures)
            evaluations[f"{family}_seed{seed}"] = figures
            print(f"\n{family} (bootstrap {bootstrap}, model seed {seed}), {figures['evaluation_seconds']} s")
            for name in HEADLINE:
                print(f"  {name:38s} {figures[name]:.3f}")
            for name, passed in figures["checks"].items():
                print(f"  {name:38s} {'pass' if passed else 'FAIL'}")
        cox = [evaluations[f"boosted_cox_seed{seed}"] for seed in args.seeds]
        mean = {name: float(np.mean([f[name] for f in cox])) for name in HEADLINE}
        spread = (
            {name: float(np.std([f[name] for f in cox], ddof=1)) for name in HEADLINE} if len(cox) > 1 else {}
        )
        report["boosted_cox_over_seeds"] = {
            "seeds": args.seeds,
            "mean": mean,
            "sd": spread,
            "checks": _checks(mean),
        }
        print(f"\nboosted_cox over model seeds {args.seeds}: mean (sd)")
        for name in HEADLINE:
            print(f"  {name:38s} {mean[name]:.3f} ({spread.get(name, float('nan')):.3f})")
        for name, passed in _checks(mean).items():
            print(f"  {name:38s} {'pass' if passed else 'FAIL'}")
        report["evaluation"] = evaluations
        key = session_key(lock_digest(base / "train"))  # evaluate_locks' key: the same examples
        train = build_examples(load_lock(base / "train", key))
        test = training_decisions(build_examples(load_lock(base / "test", key)))
        oracle = feature_ceiling_c_index(train, test, read_truth(base / "train-truth" / TRUTH_FILE, key))
        report["c_index_feature_oracle_rwpfs"] = round(oracle, 4)
        print(f"\nC-index of a regression fitted to the true RMST24 (recorded features only): {oracle:.3f}")
    fit = _fit_seconds(train, args.repeats)
    fit["total_propensity_and_both_families"] = round(
        fit["propensity"] + fit["boosted_cox"] + fit["random_survival_forest"], 2
    )
    start = time.perf_counter()
    default = TreatmentRecommender(n_bootstrap=args.bootstrap).fit(train)
    fit[f"boosted_cox_with_{args.bootstrap}_bootstrap_refits"] = round(time.perf_counter() - start, 2)
    report["fit_seconds"] = fit
    print(f"\nfit seconds (median of {args.repeats}): {fit}")
    X = test[list(FEATURES)].to_numpy(float)[:200]
    latency: dict[str, dict[str, float]] = {}
    forest = TreatmentRecommender("random_survival_forest", n_bootstrap=args.forest_bootstrap).fit(train)
    for name, model in (("boosted_cox", default), ("random_survival_forest", forest)):
        model.explain(X[0], model.predict_options(X[:1]))  # warm
        timings = []
        for row in X:
            start = time.perf_counter()
            model.explain(row, model.predict_options(row[None, :]))
            timings.append(time.perf_counter() - start)
        latency[name] = {
            "decisions": len(timings),
            "median_ms": round(1000 * statistics.median(timings), 1),
            "p95_ms": round(1000 * float(np.quantile(timings, 0.95)), 1),
        }
        print(f"score + explain one decision, {name}: {latency[name]}")
    report["score_and_explain"] = latency
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(json_safe(report), indent=2, default=_plain) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__}")


if __name__ == "__main__":
    main()
