"""The fitting half of ``linewise train``: a data lock in, a fitted and assessed recommender out.

Stages (:data:`STAGES`): validate the lock (nothing happens if it breaks the contract), build the
decision examples, split by patient (or centre, or date), search the hyperparameters of each family
on the validation part, refit the winner on training + validation with its bootstrap intervals (and
the naive model beside it), and assess it on the test part. Nothing here touches MLflow:
:mod:`linewise.training.mlflow_logging` logs the result, registers it and sets its alias.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.examples import build_examples
from linewise.features.loader import DataLock, load_lock
from linewise.models.candidates import training_decisions
from linewise.models.policy_evaluation import assess
from linewise.models.recommender import TreatmentRecommender
from linewise.training.assessment import c_index_interval, positivity_table, subgroup_table
from linewise.training.config import TrainingConfig
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.search import SearchResult, search
from linewise.training.split import Split, split_examples

#: The stages :func:`fit_on_lock` reports, in order.
STAGES: Final = ("validate", "examples", "split", "search", "fit", "assess")


@dataclass(frozen=True)
class TrainedRecommender:
    """Everything a training run produced, before it is logged."""

    lock: DataLock
    digest: str
    examples: pd.DataFrame
    split: Split
    search: SearchResult
    model: TreatmentRecommender
    metrics: dict[str, float]
    subgroups: pd.DataFrame
    positivity: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)

    def part(self, name: str) -> pd.DataFrame:
        """Return the examples of one part: ``train``, ``validation``, ``test`` or ``development``."""
        if name == "development":
            return self.examples.loc[self.split.train | self.split.validation]
        return self.examples.loc[getattr(self.split, name)]


def fit_on_lock(
    lock_path: Path, config: TrainingConfig, progress: Callable[[str], None] | None = None
) -> TrainedRecommender:
    """Run every stage up to logging.

    Parameters
    ----------
    lock_path : Path
        The lock folder.
    config : TrainingConfig
        Split, search, weighting, bootstrap and seed.
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
    notify("search")
    searched = search(examples.loc[split.train], examples.loc[split.validation], config)
    notify("fit")
    development = examples.loc[split.train | split.validation]
    test = examples.loc[split.test]
    settings: dict[str, Any] = {
        "min_support": config.min_support,
        "model_params": searched.params,
        "random_state": config.seed,
    }
    model = TreatmentRecommender(
        searched.family, weighting=config.weighting, n_bootstrap=config.n_bootstrap, **settings
    ).fit(development)
    naive = TreatmentRecommender(searched.family, weighting="none", n_bootstrap=0, **settings)
    naive.fit(development)
    notify("assess")
    metrics = assess(model, development, test)
    metrics |= {f"naive_{name}": value for name, value in assess(naive, development, test).items()}
    metrics |= c_index_interval(model, test, rng)
    return TrainedRecommender(
        lock=lock,
        digest=digest,
        examples=examples,
        split=split,
        search=searched,
        model=model,
        metrics=metrics,
        subgroups=subgroup_table(model, test),
        positivity=positivity_table(model, test),
        counts=split.counts(examples),
    )
