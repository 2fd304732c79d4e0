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


def test_a_cut_by_hand_of_the_example_lock() -> None:
    # EX-003 of the bundled lock, cut the day before its second line ended (2022-09-15) and before its
    # third line (2022-09-25) and death (2023-08-19); expected values read off the CSV files by hand
    from linewise.features import example_lock_path, pseudonymize

    document = export_patients(example_lock_path(), KEY)[pseudonymize("EX-003", KEY)]
    cut = cut_document(document, dt.date(2022, 9, 14))
    assert cut["as_of"] == "2022-09-14"
    patient = cut["patient"]
    assert (patient["last_contact_date"], patient["vital_status"], patient["death_date"]) == (
        "2022-09-14",
        "alive",
        None,
    )
    assert cut["lines"] == [
        {
            "line_number": 1,
            "start_date": "2021-02-10",
            "end_date": "2021-11-30",
            "drugs": "anastrozole+ribociclib",
            "end_reason": "progression",
        },
        # running on the cut day: its end is not known yet
        {
            "line_number": 2,
            "start_date": "2021-12-10",
            "end_date": None,
            "drugs": "capecitabine",
            "end_reason": None,
        },
    ]
    assert [p["date"] for p in cut["progressions"]] == ["2021-11-25", "2022-09-10"]  # 2023-07-15 dropped
    assert [m["date_detected"] for m in cut["metastases"]] == ["2021-02-01", "2021-02-01", "2022-09-10"]
    assert [(e["date"], e["ecog"]) for e in cut["performance_status"]] == [
        ("2021-02-05", 1),
        ("2022-09-12", 2),
    ]
    # a record dated on the cut day itself is kept
    on_the_day = cut_document(document, dt.date(2022, 9, 12))
    assert [e["date"] for e in on_the_day["performance_status"]] == ["2021-02-05", "2022-09-12"]
