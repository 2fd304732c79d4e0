"""Imports run one way (features, then models, then training; serving beside training; simulation apart)."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import linewise
from tests.import_rules import check_file, check_package

PACKAGE_ROOT = Path(linewise.__file__).parent
REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_installed_package_has_no_arrow_against_the_order() -> None:
    arrows = check_package(PACKAGE_ROOT)
    assert [str(arrow) for arrow in arrows] == []


def test_tests_and_benchmarks_use_the_namespace() -> None:
    files = sorted([*(REPOSITORY / "tests").rglob("*.py"), *(REPOSITORY / "benchmarks").rglob("*.py")])
    arrows = [arrow for path in files for arrow in check_file(path, None, str(path.relative_to(REPOSITORY)))]
    assert [str(arrow) for arrow in arrows] == []


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the package's sources (links followed) to add arrows to."""
    target = tmp_path / "linewise"
    shutil.copytree(PACKAGE_ROOT, target, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.mark.parametrize(
    ("module", "added", "expected"),
    [
        (
            "features/vocabulary.py",
            "from linewise.models.candidates import OPTIONS\n",
            "features/vocabulary.py:{line}: imports linewise.models.candidates "
            "(features must not import models)",
        ),
        (
            "models/weights.py",
            "def later() -> None:\n    from linewise.training import config\n",
            "models/weights.py:{line}: imports linewise.training (models must not import training)",
        ),
        (
            "serving/batch.py",
            "import linewise.training.pyfunc\n",
            "serving/batch.py:{line}: imports linewise.training.pyfunc (serving must not import training)",
        ),
        (
            "serving/app.py",
            "from linewise import __version__\n",
            "serving/app.py:{line}: imports linewise (serving must not import command line)",
        ),
        (
            "models/target.py",
            "from linewise import features, training\n",
            "models/target.py:{line}: imports linewise.training (models must not import training)",
        ),
        (
            "training/pyfunc.py",
            "from linewise.simulation.simulate import simulate_lock\n",
            "training/pyfunc.py:{line}: imports linewise.simulation.simulate "
            "(training must not import simulation)",
        ),
        (
            "training/config.py",
            "from ..simulation import config\n",
            "training/config.py:{line}: imports linewise.simulation (training must not import simulation)",
        ),
        (
            "simulation/writer.py",
            "from linewise.simulation.engine import _sigmoid\n",
            "simulation/writer.py:{line}: imports linewise.simulation.engine._sigmoid "
            "(a private name of another module)",
        ),
        (
            "models/target.py",
            "import importlib\nimportlib.import_module('linewise.serving.app')\n",
            "models/target.py:{line}: imports linewise.serving.app (models must not import serving)",
        ),
        (
            "cli.py",
            "import features\n",
            "cli.py:{line}: imports features (bare top-level name; use linewise.features)",
        ),
    ],
    ids=[
        "features-to-models",
        "models-to-training-inside-a-function",
        "serving-to-training",
        "serving-to-command-line",
        "a-part-from-the-package",
        "training-to-simulation",
        "relative-import",
        "private-name",
        "import-module-call",
        "bare-folder-name",
    ],
)
def test_an_added_arrow_against_the_order_is_found(
    package_copy: Path, module: str, added: str, expected: str
) -> None:
    path = package_copy / module
    text = path.read_text(encoding="utf-8")
    line = text.count("\n") + 1 + added.count("\n") - 1
    path.write_text(text + added, encoding="utf-8")
    arrows = [str(arrow) for arrow in check_package(package_copy)]
    assert arrows == ["linewise/" + expected.format(line=line)]


def test_the_service_loads_neither_training_nor_the_simulator() -> None:
    # the static rules above, checked once at run time: what importing the service really loads
    code = (
        "import json, sys\n"
        "import linewise.serving.app, linewise.serving.batch, linewise.serving.report\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('linewise'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    assert "linewise.serving.app" in loaded
    assert [
        m
        for m in loaded
        if m.startswith("linewise.") and m.split(".")[1] not in {"features", "models", "serving"}
    ] == []


def test_the_folders_do_not_import_under_their_bare_names_in_tests() -> None:
    # tests/conftest.py refuses them in this process, and PYTHONSAFEPATH keeps them out of subprocesses
    for name in ("features", "models", "training", "serving", "simulation"):
        with pytest.raises(ModuleNotFoundError, match=f"No module named '{name}'"):
            importlib.import_module(name)
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('serving') is not None)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, check=False).returncode == 0
