"""How fast a lock becomes decision examples, and one patient's JSON becomes its rows.

Simulates a lock of each requested size (seed 1) into a temporary folder, then times
``load_lock`` + ``build_examples`` (the batch path) and, for 50 patients of the smallest lock,
``load_patient`` + ``build_examples`` (the single-patient path that scoring uses). Prints the figures
and writes them to ``benchmarks/results/features_speed.json``.

Run: ``.venv/bin/python benchmarks/features_speed.py --patients 6000 100000``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.features.patient import export_patients, load_patient
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

RESULTS = Path(__file__).parent / "results" / "features_speed.json"


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[6000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    key = secrets.token_bytes(32)
    config = load_config()
    config = config.model_copy(update={"truth": config.truth.model_copy(update={"os_draws": 1})})
    rows, single = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for patients in args.patients:
            lock = Path(folder) / f"lock-{patients}"
            simulate_lock(patients, 1, lock, Path(folder) / f"truth-{patients}", config)
            load_times, build_times, decisions = [], [], 0
            for _ in range(args.repeats):
                start = time.perf_counter()
                data_lock = load_lock(lock, key)
                middle = time.perf_counter()
                examples = build_examples(data_lock)
                load_times.append(middle - start)
                build_times.append(time.perf_counter() - middle)
                decisions = len(examples)
            row = {
                "patients": patients,
                "decisions": decisions,
                "load_lock_median_s": round(statistics.median(load_times), 2),
                "build_examples_median_s": round(statistics.median(build_times), 2),
                "total_median_s": round(
                    statistics.median(a + b for a, b in zip(load_times, build_times, strict=True)), 2
                ),
            }
            rows.append(row)
            print(
                f"{patients:>7} patients, {decisions} decisions: load {row['load_lock_median_s']} s + "
                f"examples {row['build_examples_median_s']} s = {row['total_median_s']} s "
                f"(median of {args.repeats})"
            )
        smallest = Path(folder) / f"lock-{min(args.patients)}"
        documents = list(export_patients(smallest, key).values())[:50]
        timings = []
        for document in documents:
            build_examples(load_patient(document))  # warm
            start = time.perf_counter()
            build_examples(load_patient(document))
            timings.append(time.perf_counter() - start)
        single = {
            "patients": len(documents),
            "median_ms": round(1000 * statistics.median(timings), 1),
            "p95_ms": round(1000 * sorted(timings)[int(0.95 * (len(timings) - 1))], 1),
        }
        print(
            f"one patient's JSON to its rows: median {single['median_ms']} ms, p95 {single['p95_ms']} ms "
            f"over {single['patients']} patients"
        )
    report = {
        "benchmark": "features_speed",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "targets": {"100000_patients_seconds": 60, "one_patient_ms": 20},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "batch": rows,
        "single_patient": single,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
