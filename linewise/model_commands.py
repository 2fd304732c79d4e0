"""The model commands of ``linewise``: train (MLflow run and registry) and evaluate-policy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linewise.cli_support import fail, json_safe, quiet_mlflow
from linewise.features import (
    LockValidationError,
)
from linewise.simulation.simulate import TRUTH_FILE

#: The ``--config`` option of ``train`` and ``demo``.
TrainingConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Training YAML (default: the bundled training/default.yaml)."),
]


def evaluate_policy_command(
    train: Annotated[Path, typer.Option("--train", help="Lock to fit on.")],
    test: Annotated[Path, typer.Option("--test", help="Lock whose decisions are judged.")],
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="The test lock's ground-truth folder (simulated locks only)."),
    ] = None,
    family: Annotated[
        str, typer.Option("--family", help="Outcome models: boosted_cox or random_survival_forest.")
    ] = "boosted_cox",
    n_bootstrap: Annotated[
        int,
        typer.Option("--bootstrap", min=2, help="Patient-level bootstrap refits for the intervals (>= 2)."),
    ] = 20,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the models and the bootstrap.")] = 0,
    model_uri: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Judge this registered model (e.g. models:/linewise@champion) instead of fitting one; "
            "the naive baseline is still fitted on --train.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
) -> None:
    """Fit the adjusted and naive recommenders on one lock and judge them on another's decisions."""
    # imported here: the model libraries take seconds to import, which other commands need not pay
    from linewise.models.recommender import FAMILIES
    from linewise.training.policy import evaluate_locks

    registered, model_lock_digest = (
        _load_registered_recommender(model_uri) if model_uri is not None else (None, None)
    )
    if family not in FAMILIES:
        fail(f"linewise evaluate-policy: --family must be one of {', '.join(FAMILIES)}")
    if truth is not None and not (truth / TRUTH_FILE).is_file():
        fail(f"linewise evaluate-policy: no {TRUTH_FILE} in {truth}: pass the folder written by --truth-out")
    try:
        figures = evaluate_locks(
            train,
            test,
            None if truth is None else truth / TRUTH_FILE,
            family=family,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            model=registered,
            model_lock_digest=model_lock_digest,
        )
    except LockValidationError as err:
        fail(str(err))
    except ValueError as err:
        fail(f"linewise evaluate-policy: {err}")
    if model_uri is not None:
        figures = {"model_uri": model_uri, **figures}
    if as_json:
        typer.echo(json.dumps(json_safe(figures), indent=2))
        return
    table = Table("figure", "value", title=f"evaluate-policy ({family})")
    for name, value in figures.items():
        table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console(highlight=False, width=120).print(table)


def _load_registered_recommender(uri: str) -> tuple[Any, str | None]:
    """Return the fitted recommender inside a registered linewise model and its training lock's digest.

    Exits 2 if the model cannot load or is not a linewise recommender of this layout.
    """
    import mlflow

    from linewise.training.pyfunc import load_recommender_model

    quiet_mlflow()
    try:
        loaded = load_recommender_model(uri)
    except (mlflow.exceptions.MlflowException, OSError, TypeError, ValueError) as err:
        fail(f"linewise: cannot load the model {uri}: {err}")
    return loaded.recommender, loaded.metadata.get("lock_digest")


def train_and_log(
    lock: Path, config_path: Path | None, experiment: str, console: Console, transient: bool
) -> Any:
    """Shared by ``train`` and ``demo``: every stage with a progress bar; exit 2 on a bad lock or config."""
    import mlflow

    from linewise.model_input_example import synthetic_input_example
    from linewise.training.config import TrainingConfigError, load_training_config
    from linewise.training.fitting import STAGES, fit_on_lock
    from linewise.training.mlflow_logging import LOGGING_STAGES, log_training
    from linewise.training.tracking import ensure_experiment, tracking_uri

    quiet_mlflow()
    try:
        config = load_training_config(config_path)
    except TrainingConfigError as err:
        fail(f"linewise train: {err}")
    uri = tracking_uri(os.environ)
    stages = [*STAGES, *LOGGING_STAGES]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as bar:
        task = bar.add_task("train", total=len(stages))

        def progress(stage: str) -> None:
            bar.update(task, completed=stages.index(stage), description=f"train: {stage}")

        try:
            trained = fit_on_lock(lock, config, progress)
        except LockValidationError as err:
            bar.stop()
            fail(str(err))
        except ValueError as err:
            bar.stop()
            fail(f"linewise train: {err}")
        if "MLFLOW_TRACKING_URI" not in os.environ:  # MLflow reads the variable itself when it is set
            mlflow.set_tracking_uri(uri)
        experiment_id = ensure_experiment(experiment, uri)
        example = synthetic_input_example(config.seed)
        outcome = log_training(trained, config, example, experiment_id=experiment_id, progress=progress)
        bar.update(task, completed=len(stages), description="train: done")
    return outcome


def training_summary(outcome: Any, experiment: str) -> str:
    """Return the lines ``train`` prints: the run, the registered version and alias, the test figures."""
    from linewise.training.tracking import tracking_uri

    metrics = outcome.metrics
    return (
        f"run {outcome.run_id} in {tracking_uri(os.environ)} (experiment {experiment})\n"
        f"registered {outcome.model_uri} as @{outcome.alias}: {outcome.comparison['reason']}\n"
        f"test: Harrell's C rwPFS {metrics['c_index_rwpfs']:.3f} "
        f"({metrics['c_index_rwpfs_lower']:.3f}-{metrics['c_index_rwpfs_upper']:.3f}), "
        f"rwPFS RMST24 of the model's policy {metrics['aipw_rwpfs_rmst24_model']:.2f} months (AIPW) "
        f"against {metrics['aipw_rwpfs_rmst24_observed']:.2f} for observed practice"
    )


def train(
    lock: Annotated[Path, typer.Argument(help="Data lock folder to train on.")],
    config_path: TrainingConfigOption = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment of the run.")
    ] = "linewise",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print run_id, model_uri, alias and the metrics as JSON.")
    ] = False,
) -> None:
    """Train on a data lock: validate, split, search, fit, assess, log to MLflow, register, set the alias."""
    from linewise.training.mlflow_logging import outcome_json

    outcome = train_and_log(lock, config_path, experiment, Console(stderr=True, highlight=False), as_json)
    typer.echo(outcome_json(outcome) if as_json else training_summary(outcome, experiment))
