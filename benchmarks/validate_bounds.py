"""What ``linewise validate --json`` costs on locks with very many violations: memory, output and time.

Two locks are built from the bundled example in a temporary folder:

- **bad rows**: the ``metastases`` table gets ``--rows`` extra rows of one of the example's patients,
  each with an unknown site code (one ``code`` violation per row);
- **distinct bad rows**: the ``metastases`` table gets ``--rows`` extra rows, each with its own
  unknown ``patient_id``, its own unknown site code and its own impossible date (three violations per
  row, no two cells alike: nothing is shared between rows);
- **one cell**: one line's ``drugs`` cell holds ``--codes`` unknown drug codes joined by ``+`` (one
  ``drug-code`` violation per code).

Each is validated by ``python -m linewise validate --json`` in a child process; the figures are the
child's peak resident memory (``ru_maxrss``), the bytes it printed and its wall time, medians over
``--repeats`` runs. Prints them and writes ``benchmarks/results/validate_bounds.json``.

Run: ``.venv/bin/python benchmarks/validate_bounds.py --rows 1000000 --codes 100000``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from linewise.features import example_lock_path
from linewise.features.errors import SHOWN_PER_RULE

RESULTS = Path(__file__).parent / "results" / "validate_bounds.json"


def bad_rows_lock(target: Path, rows: int) -> None:
    """Copy the example and append ``rows`` metastases with an unknown site."""
    shutil.copytree(example_lock_path(), target)
    with (target / "metastases.csv").open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerows(("EX-001", "not-a-site", "2020-03-10") for _ in range(rows))


def distinct_bad_rows_lock(target: Path, rows: int) -> None:
    """Copy the example and append ``rows`` metastases, each of its own unknown patient, site and date."""
    shutil.copytree(example_lock_path(), target)
    with (target / "metastases.csv").open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerows((f"ZZ-{n:07d}", f"site{n}", f"2020-13-{n % 90:02d}") for n in range(rows))


def one_cell_lock(target: Path, codes: int) -> None:
    """Copy the example and put ``codes`` unknown drug codes in the first line's ``drugs`` cell."""
    shutil.copytree(example_lock_path(), target)
    path = target / "lines.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    column = table[0].index("drugs")
    table[1][column] = "+".join(f"nodrug{n}" for n in range(codes))
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)


def validate(lock: Path, environment: dict[str, str]) -> dict[str, Any]:
    """Run ``linewise validate --json`` on ``lock`` in a child; return its figures."""
    code = (
        "import json, resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run([sys.executable, '-m', 'linewise', 'validate', '--json', sys.argv[1]],"
        " capture_output=True)\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "total = json.loads(done.stdout).get('total_violations')\n"
        "print(done.returncode, len(done.stdout) + len(done.stderr), peak, seconds, total)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(lock)], capture_output=True, text=True, env=environment, check=True
    )
    status, printed, peak_kib, seconds, total = done.stdout.split()
    return {
        "exit_code": int(status),
        "output_bytes": int(printed),
        "peak_memory_mib": int(peak_kib) / 1024,
        "seconds": float(seconds),
        "total_violations": int(total),
    }


def main() -> None:
    """Build both locks, validate them and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--codes", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    environment = {**os.environ, "LINEWISE_PSEUDONYM_KEY": "benchmark-key-0123456789abcdef"}
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "shown_per_rule": SHOWN_PER_RULE,
        "cases": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        cases = {
            "bad_rows": (bad_rows_lock, args.rows),
            "distinct_bad_rows": (distinct_bad_rows_lock, args.rows),
            "one_cell": (one_cell_lock, args.codes),
        }
        for name, (build, size) in cases.items():
            lock = Path(folder) / name
            build(lock, size)
            runs = [validate(lock, environment) for _ in range(args.repeats)]
            figures = {
                **runs[0],
                "peak_memory_mib": statistics.median(run["peak_memory_mib"] for run in runs),
                "seconds": statistics.median(run["seconds"] for run in runs),
                "repeats": args.repeats,
            }
            results["cases"][name] = {"size": size, **figures}
            print(
                f"{name} ({size}): exit {figures['exit_code']}, {figures['output_bytes']} bytes printed, "
                f"peak {figures['peak_memory_mib']:.0f} MiB, {figures['seconds']:.1f} s"
            )
            shutil.rmtree(lock)
    results["measured_with"] = (
        f"python benchmarks/validate_bounds.py --rows {args.rows} --codes {args.codes} "
        f"--repeats {args.repeats}"
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
