"""The scoring commands of ``linewise``: score, report, score-lock and serve."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from linewise.cli_support import (
    check_outputs,
    date_option,
    fail,
    quiet_mlflow,
    resolve_key_or_fail,
    write_outputs,
)
from linewise.features import (
    LockValidationError,
    LockWarning,
)
from linewise.serving.score_document import DEFAULT_MODEL_URI

#: On SIGTERM or Ctrl-C, ``serve`` stops taking connections and waits this long for the requests in
#: flight to finish before it closes them.
GRACEFUL_SHUTDOWN_S: Final = 30


def _load_model_or_fail(model_uri: str, command: str) -> Any:
    """Load a model for scoring from the project's tracking store; exit 2 with one line on failure."""
    import mlflow

    from linewise.serving.scoring import load_scoring_model
    from linewise.training.tracking import tracking_uri

    quiet_mlflow()
    if "MLFLOW_TRACKING_URI" not in os.environ:  # MLflow reads the variable itself when it is set
        mlflow.set_tracking_uri(tracking_uri(os.environ))
    try:
        return load_scoring_model(model_uri)
    except (mlflow.exceptions.MlflowException, OSError, TypeError, ValueError) as err:
        fail(f"linewise {command}: cannot load the model {model_uri}: {err}")


def _score_patient_file(
    patient: Path, as_of: str | None, model_uri: str, command: str, work: Callable[..., Any]
) -> tuple[Any, dict[str, Any]]:
    """Read a patient file, load the model and run ``work(model, document, as_of, source=...)``.

    Shared by ``score`` and ``report``: every failure (a file that breaks the patient-file contract,
    a bad ``--as-of``, a model that cannot be loaded, a patient with nothing to score) exits 2 with
    one message. Returns ``work``'s result and the document.
    """
    from linewise.features.fhir import FhirBundleError, is_bundle, read_bundle
    from linewise.features.patient import read_patient_file
    from linewise.serving.scoring import ScoringError

    try:
        content = read_patient_file(patient)
    except LockValidationError as err:
        fail(str(err))
    bundle = None
    if is_bundle(content):  # a FHIR Bundle (linewise export-patient --format fhir, or a hospital's)
        try:
            bundle = read_bundle(content, patient.name)
        except FhirBundleError as err:
            fail(str(err))
    document = content if bundle is None else bundle.document
    day = date_option(as_of, command)
    model = _load_model_or_fail(model_uri, command)
    try:
        return work(model, document, day, source=patient.name), document
    except LockValidationError as err:
        fail(str(err) if bundle is None else str(bundle.problems_of(err, patient.name)))
    except ScoringError as err:
        fail(f"linewise {command}: {err}")


def score(
    patient: Annotated[
        Path, typer.Argument(help="Patient JSON file or FHIR Bundle (linewise export-patient).")
    ],
    model_uri: Annotated[
        str, typer.Option("--model", help="Registered model to score with.")
    ] = DEFAULT_MODEL_URI,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Score the history as it stood on this date (YYYY-MM-DD).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the candidates as JSON.")] = False,
) -> None:
    """Score every candidate next step of a patient's latest decision, with intervals and explanations."""
    from linewise.serving.scoring import dumps, score_patient

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
        "P(best)",
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
            "-" if entry["probability_best"] is None else f"{100 * entry['probability_best']:.0f}%",
            f"{overall['rmst24']:.1f} ({overall['rmst24_lower']:.1f}-{overall['rmst24_upper']:.1f})",
            "supported" if entry["support"] else "insufficient evidence",
        )
    console = Console(highlight=False, width=140)
    for warning in result["scope"]["warnings"]:
        console.print(f"WARNING (outside the model's scope, rule {warning['rule']}): {warning['message']}")
    console.print(table)
    console.print(
        f"model {provenance['model_uri']} (version {provenance['model_version']}), trained on lock "
        f"{provenance['lock_id']} of {provenance['lock_date']}; months; explanations in --json"
    )
    console.print(f"options ranked by learner {provenance.get('learner') or '-'}; {_value_line(provenance)}")
    console.print(_sensitivity_line(result["sensitivity"]))
    for warning in result["scope"]["warnings"]:  # again under the table, where the eye ends
        console.print(f"WARNING: {warning['message']}")


