"""How fast ``linewise import-omop`` reads an OMOP CDM DuckDB file, against loading the same lock as CSV.

For each size a lock is simulated (``simulate_lock``, seed 1) and written into a DuckDB file by the
test writer (``write_omop`` with its default ``episodes="needed"``; the JSON counts the lines read
from episodes and those derived from ``drug_exposure``). Each timed run is a fresh
subprocess, so that its wall time includes opening the database and its peak RSS is its own:

- ``import_omop``: read the CDM, map concepts, derive lines, write the lock and validate it;
- ``load_lock``: the obvious alternative a site without OMOP has, loading the CSV lock itself.

Prints the figures and writes them to ``benchmarks/results/omop_import_speed.json``.

Run: ``.venv/bin/python benchmarks/omop_import_speed.py --patients 6000 100000``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "omop_import_speed.json"
TARGET_SECONDS_100000 = 120.0


def _import_once(database: Path, out: Path) -> dict[str, object]:
    """Import the CDM in ``database`` into ``out`` (called in a subprocess)."""
    from linewise.features.omop import OmopSource, import_omop

    start = time.perf_counter()
    summary = import_omop(OmopSource(f"duckdb:///{database}"), out)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "patients": summary.patients,
        "lines_from_episodes": summary.lines_from_episodes,
        "lines_derived": summary.lines_derived,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _load_once(lock: Path) -> dict[str, object]:
    """Load the CSV lock (called in a subprocess)."""
    import secrets

    from linewise.features import load_lock

    start = time.perf_counter()
    load_lock(lock, secrets.token_bytes(32))
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _in_subprocess(*arguments: str) -> dict[str, object]:
    """Run this script's ``--child`` mode and return the JSON it prints."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *arguments], check=True, capture_output=True, text=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _prepare(folder: Path, patients: int) -> tuple[Path, Path, dict[str, object]]:
    """Simulate a lock of ``patients`` and write it into a DuckDB file; return both and the counts."""
    from linewise.simulation.config import load_config
    from linewise.simulation.omop_writer import write_omop
    from linewise.simulation.simulate import simulate_lock

    lock, database = folder / f"lock-{patients}", folder / f"cdm-{patients}.duckdb"
    start = time.perf_counter()
    simulate_lock(patients, 1, lock, folder / f"truth-{patients}", load_config())
    simulated = time.perf_counter() - start
    start = time.perf_counter()
    written = write_omop(lock, f"duckdb:///{database}")
    counts = {
        "simulate_seconds": round(simulated, 1),
        "write_omop_seconds": round(time.perf_counter() - start, 1),
        "cdm_rows": sum(written.rows.values()),
        "cdm_rows_by_table": dict(sorted(written.rows.items())),
        "persons_with_episodes": written.persons_with_episodes,
        "database_mib": round(database.stat().st_size / 2**20, 1),
    }
    return lock, database, counts


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[6000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *paths = args.child
        result = (
            _import_once(Path(paths[0]), Path(paths[1])) if mode == "import" else _load_once(Path(paths[0]))
        )
        print(json.dumps(result))
        return
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for patients in args.patients:
            lock, database, counts = _prepare(folder, patients)
            imports = [
                _in_subprocess("import", str(database), str(folder / f"out-{patients}-{repeat}"))
                for repeat in range(args.repeats)
            ]
            loads = [_in_subprocess("load", str(lock)) for _ in range(args.repeats)]
            import_median = statistics.median(float(run["seconds"]) for run in imports)  # type: ignore[arg-type]
            load_median = statistics.median(float(run["seconds"]) for run in loads)  # type: ignore[arg-type]
            row = {
                "patients": patients,
                **counts,
                "lines_from_episodes": imports[0]["lines_from_episodes"],
                "lines_derived": imports[0]["lines_derived"],
                "import_omop_median_s": round(import_median, 2),
                "import_omop_runs_s": [run["seconds"] for run in imports],
                "import_omop_peak_rss_mib": max(float(run["peak_rss_mib"]) for run in imports),  # type: ignore[arg-type]
                "load_lock_csv_median_s": round(load_median, 2),
                "ratio_import_over_load_lock": round(import_median / load_median, 2),
            }
            rows.append(row)
            print(
                f"{patients:>7} patients ({row['cdm_rows']:,} CDM rows, {row['database_mib']} MiB): "
                f"import_omop {import_median:.1f} s (peak {row['import_omop_peak_rss_mib']:.0f} MiB), "
                f"load_lock of the CSV lock {load_median:.1f} s, "
                f"ratio {row['ratio_import_over_load_lock']:.2f}"
            )
    report = {
        "benchmark": "omop_import_speed",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "repeats": args.repeats,
        "simulation_seed": 1,
        "episodes": "needed",
        "target_seconds_100000_patients": TARGET_SECONDS_100000,
        "results": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
