"""The ``linewise`` command line: the one module that wires the packages together.

Configuration and the environment are read here and nowhere else. Errors that the user can fix
(a bad lock, a missing key) print one clear message to standard error and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features import (
    DataLock,
    LockValidationError,
    LockWarning,
    PseudonymKeyError,
    load_lock,
    pseudonymize,
    resolve_key,
)
from features.decisions import ACTIONS, KEYS, OUTCOMES, derive_decisions
from features.examples import FEATURES, build_examples
from features.patient import export_patients
from linewise import __version__
from serving.score import DEFAULT_MODEL_URI
from simulation.calibration import TargetResult
from simulation.calibration import calibrate as run_calibration
from simulation.config import SimulationConfigError, load_config
from simulation.simulate import TRUTH_FILE, SimulationOutputError, simulate_lock

EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="linewise",
    help="Treatment-sequencing recommender for HR+/HER2- advanced breast cancer after progression on "
    "first-line endocrine therapy + CDK4/6 inhibitor.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"linewise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Treatment-sequencing recommender for HR+/HER2- advanced breast cancer."""


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _load_for_validation(lock: Path) -> tuple[DataLock, list[str]]:
    """Load a lock with a throw-away key: validation needs no pseudonym key and writes nothing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LockWarning)
        data_lock = load_lock(lock, secrets.token_bytes(32))
    return data_lock, [str(w.message) for w in caught if issubclass(w.category, LockWarning)]


def _print_summary(summary: dict[str, Any], notes: list[str], console: Console) -> None:
    lock_id = escape(summary["lock_id"])
    console.print(
        f"data lock [bold]{lock_id}[/bold] (lock date {summary['lock_date']}): [green]valid[/green]"
    )
    console.print(
        f"  patients {summary['patients']}  centres {summary['centres']}  deaths {summary['deaths']}"
    )
    console.print(f"  lines {summary['lines']}  progressions {summary['progressions']}")
    rows = ", ".join(f"{name} {count}" for name, count in summary["rows"].items())
    console.print(f"  rows: {rows}", soft_wrap=True)
    for note in notes:
        console.print(f"  warning: {escape(note)}", soft_wrap=True)


#: The ``--config`` option of ``train`` and ``demo``.
TrainingConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Training YAML (default: the bundled training/default.yaml)."),
]


@app.command()
def validate(
    lock: Annotated[
        Path, typer.Argument(help="Data lock folder (manifest.json and one CSV or Parquet per table).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a data lock against every rule of the contract and summarise it; exit 2 if it breaks any."""
    try:
        data_lock, notes = _load_for_validation(lock)
    except LockValidationError as err:
        if as_json:
            payload = {
                "valid": False,
                "lock": err.lock_name,
                "violations": [v.to_dict() for v in err.violations],
            }
            typer.echo(json.dumps(payload, indent=2))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        _fail(str(err))
    summary = data_lock.summary()
    if as_json:
        typer.echo(json.dumps({"valid": True, **summary, "warnings": notes}, indent=2))
        return
    _print_summary(summary, notes, Console(highlight=False))


@app.command("pseudonymize")
def pseudonymize_command(
    ids: Annotated[
        list[str],
        typer.Argument(
            help="Raw patient identifiers, or '-' to read them from standard input, one per line."
        ),
    ],
) -> None:
    """Print the keyed pseudonym (patient_key) of each raw patient identifier, one per line."""
    if ids == ["-"]:
        ids = sys.stdin.read().splitlines()
    elif "-" in ids:
        _fail(
            "linewise pseudonymize: '-' reads identifiers from standard input and cannot be mixed with others"
        )
    for position, raw_id in enumerate(ids, start=1):
        if not raw_id.strip():
            _fail(f"linewise pseudonymize: identifier {position} is empty")
    try:
        key = resolve_key(os.environ)
    except PseudonymKeyError as err:
        _fail(f"linewise pseudonymize: {err}")
    for raw_id in ids:
        typer.echo(pseudonymize(raw_id, key))


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _run_simulation(patients: int, seed: int, out: Path, truth_out: Path, config_path: Path | None) -> None:
    try:
        config = load_config(config_path)
    except SimulationConfigError as err:
        _fail(f"linewise simulate: {err}")
    stages = ["patients", "disease courses", "lock tables", "ground truth", "writing"]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("simulating", total=len(stages))

        def on_stage(name: str) -> None:
            progress.update(task, description=f"simulating: {name}", completed=stages.index(name))

        try:
            summary = simulate_lock(patients, seed, out, truth_out, config, on_stage=on_stage)
        except (SimulationOutputError, ValueError) as err:
            _fail(f"linewise simulate: {err}")
        progress.update(task, completed=len(stages))
    typer.echo(
        f"wrote lock {summary.lock} ({summary.patients} patients, {summary.rows['lines']} lines, "
        f"{summary.rows['progressions']} progressions) and truth {summary.truth} ({summary.truth_rows} rows)"
    )


