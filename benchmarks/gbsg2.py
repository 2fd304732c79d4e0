"""The survival families on real data: GBSG2, with the candidate settings of ``training/default.yaml``.

GBSG2 (German Breast Cancer Study Group 2, shipped by scikit-survival: 686 patients, 8 features,
recurrence-free survival) has no choice of options in linewise's sense, so the policy-value selection of
``linewise train`` cannot run on it: what it can show is whether the outcome families and settings that
the selection chooses among are sound prognostic models on data that linewise was not designed on. For
each of 5 splits (70/30, stratified by the event), every candidate setting of the bundled training
configuration, and the families' class defaults beside them, are fitted on the 70% (times in months, the
categorical features one-hot encoded, no weights) and judged on the 30%:

- Harrell's C of the predicted risk (scikit-survival's ``concordance_index_censored``);
- the integrated Brier score from 6 to 36 months (scikit-survival's ``integrated_brier_score``, censoring
  weights from the training part), and the same of the training part's Kaplan-Meier curve given to every
  patient (the reference a model must beat).

Run: ``.venv/bin/python benchmarks/gbsg2.py`` (about a minute on 2 cores). Writes
``benchmarks/results/gbsg2.json`` with the per-split figures, their means and the fit times.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit
from sksurv.datasets import load_gbsg2
from sksurv.metrics import concordance_index_censored, integrated_brier_score
from sksurv.nonparametric import kaplan_meier_estimator

from linewise.cli_support import json_safe
from linewise.models.recommender import family_model
from linewise.models.target import make_target
from linewise.training.config import load_training_config

RESULTS: Final = Path(__file__).parent / "results" / "gbsg2.json"
DAYS_PER_MONTH: Final = 365.25 / 12
SPLITS: Final = 5
TEST_SIZE: Final = 0.3
#: Times of the integrated Brier score (months): every grid time from 6 to 36.
BRIER_TIMES: Final = np.arange(6.0, 36.0 + 1e-9, 0.5)


def gbsg2() -> tuple[np.ndarray, np.ndarray]:
    """Return GBSG2's design (categories one-hot, numbers as they are) and its target in months."""
    X, y = load_gbsg2()
    design = pd.get_dummies(X, columns=["horTh", "menostat", "tgrade"], drop_first=True, dtype=float)
    return design.to_numpy(float), make_target(y["time"] / DAYS_PER_MONTH, y["cens"])


def settings() -> dict[str, tuple[str, dict[str, Any]]]:
    """The candidate settings of the bundled configuration, then each family's class defaults."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for index, candidate in enumerate(load_training_config().selection.candidates):
        out[f"candidate {index}: {candidate.family}"] = (candidate.family, dict(candidate.params))
    out["class defaults: boosted_cox"] = ("boosted_cox", {})
    out["class defaults: random_survival_forest"] = ("random_survival_forest", {})
    return out


def judge(
    family: str, params: dict[str, Any], X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    """Fit one setting on ``train`` and return its Harrell's C and integrated Brier score on ``test``."""
    started = time.perf_counter()
    model = family_model(family, params, 0).fit(X[train], y[train])
    seconds = time.perf_counter() - started
    grid = model.time_grid_
    columns = np.searchsorted(grid, BRIER_TIMES)
    survival = model.predict_survival_function(X[test])[:, columns]
    y_test, y_train = y[test], y[train]
    harrell = concordance_index_censored(y_test["event"], y_test["time"], model.predict(X[test]))[0]
    ibs = integrated_brier_score(_sksurv(y_train), _sksurv(y_test), survival, BRIER_TIMES)
    rounds = getattr(model, "n_estimators_", None)
    return {"c_index": float(harrell), "ibs": float(ibs), "fit_seconds": seconds, "rounds": rounds}


def kaplan_meier_ibs(y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Integrated Brier score of the training part's Kaplan-Meier curve, the same for every test patient."""
    times, curve = kaplan_meier_estimator(y[train]["event"], y[train]["time"])
    at = curve[np.maximum(np.searchsorted(times, BRIER_TIMES, side="right") - 1, 0)]
    at = np.where(times[0] > BRIER_TIMES, 1.0, at)
    survival = np.tile(at, (len(test), 1))
    return float(integrated_brier_score(_sksurv(y[train]), _sksurv(y[test]), survival, BRIER_TIMES))


def _sksurv(y: np.ndarray) -> np.ndarray:
    """The target with scikit-survival's field order (event, time)."""
    return np.asarray(y[["event", "time"]])


def main() -> None:
    X, y = gbsg2()
    splitter = StratifiedShuffleSplit(n_splits=SPLITS, test_size=TEST_SIZE, random_state=0)
    per_split: list[dict[str, Any]] = []
    for index, (train, test) in enumerate(splitter.split(X, y["event"])):
        if y[test]["time"].max() <= BRIER_TIMES[-1]:
            raise SystemExit("a test part ends before 36 months")
        figures = {
            name: judge(family, params, X, y, train, test) for name, (family, params) in settings().items()
        }
        per_split.append(
            {"split": index, "kaplan_meier_ibs": kaplan_meier_ibs(y, train, test), "settings": figures}
        )
    names = list(per_split[0]["settings"])
    summary = {
        name: {
            "c_index": float(np.mean([s["settings"][name]["c_index"] for s in per_split])),
            "ibs": float(np.mean([s["settings"][name]["ibs"] for s in per_split])),
            "fit_seconds": float(np.median([s["settings"][name]["fit_seconds"] for s in per_split])),
            "params": settings()[name][1],
        }
        for name in names
    }
    km = float(np.mean([s["kaplan_meier_ibs"] for s in per_split]))
    print(f"GBSG2, {SPLITS} stratified {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} splits; Kaplan-Meier IBS {km:.4f}")
    for name, entry in summary.items():
        print(
            f"  {name:42s} C {entry['c_index']:.3f}  IBS {entry['ibs']:.4f}  fit {entry['fit_seconds']:.2f} s"
        )
    result = {
        "benchmark": "gbsg2",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"patients": len(y), "splits": SPLITS, "test_fraction": TEST_SIZE},
        "brier_times": [float(BRIER_TIMES[0]), float(BRIER_TIMES[-1])],
        "kaplan_meier_ibs": km,
        "summary": summary,
        "splits": per_split,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
