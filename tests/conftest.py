from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import settings

from linewise.features import example_lock_path

# the same examples on every run (a fixed seed per test, no example database): a test run twice gives
# the same numbers; a property fails on the same example every time it fails
settings.register_profile("linewise", derandomize=True, database=None)
settings.load_profile("linewise")

TEST_KEY = "test-key-0123456789abcdef"
#: The folders that install only as ``linewise.<name>``.
PART_FOLDERS = frozenset({"features", "models", "training", "serving", "simulation"})


class BareFolderNames(importlib.abc.MetaPathFinder):
    """Refuse ``import serving`` and the like, as an installed linewise does.

    pytest puts the repository root on ``sys.path`` (for ``tests.``), where the folders would import
    under their bare names and hide code that names them so (``jinja2.PackageLoader("serving")``).
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in PART_FOLDERS:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (linewise installs it as linewise.{fullname})"
            )
        return None


sys.meta_path.insert(0, BareFolderNames())


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Never touch the developer's key file or tracking store: keys and config live in a temp folder."""
    config_home = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    # ``python -m linewise`` in a test's subprocess must not find the folders in the working directory
    monkeypatch.setenv("PYTHONSAFEPATH", "1")
    monkeypatch.delenv("LINEWISE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("LINEWISE_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{config_home / 'mlflow.db'}")
    # the registry follows the tracking store unless a test names one
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    yield
    # ``mlflow.set_registry_uri(uri)`` also exports MLFLOW_REGISTRY_URI for subprocesses, and
    # ``set_registry_uri(None)`` does not take it back: a later test's ``python -m linewise`` would
    # register into an earlier test's store, whose champion its own store does not hold
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_registry_uri(None)


@pytest.fixture
def key() -> bytes:
    return TEST_KEY.encode("utf-8")


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    """A fresh, writable copy of the bundled example lock."""
    target = tmp_path / "lock"
    shutil.copytree(example_lock_path(), target)
    return target