@app.command()
def simulate(
    patients: Annotated[int, typer.Option("--patients", min=1, help="Number of patients.")] = 6000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed: the same seed gives the same bytes.")] = 7,
    out: Annotated[Path, typer.Option("--out", help="Lock folder to create (must not exist).")] = Path(
        "lock"
    ),
    truth_out: Annotated[
        Path, typer.Option("--truth-out", help="Folder to create for the ground truth (must not exist).")
    ] = Path("truth"),
    config: Annotated[
        Path | None, typer.Option("--config", help="Simulator YAML (default: the bundled calibrated one).")
    ] = None,
) -> None:
    """Simulate a data lock and, beside it, the true outcome of every candidate at every decision."""
    _run_simulation(patients, seed, out, truth_out, config)


def _calibration_table(results: list[TargetResult]) -> Table:
    table = Table(title="calibration against targets.yaml", show_lines=False)
    for column in ("target", "kind", "published", "range", "simulated", "within"):
        table.add_column(column, overflow="fold")
    for result in results:
        verdict = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "-"}[result.within]
        table.add_row(
            result.id,
            result.kind,
            escape(_short(result.value)),
            escape(_short(result.range)),
            escape(_short(result.simulated)),
            verdict,
        )
    return table


def _short(value: Any) -> str:
    text = json.dumps(_json_safe(value), separators=(", ", ": ")) if value is not None else ""
    return text.replace('"', "")


@app.command()
def calibrate(
    lock: Annotated[Path, typer.Argument(help="A simulated data lock folder.")],
    truth: Annotated[Path, typer.Option("--truth", help="Its ground-truth folder (from linewise simulate).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of targets.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a target is outside its range.")
    ] = False,
) -> None:
    """Compare a simulated lock and its truth with every published target and say which are inside."""
    if not (truth / TRUTH_FILE).is_file():
        _fail(f"linewise calibrate: no {TRUTH_FILE} in {truth}: pass the folder written by --truth-out")
    try:
        results = run_calibration(lock, truth)
    except LockValidationError as err:
        _fail(str(err))
    if as_json:
        typer.echo(json.dumps([_json_safe(result.to_dict()) for result in results], indent=2))
    else:
        console = Console(highlight=False, width=160)
        console.print(_calibration_table(results))
        outside = [r.id for r in results if r.within is False]
        console.print(
            f"{sum(r.within is True for r in results)} inside, {len(outside)} outside"
            + (f": {', '.join(outside)}" if outside else "")
        )
    if strict and any(result.within is False for result in results):
        raise typer.Exit(1)


def _resolve_key_or_fail(command: str) -> bytes:
    try:
        return resolve_key(os.environ)
    except PseudonymKeyError as err:
        _fail(f"linewise {command}: {err}")


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file beside ``path`` and rename it: never a half-written output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".linewise-") as staging:
        staged = Path(staging) / path.name
        write(staged)
        staged.replace(path)


