"""Every learner on every suite scenario: capture, the chosen learner, coverage and the value's honesty.

For each scenario (:mod:`linewise.simulation.scenarios`) a training lock (6,000 patients, seed 41) and a
judging lock (2,000 patients, seed 42) are simulated; the default scenario is also run on seeds 11/12.
On the training lock, exactly as ``linewise train`` does with the bundled configuration
(``training/default.yaml``), the decisions are split into development and test, the selection
(:mod:`linewise.training.selection`) estimates every candidate's cross-fitted policy value, and the
winner is refitted on development with its 20 bootstrap refits (the naive twin beside it). Then, on the
judging lock, against its known potential outcomes:

- **capture** of rwPFS RMST24 (the share of the gain from observed practice to each decision's best
  option that the recommendations achieve) of the chosen model, of its naive twin, and of every
  candidate learner refitted on development without bootstrap (``fit_and_rank``; naive twins with
  ``weighting: none``), among them the weighted random-survival-forest S-learner that the targets
  compare with;
- **coverage** of the chosen model's 90% intervals of each supported option's difference from TBP;
- **the E-values against the truth**: among the judged decisions with two supported options, how
  often the first option is truly worse than the second, where the E-value of the contrast's interval
  is above 1 and where it is 1 (:mod:`linewise.models.sensitivity`; the scenario's facts say how much
  unrecorded prognosis drives the choice);
- **the value estimate against the truth**: the doubly robust value of the chosen model's
  recommendations on the judging lock, nuisance models fitted on development
  (:mod:`linewise.training.held_out_value`), its 95% interval, and the true value of the same
  recommendations; and the selection's cross-fitted value of the winner on development against the
  true value of its out-of-fold recommendations there.

Each scenario's result is cached (``--cache``, in a folder named by the mode and the sizes) and reused,
so a run that is stopped resumes where it stopped. A record names the code it came from: the
repository's Python files that the process had imported, its YAML files and the installed distributions
it had imported, each file as it was when the process started, with a digest of them
(:class:`CodeSnapshot`). A record is reused only while that digest still holds, so a change to any code
the scenario ran starts that scenario afresh, and code it never imported (a new command, say) does not;
``--fresh`` ignores the cache. The default cache of the development and held-out runs is
``benchmarks/results/scenario_runs``, kept with the results: each file there is one scenario's full
record, from which the summary JSON is rebuilt. ``--quick`` runs three scenarios on smaller locks with 5
refits, for development; its cache and its JSON stay in ``.cache/scenario_suite`` and are never quoted,
as does the JSON of a development run restricted by ``--scenarios``.
``--held-out`` runs the held-out seeds instead of the development ones: they are run once, at the end
of the design work, and written to their own JSON.

Run: ``.venv/bin/python benchmarks/scenario_suite.py [--quick | --held-out] [--scenarios NAME ...]``
(5 to 10 minutes per scenario on 2 cores; 27 development runs). Writes
``benchmarks/results/scenario_suite.json`` (``scenario_suite_held_out.json`` with ``--held-out``).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

import linewise
from linewise.cli_support import json_safe
from linewise.features import load_lock
from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES, build_examples
from linewise.models.candidates import BASELINE, OPTIONS, option_index, training_decisions
from linewise.models.dr_value import recommendations
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.target import make_target
from linewise.simulation.scenarios import DEVELOPMENT_SEEDS, HELD_OUT_SEEDS, describe, scenario_config
from linewise.simulation.simulate import TRUTH_FILE, simulate_lock
from linewise.training.config import TrainingConfig, load_training_config
from linewise.training.fitting import fit_selected
from linewise.training.held_out_value import held_out_scores
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.policy import read_truth
from linewise.training.selection import fit_and_rank, select
from linewise.training.split import split_examples

ROOT: Final = Path(__file__).resolve().parents[1]
RESULTS: Final = ROOT / "benchmarks" / "results"
BASELINE_INDEX: Final = OPTIONS.index(BASELINE)
#: The comparison of the targets: the weighted random-survival-forest S-learner of the configuration.
RSF_BASELINE: Final = "random_survival_forest:s"


def scenario_runs(held_out: bool, quick: bool, names: list[str] | None) -> list[tuple[str, int, int]]:
    """Return (scenario, training seed, judging seed) of each run."""
    if names:
        chosen = [str(name) for name in names]
        if not held_out and any(name.isdigit() and int(name) in HELD_OUT_SEEDS for name in chosen):
            raise SystemExit("held-out seeds run only with --held-out")
    elif held_out:
        chosen = [str(seed) for seed in HELD_OUT_SEEDS]
    elif quick:
        chosen = ["default", "1", "3"]
    else:
        chosen = ["default", "fully_recorded", *(str(seed) for seed in DEVELOPMENT_SEEDS)]
    runs = [(name, 41, 42) for name in chosen]
    if not held_out and not quick and not names:
        runs.insert(2, ("default", 11, 12))  # the targets' fixed runs first: default twice, fully recorded
    return runs


def _truth_matrix(truth: pd.DataFrame, decisions: pd.DataFrame) -> np.ndarray:
    """True rwPFS RMST24 of every option (columns in OPTIONS order) of each decision."""
    table = truth.pivot_table(index=list(KEYS), columns=["candidate", "local_therapy"], values="pfs_rmst24")
    columns = [(option.candidate, option.local_therapy) for option in OPTIONS]
    rows = pd.MultiIndex.from_frame(decisions[list(KEYS)])
    return np.asarray(table.loc[rows][columns].to_numpy(float))


def _capture(truth: np.ndarray, policy: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    index = np.arange(len(truth))
    value, practice, oracle = truth[index, policy].mean(), truth[index, observed].mean(), truth.max(1).mean()
    return {"capture": float((value - practice) / (oracle - practice)), "true_value": float(value)}


def _arrays(decisions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X = decisions[list(FEATURES)].to_numpy(float)
    observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
    target = make_target(decisions["pfs_time"], decisions["pfs_event"].astype(bool))
    _, patients = np.unique(decisions["patient_key"].astype(str).to_numpy(), return_inverse=True)
    return X, observed, target, patients


def _learner_captures(
    config: TrainingConfig,
    selection_table: pd.DataFrame,
    selection_nuisances: Any,
    development: pd.DataFrame,
    judged: pd.DataFrame,
    truth: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Capture on the judging lock of every candidate learner and its naive twin, fitted on development."""
    X, observed, target, patients = _arrays(training_decisions(development))
    X_new, observed_new, _, _ = _arrays(judged)
    naive_config = config.model_copy(update={"weighting": "none"})
    naive_nuisances = selection_nuisances.naive_twin()
    adjusted_nuisances = naive_nuisances if config.weighting == "none" else selection_nuisances
    out: dict[str, dict[str, float]] = {}
    values: dict[tuple[int, str], np.ndarray] = {}
    propensity = OptionPropensityModel(min_support=config.min_support).fit(X, observed)
    support_of: dict[str, np.ndarray] = {}
    for setting, candidate in enumerate(config.selection.candidates):
        for kind, settings, nuisances in (
            ("adjusted", config, adjusted_nuisances),
            ("naive", naive_config, naive_nuisances),
        ):
            started = time.perf_counter()
            ranked, support = fit_and_rank(
                candidate, X, observed, target, patients, nuisances, X_new, settings, propensity
            )
            support_of[kind] = support
            for learner, value in ranked.items():
                values[(setting, f"{kind}:{learner}")] = value
            seconds = (time.perf_counter() - started) / len(ranked)
            for learner, value in ranked.items():
                name = f"{setting}:{candidate.family}:{learner}"
                entry = out.setdefault(name, {"fit_seconds": 0.0})
                result = _capture(truth, recommendations(value, support, observed_new), observed_new)
                entry["capture" if kind == "adjusted" else "naive_capture"] = result["capture"]
                entry["fit_seconds"] += round(seconds, 2)
    for row in selection_table.itertuples():
        if "+" not in row.learner:
            continue
        for kind in ("adjusted", "naive"):
            members = [values[(int(row.setting), f"{kind}:{m}")] for m in row.learner.split("+")]
            policy = recommendations(np.mean(members, axis=0), support_of[kind], observed_new)
            entry = out.setdefault(f"{row.setting}:{row.family}:{row.learner}", {"fit_seconds": 0.0})
            entry["capture" if kind == "adjusted" else "naive_capture"] = _capture(
                truth, policy, observed_new
            )["capture"]
    return out


