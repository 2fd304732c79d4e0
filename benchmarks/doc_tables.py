"""The one table of each benchmark, written into the docs from ``benchmarks/results/*.json``.

The docs quote measured figures only inside blocks that this script writes::

    <!-- table: recommender -->
    | figure | value | target |
    ...
    <!-- end table -->

``python benchmarks/doc_tables.py`` rewrites every block of ``README.md`` and ``docs/*.md`` from the
JSON of the benchmark it names; ``--check`` changes nothing and exits 1 when a block differs from what
the JSON gives (``tests/test_docs.py`` runs the same comparison). Each table names its JSON, the
machine it was measured on and the sizes and seeds, so a figure can be traced to its run.

Run: ``.venv/bin/python benchmarks/doc_tables.py [--check]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"<!-- table: (?P<name>[a-z0-9_]+) -->\n(?P<body>.*?)<!-- end table -->", re.S)

Row = list[str]


def _n(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals; a dash when there is none."""
    return "-" if value is None else f"{value:,.{digits}f}"


def _mean_sd(summary: dict[str, dict[str, float]], key: str, digits: int = 3) -> str:
    return f"{_n(summary['mean'][key], digits)} (sd {_n(summary['sd'][key], digits)})"


def _table(header: Row, rows: list[Row]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _source(name: str, data: dict[str, Any], details: str) -> str:
    machine = data.get("machine", {})
    where = f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
    return f"\nFrom `benchmarks/results/{name}.json` ({where}; {details}).\n"


def recommender(data: dict[str, Any]) -> str:
    """The recommender against the simulator's ground truth: capture, intervals, C-index, speed."""
    seeds = data["boosted_cox_over_seeds"]
    forest = data["evaluation"]["random_survival_forest_seed0"]
    targets = data["targets"]
    low, high = targets["interval_coverage_90_range"]
    fit, latency = data["fit_seconds"], data["score_and_explain"]
    rows = [
        [
            "capture of the oracle's rwPFS RMST24 gain, adjusted",
            _mean_sd(seeds, "capture_rwpfs_rmst24"),
            _n(forest["capture_rwpfs_rmst24"]),
            f">= {targets['capture_rwpfs_rmst24_min']}",
        ],
        [
            "capture, naive (no weights)",
            _mean_sd(seeds, "naive_capture_rwpfs_rmst24"),
            _n(forest["naive_capture_rwpfs_rmst24"]),
            "below the adjusted",
        ],
        [
            "coverage of the 90% intervals (patient-level truth)",
            _mean_sd(seeds, "interval_coverage_90"),
            _n(forest["interval_coverage_90"]),
            f"{low} to {high}",
        ],
        [
            "Harrell's C, rwPFS, option taken",
            _mean_sd(seeds, "c_index_rwpfs"),
            _n(forest["c_index_rwpfs"]),
            f"within {targets['c_index_gap_max']} of the true risk's",
        ],
        ["Harrell's C of the true risk", _n(seeds["mean"]["c_index_true_risk"]), "", ""],
        [
            "Harrell's C of a regression of the true RMST24 on the recorded features",
            _n(data["c_index_feature_oracle_rwpfs"]),
            "",
            "",
        ],
        ["capture of the OS RMST24 gain", _mean_sd(seeds, "capture_os_rmst24"), "", ""],
        [
            "within-decision rank correlation with the true OS RMST24",
            _mean_sd(seeds, "rank_correlation_within_os_rmst24"),
            "",
            "",
        ],
        [
            "spread of the true OS RMST24 across options / its Monte Carlo error (months)",
            f"{_n(seeds['mean']['truth_signal_spread_os_rmst24'], 2)} / "
            f"{_n(seeds['mean']['truth_standard_error_os_rmst24'], 2)}",
            "",
            "",
        ],
        [
            "fit seconds, propensity + boosted Cox + forest (both endpoints, no bootstrap)",
            f"{_n(fit['propensity'], 1)} + {_n(fit['boosted_cox'], 1)} + "
            f"{_n(fit['random_survival_forest'], 1)} = {_n(fit['total_propensity_and_both_families'], 1)}",
            "",
            f"< {targets['fit_seconds_max']:g}",
        ],
        [
            "score and explain one decision, ms: median (p95)",
            f"{_n(latency['boosted_cox']['median_ms'], 1)} ({_n(latency['boosted_cox']['p95_ms'], 1)})",
            f"{_n(latency['random_survival_forest']['median_ms'], 1)} "
            f"({_n(latency['random_survival_forest']['p95_ms'], 1)})",
            f"< {targets['score_and_explain_ms_max']:g}",
        ],
    ]
    sizes, split = data["sizes"], data["seeds"]
    model_seeds = ", ".join(map(str, seeds["seeds"]))
    details = ", ".join(
        [
            f"train {sizes['train_patients']:,} patients (seed {split['train']})",
            f"test {sizes['test_patients']:,} (seed {split['test']})",
            f"test OS truth from {sizes['test_truth_os_draws']:,} courses; boosted Cox over model seeds "
            + model_seeds,
            "forest model seed 0",
        ]
    )
    header = ["figure", "boosted Cox, mean (sd) over model seeds", "forest", "target"]
    return _table(header, rows) + _source("recommender", data, details)


def frailty_sensitivity(data: dict[str, Any]) -> str:
    """The default recommender on locks simulated with less or no latent frailty."""
    rows = []
    for level, point in sorted(data["points"].items(), key=lambda item: float(item[0])):
        mean = point["mean"]
        rows.append(
            [
                f"{float(level):g}",
                f"{_n(mean['capture_rwpfs_rmst24'])} ({_n(mean['naive_capture_rwpfs_rmst24'])})",
                _n(mean["c_index_rwpfs"]),
                _n(mean["c_index_true_risk"]),
                _n(mean["c_index_feature_ceiling_rwpfs"]),
                _n(mean["interval_coverage_90"]),
                _n(mean["interval_width_mean"] / 2, 2),
                _n(mean["interval_error_sd"], 2),
                _n(mean["interval_half_width_needed_90"], 2),
                _n(mean["interval_coverage_90_vs_tbp"]),
            ]
        )
    header = [
        "frailty sd",
        "capture (naive)",
        "C rwPFS",
        "C true risk",
        "C of the features' regression",
        "coverage",
        "half-width",
        "error sd",
        "half-width for 90%",
        "coverage of differences from TBP",
    ]
    sizes, seeds = data["sizes"], data["seeds"]
    details = (
        f"means over model seeds {', '.join(map(str, seeds['model']))}; train {sizes['train_patients']:,} "
        f"patients (seed {seeds['train']}), test {sizes['test_patients']:,} (seed {seeds['test']}), "
        f"{data['n_bootstrap']} bootstrap refits; months of rwPFS RMST24"
    )
    return _table(header, rows) + _source("frailty_sensitivity", data, details)


def interval_diagnosis(data: dict[str, Any]) -> str:
    """Errors of the predicted rwPFS RMST24 against the patient-level truth, by option."""
    overall = data["overall"]
    rows = [
        [
            "every supported option",
            f"{overall['rows']:,}",
            _n(overall["mean_error"], 2),
            _n(overall["error_sd"], 2),
            _n(overall["half_width"], 2),
            _n(overall["coverage"]),
        ]
    ]
    for option in data["by_option"]:
        label = option["candidate"] + (" + local therapy" if option["local_therapy"] else "")
        rows.append(
            [
                label,
                f"{option['rows']:,}",
                _n(option["mean_error"], 2),
                _n(option["error_sd"], 2),
                _n(option["half_width"], 2),
                _n(option["coverage"]),
            ]
        )
    header = ["option", "rows", "mean error", "error sd", "interval half-width", "coverage"]
    sizes, seeds = data["sizes"], data["seeds"]
    details = ", ".join(
        [
            f"model seed {seeds['model']}",
            f"{data['n_bootstrap']} bootstrap refits",
            f"train {sizes['train_patients']:,} patients (seed {seeds['train']})",
            f"test {sizes['test_patients']:,} (seed {seeds['test']}); months; a half-width of "
            + f"{_n(overall['half_width_needed_for_90'], 2)} would cover 90% of the errors",
        ]
    )
    return _table(header, rows) + _source("interval_diagnosis", data, details)


def loader_speed(data: dict[str, Any]) -> str:
    """``load_lock`` (every rule of the contract) against plain ``pandas.read_csv`` of the same files."""
    rows = [
        [
            f"{row['patients']:,}",
            f"{row['rows']:,}",
            _n(row["load_lock_median_s"], 2),
            _n(row["read_csv_only_median_s"], 2),
            _n(row["ratio_load_over_read_csv"], 1),
        ]
        for row in data["results"]
    ]
    header = ["patients", "rows", "load_lock, s", "pandas.read_csv only, s", "ratio"]
    details = f"medians of {data['repeats']} runs; peak RSS {_n(data['peak_rss_mib'], 0)} MiB"
    return _table(header, rows) + _source("loader_speed", data, details)


def simulate_speed(data: dict[str, Any]) -> str:
    """``simulate_lock``: seconds by stage and peak memory."""
    rows = [
        [
            f"{row['patients']:,}",
            f"{row['runs']} (seeds 1 to {row['runs']})" if row["runs"] > 1 else "1 (seed 1)",
            _n(row["median_seconds"], 1),
            _n(row["median_stage_seconds"]["ground truth"], 1),
            _n(row["peak_rss_mib_max"], 0),
            f"{row['truth_rows']:,}",
        ]
        for row in data["results"]
    ]
    header = ["patients", "runs", "seconds (median)", "of which ground truth", "peak RSS, MiB", "truth rows"]
    targets = data["targets"]
    details = (
        f"targets {targets['6000_patients_seconds']} s for 6,000 patients, "
        f"{targets['100000_patients_seconds']} s for 100,000"
    )
    return _table(header, rows) + _source("simulate_speed", data, details)


def features_speed(data: dict[str, Any]) -> str:
    """A lock to its decision examples, and one patient's JSON to its rows."""
    rows = [
        [
            f"lock of {row['patients']:,} patients ({row['decisions']:,} decisions)",
            f"{_n(row['load_lock_median_s'], 2)} s + {_n(row['build_examples_median_s'], 2)} s = "
            f"{_n(row['total_median_s'], 2)} s",
        ]
        for row in data["batch"]
    ]
    single = data["single_patient"]
    rows.append(
        [
            f"one patient's JSON to its rows ({single['patients']} patients)",
            f"{_n(single['median_ms'], 1)} ms median, {_n(single['p95_ms'], 1)} ms p95",
        ]
    )
    targets = data["targets"]
    details = (
        f"load + examples, medians; targets {targets['100000_patients_seconds']} s for 100,000 patients, "
        f"{targets['one_patient_ms']} ms for one patient; peak RSS {_n(data['peak_rss_mib'], 0)} MiB"
    )
    return _table(["what", "time"], rows) + _source("features_speed", data, details)


def serve_latency(data: dict[str, Any]) -> str:
    """``POST /v1/score`` over HTTP: sequential latency and concurrent throughput."""
    sequential, concurrent = data["sequential"], data["concurrent"]
    rows = [
        [
            f"{sequential['requests']} sequential requests",
            f"{_n(sequential['p50_ms'], 1)} / {_n(sequential['p95_ms'], 1)} / {_n(sequential['p99_ms'], 1)}",
            "",
        ],
        [
            f"{concurrent['requests']} requests from {concurrent['clients']} concurrent clients",
            f"{_n(concurrent['p50_ms'], 1)} / {_n(concurrent['p95_ms'], 1)} / {_n(concurrent['p99_ms'], 1)}",
            _n(concurrent["throughput_rps"], 1),
        ],
    ]
    sizes = data["sizes"]
    details = ", ".join(
        [
            f"{sizes['family']} model with {sizes['n_bootstrap']} bootstrap refits",
            f"trained on {sizes['patients']:,} patients",
            f"{sizes['workers']} worker",
            f"{sizes['body_bytes']:,}-byte request body; target p95 below "
            + f"{data['targets']['sequential_p95_ms_max']:g} ms",
        ]
    )
    header = ["load", "p50 / p95 / p99, ms", "requests per second"]
    return _table(header, rows) + _source("serve_latency", data, details)


def calibration(data: dict[str, Any]) -> str:
    """Every published target on simulated locks: the first seed's figures and each seed's verdicts."""
    first, *others = data["runs"]

    def short(value: Any) -> str:
        text = json.dumps(value, separators=(", ", ": ")) if value is not None else "-"
        return text.replace('"', "").replace("|", "\\|")

    verdicts = {True: "yes", False: "**no**", None: "not judged"}
    rows = [
        [t["id"], short(t["range"]), short(t["simulated"]), verdicts[t["within"]]] for t in first["targets"]
    ]
    header = ["target", "range", f"simulated (seed {first['seed']})", "inside"]
    counts = "; ".join(
        f"seed {run['seed']}: {run['inside']} inside, {run['outside']} outside, "
        f"{run['not_judged']} not judged"
        for run in [first, *others]
    )
    details = f"{data['sizes']['patients']:,} patients each; {counts}"
    return _table(header, rows) + _source("calibration", data, details)


def validate_bounds(data: dict[str, Any]) -> str:
    """``linewise validate --json`` on locks with very many violations: output, memory and time."""
    what = {
        "bad_rows": "metastases rows with an unknown site",
        "distinct_bad_rows": "metastases rows, each with its own unknown patient, site and impossible date",
        "one_cell": "unknown drug codes in one cell",
    }
    rows = [
        [
            what[name],
            f"{case['size']:,}",
            f"{case['total_violations']:,}" if case.get("total_violations") is not None else "",
            f"{case['output_bytes']:,}",
            _n(case["peak_memory_mib"], 0),
            _n(case["seconds"], 1),
        ]
        for name, case in data["cases"].items()
    ]
    header = ["lock", "size", "violations", "bytes printed", "peak memory, MiB", "seconds"]
    details = f"medians of {_runs(data)} runs each; at most {data['shown_per_rule']} listed per file and rule"
    return _table(header, rows) + _source("validate_bounds", data, details)


def gbsg2(data: dict[str, Any]) -> str:
    """The candidate settings as prognostic models on GBSG2: Harrell's C and IBS against Kaplan-Meier."""
    km = data["kaplan_meier_ibs"]
    rows = [
        [
            name,
            _n(entry["c_index"], 4),
            _n(entry["ibs"], 4),
            "yes" if entry["c_index"] >= 0.68 and entry["ibs"] < km else "**no**",
        ]
        for name, entry in data["summary"].items()
    ]
    rows.append(["Kaplan-Meier of the training part", "-", _n(km, 4), "-"])
    header = [
        "setting",
        "Harrell's C",
        f"IBS {data['brier_times'][0]:g}-{data['brier_times'][1]:g} months",
        "C >= 0.68 and IBS below Kaplan-Meier",
    ]
    sizes = data["sizes"]
    details = (
        f"{sizes['patients']} patients, means over {sizes['splits']} stratified "
        f"{1 - sizes['test_fraction']:.0%}/{sizes['test_fraction']:.0%} splits"
    )
    return _table(header, rows) + _source("gbsg2", data, details)


def train_speed(data: dict[str, Any]) -> str:
    """``linewise train`` on a 6,000-patient lock, selection and 20 bootstrap refits included."""
    rows = [
        [
            f"{data['sizes']['patients']:,} patients",
            _n(data["median_seconds"], 1),
            _n(data["target_seconds"], 0),
            "yes" if data["under_target"] else "**no**",
        ]
    ]
    header = ["lock", "median seconds", "target, seconds", "under target"]
    details = f"{data['sizes']['repeats']} run(s), each a new process with a fresh MLflow store"
    return _table(header, rows) + _source("train_speed", data, details)


def scenario_suite(data: dict[str, Any]) -> str:
    """Every scenario of the suite: the chosen learner's capture against its naive twin and the RSF
    S-learner, coverage of the differences from TBP, and the value estimate against the truth."""
    rows = []
    for run in data["scenarios"]:
        chosen, value, facts = run["chosen"], run["value"], run["facts"]
        rsf = next(
            (
                e["capture"]
                for name, e in run["learners"].items()
                if name.endswith(":random_survival_forest:s")
            ),
            None,
        )
        rows.append(
            [
                f"{run['scenario']} ({run['seeds']['train']}/{run['seeds']['judge']})",
                f"{facts['tbp']}, frailty sd {facts['frailty_sd']:g}",
                f"`{chosen['learner']}` {chosen['family']}",
                _n(chosen["capture"]),
                _n(chosen["naive_capture"]),
                _n(rsf),
                _n(run["coverage_90_vs_tbp"]),
                f"{_n(value['estimate'], 2)} [{_n(value['lower'], 2)}, {_n(value['upper'], 2)}]",
                _n(value["true"], 2),
                "yes" if value["covered"] else "**no**",
            ]
        )
    header = [
        "scenario (seeds)",
        "TBP, unrecorded prognosis",
        "chosen",
        "capture",
        "naive",
        "RSF S",
        "90% coverage vs TBP",
        "value estimate [95%]",
        "true value",
        "covered",
    ]
    summary = data["summary"]
    totals = (
        f"\n{summary['runs']} runs: mean capture {_n(summary['mean_capture_chosen'])} (RSF S-learner "
        f"{_n(summary['mean_capture_rsf_s'])}); {summary['runs_more_than_0_05_below_rsf_s']} run(s) "
        "more than 0.05 below the RSF S-learner; value intervals cover the truth in "
        f"{_n(100 * summary['value_interval_coverage'], 0)}% of runs; mean coverage of the 90% intervals "
        f"{_n(summary['mean_coverage_90_vs_tbp'])}; above the naive twin in "
        f"{summary['recorded_confounding_above_naive']} of {summary['recorded_confounding_runs']} runs "
        "without unrecorded prognosis.\n"
    )
    sizes = data["sizes"]
    details = (
        f"mode {data['mode']}; train {sizes['train_patients']:,} patients, judged on "
        f"{sizes['test_patients']:,}; {data['n_bootstrap']} bootstrap refits"
    )
    return (
        _table(header, rows)
        + totals
        + _source(
            {"development": "scenario_suite", "held_out": "scenario_suite_held_out"}.get(
                data["mode"], "scenario_suite"
            ),
            data,
            details,
        )
    )


def _runs(data: dict[str, Any]) -> int:
    return min(case.get("repeats", 1) for case in data["cases"].values())


def omop_import_speed(data: dict[str, Any]) -> str:
    """``import_omop`` on a DuckDB CDM against ``load_lock`` of the same lock as CSV."""
    rows = [
        [
            f"{row['patients']:,}",
            f"{row['cdm_rows']:,}",
            _n(row["database_mib"], 1),
            f"{row['lines_derived']:,} / {row['lines_from_episodes']:,}",
            _n(row["import_omop_median_s"], 1),
            _n(row["import_omop_peak_rss_mib"], 0),
            _n(row["load_lock_csv_median_s"], 2),
            _n(row["ratio_import_over_load_lock"], 1),
        ]
        for row in data["results"]
    ]
    header = [
        "patients",
        "CDM rows",
        "DuckDB file, MiB",
        "lines derived / from episodes",
        "import_omop, s",
        "peak RSS, MiB",
        "load_lock of the CSV lock, s",
        "ratio",
    ]
    details = (
        f"medians of {data['repeats']} runs, each in a fresh process; lock simulated with seed "
        f"{data['simulation_seed']}; target {_n(data['target_seconds_100000_patients'], 0)} s for 100,000 "
        "patients"
    )
    return _table(header, rows) + _source("omop_import_speed", data, details)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "recommender": recommender,
    "frailty_sensitivity": frailty_sensitivity,
    "interval_diagnosis": interval_diagnosis,
    "loader_speed": loader_speed,
    "simulate_speed": simulate_speed,
    "features_speed": features_speed,
    "serve_latency": serve_latency,
    "calibration": calibration,
    "validate_bounds": validate_bounds,
    "gbsg2": gbsg2,
    "train_speed": train_speed,
    "scenario_suite": scenario_suite,
    "scenario_suite_held_out": scenario_suite,
    "omop_import_speed": omop_import_speed,
}


def render(name: str, results: Path = RESULTS) -> str:
    """Return the table of benchmark ``name`` from its JSON in ``results``."""
    if name not in RENDERERS:
        raise KeyError(f"no table for a benchmark called {name!r}; known: {sorted(RENDERERS)}")
    data = json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
    return RENDERERS[name](data)


def documents(root: Path = ROOT) -> list[Path]:
    """The files whose tables this script writes: ``README.md`` and ``docs/*.md``."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def rewrite(text: str, results: Path = RESULTS) -> str:
    """Return ``text`` with every table block rewritten from the JSON."""
    return BLOCK.sub(
        lambda m: f"<!-- table: {m['name']} -->\n{render(m['name'], results)}<!-- end table -->", text
    )


def main() -> None:
    """Rewrite (or, with ``--check``, compare) every table block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    args = parser.parse_args()
    stale = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "stale" if args.check else "rewritten"
    print(f"{len(stale)} file(s) {verb}" + (f": {', '.join(map(str, stale))}" if stale else ""))
    sys.exit(1 if args.check and stale else 0)


if __name__ == "__main__":
    main()