@app.command()
def features(
    lock: Annotated[Path, typer.Argument(help="Data lock folder.")],
    out: Annotated[
        Path, typer.Option("--out", help="Parquet file for the examples; EXAMPLES.json is written beside it.")
    ],
    tbp_min_days: Annotated[
        int, typer.Option("--tbp-min-days", min=1, help="Days a line must go on to count as TBP.")
    ] = 28,
) -> None:
    """Turn a data lock into one row per decision: keys, features as of that day, action and outcomes."""
    if out.suffix != ".parquet":
        _fail("linewise features: --out must end in .parquet")
    key = _resolve_key_or_fail("features")
    try:
        data_lock = load_lock(lock, key)
    except LockValidationError as err:
        _fail(str(err))
    examples = build_examples(data_lock, tbp_min_days=tbp_min_days)
    columns = {
        "keys": list(KEYS),
        "features": list(FEATURES),
        "actions": list(ACTIONS),
        "outcomes": list(OUTCOMES),
        "other": ["open_decision"],
    }
    sidecar = out.with_suffix(".json")
    _atomic_write(out, lambda path: examples.to_parquet(path, index=False))
    _atomic_write(
        sidecar, lambda path: path.write_text(json.dumps(columns, indent=2) + "\n", encoding="utf-8")
    )
    open_count = int(examples["open_decision"].sum())
    typer.echo(
        f"wrote {len(examples)} decisions ({open_count} open) with {len(FEATURES)} features to {out}; "
        f"column lists in {sidecar}"
    )