def run_scenario(name: str, train_seed: int, judge_seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Simulate, select, fit and judge one scenario (module docstring)."""
    config = load_training_config().model_copy(update={"n_bootstrap": args.bootstrap})
    simulation = scenario_config(name)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        started = time.perf_counter()
        simulate_lock(args.train_patients, train_seed, base / "train", base / "train_truth", simulation)
        simulate_lock(args.test_patients, judge_seed, base / "judge", base / "judge_truth", simulation)
        timings["simulate"] = time.perf_counter() - started
        key = session_key(lock_digest(base / "train"))
        lock = load_lock(base / "train", key)
        examples = build_examples(lock)
        judged = training_decisions(build_examples(load_lock(base / "judge", key)))
        judge_truth = _truth_matrix(read_truth(base / "judge_truth" / TRUTH_FILE, key), judged)
        train_truth = read_truth(base / "train_truth" / TRUTH_FILE, key)
    split = split_examples(examples, lock.patients, config.split, np.random.default_rng(config.seed))
    development = examples.loc[split.development]
    started = time.perf_counter()
    selected = select(development, config)
    timings["select"] = time.perf_counter() - started
    started = time.perf_counter()
    model, naive = fit_selected(development, selected, config)
    timings["fit"] = time.perf_counter() - started
    started = time.perf_counter()
    X_new, observed_new, _, _ = _arrays(judged)
    predictions = model.predict_options(X_new)
    policy = recommendations(predictions.summary["pfs_rmst24"], predictions.support, observed_new)
    naive_predictions = naive.predict_options(X_new)
    naive_policy = recommendations(
        naive_predictions.summary["pfs_rmst24"], naive_predictions.support, observed_new
    )
    chosen = _capture(judge_truth, policy, observed_new)
    # coverage of the 90% intervals of the differences from TBP, supported options other than TBP
    true_difference = judge_truth - judge_truth[:, [BASELINE_INDEX]]
    lower = predictions.lower["pfs_rmst24_vs_tbp"]
    upper = predictions.upper["pfs_rmst24_vs_tbp"]
    judged_rows = predictions.support.copy()
    judged_rows[:, BASELINE_INDEX] = False
    covered = (lower <= true_difference) & (true_difference <= upper)
    sensitivity = _sensitivity_check(predictions.first_vs_second, judge_truth)
    # the value estimate on the judging lock against the truth of the same recommendations
    scores = held_out_scores(development, judged, min_support=config.min_support, random_state=config.seed)
    estimate = scores.policy_value(policy)
    # the selection's cross-fitted value of the winner against its out-of-fold recommendations' truth
    development_decisions = training_decisions(development)
    development_truth = _truth_matrix(train_truth, development_decisions)
    out_of_fold = selected.policies[selected.chosen]
    selection_true = float(development_truth[np.arange(len(out_of_fold)), out_of_fold].mean())
    learners = _learner_captures(config, selected.table, selected.nuisances, development, judged, judge_truth)
    timings["judge"] = time.perf_counter() - started
    return {
        "scenario": name,
        "seeds": {"train": train_seed, "judge": judge_seed},
        "facts": describe(simulation),
        "chosen": {
            "learner": selected.learner,
            "family": selected.family,
            "params": selected.params,
            "capture": chosen["capture"],
            "naive_capture": _capture(judge_truth, naive_policy, observed_new)["capture"],
        },
        "coverage_90_vs_tbp": float(covered[judged_rows].mean()),
        "coverage_rows": int(judged_rows.sum()),
        "interval_width_mean_vs_tbp": float((upper - lower)[judged_rows].mean()),
        "value": {
            "estimate": estimate.value,
            "lower": estimate.lower,
            "upper": estimate.upper,
            "true": chosen["true_value"],
            "covered": bool(estimate.lower <= chosen["true_value"] <= estimate.upper),
            "selection_estimate": selected.value,
            "selection_true": selection_true,
        },
        "sensitivity": sensitivity,
        "learners": learners,
        "selection_table": selected.table.drop(columns=["params"]).to_dict(orient="records"),
        "decisions": {"development": len(development_decisions), "judged": len(judged)},
        "seconds": timings,
    }


def _sensitivity_check(contrast: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, float]:
    """How often the first option is truly worse than the second, by the E-value of the interval."""
    both = contrast["second"] >= 0
    rows = np.flatnonzero(both)
    first, second = contrast["first"][rows].astype(int), contrast["second"][rows].astype(int)
    reversed_order = truth[rows, first] < truth[rows, second]
    strong = contrast["e_value_interval"][rows] > 1.0
    return {
        "decisions": float(len(rows)),
        "share_interval_e_value_above_1": float(strong.mean()) if len(rows) else float("nan"),
        "reversed_when_above_1": float(reversed_order[strong].mean()) if strong.any() else float("nan"),
        "reversed_when_1": float(reversed_order[~strong].mean()) if (~strong).any() else float("nan"),
        "median_e_value": float(np.median(contrast["e_value"][rows])) if len(rows) else float("nan"),
    }


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the scenarios, the shortfall against the RSF S-learner and the target checks."""
    chosen = np.array([r["chosen"]["capture"] for r in results])
    rsf = np.array([_rsf_capture(r) for r in results])
    covered = np.array([r["value"]["covered"] for r in results])
    recorded_only = [r for r in results if r["facts"]["frailty_sd"] == 0]
    return {
        "runs": len(results),
        "mean_capture_chosen": float(chosen.mean()),
        "min_capture_chosen": float(chosen.min()),
        "mean_capture_rsf_s": float(np.nanmean(rsf)),
        "largest_shortfall_vs_rsf_s": float(np.nanmax(rsf - chosen)),
        "runs_more_than_0_05_below_rsf_s": int(np.sum(rsf - chosen > 0.05)),
        "value_interval_coverage": float(covered.mean()),
        "mean_value_error": float(np.mean([r["value"]["estimate"] - r["value"]["true"] for r in results])),
        "mean_selection_value_error": float(
            np.mean([r["value"]["selection_estimate"] - r["value"]["selection_true"] for r in results])
        ),
        "mean_coverage_90_vs_tbp": float(np.mean([r["coverage_90_vs_tbp"] for r in results])),
        "recorded_confounding_runs": len(recorded_only),
        "recorded_confounding_above_naive": int(
            sum(r["chosen"]["capture"] > r["chosen"]["naive_capture"] for r in recorded_only)
        ),
        "chosen_learners": pd.Series([r["chosen"]["learner"] for r in results]).value_counts().to_dict(),
    }


def _rsf_capture(result: dict[str, Any]) -> float:
    for name, entry in result["learners"].items():
        if name.split(":", 1)[1] == RSF_BASELINE:
            return float(entry["capture"])
    return float("nan")


#: Folders of the repository that hold no code a run imports (and are not hashed).
SKIPPED_FOLDERS: Final = frozenset(
    {".venv", ".git", ".cache", "mlruns", "build", "__pycache__", "results", "tests"}
)


def _source_files(root: Path) -> list[Path]:
    """Every Python and YAML file of the repository outside :data:`SKIPPED_FOLDERS` and links."""
    return sorted(
        path
        for suffix in ("*.py", "*.yaml")
        for path in root.rglob(suffix)
        if not SKIPPED_FOLDERS.intersection(path.relative_to(root).parts) and not path.is_symlink()
    )


def _content(path: Path) -> bytes:
    """What a file counts by: a Python file's syntax tree without docstrings, any other file's bytes."""
    if not path.is_file():
        return b"\0missing"
    if path.suffix == ".py":
        return _code_of(path.read_text(encoding="utf-8"))
    return path.read_bytes()


def code_digest(contents: dict[str, bytes], distributions: dict[str, str]) -> str:
    """The first 12 hex digits of the SHA-256 of files' contents and distributions' versions.

    Parameters
    ----------
    contents : dict of str to bytes
        Repository-relative file name to :func:`_content`.
    distributions : dict of str to str
        Distribution name to version.

    Returns
    -------
    str
    """
    digest = hashlib.sha256(platform.python_version().encode() + b"\0" + platform.machine().encode())
    for name, version in sorted(distributions.items()):
        digest.update(f"{name}=={version}\0".encode())
    for name, content in sorted(contents.items()):
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()[:12]


def installed_versions(names: list[str]) -> dict[str, str]:
    """The installed version of each distribution (``"missing"`` for one that is not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


class CodeSnapshot:
    """The repository's code as this process found it at the start, and what the process has imported.

    A record names the code it came from (:meth:`code`): every repository Python file in
    ``sys.modules`` (by its resolved path, so ``linewise/models`` counts as ``models``), every
    repository YAML file (configurations are read, not imported) and the installed distributions
    whose modules are in ``sys.modules``, each file by its content **when this process started**, so
    that an edit made while the suite runs never lends its digest to a record of the old code. A file
    modified after the start, or created since, makes the record one that is never reused.

    Parameters
    ----------
    root : Path
        The repository (:func:`main` refuses to run when ``linewise`` is imported from elsewhere: another
        checkout or an installed copy, whose code no record could name).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.started = time.time()
        self.contents = {
            path.relative_to(self.root).as_posix(): _content(path) for path in _source_files(self.root)
        }

    def imported_files(self) -> list[str]:
        """Repository-relative names of the Python files in ``sys.modules``, this script, the YAML files."""
        files = {name for name in self.contents if name.endswith(".yaml")}
        this_script = Path(__file__).resolve()
        if this_script.is_relative_to(self.root):  # run as ``__main__`` or loaded under another name
            files.add(this_script.relative_to(self.root).as_posix())
        for module in list(sys.modules.values()):
            location = getattr(module, "__file__", None)
            if not location or not location.endswith(".py"):
                continue
            path = Path(location).resolve()
            if path.is_relative_to(self.root) and not SKIPPED_FOLDERS.intersection(
                path.relative_to(self.root).parts
            ):
                files.add(path.relative_to(self.root).as_posix())
        return sorted(files)

    def code(self) -> dict[str, Any]:
        """The ``code`` entry of a record: files, distributions and digest (None: never reuse)."""
        files = self.imported_files()
        owners = importlib.metadata.packages_distributions()
        tops = {name.split(".", 1)[0] for name in list(sys.modules)}
        names = sorted({dist for top in tops for dist in owners.get(top, []) if dist != "linewise"})
        fresh = all(
            name in self.contents and (self.root / name).stat().st_mtime <= self.started for name in files
        )
        digest = (
            code_digest({name: self.contents[name] for name in files}, installed_versions(names))
            if fresh
            else None
        )
        return {"files": files, "distributions": names, "digest": digest}

    def reusable(self, record: dict[str, Any]) -> bool:
        """Whether a cached record's code is the code in the repository now."""
        code = record.get("code") or {}
        if not code.get("digest") or "files" not in code:
            return False
        contents = {name: _content(self.root / name) for name in code["files"]}
        return (
            code_digest(contents, installed_versions(list(code.get("distributions", [])))) == code["digest"]
        )


def _cached(path: Path, snapshot: CodeSnapshot) -> dict[str, Any] | None:
    """The record at ``path`` if it exists and :meth:`CodeSnapshot.reusable`, else None."""
    if not path.exists():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record if snapshot.reusable(record) else None


def _code_of(source: str) -> bytes:
    """Return a Python file's syntax tree, without its docstrings, as bytes (comments are not in it)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False).encode()


def _is_docstring(statement: ast.stmt) -> bool:
    """Whether a statement is a bare string: the docstring when it comes first."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="3 scenarios, 2,000/1,000 patients, 5 refits")
    mode.add_argument("--held-out", action="store_true", help="the held-out seeds (run once, at the end)")
    parser.add_argument("--scenarios", nargs="+", help="names or seeds (default: the whole suite)")
    parser.add_argument("--train-patients", type=int)
    parser.add_argument("--test-patients", type=int)
    parser.add_argument("--bootstrap", type=int)
    parser.add_argument("--cache", type=Path, help="folder of the cached scenario results")
    parser.add_argument("--fresh", action="store_true", help="ignore cached results")
    args = parser.parse_args()
    args.train_patients = args.train_patients or (2000 if args.quick else 6000)
    args.test_patients = args.test_patients or (1000 if args.quick else 2000)
    args.bootstrap = args.bootstrap or (5 if args.quick else 20)
    label = "held_out" if args.held_out else ("quick" if args.quick else "development")
    sizes = f"{args.train_patients}-{args.test_patients}-{args.bootstrap}"
    if not Path(linewise.__file__).resolve().is_relative_to(ROOT):
        raise SystemExit(f"linewise is imported from {linewise.__file__}, not from this repository")
    snapshot = CodeSnapshot(ROOT)
    scratch = ROOT / ".cache" / "scenario_suite"
    folder = args.cache or (scratch if args.quick else RESULTS / "scenario_runs")
    cache = folder / f"{label}-{sizes}"
    cache.mkdir(parents=True, exist_ok=True)
    results = []
    for name, train_seed, judge_seed in scenario_runs(args.held_out, args.quick, args.scenarios):
        path = cache / f"{name}-{train_seed}-{judge_seed}.json"
        result = None if args.fresh else _cached(path, snapshot)
        if result is None:
            started = time.perf_counter()
            result = run_scenario(name, train_seed, judge_seed, args)
            result["seconds"]["total"] = time.perf_counter() - started
            result["code"] = snapshot.code()
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(json_safe(result), indent=1), encoding="utf-8")
            temporary.replace(path)  # a run stopped while writing leaves no half file
        results.append(result)
        print(
            f"{name:>15} {train_seed}/{judge_seed}: chosen {result['chosen']['learner']:>18} "
            f"{result['chosen']['family'][:5]} capture {result['chosen']['capture']:.3f} "
            f"(naive {result['chosen']['naive_capture']:.3f}, RSF S {_rsf_capture(result):.3f}); "
            f"coverage {result['coverage_90_vs_tbp']:.3f}; value {result['value']['estimate']:.2f} "
            f"[{result['value']['lower']:.2f}, {result['value']['upper']:.2f}] true "
            f"{result['value']['true']:.2f}",
            flush=True,
        )
    summary = summarise(results)
    print(json.dumps(json_safe(summary), indent=2))
    output = {
        "benchmark": "scenario_suite",
        "mode": label,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "sizes": {"train_patients": args.train_patients, "test_patients": args.test_patients},
        "n_bootstrap": args.bootstrap,
        "summary": summary,
        # each record's list of files stays in its own file; the summary keeps the digest
        "scenarios": [
            {key: value for key, value in r.items() if key != "code"} | {"code_digest": r["code"]["digest"]}
            for r in results
        ],
    }
    target = {
        "held_out": RESULTS / "scenario_suite_held_out.json",
        "quick": scratch / "scenario_suite_quick.json",
        "development": RESULTS / "scenario_suite.json",
    }[label]
    if args.scenarios and label == "development":
        target = scratch / "scenario_suite_partial.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(json_safe(output), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
