"""Whether a first line is the population's: endocrine therapy plus a CDK4/6 inhibitor, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from linewise.features import load_lock, pseudonymize
from linewise.features.examples import build_examples
from linewise.features.regimens import is_endocrine_cdk46i
from tests.lockedit import set_cell

# hand-written: the regimen, and whether it is endocrine therapy + a CDK4/6 inhibitor
REGIMENS = [
    ("letrozole+palbociclib", True),
    ("anastrozole+ribociclib+goserelin", True),
    ("fulvestrant+abemaciclib", True),
    ("tamoxifen+ribociclib", True),
    ("letrozole", False),  # endocrine therapy alone
    ("palbociclib", False),  # a CDK4/6 inhibitor alone
    ("goserelin+palbociclib", False),  # ovarian suppression is no endocrine backbone on its own
    ("letrozole+palbociclib+capecitabine", False),  # chemotherapy added
    ("letrozole+everolimus", False),
    ("paclitaxel", False),
]


@pytest.mark.parametrize(("drugs", "expected"), REGIMENS)
def test_the_population_first_line_is_endocrine_therapy_plus_a_cdk46_inhibitor(
    drugs: str, expected: bool
) -> None:
    assert is_endocrine_cdk46i(drugs) is expected


def test_every_decision_of_a_patient_says_whether_its_first_line_was_the_populations(
    lock: Path, key: bytes
) -> None:
    # row 1 of the example's lines is EX-001's first line (letrozole+palbociclib+goserelin)
    set_cell(lock, "lines", 1, "drugs", "letrozole+goserelin")
    examples = build_examples(load_lock(lock, key))
    changed = examples["patient_key"] == pseudonymize("EX-001", key)
    assert changed.sum() == 2  # EX-001 progressed on lines 1 and 2
    assert not examples.loc[changed, "first_line_et_cdk46i"].any()
    assert examples.loc[~changed, "first_line_et_cdk46i"].all()
