"""Cutting a patient document at a date gives what export-patient --as-of gives from the lock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from linewise.features.patient import cut_document, export_patients
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

#: A fixed pseudonym key: the same patients, in the same order, on every run.
KEY = b"patient-cut-test-key------------"


@pytest.fixture(scope="module")
def simulated_lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cut")
    simulate_lock(60, 4, root / "lock", root / "truth", load_config())
    return root / "lock"


@pytest.mark.parametrize("day", ["2019-03-31", "2021-06-30", "2023-01-15", "2025-01-31"])
def test_cut_document_matches_the_export_cut(simulated_lock: Path, day: str) -> None:
    key = KEY
    full = export_patients(simulated_lock, key)
    as_of = dt.date.fromisoformat(day)
    expected = export_patients(simulated_lock, key, as_of=as_of)  # cut from the lock's text tables
    for patient_key, document in full.items():
        assert cut_document(document, as_of) == expected[patient_key]
    first = next(iter(full.values()))
    assert first == export_patients(simulated_lock, key)[first["patient_key"]]  # the input is untouched


def test_cut_document_refuses_a_later_date(simulated_lock: Path) -> None:
    document = next(iter(export_patients(simulated_lock, KEY).values()))
    with pytest.raises(ValueError, match="is after the document's as_of 2025-01-31"):
        cut_document(document, dt.date(2026, 1, 1))
    with pytest.raises(ValueError, match="no as_of date"):
        cut_document({**document, "as_of": "soon"}, dt.date(2024, 1, 1))
