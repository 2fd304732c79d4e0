"""Decision examples: hand-checked features, no look-ahead, and one code path for batch and one patient."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewise.features import LockValidationError, load_lock, pseudonymize
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import export_patients, load_patient
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

M = 30.4375
KEY = b"examples-test-key-012345"


def _by_decision(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index(["patient_key", "line_number", "decision_day"]).sort_index()


# (raw id, decision day): features worked out by hand from features/example_lock/*.csv
HAND = {
    ("EX-001", 553): {  # oligoprogression on letrozole+palbociclib+goserelin, ECOG 0 four days before
        "oligoprogression": 1,
        "current_line": 1,
        "months_on_current_line": (553 - 10) / M,
        "pfs1_months": (553 - 10) / M,
        "ecog": 0,
        "ecog_known": 1,
        "prior_palbociclib": 1,
        "prior_aromatase_inhibitor": 1,
        "prior_fulvestrant": 0,
        "current_cdk46i": 1,
        "site_bone": 1,
        "site_liver": 0,
        "bone_only": 1,
        "pik3ca_tested": 1,
        "pik3ca_mutated": 0,
        "esr1_tested": 0,
        "menopause_pre": 1,
        "endocrine_primary_resistance": 0,
        "previous_progressions": 0,
    },
    ("EX-001", 832): {  # second progression on the same line, new liver metastasis that day
        "oligoprogression": 0,
        "new_site_count": 1,
        "new_visceral_site": 1,
        "site_liver": 1,
        "visceral": 1,
        "previous_progressions": 1,
        "pfs1_months": (553 - 10) / M,
        "months_on_current_line": (832 - 10) / M,
        "esr1_tested": 0,  # the ctDNA test of 2022-06-25 is five days after this decision
    },
    ("EX-002", 1274): {  # ESR1 found on 2023-05-08, six days after the decision: not known yet
        "esr1_tested": 0,
        "current_line": 2,
        "prior_ribociclib": 1,
        "prior_palbociclib": 1,
        "prior_fulvestrant": 1,
        "current_fulvestrant": 1,
        "ecog_known": 0,
        "histology_lobular": 1,
    },
    ("EX-003", 586): {  # on capecitabine, PIK3CA mutated known since 2021-12-01
        "current_chemotherapy": 1,
        "current_cdk46i": 0,
        "prior_chemotherapy": 1,
        "pik3ca_mutated": 1,
        "pathway_altered": 1,
        "ki67_percent": 40,
        "site_liver": 1,
        "ecog": math.nan,
        "ecog_known": 0,  # ECOG 2 is recorded two days after; the last before is >90 days
    },
    ("EX-005", 415): {
        "ki67_known": 0,
        "her2_low": math.nan,
        "grade": math.nan,
        "ecog_known": 0,
        "pathway_tested": 0,
        "histology_other": 1,
    },
    ("EX-008", 1421): {
        "esr1_tested": 0,
        "previous_progressions": 1,
        "site_lymph_node": 1,
        "new_site_count": 1,
    },
}


def test_features_match_the_hand_written_table(lock: Path, key: bytes) -> None:
    examples = _by_decision(build_examples(load_lock(lock, key)))
    for (raw, day), expected in HAND.items():
        row = examples.xs((pseudonymize(raw, key), day), level=["patient_key", "decision_day"]).iloc[0]
        for column, value in expected.items():
            if math.isnan(value):
                assert math.isnan(row[column]), (raw, day, column)
            else:
                assert row[column] == pytest.approx(value), (raw, day, column, row[column])


def test_feature_columns_and_types(lock: Path, key: bytes) -> None:
    examples = build_examples(load_lock(lock, key))
    assert list(examples.columns[:3]) == ["patient_key", "line_number", "decision_day"]
    assert all(str(examples[column].dtype) == "float64" for column in FEATURES)
    assert len(set(examples.columns)) == len(examples.columns)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    simulate_lock(250, 9, root / "lock", root / "truth", load_config())
    return root / "lock"


@pytest.fixture(scope="module")
def simulated_examples(simulated: Path) -> pd.DataFrame:
    return _by_decision(build_examples(load_lock(simulated, KEY)))


def test_batch_and_single_patient_rows_are_identical(
    simulated: Path, simulated_examples: pd.DataFrame
) -> None:
    batch = simulated_examples
    documents = export_patients(simulated, KEY)
    single = _by_decision(pd.concat([build_examples(load_patient(d)) for d in documents.values()]))
    assert len(batch) > 200
    pd.testing.assert_frame_equal(batch, single, check_dtype=False)


def _decisions_with_dates(lock: Path) -> list[tuple[str, int, str]]:
    with (lock / "patients.csv").open() as handle:
        diagnosis = {row["patient_id"]: row["metastatic_dx_date"] for row in csv.DictReader(handle)}
    with (lock / "progressions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        day = (dt.date.fromisoformat(row["date"]) - dt.date.fromisoformat(diagnosis[row["patient_id"]])).days
        out.append((row["patient_id"], day, row["date"]))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_cutting_history_at_the_decision_leaves_its_features_unchanged(
    simulated: Path, simulated_examples: pd.DataFrame, data: st.DataObject
) -> None:
    raw, day, date = data.draw(st.sampled_from(_decisions_with_dates(simulated)))
    patient_key = pseudonymize(raw, KEY)
    full = simulated_examples
    if (patient_key, day) not in {(k, d) for k, _, d in full.index}:
        return  # a progression on the day of death is not a decision
    document = export_patients(simulated, KEY, [patient_key], dt.date.fromisoformat(date))[patient_key]
    cut = _by_decision(build_examples(load_patient(document)))
    left = full.xs((patient_key, day), level=["patient_key", "decision_day"])[list(FEATURES)]
    right = cut.xs((patient_key, day), level=["patient_key", "decision_day"])[list(FEATURES)]
    pd.testing.assert_frame_equal(left, right)


def _document(lock: Path, key: bytes, raw: str = "EX-002") -> dict:
    return export_patients(lock, key, [pseudonymize(raw, key)])[pseudonymize(raw, key)]


def test_progression_without_its_line_names_patient_and_record(lock: Path, key: bytes) -> None:
    document = _document(lock, key)
    document["progressions"][1]["line_number"] = 5
    with pytest.raises(LockValidationError, match=pseudonymize("EX-002", key)) as caught:
        load_patient(document)
    [violation] = caught.value.violations
    assert (violation.table, violation.row, violation.rule) == ("progressions", 2, "progression-line-missing")


def test_unknown_drug_names_patient_and_record(lock: Path, key: bytes) -> None:
    document = _document(lock, key)
    document["lines"][2]["drugs"] = "elacestrnt"
    with pytest.raises(LockValidationError, match="did you mean 'elacestrant'") as caught:
        load_patient(document)
    [violation] = caught.value.violations
    assert (violation.table, violation.row, violation.column) == ("lines", 3, "drugs")
    assert pseudonymize("EX-002", key) in str(caught.value)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d.update(patient_key="EX-002"), "never a raw identifier"),
        (lambda d: d.update(schema_version=2), "schema_version must be 1"),
        (lambda d: d.update(lines="letrozole"), "lines must be a list of objects"),
        (lambda d: d["lines"][0].update(dose="2.5 mg"), "unknown field 'dose'"),
        (lambda d: d["patient"].update(er_percent=[90]), "expected a single value"),
        (lambda d: d.update(as_of="2019-01-01"), "after the lock date"),
    ],
    ids=["raw-id", "version", "not-a-list", "unknown-field", "nested-value", "as-of-before-history"],
)
def test_bad_patient_files(lock: Path, key: bytes, change: object, says: str) -> None:
    document = _document(lock, key)
    change(document)  # type: ignore[operator]
    with pytest.raises(LockValidationError, match=says) as caught:
        load_patient(document)
    assert "EX-002" not in str(caught.value)


def test_export_as_of_cuts_the_history(lock: Path, key: bytes) -> None:
    patient_key = pseudonymize("EX-003", key)
    document = export_patients(lock, key, [patient_key], dt.date(2022, 1, 1))[patient_key]
    assert document["patient"]["vital_status"] == "alive" and document["patient"]["death_date"] is None
    assert document["patient"]["last_contact_date"] == "2022-01-01"
    assert [line["end_date"] for line in document["lines"]] == ["2021-11-30", None]
    assert all(p["date"] <= "2022-01-01" for p in document["progressions"])
    assert "patient_id" not in json.dumps(document) and "EX-003" not in json.dumps(document)
    with pytest.raises(ValueError, match="after the lock date"):
        export_patients(lock, key, [patient_key], dt.date(2026, 1, 1))


def test_export_before_the_diagnosis_is_refused_in_one_line(lock: Path, key: bytes, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from linewise.cli import app

    patient_key = pseudonymize("EX-003", key)  # diagnosed 2021-02-01 (patients.csv)
    with pytest.raises(
        ValueError, match=rf"before the metastatic diagnosis of 1 patient\(s\), e.g. {patient_key}"
    ):
        export_patients(lock, key, [patient_key], dt.date(2021, 1, 31))
    assert (
        export_patients(lock, key, [patient_key], dt.date(2021, 2, 1))[patient_key]["as_of"] == "2021-02-01"
    )
    out = tmp_path / "p.json"
    args = ["export-patient", str(lock), "--patient", patient_key, "--out", str(out), "--as-of", "2021-01-31"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and not out.exists()
    assert result.output.startswith("linewise export-patient: as_of is before the metastatic diagnosis")
    assert "2021-02-01" not in result.output


def test_next_line_starting_on_the_decision_day_is_not_a_prior_drug(lock: Path, key: bytes) -> None:
    from tests.lockedit import row_of, set_cell

    # EX-008 progresses on 2023-02-20 and switches to fulvestrant; start it that very day
    set_cell(
        lock, "lines", row_of(lock, "lines", patient_id="EX-008", line_number="2"), "start_date", "2023-02-20"
    )
    examples = _by_decision(build_examples(load_lock(lock, key)))
    row = examples.xs((pseudonymize("EX-008", key), 1421), level=["patient_key", "decision_day"]).iloc[0]
    assert row["action"] == "et_mono"
    assert row["prior_fulvestrant"] == 0


def test_decision_year_is_calendar_time(lock: Path, key: bytes) -> None:
    examples = _by_decision(build_examples(load_lock(lock, key)))
    row = examples.xs((pseudonymize("EX-001", key), 553), level=["patient_key", "decision_day"]).iloc[0]
    true_time = 2021 + (dt.date(2021, 9, 14) - dt.date(2021, 1, 1)).days / 365.25
    assert abs(row["decision_year"] - true_time) < 1 / 12


def test_a_patient_who_died_is_never_an_open_decision(lock: Path, key: bytes) -> None:
    from linewise.features.decisions import derive_decisions
    from tests.lockedit import row_of, set_cell

    row = row_of(lock, "patients", patient_id="EX-006")
    for column, value in (
        ("vital_status", "dead"),
        ("death_date", "2025-01-25"),
        ("last_contact_date", "2025-01-25"),
    ):
        set_cell(lock, "patients", row, column, value)
    decisions = derive_decisions(load_lock(lock, key)).set_index("patient_key")
    decision = decisions.loc[pseudonymize("EX-006", key)]
    assert decision["action"] == "none"
    assert not decision["open_decision"]