@app.command("evaluate-policy")
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
        int, typer.Option("--bootstrap", min=0, help="Patient-level bootstrap refits for the intervals.")
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
    from models.recommender import FAMILIES
    from training.policy import evaluate_locks

    registered = _load_registered_recommender(model_uri) if model_uri is not None else None
    if family not in FAMILIES:
        _fail(f"linewise evaluate-policy: --family must be one of {', '.join(FAMILIES)}")
    if truth is not None and not (truth / TRUTH_FILE).is_file():
        _fail(f"linewise evaluate-policy: no {TRUTH_FILE} in {truth}: pass the folder written by --truth-out")
    try:
        figures = evaluate_locks(
            train,
            test,
            None if truth is None else truth / TRUTH_FILE,
            family=family,
            n_bootstrap=n_bootstrap,
            random_state=seed,
            model=registered,
        )
    except LockValidationError as err:
        _fail(str(err))
    except ValueError as err:
        _fail(f"linewise evaluate-policy: {err}")
    if model_uri is not None:
        figures = {"model_uri": model_uri, **figures}
    if as_json:
        typer.echo(json.dumps(_json_safe(figures), indent=2))
        return
    table = Table("figure", "value", title=f"evaluate-policy ({family})")
    for name, value in figures.items():
        table.add_row(name, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console(highlight=False, width=120).print(table)


def _load_registered_recommender(uri: str) -> Any:
    """Return the fitted recommender inside a registered linewise model; exit 2 if it cannot load."""
    import mlflow

    from training.pyfunc import RecommenderModel

    _quiet_mlflow()
    try:
        loaded = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    except (mlflow.exceptions.MlflowException, OSError, ValueError) as err:
        _fail(f"linewise: cannot load the model {uri}: {err}")
    if not isinstance(loaded, RecommenderModel):
        _fail(f"linewise: {uri} is not a linewise recommender")
    return loaded.recommender


def _date_option(value: str | None, command: str) -> dt.date | None:
    """Parse a ``--as-of`` option; exit 2 with one line when it is no date."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"linewise {command}: --as-of must be a date YYYY-MM-DD")


def _load_model_or_fail(model_uri: str, command: str) -> Any:
    """Load a model for scoring from the project's tracking store; exit 2 with one line on failure."""
    import mlflow

    from serving.scoring import load_scoring_model
    from training.tracking import tracking_uri

    _quiet_mlflow()
    if "MLFLOW_TRACKING_URI" not in os.environ:  # MLflow reads the variable itself when it is set
        mlflow.set_tracking_uri(tracking_uri(os.environ))
    try:
        return load_scoring_model(model_uri)
    except (mlflow.exceptions.MlflowException, OSError, TypeError, ValueError) as err:
        _fail(f"linewise {command}: cannot load the model {model_uri}: {err}")


def _score_patient_file(
    patient: Path, as_of: str | None, model_uri: str, command: str, work: Callable[..., Any]
) -> tuple[Any, dict[str, Any]]:
    """Read a patient file, load the model and run ``work(model, document, as_of, source=...)``.

    Shared by ``score`` and ``report``: every failure (a file that breaks the patient-file contract,
    a bad ``--as-of``, a model that cannot be loaded, a patient with nothing to score) exits 2 with
    one message. Returns ``work``'s result and the document.
    """
    from features.patient import read_patient_file
    from serving.scoring import ScoringError

    try:
        document = read_patient_file(patient)
    except LockValidationError as err:
        _fail(str(err))
    day = _date_option(as_of, command)
    model = _load_model_or_fail(model_uri, command)
    try:
        return work(model, document, day, source=patient.name), document
    except LockValidationError as err:
        _fail(str(err))
    except ScoringError as err:
        _fail(f"linewise {command}: {err}")


def _quiet_mlflow() -> None:
    """Keep MLflow's own INFO lines and download bars off the terminal (warnings still show)."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _train_and_log(
    lock: Path, config_path: Path | None, experiment: str, console: Console, transient: bool
) -> Any:
    """Shared by ``train`` and ``demo``: every stage with a progress bar; exit 2 on a bad lock or config."""
    import mlflow

    from training.config import TrainingConfigError, load_training_config
    from training.pyfunc import synthetic_input_example
    from training.run import log_training
    from training.tracking import ensure_experiment, tracking_uri
    from training.train import STAGES, fit_on_lock

    _quiet_mlflow()
    try:
        config = load_training_config(config_path)
    except TrainingConfigError as err:
        _fail(f"linewise train: {err}")
    uri = tracking_uri(os.environ)
    stages = [*STAGES, "register"]
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
            _fail(str(err))
        except ValueError as err:
            bar.stop()
            _fail(f"linewise train: {err}")
        if "MLFLOW_TRACKING_URI" not in os.environ:  # MLflow reads the variable itself when it is set
            mlflow.set_tracking_uri(uri)
        experiment_id = ensure_experiment(experiment, uri)
        example = synthetic_input_example(config.seed)
        outcome = log_training(trained, config, example, experiment_id=experiment_id, progress=progress)
        bar.update(task, completed=len(stages), description="train: done")
    return outcome


def _training_summary(outcome: Any, experiment: str) -> str:
    from training.tracking import tracking_uri

    metrics = outcome.metrics
    return (
        f"run {outcome.run_id} in {tracking_uri(os.environ)} (experiment {experiment})\n"
        f"registered {outcome.model_uri} as @{outcome.alias}: {outcome.comparison['reason']}\n"
        f"test: Harrell's C rwPFS {metrics['c_index_rwpfs']:.3f} "
        f"({metrics['c_index_rwpfs_lower']:.3f}-{metrics['c_index_rwpfs_upper']:.3f}), "
        f"rwPFS RMST24 of the model's policy {metrics['aipw_rwpfs_rmst24_model']:.2f} months (AIPW) "
        f"against {metrics['aipw_rwpfs_rmst24_observed']:.2f} for observed practice"
    )


@app.command()
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
    from training.run import outcome_json

    outcome = _train_and_log(lock, config_path, experiment, Console(stderr=True, highlight=False), as_json)
    typer.echo(outcome_json(outcome) if as_json else _training_summary(outcome, experiment))


@app.command()
def score(
    patient: Annotated[Path, typer.Argument(help="Patient JSON file (linewise export-patient).")],
    model_uri: Annotated[
        str, typer.Option("--model", help="Registered model to score with.")
    ] = DEFAULT_MODEL_URI,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Score the history as it stood on this date (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the candidates as JSON.")] = False,
) -> None:
    """Score every candidate next step of a patient's latest decision, with intervals and explanations."""
    from serving.scoring import dumps, score_patient

    result, _ = _score_patient_file(patient, as_of, model_uri, "score", score_patient)
    provenance = result["model"]
    if as_json:
        typer.echo(dumps(result))
        return
    table = Table(
        "rank",
        "option",
        "rwPFS RMST24 (90%)",
        "vs TBP",
        "OS RMST24 (90%)",
        "evidence",
        title=f"patient {result['patient_key']}, decision after line {result['line_number']}",
    )
    for entry in result["candidates"]:
        pfs, overall = entry["rwpfs"], entry["os"]
        table.add_row(
            str(entry["rank"] or "-"),
            entry["option"],
            f"{pfs['rmst24']:.1f} ({pfs['rmst24_lower']:.1f}-{pfs['rmst24_upper']:.1f})",
            f"{pfs['rmst24_vs_tbp']:+.1f}",
            f"{overall['rmst24']:.1f} ({overall['rmst24_lower']:.1f}-{overall['rmst24_upper']:.1f})",
            "supported" if entry["support"] else "insufficient evidence",
        )
    console = Console(highlight=False, width=140)
    console.print(table)
    console.print(
        f"model {provenance['model_uri']} (version {provenance['model_version']}), trained on lock "
        f"{provenance['lock_id']} of {provenance['lock_date']}; months; explanations in --json"
    )


@app.command()
def report(
    patient: Annotated[Path, typer.Argument(help="Patient JSON file (linewise export-patient).")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="HTML file to write: one self-contained page (no network needed) that prints to A4 PDF.",
        ),
    ],
    model_uri: Annotated[
        str, typer.Option("--model", help="Registered model to score with.")
    ] = DEFAULT_MODEL_URI,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Report on the history as it stood on this date (YYYY-MM-DD)."),
    ] = None,
) -> None:
    """Write the tumour-board report of a patient's latest decision as one self-contained HTML page.

    The page shows the patient's timeline, predicted rwPFS and OS curves with intervals, all 16 options
    ranked (unsupported ones flagged, not ranked), the explanation of TBP versus the best switch as a
    waterfall, warnings, the model's provenance and the limitations. Nothing is written on error.
    """
    from serving.report import render_report

    if out.is_dir():
        _fail(f"linewise report: --out {out} is a folder; give the HTML file to write")
    page, document = _score_patient_file(patient, as_of, model_uri, "report", render_report)
    try:
        _atomic_write(out, lambda path: path.write_text(page, encoding="utf-8"))
    except OSError as err:
        _fail(f"linewise report: cannot write {out}: {err.strerror or err}")
    typer.echo(f"wrote the report of patient {document['patient_key']} to {out}")


