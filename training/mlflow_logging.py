"""Log a trained recommender to MLflow, register it and set its alias by the champion rule.

One run holds: the configuration and chosen parameters, the metrics (``docs/models.md`` keys, the
naive model's with the prefix ``naive_``), the lock as a dataset (digest and counts, never rows), the
search, subgroup and positivity tables, three plots, the model card and the pyfunc model, registered
under ``config.registered_model``. The comparison with the previous champion is logged too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import mlflow
import numpy as np
from matplotlib.figure import Figure

from linewise.features.examples import FEATURES
from linewise.models.candidates import TREATMENT_COLUMNS, option_index, training_decisions, with_treatment
from linewise.models.evaluation import calibration_table, survival_at
from linewise.models.output_table import ModelFormatError
from linewise.models.recommender import MODEL_COLUMNS
from linewise.models.target import make_target
from linewise.training.card_facts import Metric, ModelCardFacts, SubgroupMetric
from linewise.training.config import TrainingConfig
from linewise.training.fitting import TrainedRecommender
from linewise.training.model_card import model_card
from linewise.training.plots import calibration_figure, kaplan_meier_by_action_figure, shap_summary_figure
from linewise.training.pyfunc import load_recommender_model, log_recommender
from linewise.training.registry import CHAMPION, SELECTION_METRIC, Comparison, decide_alias
from linewise.training.tracking import lock_dataset

#: The stages :func:`log_training` reports, in order (after :data:`linewise.training.fitting.STAGES`).
LOGGING_STAGES: Final = ("log", "register")
#: Test decisions explained for the SHAP summary plot.
SHAP_SUMMARY_DECISIONS = 300
#: Lower and upper bounds of a figure reported without an interval.
_NO_INTERVAL = (float("nan"), float("nan"))


@dataclass(frozen=True)
class TrainingOutcome:
    """What ``linewise train --json`` prints."""

    run_id: str
    model_uri: str
    registered_model: str
    version: str
    alias: str
    comparison: dict[str, Any]
    metrics: dict[str, float]


def log_training(
    trained: TrainedRecommender,
    config: TrainingConfig,
    input_example: dict[str, Any],
    *,
    experiment_id: str,
    progress: Callable[[str], None] | None = None,
) -> TrainingOutcome:
    """Log the run, register the model and apply the champion rule.

    Parameters
    ----------
    trained : TrainedRecommender
        From :func:`linewise.training.fitting.fit_on_lock`.
    config : TrainingConfig
        The configuration it was trained with.
    input_example : dict
        A synthetic patient document stored with the model.
    experiment_id : str
        Where the run goes (:func:`linewise.training.tracking.ensure_experiment`).
    progress : callable, optional
        Called with each stage name of :data:`LOGGING_STAGES` as it starts.

    Returns
    -------
    TrainingOutcome
    """
    notify = progress or (lambda stage: None)
    notify("log")
    manifest = trained.lock.manifest
    client = mlflow.MlflowClient()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(_params(trained, config))
        mlflow.log_metrics({k: v for k, v in trained.metrics.items() if np.isfinite(v)})
        mlflow.log_input(
            lock_dataset(manifest.lock_id, manifest.lock_date.isoformat(), trained.digest, _counts(trained)),
            context="training",
        )
        mlflow.log_text(trained.selection.table.to_csv(index=False), "selection.csv")
        mlflow.log_text(trained.subgroups.to_csv(index=False), "subgroups.csv")
        mlflow.log_text(trained.positivity.to_csv(index=False), "positivity.csv")
        for name, figure in _figures(trained).items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        mlflow.log_text(model_card(_card_facts(trained, config, run.info.run_id)), "model_card.md")
        notify("register")
        info = log_recommender(
            trained.model,
            {
                "lock_id": manifest.lock_id,
                "lock_date": manifest.lock_date.isoformat(),
                "lock_digest": trained.digest,
                "policy_value": _policy_value(trained.metrics),
            },
            input_example,
            registered_model_name=config.registered_model,
        )
        version = str(info.registered_model_version)
        comparison = _compare_with_champion(client, config.registered_model, trained)
        client.set_registered_model_alias(config.registered_model, comparison.alias, version)
        mlflow.log_dict(comparison.as_dict(), "champion_comparison.json")
        mlflow.set_tags({"alias": comparison.alias, "registered_version": version})
    return TrainingOutcome(
        run_id=run.info.run_id,
        model_uri=f"models:/{config.registered_model}/{version}",
        registered_model=config.registered_model,
        version=version,
        alias=comparison.alias,
        comparison=comparison.as_dict(),
        metrics=trained.metrics,
    )


def _compare_with_champion(client: mlflow.MlflowClient, name: str, trained: TrainedRecommender) -> Comparison:
    """Compare the new model with the current champion, on the new lock's test decisions."""
    new_value = trained.metrics[SELECTION_METRIC]
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return decide_alias(new_value, None, None)
    try:
        loaded = load_recommender_model(f"models:/{name}/{champion.version}")
        champion_value = trained.held_out.model_value(loaded.recommender).value
    except ModelFormatError as err:
        return decide_alias(new_value, None, str(champion.version), unservable=str(err))
    except (ValueError, TypeError, KeyError) as err:
        return decide_alias(new_value, None, str(champion.version), f"the champion could not score: {err}")
    return decide_alias(new_value, champion_value, str(champion.version))


