"""Decision points of the example lock against a table written by hand from its CSV files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from linewise.features import load_lock, pseudonymize
from linewise.features.decisions import derive_decisions
from linewise.features.regimens import regimen_class
from tests.lockedit import row_of, set_cell

M = 30.4375  # days per month

# raw id, line, decision date offset (days), action, local therapy, open, pfs (days, event), os (days, event)
# worked out by hand from features/example_lock/*.csv
EXPECTED = [
    ("EX-001", 1, 553, "tbp", True, False, (832 - 553, True), (1777 - 553, False)),
    ("EX-001", 1, 832, "cdk_switch", False, False, (1777 - 832, False), (1777 - 832, False)),
    ("EX-002", 1, 792, "cdk_switch", False, False, (1274 - 792, True), (1867 - 792, False)),
    ("EX-002", 2, 1274, "oral_serd", False, False, (1867 - 1274, False), (1867 - 1274, False)),
    ("EX-003", 1, 297, "chemo", False, False, (586 - 297, True), (929 - 297, True)),
    ("EX-003", 2, 586, "chemo", False, False, (894 - 586, True), (929 - 586, True)),
    ("EX-003", 3, 894, "none", False, False, (929 - 894, True), (929 - 894, True)),
    ("EX-005", 1, 415, "et_targeted", False, False, (591 - 415, False), (591 - 415, False)),
    ("EX-006", 1, 1305, None, True, True, (1320 - 1305, False), (1320 - 1305, False)),
    ("EX-007", 1, 456, "cdk_same_et_switch", False, False, (651 - 456, True), (1776 - 456, False)),
    ("EX-007", 2, 651, "adc", False, False, (1776 - 651, False), (1776 - 651, False)),
    ("EX-008", 1, 1324, "tbp", True, False, (1421 - 1324, True), (1917 - 1324, True)),
    ("EX-008", 1, 1421, "et_mono", False, False, (1745 - 1421, True), (1917 - 1421, True)),
    ("EX-008", 2, 1745, "chemo", False, False, (1917 - 1745, True), (1917 - 1745, True)),
]


@pytest.fixture
def keyed(key: bytes) -> dict[str, str]:
    return {f"EX-00{i}": pseudonymize(f"EX-00{i}", key) for i in range(1, 9)}


def test_example_decisions_match_the_hand_written_table(
    lock: Path, key: bytes, keyed: dict[str, str]
) -> None:
    derived = derive_decisions(load_lock(lock, key)).set_index(["patient_key", "line_number", "decision_day"])
    assert len(derived) == len(EXPECTED)
    for raw, line, day, action, local, is_open, (pfs_days, pfs_event), (os_days, os_event) in EXPECTED:
        row = derived.loc[(keyed[raw], line, day)]
        assert (None if pd.isna(row["action"]) else row["action"]) == action, (raw, day)
        assert bool(row["local_therapy"]) is local, (raw, day)
        assert bool(row["open_decision"]) is is_open, (raw, day)
        assert row["pfs_time"] == pytest.approx(pfs_days / M), (raw, day)
        assert bool(row["pfs_event"]) is pfs_event, (raw, day)
        assert row["os_time"] == pytest.approx(os_days / M), (raw, day)
        assert bool(row["os_event"]) is os_event, (raw, day)


def test_tbp_threshold_is_a_parameter(lock: Path, key: bytes, keyed: dict[str, str]) -> None:
    # EX-008's first line goes on 105 days after its oligoprogression (2022-11-15 to 2023-02-28)
    data_lock = load_lock(lock, key)
    strict = derive_decisions(data_lock, tbp_min_days=106).set_index(["patient_key", "decision_day"])
    assert strict.loc[(keyed["EX-008"], 1324), "action"] != "tbp"
    loose = derive_decisions(data_lock, tbp_min_days=105).set_index(["patient_key", "decision_day"])
    assert loose.loc[(keyed["EX-008"], 1324), "action"] == "tbp"
    with pytest.raises(ValueError, match="tbp_min_days"):
        derive_decisions(data_lock, tbp_min_days=0)


def test_progression_on_the_day_of_death_is_not_a_decision(
    lock: Path, key: bytes, keyed: dict[str, str]
) -> None:
    # move EX-003's last progression, and the end of its line, to the day of death
    set_cell(
        lock, "lines", row_of(lock, "lines", patient_id="EX-003", line_number="3"), "end_date", "2023-08-19"
    )
    set_cell(
        lock,
        "progressions",
        row_of(lock, "progressions", patient_id="EX-003", date="2023-07-15"),
        "date",
        "2023-08-19",
    )
    derived = derive_decisions(load_lock(lock, key))
    assert not ((derived["patient_key"] == keyed["EX-003"]) & (derived["line_number"] == 3)).any()


@pytest.mark.parametrize(
    ("drugs", "last_cdk", "expected"),
    [
        ("letrozole+palbociclib", None, "cdk_switch"),
        ("fulvestrant+palbociclib", "palbociclib", "cdk_same_et_switch"),
        ("fulvestrant+abemaciclib+goserelin", "palbociclib", "cdk_switch"),
        ("fulvestrant", "ribociclib", "et_mono"),
        ("exemestane+everolimus", "ribociclib", "et_targeted"),
        ("fulvestrant+capivasertib", "palbociclib", "et_targeted"),
        ("elacestrant", "abemaciclib", "oral_serd"),
        ("capecitabine", "palbociclib", "chemo"),
        ("paclitaxel+fulvestrant", None, "chemo"),
        ("sacituzumab_govitecan", None, "adc"),
        ("olaparib", None, "other"),
    ],
    ids=lambda value: str(value),
)
def test_regimen_classes(drugs: str, last_cdk: str | None, expected: str) -> None:
    assert regimen_class(drugs, last_cdk) == expected