@app.command("export-patient")
def export_patient(
    lock: Annotated[Path, typer.Argument(help="Data lock folder.")],
    patient: Annotated[str, typer.Option("--patient", help="The patient's key (linewise pseudonymize).")],
    out: Annotated[Path, typer.Option("--out", help="JSON file to write.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Cut the history at this date, YYYY-MM-DD (default: lock date)."),
    ] = None,
) -> None:
    """Write one patient's history up to a date as the JSON that scoring accepts (pseudonym, no raw id)."""
    cut = None
    if as_of is not None:
        try:
            cut = dt.date.fromisoformat(as_of)
        except ValueError:
            _fail("linewise export-patient: --as-of must be a date YYYY-MM-DD")
    key = _resolve_key_or_fail("export-patient")
    try:
        documents = export_patients(lock, key, [patient], cut)
    except LockValidationError as err:
        _fail(str(err))
    except (KeyError, ValueError) as err:
        _fail(f"linewise export-patient: {err.args[0]}")
    document = documents[patient]
    _atomic_write(out, lambda path: path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8"))
    typer.echo(f"wrote the history of {patient} up to {document['as_of']} to {out}")


@app.command("score-lock")
def score_lock_command(
    lock: Annotated[Path, typer.Argument(help="Data lock folder.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file for the scores.")],
    model_uri: Annotated[
        str, typer.Option("--model", help="Registered model to score with.")
    ] = DEFAULT_MODEL_URI,
) -> None:
    """Score every open decision of a lock under every candidate: one Parquet row per decision and option."""
    from serving.batch import score_lock, write_scores

    if out.suffix != ".parquet":
        _fail("linewise score-lock: --out must end in .parquet")
    key = _resolve_key_or_fail("score-lock")
    model = _load_model_or_fail(model_uri, "score-lock")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LockWarning)  # undeclared columns: `linewise validate` lists them
            scores = score_lock(model, lock, key)
    except LockValidationError as err:
        _fail(str(err))
    lock_manifest = json.loads((lock / "manifest.json").read_text(encoding="utf-8"))
    provenance = {**model.provenance, "scored_lock_id": lock_manifest.get("lock_id")}
    _atomic_write(out, lambda path: write_scores(scores, path, provenance))
    decisions = scores[["patient_key", "line_number", "decision_day"]].drop_duplicates()
    typer.echo(
        f"wrote {len(scores)} rows ({len(decisions)} open decisions x 16 options) to {out}; "
        f"model {model_uri} (version {model.version})"
    )