def report(
    patient: Annotated[
        Path, typer.Argument(help="Patient JSON file or FHIR Bundle (linewise export-patient).")
    ],
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
    from linewise.serving.report import render_report

    if out.is_dir():
        fail(f"linewise report: --out {out} is a folder; give the HTML file to write")
    check_outputs("report", out)
    page, document = _score_patient_file(patient, as_of, model_uri, "report", render_report)
    write_outputs("report", {out: lambda path: path.write_text(page, encoding="utf-8")})
    typer.echo(f"wrote the report of patient {document['patient_key']} to {out}")


def score_lock_command(
    lock: Annotated[Path, typer.Argument(help="Data lock folder.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file for the scores.")],
    model_uri: Annotated[
        str, typer.Option("--model", help="Registered model to score with.")
    ] = DEFAULT_MODEL_URI,
) -> None:
    """Score every open decision of a lock under every candidate: one Parquet row per decision and option."""
    from linewise.serving.batch import score_lock, write_scores

    if out.suffix != ".parquet":
        fail("linewise score-lock: --out must end in .parquet")
    check_outputs("score-lock", out)
    key = resolve_key_or_fail("score-lock")
    model = _load_model_or_fail(model_uri, "score-lock")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LockWarning)  # undeclared columns: `linewise validate` lists them
            scored = score_lock(model, lock, key)
    except LockValidationError as err:
        fail(str(err))
    if scored.open_decisions == 0:
        fail(
            f"linewise score-lock: none of the lock's {scored.decisions} decisions is open at its lock_date "
            "(a progression shortly before it, with no next step recorded); nothing written"
        )
    provenance = {**model.provenance, "scored_lock_id": scored.lock_id}
    write_outputs("score-lock", {out: lambda path: write_scores(scored.scores, path, provenance)})
    typer.echo(
        f"wrote {len(scored.scores)} rows ({scored.open_decisions} open decisions x 16 options) to {out}; "
        f"model {model_uri} (version {model.version})"
    )
    for rule, count in scored.out_of_scope().items():
        typer.echo(
            f"WARNING: {count} of the {scored.open_decisions} open decisions are outside the model's scope "
            f"(rule {rule}; column scope_warnings): their scores are extrapolations",
            err=True,
        )


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

    from linewise.serving.security import token_problem

    token = os.environ.get("LINEWISE_API_TOKEN") or None
    if token is None and not local_only:
        fail(
            "linewise serve: LINEWISE_API_TOKEN is not set: set it to the bearer token clients must send, "
            "or pass --local-only to serve this machine only without one"
        )
    if token is not None and (problem := token_problem(token)) is not None:
        fail(f"linewise serve: LINEWISE_API_TOKEN: {problem}")
    if local_only:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            fail(
                f"linewise serve: --local-only serves the loopback interface only "
                f"(127.0.0.1, ::1), not {host}"
            )
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from linewise import __version__
    from linewise.serving.app import create_app

    model = _load_model_or_fail(model_uri, "serve")
    service = create_app(
        model_uri,
        version=__version__,
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
    # one worker, and no access log: the service logs one line per request itself (linewise.serving.limits)
    uvicorn.run(
        service,
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_config=log_config,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def _value_line(provenance: dict[str, Any]) -> str:
    """Return the model's estimated policy value as one line (or say that none is recorded)."""
    value = provenance.get("policy_value")
    if not value:
        return "no estimated value of its recommendations is recorded with the model"
    return (
        f"estimated value of its recommendations {value['estimate']:.2f} months of rwPFS to 24 months "
        f"(95% {value['lower']:.2f}-{value['upper']:.2f}; {value['method']})"
    )


def _sensitivity_line(sensitivity: dict[str, Any]) -> str:
    """Return the first-versus-second contrast and its E-values as one line."""
    if sensitivity["second_option"] is None:
        return "sensitivity: fewer than two supported options, no ranking to test"

    def shown(key: str, digits: int) -> str:
        value = sensitivity[key]
        return "n/a" if value is None else f"{value:.{digits}f}"

    return (
        f"sensitivity: {sensitivity['first_option']} ahead of {sensitivity['second_option']} by "
        f"{shown('difference', 1)} months ({100 * sensitivity['interval']:.0f}% "
        f"{shown('lower', 1)} to {shown('upper', 1)}); E-value {shown('e_value', 2)} "
        f"(interval {shown('e_value_interval', 2)}): the risk ratio an unrecorded factor would need "
        "with both choice and rwPFS to reverse the order"
    )
