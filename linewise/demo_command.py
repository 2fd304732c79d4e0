"""``linewise demo``: simulate, validate, calibrate, train, score and report, into one folder."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from linewise import __version__
from linewise.cli_support import fail, json_safe
from linewise.data_commands import load_for_validation, print_summary, run_simulation
from linewise.features.decisions import derive_decisions
from linewise.features.patient import export_patients
from linewise.model_commands import TrainingConfigOption, train_and_log, training_summary
from linewise.serving.score_document import DEFAULT_MODEL_URI

DEMO_MARKER = ".linewise-demo"


def _fresh_demo_folder(out: Path) -> None:
    if out.exists():
        if not (out / DEMO_MARKER).is_file():
            fail(f"linewise demo: {out} exists and was not made by linewise demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("made by linewise demo; safe to delete\n", encoding="utf-8")


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
    run_simulation(patients, seed, lock, truth, None)
    console.print("2. validate it against the data-lock contract")
    data_lock, notes = load_for_validation(lock)
    print_summary(data_lock.summary(), notes, console)
    console.print("3. derive the decision points (every progression) and their actions")
    decisions = derive_decisions(data_lock)
    shares = decisions["action"].value_counts(normalize=True).head(4)
    console.print(
        f"  {len(decisions)} decisions, {int(decisions['open_decision'].sum())} open; most frequent actions: "
        + ", ".join(f"{action} {share:.0%}" for action, share in shares.items())
    )
    console.print("4. calibrate against the published targets (targets.yaml)")
    from linewise.simulation.calibration import calibrate as run_calibration

    results = run_calibration(lock, truth)
    calibration = out / "calibration.json"
    calibration.write_text(
        json.dumps([json_safe(r.to_dict()) for r in results], indent=2) + "\n", encoding="utf-8"
    )
    inside = sum(r.within is True for r in results)
    outside = [r.id for r in results if r.within is False]
    console.print(
        f"  {inside} of {len(results)} targets inside their range"
        + (f"; outside: {', '.join(outside)}" if outside else "")
    )
    console.print("5. train the recommender on the lock, track the run in MLflow, register it")
    outcome = train_and_log(lock, config_path, "linewise-demo", console, False)
    for line in training_summary(outcome, "linewise-demo").splitlines():
        console.print(f"  {escape(line)}")
    console.print("6. score every open decision of the lock with models:/linewise@champion (score-lock)")
    scored = _demo_score(lock, out, console)
    from linewise.training.tracking import tracking_uri

    console.print(
        f"Outputs: lock {lock}, truth {truth}, calibration {calibration}, "
        + "".join(f"{name} {path}, " for name, path in scored.items())
        + f"MLflow store {tracking_uri(os.environ)} "
        f"(run {outcome.run_id}, {outcome.model_uri} @{outcome.alias})"
    )


def _demo_score(lock: Path, out: Path, console: Console) -> dict[str, Path]:
    """Score the lock's open decisions, then the first such patient (by key) alone; return the files."""
    from linewise.serving.batch import score_lock, write_scores
    from linewise.serving.scoring import dumps, load_scoring_model, score_patient

    key = secrets.token_bytes(32)  # the demo's own pseudonyms: the batch and the exported patient share them
    model = load_scoring_model(DEFAULT_MODEL_URI)
    scores = score_lock(model, lock, key).scores
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
    from linewise.serving.report import render_report

    report_file = out / "report.html"
    console.print(f"8. write the tumour-board report of that patient: {report_file}")
    report_file.write_text(render_report(model, document, source=patient_file.name), encoding="utf-8")
    return {"open scores": batch_file, "patient": patient_file, "score": score_file, "report": report_file}
