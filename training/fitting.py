"""The fitting half of ``linewise train``: a data lock in, a fitted and assessed recommender out.

Stages (:data:`STAGES`): validate the lock (nothing happens if it breaks the contract), build the
decision examples, split by patient (or centre, or date) into development and test, select the
learner, family and hyperparameters by their cross-fitted policy value on development
(:mod:`linewise.training.selection`), refit the winner on development with its bootstrap intervals
(and the naive model beside it), and assess it on the test part. Nothing here touches MLflow:
:mod:`linewise.training.mlflow_logging` logs the result, registers it and sets its alias.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.examples import FEATURES, build_examples
from linewise.features.loader import DataLock, load_lock
from linewise.models.candidates import training_decisions
from linewise.models.policy_evaluation import assess
from linewise.models.recommender import TreatmentRecommender
from linewise.training.assessment import c_index_interval, positivity_table, subgroup_table
from linewise.training.config import TrainingConfig
from linewise.training.held_out_value import HeldOutScores, held_out_figures, held_out_scores
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.selection import SelectionResult, select
from linewise.training.split import Split, split_examples

#: The stages :func:`fit_on_lock` reports, in order.
STAGES: Final = ("validate", "examples", "split", "select", "fit", "assess")


@dataclass(frozen=True)
class TrainedRecommender:
    """Everything a training run produced, before it is logged."""

    lock: DataLock
    digest: str
    examples: pd.DataFrame
    split: Split
    selection: SelectionResult
    held_out: HeldOutScores
    model: TreatmentRecommender
    metrics: dict[str, float]
    subgroups: pd.DataFrame
    positivity: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    def part(self, name: str) -> pd.DataFrame:
        """Return the examples of one part: ``development`` or ``test``."""
        return self.examples.loc[getattr(self.split, name)]


def fit_selected(
    development: pd.DataFrame, selected: SelectionResult, config: TrainingConfig
) -> tuple[TreatmentRecommender, TreatmentRecommender]:
    """Refit the selection's winner on the development part, with its bootstrap refits, and its naive twin.

    Both reuse the selection's nuisances (the naive twin, and a model with ``weighting: none``, their
    naive twin: :meth:`linewise.models.cross_fitting.Nuisances.naive_twin`).

    Parameters
    ----------
    development : DataFrame
        The decisions the selection ran on.
    selected : SelectionResult
        Its winner and nuisances.
    config : TrainingConfig
        Weighting, bootstrap refits, support threshold, threads and seed.

    Returns
    -------
    model, naive : TreatmentRecommender
    """
    settings: dict[str, Any] = {
        "learner": selected.learner,
        "min_support": config.min_support,
        "model_params": selected.params,
        "random_state": config.seed,
        "n_jobs": config.n_jobs,
        "nuisance_folds": selected.folds,
    }
    naive_nuisances = selected.nuisances.naive_twin()
    model = TreatmentRecommender(
        selected.family, weighting=config.weighting, n_bootstrap=config.n_bootstrap, **settings
    ).fit(development, nuisances=naive_nuisances if config.weighting == "none" else selected.nuisances)
    naive = TreatmentRecommender(selected.family, weighting="none", n_bootstrap=0, **settings)
    return model, naive.fit(development, nuisances=naive_nuisances)


def fit_on_lock(
    lock_path: Path, config: TrainingConfig, progress: Callable[[str], None] | None = None
) -> TrainedRecommender:
    """Run every stage up to logging.

    Parameters
    ----------
    lock_path : Path
        The lock folder.
    config : TrainingConfig
        Split, selection, weighting, bootstrap and seed.
    progress : callable, optional
        Called with each stage name of :data:`STAGES` as it starts.

    Returns
    -------
    TrainedRecommender

    Raises
    ------
    linewise.features.errors.LockValidationError
        If the lock breaks the contract (before anything else happens).
    """
    notify = progress or (lambda stage: None)
    notify("validate")
    digest = lock_digest(Path(lock_path)) if Path(lock_path).is_dir() else "0" * 64
    lock = load_lock(lock_path, session_key(digest))
    notify("examples")
    examples = build_examples(lock)
    if training_decisions(examples).empty:
        raise ValueError("the lock has no decision with a candidate action to learn from")
    notify("split")
    rng = np.random.default_rng(config.seed)
    split = split_examples(examples, lock.patients, config.split, rng)
    development = examples.loc[split.development]
    test = examples.loc[split.test]
    notify("select")
    selected = select(development, config)
    notify("fit")
    model, naive = fit_selected(development, selected, config)
    notify("assess")
    judged = training_decisions(test)
    # each model predicts the test decisions once, for its assessment and its doubly robust value
    predictions = (
        {}
        if judged.empty
        else {
            name: fitted.predict_options(judged[list(FEATURES)].to_numpy(float))
            for name, fitted in (("model", model), ("naive", naive))
        }
    )
    metrics = assess(model, development, test, predictions.get("model"))
    naive_metrics = assess(naive, development, test, predictions.get("naive"))
    metrics |= {f"naive_{name}": value for name, value in naive_metrics.items()}
    metrics |= c_index_interval(model, test, rng)
    held_out = held_out_scores(development, test, min_support=config.min_support, random_state=config.seed)
    metrics |= held_out_figures(held_out, model, naive, predictions)
    metrics |= {
        "selection_policy_value_rwpfs_rmst24": selected.value,
        "selection_policy_value_rwpfs_rmst24_lower": selected.lower,
        "selection_policy_value_rwpfs_rmst24_upper": selected.upper,
    }
    return TrainedRecommender(
        lock=lock,
        digest=digest,
        examples=examples,
        split=split,
        selection=selected,
        held_out=held_out,
        model=model,
        metrics=metrics,
        subgroups=subgroup_table(model, test),
        positivity=positivity_table(model, test),
        counts=split.counts(examples),
    )
