"""The data commands of ``linewise``.

validate, pseudonymize, simulate, calibrate, features and export-patient.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linewise.cli_support import (
    EXIT_BAD_INPUT,
    check_outputs,
    fail,
    json_safe,
    resolve_key_or_fail,
    write_outputs,
)
from linewise.features import (
    DataLock,
    LockValidationError,
    LockWarning,
    PseudonymKeyError,
    load_lock,
    pseudonymize,
    resolve_key,
)
from linewise.features.decisions import ACTIONS, KEYS, OUTCOMES
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import export_patients
from linewise.simulation.simulate import TRUTH_FILE

if TYPE_CHECKING:  # calibration (lifelines, scikit-learn) is imported by the commands that run it
    from linewise.simulation.calibration import TargetResult


def load_for_validation(lock: Path) -> tuple[DataLock, list[str]]:
    """Load a lock with a throw-away key: validation needs no pseudonym key and writes nothing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LockWarning)
        data_lock = load_lock(lock, secrets.token_bytes(32))
    return data_lock, [str(w.message) for w in caught if issubclass(w.category, LockWarning)]


def print_summary(summary: dict[str, Any], notes: list[str], console: Console) -> None:
    """Print a valid lock's summary (counts only, no patient data) and the loader's warnings."""
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


def validate(
    lock: Annotated[
        Path, typer.Argument(help="Data lock folder (manifest.json and one CSV or Parquet per table).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a data lock against every rule of the contract and summarise it; exit 2 if it breaks any."""
    try:
        data_lock, notes = load_for_validation(lock)
    except LockValidationError as err:
        if as_json:
            payload = {
                "valid": False,
                "lock": err.lock_name,
                "total_violations": err.total,
                "violations": [v.to_dict() for v in err.violations],
                "omitted": [omitted.to_dict() for omitted in err.omitted],
            }
            typer.echo(json.dumps(payload, indent=2))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        fail(str(err))
    summary = data_lock.summary()
    if as_json:
        typer.echo(json.dumps({"valid": True, **summary, "warnings": notes}, indent=2))
        return
    print_summary(summary, notes, Console(highlight=False))


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
        fail(
            "linewise pseudonymize: '-' reads identifiers from standard input and cannot be mixed with others"
        )
    for position, raw_id in enumerate(ids, start=1):
        if not raw_id.strip():
            fail(f"linewise pseudonymize: identifier {position} is empty")
    try:
        key = resolve_key(os.environ)
    except PseudonymKeyError as err:
        fail(f"linewise pseudonymize: {err}")
    for raw_id in ids:
        typer.echo(pseudonymize(raw_id, key))


def _simulation_config(config_path: Path | None, scenario: str | None, command: str = "simulate") -> Any:
    """Read ``--config`` and draw ``--scenario`` from it; exit 2 naming ``command`` on bad input."""
    from linewise.simulation.config import SimulationConfigError, load_config
    from linewise.simulation.scenarios import scenario_config

    try:
        config = load_config(config_path)
        return config if scenario is None else scenario_config(scenario, config)
    except (SimulationConfigError, ValueError) as err:
        fail(f"linewise {command}: {err}")


def run_simulation(
    patients: int,
    seed: int,
    out: Path,
    truth_out: Path,
    config_path: Path | None,
    scenario: str | None = None,
) -> None:
    """Simulate a lock and its truth with a progress bar (``simulate`` and ``demo``); exit 2 on bad input."""
    from linewise.simulation.simulate import SimulationOutputError, simulate_lock

    config = _simulation_config(config_path, scenario)
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
            fail(f"linewise simulate: {err}")
        progress.update(task, completed=len(stages))
    typer.echo(
        f"wrote lock {summary.lock} ({summary.patients} patients, {summary.rows['lines']} lines, "
        f"{summary.rows['progressions']} progressions) and truth {summary.truth} ({summary.truth_rows} rows)"
    )


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
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="A scenario of the suite, drawn from --config: default, fully_recorded or a scenario seed.",
        ),
    ] = None,
) -> None:
    """Simulate a data lock and, beside it, the true outcome of every candidate at every decision."""
    run_simulation(patients, seed, out, truth_out, config, scenario)