def _params(trained: TrainedRecommender, config: TrainingConfig) -> dict[str, Any]:
    params: dict[str, Any] = {
        "seed": config.seed,
        "split_by": config.split.by,
        "test_fraction": config.split.test_fraction,
        "selection_folds": config.selection.folds,
        "ensemble_size": config.selection.ensemble_size,
        "selection_tolerance_se": config.selection.tolerance_se,
        "weighting": config.weighting,
        "n_bootstrap": config.n_bootstrap,
        "min_support": config.min_support,
        "family": trained.selection.family,
        "learner": trained.selection.learner,
        "lock_id": trained.lock.manifest.lock_id,
        "lock_date": trained.lock.manifest.lock_date.isoformat(),
        "lock_digest": trained.digest,
        "selection_metric": SELECTION_METRIC,
    }
    return params | {f"model_{key}": value for key, value in trained.selection.params.items()}


def _policy_value(metrics: dict[str, float]) -> dict[str, Any]:
    """Return the test part's value of the model's recommendations, for its metadata and provenance."""
    key = SELECTION_METRIC
    return {
        "estimate": metrics[key],
        "lower": metrics[f"{key}_lower"],
        "upper": metrics[f"{key}_upper"],
        "method": "doubly robust estimate on the held-out test part, nuisance models fitted on development; "
        "95% interval clustered by patient",
    }


def _counts(trained: TrainedRecommender) -> dict[str, int]:
    summary = trained.lock.summary()
    return {
        "patients": int(summary["patients"]),
        "centres": int(summary["centres"]),
        "decisions": len(trained.examples),
        **trained.counts,
    }


def _figures(trained: TrainedRecommender) -> dict[str, Figure]:
    """Calibration at 12 months and SHAP summary on the test part; Kaplan-Meier by action on development."""
    model = trained.model
    test = training_decisions(trained.part("test"))
    observed = option_index(test["action"].astype(str), test["local_therapy"].astype(bool))
    rows = with_treatment(test[list(FEATURES)].to_numpy(float), observed)
    outcome = model.models_["pfs"]
    at_12 = survival_at(outcome.predict_survival_function(rows), outcome.time_grid_, 12.0)
    target = make_target(test["pfs_time"], test["pfs_event"].astype(bool))
    development = training_decisions(trained.part("development"))
    sample = rows[:SHAP_SUMMARY_DECISIONS]
    values = np.asarray(model.explainer_.shap_values(sample), dtype=float)
    return {
        "calibration_rwpfs_12": calibration_figure(calibration_table(target, at_12, 12.0), 12.0, "pfs"),
        "km_rwpfs_by_action": kaplan_meier_by_action_figure(
            development["pfs_time"].to_numpy(float),
            development["pfs_event"].astype(bool).to_numpy(),
            development["action"].astype(str).to_numpy(),
            "pfs",
        ),
        "shap_summary_rwpfs": shap_summary_figure(values, sample, MODEL_COLUMNS, model.explanation_scale_),
    }