DEMO_MARKER = ".linewise-demo"


def _fresh_demo_folder(out: Path) -> None:
    if out.exists():
        if not (out / DEMO_MARKER).is_file():
            _fail(f"linewise demo: {out} exists and was not made by linewise demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("made by linewise demo; safe to delete\n", encoding="utf-8")


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the demo's outputs (replaced if a demo made it).")
    ] = Path("out/demo"),
    patients: Annotated[
        int, typer.Option("--patients", min=1, help="Patients in the simulated lock.")
    ] = 6000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulated lock.")] = 7,
    config_path: TrainingConfigOption = None,
) -> None:
    """Run the main job on the embedded default (a simulated PALMARES-2-sized lock); say where outputs are."""
    console = Console(highlight=False)
    console.print(f"[bold]linewise {__version__} demo[/bold]")
    _fresh_demo_folder(out)
    lock, truth = out / "lock", out / "truth"
    console.print(
        f"1. simulate a PALMARES-2-sized data lock ({patients} patients, seed {seed}) with its ground truth"
    )
    _run_simulation(patients, seed, lock, truth, None)
    console.print("2. validate it against the data-lock contract")
    data_lock, notes = _load_for_validation(lock)
    _print_summary(data_lock.summary(), notes, console)
    console.print("3. derive the decision points (every progression) and their actions")
    decisions = derive_decisions(data_lock)
    shares = decisions["action"].value_counts(normalize=True).head(4)
    console.print(
        f"  {len(decisions)} decisions, {int(decisions['open_decision'].sum())} open; most frequent actions: "
        + ", ".join(f"{action} {share:.0%}" for action, share in shares.items())
    )
    console.print("4. calibrate against the published targets (targets.yaml)")
    results = run_calibration(lock, truth)
    calibration = out / "calibration.json"
    calibration.write_text(
        json.dumps([_json_safe(r.to_dict()) for r in results], indent=2) + "\n", encoding="utf-8"
    )
    inside = sum(r.within is True for r in results)
    outside = [r.id for r in results if r.within is False]
    console.print(
        f"  {inside} of {len(results)} targets inside their range"
        + (f"; outside: {', '.join(outside)}" if outside else "")
    )
    console.print("5. train the recommender on the lock, track the run in MLflow, register it")
    outcome = _train_and_log(lock, config_path, "linewise-demo", console, False)
    for line in _training_summary(outcome, "linewise-demo").splitlines():
        console.print(f"  {escape(line)}")
    console.print("6. score every open decision of the lock with models:/linewise@champion (score-lock)")
    scored = _demo_score(lock, out, console)
    from training.tracking import tracking_uri

    console.print(
        f"Outputs: lock {lock}, truth {truth}, calibration {calibration}, "
        + "".join(f"{name} {path}, " for name, path in scored.items())
        + f"MLflow store {tracking_uri(os.environ)} "
        f"(run {outcome.run_id}, {outcome.model_uri} @{outcome.alias})"
    )


