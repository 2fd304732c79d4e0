"""How fast the loader reads, checks and pseudonymises a lock, against a plain ``pandas.read_csv``.

The lock is the bundled example replicated to the requested number of patients (new invented ids,
same histories), written as CSV into a temporary folder. Prints the figures and writes them to
``benchmarks/results/loader_speed.json``.

Run: ``.venv/bin/python benchmarks/loader_speed.py --patients 6000 100000``
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

import pandas as pd

from linewise.features import example_lock_path, load_lock
from linewise.features.schema import TABLES

RESULTS = Path(__file__).parent / "results" / "loader_speed.json"


def replicate_example(target: Path, patients: int) -> None:
    """Write a lock with ``patients`` patients, cycling through the example's histories."""
    source = example_lock_path()
    target.mkdir(parents=True)
    (target / "manifest.json").write_text((source / "manifest.json").read_text())
    base = pd.read_csv(source / "patients.csv", dtype=str, keep_default_na=False)
    copies = -(-patients // len(base))
    kept = {f"{raw_id}-{copy:06d}" for copy in range(copies) for raw_id in base["patient_id"]}
    kept = set(sorted(kept, key=lambda name: (name[-6:], name))[:patients])
    for spec in TABLES:
        frame = pd.read_csv(source / f"{spec.name}.csv", dtype=str, keep_default_na=False)
        pieces = [frame.assign(patient_id=frame["patient_id"] + f"-{copy:06d}") for copy in range(copies)]
        big = pd.concat(pieces, ignore_index=True)
        big[big["patient_id"].isin(kept)].to_csv(target / f"{spec.name}.csv", index=False)


def _median_seconds(action: object, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[6000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    key = secrets.token_bytes(32)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for patients in args.patients:
            lock = Path(folder) / f"lock-{patients}"
            replicate_example(lock, patients)
            total_rows = sum(len(pd.read_csv(lock / f"{s.name}.csv")) for s in TABLES)
            loader = _median_seconds(lambda lock=lock: load_lock(lock, key), args.repeats)
            plain = _median_seconds(
                lambda lock=lock: [pd.read_csv(lock / f"{s.name}.csv", dtype=str) for s in TABLES],
                args.repeats,
            )
            row = {
                "patients": patients,
                "rows": total_rows,
                "load_lock_median_s": round(loader, 3),
                "read_csv_only_median_s": round(plain, 3),
                "ratio_load_over_read_csv": round(loader / plain, 1),
            }
            rows.append(row)
            print(
                f"{patients:>7} patients ({total_rows} rows): load_lock {loader:.2f} s, "
                f"plain read_csv {plain:.2f} s, ratio {loader / plain:.1f}x"
            )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "benchmark": "loader_speed",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "repeats": args.repeats,
        "peak_rss_mib": round(peak_mib, 1),
        "results": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"peak RSS {peak_mib:.0f} MiB; written to {RESULTS}")


if __name__ == "__main__":
    main()
