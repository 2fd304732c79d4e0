"""The scenario suite's cache: a record is reused only while the code it names is unchanged."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = "linewise_cache_test_module"


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scenario_suite", ROOT / "benchmarks" / "scenario_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Path]:
    """A small repository: one imported module, one module nobody imports, one configuration."""
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "used.py").write_text('"""Used."""\n\n\ndef f(x):\n    return x + 1\n')
    (tmp_path / "part" / "unused.py").write_text("VALUE = 1\n")
    (tmp_path / "part" / "settings.yaml").write_text("a: 1\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "site.py").write_text("IGNORED = 1\n")
    spec = importlib.util.spec_from_file_location(MODULE, tmp_path / "part" / "used.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    time.sleep(0.05)  # the snapshot starts after the files were written
    try:
        yield tmp_path
    finally:
        del sys.modules[MODULE]


def _edit(path: Path, text: str) -> None:
    path.write_text(text)


def test_a_record_names_the_imported_code_and_is_reused_while_it_holds(
    suite: ModuleType, repository: Path
) -> None:
    snapshot = suite.CodeSnapshot(repository)
    code = snapshot.code()
    assert code["files"] == ["part/settings.yaml", "part/used.py"]  # not unused.py, not .venv
    assert "numpy" in code["distributions"] and "linewise" not in code["distributions"]
    assert code["digest"] is not None and snapshot.reusable({"code": code})
    used = repository / "part" / "used.py"
    original = used.read_text()
    # a docstring or a comment changes nothing; code does, and so does a configuration
    _edit(used, original.replace('"""Used."""', '"""Used, documented."""\n# a comment'))
    assert snapshot.reusable({"code": code})
    _edit(used, original.replace("x + 1", "x + 2"))
    assert not snapshot.reusable({"code": code})
    _edit(used, original)
    assert snapshot.reusable({"code": code})
    _edit(repository / "part" / "settings.yaml", "a: 2\n")
    assert not snapshot.reusable({"code": code})
    _edit(repository / "part" / "settings.yaml", "a: 1\n")
    # another distribution list, no digest, a missing file: never reused
    assert not snapshot.reusable({"code": {**code, "distributions": ["scipy"]}})
    assert not snapshot.reusable({"code": {**code, "digest": None}})
    assert not snapshot.reusable({})
    used.unlink()
    assert not snapshot.reusable({"code": code})


def test_an_edit_while_the_suite_runs_never_lends_its_digest_to_old_code(
    suite: ModuleType, repository: Path
) -> None:
    snapshot = suite.CodeSnapshot(repository)  # the process has the old code in memory
    time.sleep(0.05)
    _edit(repository / "part" / "used.py", "def f(x):\n    return x - 1\n")
    assert snapshot.code()["digest"] is None  # the record of this run is never reused
    # a later process, which imports the new code, writes records that are
    assert suite.CodeSnapshot(repository).code()["digest"] is not None


def test_cached_reads_a_record_only_when_it_is_reusable(suite: ModuleType, repository: Path) -> None:
    snapshot = suite.CodeSnapshot(repository)
    kept, stale = repository / "kept.json", repository / "stale.json"
    kept.write_text(json.dumps({"scenario": "default", "code": snapshot.code()}))
    stale.write_text(json.dumps({"scenario": "default", "code": {**snapshot.code(), "digest": "0" * 12}}))
    assert suite._cached(kept, snapshot)["scenario"] == "default"
    assert (
        suite._cached(stale, snapshot) is None and suite._cached(repository / "absent.json", snapshot) is None
    )


def test_the_suite_process_names_its_own_modules_by_their_folder(suite: ModuleType) -> None:
    location = str(ROOT / "benchmarks" / "scenario_suite.py")
    script = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('s', {location!r})\n"
        "suite = importlib.util.module_from_spec(spec); spec.loader.exec_module(suite)\n"
        "print(json.dumps(suite.CodeSnapshot(suite.ROOT).code()['files']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    assert "benchmarks/scenario_suite.py" in files and "training/default.yaml" in files
    # linewise/models links to models/: a module counts once, by its own folder
    assert "models/dr_value.py" in files and not any(name.startswith("linewise/models/") for name in files)
    assert "serving/app.py" not in files and not any(name.startswith("tests/") for name in files)