def scenario_command(
    name: Annotated[str, typer.Argument(help="default, fully_recorded or a scenario seed (0, 1, ...).")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Simulator YAML to start from (default: the bundled one).")
    ] = None,
    describe_only: Annotated[
        bool, typer.Option("--describe", help="Print the scenario's facts as JSON instead of its YAML.")
    ] = False,
) -> None:
    """Print a scenario of the suite as a simulator YAML (for ``simulate --config``), or its facts."""
    import yaml

    from linewise.simulation.scenarios import describe

    chosen = _simulation_config(config, name, "scenario")
    if describe_only:
        typer.echo(json.dumps(describe(chosen), indent=2))
    else:
        typer.echo(yaml.safe_dump(chosen.model_dump(mode="json"), sort_keys=False), nl=False)


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
    text = json.dumps(json_safe(value), separators=(", ", ": ")) if value is not None else ""
    return text.replace('"', "")


def calibrate(
    lock: Annotated[Path, typer.Argument(help="A simulated data lock folder.")],
    truth: Annotated[Path, typer.Option("--truth", help="Its ground-truth folder (from linewise simulate).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of targets.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when a target is outside its range.")
    ] = False,
) -> None:
    """Compare a simulated lock and its truth with every published target and say which are inside."""
    from linewise.simulation.calibration import calibrate as run_calibration

    if not (truth / TRUTH_FILE).is_file():
        fail(f"linewise calibrate: no {TRUTH_FILE} in {truth}: pass the folder written by --truth-out")
    try:
        results = run_calibration(lock, truth)
    except LockValidationError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps([json_safe(result.to_dict()) for result in results], indent=2))
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
        fail("linewise features: --out must end in .parquet")
    sidecar = out.with_suffix(".json")
    check_outputs("features", out, sidecar)
    key = resolve_key_or_fail("features")
    try:
        data_lock = load_lock(lock, key)
    except LockValidationError as err:
        fail(str(err))
    examples = build_examples(data_lock, tbp_min_days=tbp_min_days)
    columns = {
        "keys": list(KEYS),
        "features": list(FEATURES),
        "actions": list(ACTIONS),
        "outcomes": list(OUTCOMES),
        "other": ["open_decision"],
    }
    write_outputs(
        "features",
        {
            out: lambda path: examples.to_parquet(path, index=False),
            sidecar: lambda path: path.write_text(json.dumps(columns, indent=2) + "\n", encoding="utf-8"),
        },
    )
    open_count = int(examples["open_decision"].sum())
    typer.echo(
        f"wrote {len(examples)} decisions ({open_count} open) with {len(FEATURES)} features to {out}; "
        f"column lists in {sidecar}"
    )


def export_patient(
    lock: Annotated[Path, typer.Argument(help="Data lock folder.")],
    patient: Annotated[str, typer.Option("--patient", help="The patient's key (linewise pseudonymize).")],
    out: Annotated[Path, typer.Option("--out", help="JSON file to write.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Cut the history at this date, YYYY-MM-DD (default: lock date)."),
    ] = None,
    file_format: Annotated[
        str,
        typer.Option(
            "--format", help="json: linewise's patient document; fhir: an R4 Bundle profiled by mCODE STU4."
        ),
    ] = "json",
) -> None:
    """Write one patient's history up to a date as the JSON that scoring accepts (pseudonym, no raw id)."""
    from linewise.features.fhir import bundle_from_document  # fhir.resources only when exporting

    if file_format not in ("json", "fhir"):
        fail("linewise export-patient: --format must be json or fhir")
    cut = None
    if as_of is not None:
        try:
            cut = dt.date.fromisoformat(as_of)
        except ValueError:
            fail("linewise export-patient: --as-of must be a date YYYY-MM-DD")
    check_outputs("export-patient", out)
    key = resolve_key_or_fail("export-patient")
    try:
        documents = export_patients(lock, key, [patient], cut)
    except LockValidationError as err:
        fail(str(err))
    except (KeyError, ValueError) as err:
        fail(f"linewise export-patient: {err.args[0]}")
    document = documents[patient]
    content = document if file_format == "json" else bundle_from_document(document)
    text = json.dumps(content, indent=2) + "\n"
    write_outputs("export-patient", {out: lambda path: path.write_text(text, encoding="utf-8")})
    what = "history" if file_format == "json" else "FHIR Bundle"
    typer.echo(f"wrote the {what} of {patient} up to {document['as_of']} to {out}")