def _demo_score(lock: Path, out: Path, console: Console) -> dict[str, Path]:
    """Score the lock's open decisions, then the first such patient (by key) alone; return the files."""
    from serving.batch import score_lock, write_scores
    from serving.scoring import dumps, load_scoring_model, score_patient

    key = secrets.token_bytes(32)  # the demo's own pseudonyms: the batch and the exported patient share them
    model = load_scoring_model(DEFAULT_MODEL_URI)
    scores = score_lock(model, lock, key)
    batch_file = out / "open_scores.parquet"
    write_scores(scores, batch_file, model.provenance)
    open_keys = sorted(set(scores["patient_key"]))
    console.print(f"  {len(open_keys)} open decisions x 16 options: {batch_file}")
    if not open_keys:
        console.print("  no patient of this lock has an open decision; no patient scored alone")
        return {"open scores": batch_file}
    console.print(f"7. score one of them alone, as the tumour board would: {open_keys[0]}")
    document = export_patients(lock, key, [open_keys[0]])[open_keys[0]]
    patient_file, score_file = out / "patient.json", out / "score.json"
    patient_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    result = score_patient(model, document, source=patient_file.name)
    score_file.write_text(dumps(result) + "\n", encoding="utf-8")
    console.print(
        f"  line {result['line_number']}: top options by rwPFS RMST to 24 months (90% interval), "
        "difference from TBP"
    )
    for entry in [e for e in result["candidates"] if e["rank"] is not None][:5]:
        pfs = entry["rwpfs"]
        console.print(
            f"  {entry['rank']}. {entry['option']:32s} {pfs['rmst24']:5.1f} ({pfs['rmst24_lower']:.1f}-"
            f"{pfs['rmst24_upper']:.1f}) months, {pfs['rmst24_vs_tbp']:+.1f} vs TBP"
        )
    unsupported = [e["option"] for e in result["candidates"] if not e["support"]]
    if unsupported:
        console.print(f"  insufficient evidence (not ranked): {', '.join(unsupported)}")
    from serving.report import render_report

    report_file = out / "report.html"
    console.print(f"8. write the tumour-board report of that patient: {report_file}")
    report_file.write_text(render_report(model, document, source=patient_file.name), encoding="utf-8")
    return {"open scores": batch_file, "patient": patient_file, "score": score_file, "report": report_file}


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    model_uri: Annotated[
        str, typer.Option("--model", help="Registered model to serve (an alias is followed on reload).")
    ] = DEFAULT_MODEL_URI,
    local_only: Annotated[
        bool,
        typer.Option(
            "--local-only",
            help="Serve the loopback interface only; LINEWISE_API_TOKEN may then be unset "
            "(no authentication).",
        ),
    ] = False,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Refuse request bodies over this size (413).")
    ] = 1_000_000,
    reload_interval: Annotated[
        float,
        typer.Option(
            "--reload-interval", min=0.0, help="Seconds between checks of the model alias; 0: never."
        ),
    ] = 60.0,
) -> None:
    """Serve the model over HTTP: POST /v1/score and /v1/report with a bearer token (LINEWISE_API_TOKEN)."""
    import ipaddress

    token = os.environ.get("LINEWISE_API_TOKEN") or None
    if token is None and not local_only:
        _fail(
            "linewise serve: LINEWISE_API_TOKEN is not set: set it to the bearer token clients must send, "
            "or pass --local-only to serve this machine only without one"
        )
    if local_only:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            _fail(
                f"linewise serve: --local-only serves the loopback interface only "
                f"(127.0.0.1, ::1), not {host}"
            )
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from serving.app import create_app

    model = _load_model_or_fail(model_uri, "serve")
    service = create_app(
        model_uri,
        token=token,
        local_only=local_only,
        max_body_bytes=max_body_bytes,
        reload_interval_s=reload_interval,
        model=model,
    )
    log_config = {
        **LOGGING_CONFIG,
        "loggers": {
            **LOGGING_CONFIG["loggers"],
            "linewise.serve": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }
    # one worker, and no access log: the service logs one line per request itself (serving.limits)
    uvicorn.run(service, host=host, port=port, workers=1, access_log=False, log_config=log_config)


def main() -> None:
    """Run the command line (console-script entry point)."""
    app()