def _card_facts(trained: TrainedRecommender, config: TrainingConfig, run_id: str) -> ModelCardFacts:
    manifest = trained.lock.manifest
    development = training_decisions(trained.part("development"))
    test = training_decisions(trained.part("test"))
    patients = trained.lock.patients
    years = patients["metastatic_dx_year"].dropna().astype(int)
    missing = development[list(FEATURES)].isna().mean()
    metrics = trained.metrics
    performance = [
        Metric(
            "Harrell's C, rwPFS (bootstrap 95%)",
            metrics["c_index_rwpfs"],
            metrics["c_index_rwpfs_lower"],
            metrics["c_index_rwpfs_upper"],
        ),
        *(
            Metric(label, metrics[key], float("nan"), float("nan"))
            for label, key in (
                ("Uno's C, rwPFS (to 24 months)", "uno_c_rwpfs"),
                ("Integrated Brier score, rwPFS", "ibs_rwpfs"),
                ("Time-dependent AUC at 12 months, rwPFS", "td_auc_12_rwpfs"),
                ("Calibration at 12 months (ICI), rwPFS", "calibration_12_ici_rwpfs"),
                ("Harrell's C, OS", "c_index_os"),
                ("Harrell's C, rwPFS, naive model", "naive_c_index_rwpfs"),
            )
        ),
        *(
            Metric(label, metrics[key], metrics[f"{key}_lower"], metrics[f"{key}_upper"])
            for label, key in (
                (
                    "Doubly robust rwPFS RMST24 of the model's recommendations, months (95%; nuisance "
                    "models fitted on development)",
                    "dr_rwpfs_rmst24_model",
                ),
                (
                    "Doubly robust rwPFS RMST24 of the naive model's recommendations, months (95%)",
                    "dr_rwpfs_rmst24_naive",
                ),
                ("Doubly robust rwPFS RMST24 of always-TBP, months (95%)", "dr_rwpfs_rmst24_always_tbp"),
                (
                    "Censoring-unbiased mean rwPFS RMST24 of observed practice, months (95%)",
                    "dr_rwpfs_rmst24_observed",
                ),
                (
                    "Cross-fitted value of the chosen candidate on development, months (95%; optimistic: "
                    "the best of the candidates)",
                    "selection_policy_value_rwpfs_rmst24",
                ),
                (
                    "AIPW rwPFS RMST24 of the model's policy with its own outcome model, months (95%)",
                    "aipw_rwpfs_rmst24_model",
                ),
                ("IPCW mean rwPFS RMST24 of observed practice, months (95%)", "aipw_rwpfs_rmst24_observed"),
                ("AIPW rwPFS RMST24 of always-TBP, months (95%)", "aipw_rwpfs_rmst24_always_tbp"),
            )
        ),
    ]
    subgroups = [
        SubgroupMetric(
            str(row.subgroup),
            "",
            int(row.decisions),
            "Harrell's C, rwPFS",
            float(row.c_index_rwpfs),
            *_NO_INTERVAL,
        )
        for row in trained.subgroups.itertuples()
    ]
    return ModelCardFacts(
        model_name=config.registered_model,
        model_version=f"run {run_id[:8]}",
        lock_id=manifest.lock_id,
        lock_source=manifest.source,
        lock_date=manifest.lock_date,
        n_patients=len(patients),
        n_centres=int(patients["center_id"].nunique()),
        n_decisions=len(trained.examples),
        diagnosis_years=(int(years.min()), int(years.max())),
        pfs_events=int(development["pfs_event"].sum()),
        os_events=int(development["os_event"].sum()),
        n_features=len(FEATURES),
        treatment_columns=TREATMENT_COLUMNS,
        missing_shares={name: float(share) for name, share in missing.items() if share > 0},
        family=trained.selection.family,
        learner=trained.selection.learner,
        weighting=config.weighting,
        hyperparameters=dict(trained.selection.params),
        search=(
            f"{len(trained.selection.table)} candidates (learners, families and settings) judged by their "
            f"cross-fitted AIPW rwPFS RMST24 over {config.selection.folds} folds of the development "
            f"patients; the first listed within {config.selection.tolerance_se:g} paired standard errors "
            "of the best wins"
        ),
        n_bootstrap=config.n_bootstrap,
        min_support=config.min_support,
        evaluation=f"held-out {config.split.by} split, {config.split.test_fraction:.0%} of units",
        test_patients=int(test["patient_key"].nunique()),
        test_decisions=len(test),
        performance=tuple(performance),
        subgroups=tuple(subgroups),
        insufficient_evidence=dict(
            zip(
                trained.positivity["option"],
                trained.positivity["unsupported_share"].astype(float),
                strict=True,
            )
        ),
        run_id=run_id,
    )


def outcome_json(outcome: TrainingOutcome) -> str:
    """Return the ``--json`` output of ``linewise train``."""
    return json.dumps(
        {
            "run_id": outcome.run_id,
            "model_uri": outcome.model_uri,
            "registered_model": outcome.registered_model,
            "version": outcome.version,
            "alias": outcome.alias,
            "comparison": outcome.comparison,
            "metrics": {k: (v if np.isfinite(v) else None) for k, v in outcome.metrics.items()},
        },
        indent=2,
    )
