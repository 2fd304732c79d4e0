"""The scenario suite's cache: a record is reused only while the code it names is unchanged."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scenario_suite", ROOT / "benchmarks" / "scenario_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(path: Path, code: dict[str, object]) -> Path:
    path.write_text(json.dumps({"scenario": "default", "code": code}), encoding="utf-8")
    return path


def _files_in_a_fresh_process(*imports: str) -> list[str]:
    """``code_files()`` in a new interpreter that imported the suite and then ``imports``."""
    location = str(ROOT / "benchmarks" / "scenario_suite.py")
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('suite', {location!r})\n"
        "suite = importlib.util.module_from_spec(spec); spec.loader.exec_module(suite)\n"
        + "".join(f"import {name}\n" for name in imports)
        + "print(json.dumps(suite.code_files()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_the_files_named_are_the_imported_code_and_the_configurations(suite: ModuleType) -> None:
    files = _files_in_a_fresh_process()
    assert "benchmarks/scenario_suite.py" in files and "training/default.yaml" in files
    # imported modules count by their own folder (linewise/models links to models/), once
    assert "models/dr_value.py" in files and not any(name.startswith("linewise/models/") for name in files)
    # a module of the repository that the process has not imported does not count, until it is
    assert "serving/app.py" not in files
    assert "serving/app.py" in _files_in_a_fresh_process("linewise.serving.app")
    distributions = suite.loaded_distributions()
    assert {"numpy", "pandas", "scikit-survival"} <= set(distributions) and "linewise" not in distributions


def test_a_record_is_reused_while_its_code_holds(suite: ModuleType, tmp_path: Path) -> None:
    files, distributions = ["models/dr_value.py", "training/default.yaml"], ["numpy"]
    digest = suite.code_digest(files, distributions)
    assert len(digest) == 12 and digest == suite.code_digest(list(reversed(files)), distributions)
    code = {"files": files, "distributions": distributions, "digest": digest}
    assert suite._cached(_record(tmp_path / "kept.json", code))["scenario"] == "default"
    # another digest, a file that no longer exists, another distribution: the scenario runs again
    assert suite._cached(_record(tmp_path / "a.json", {**code, "digest": "0" * 12})) is None
    gone = {**code, "files": [*files, "models/no_such_module.py"]}
    assert suite._cached(_record(tmp_path / "b.json", gone)) is None
    assert suite._cached(_record(tmp_path / "c.json", {**code, "distributions": ["scipy"]})) is None
    assert suite._cached(_record(tmp_path / "d.json", {"files": files})) is None  # no digest
    assert suite._cached(tmp_path / "absent.json") is None


def test_docstrings_and_comments_change_no_digest(suite: ModuleType) -> None:
    plain = "def f(x):\n    return x + 1\n"
    documented = (
        '"""Module."""\n\n\ndef f(x):\n    """Add one."""\n    # a comment\n    return x + 1  # another\n'
    )
    assert suite._code_of(plain) == suite._code_of(documented)
    assert suite._code_of(plain) != suite._code_of(plain.replace("+ 1", "+ 2"))
