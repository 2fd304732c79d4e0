"""The output table of every option of a decision, checked without MLflow.

Numbers are compared with :meth:`TreatmentRecommender.predict_options` (the table only lays them out),
ranks with a rule written here, and the explanation texts with a hand-built :class:`Explanation`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linewise.features import load_lock
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import export_patients
from linewise.models.candidates import OPTIONS, counterfactual_rows
from linewise.models.explain import Explanation
from linewise.models.output_table import (
    OUTPUT_COLUMNS,
    OUTPUT_TYPES,
    SUMMARY_COLUMNS,
    TOP_CONTRIBUTIONS,
    explanation_json,
    latest_decision,
    score_decisions,
)
from linewise.models.recommender import TreatmentRecommender
from linewise.models.summaries import UNRANKED
from linewise.models.survival import rmst_from_curves
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock
from linewise.training.pyfunc import score_latest_decision  # the registered model's per-row work

KEY = b"output-table-test-key-0123456789"
PANDAS_TYPE = {"long": "int64", "string": "object", "boolean": "bool", "double": "float64"}


@dataclass(frozen=True)
class Fitted:
    lock: Path
    examples: pd.DataFrame
    recommender: TreatmentRecommender


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    root = tmp_path_factory.mktemp("output_table")
    simulate_lock(300, 5, root / "lock", root / "truth", load_config())
    examples = build_examples(load_lock(root / "lock", KEY))
    # a high support threshold, so that some options are unsupported in every decision scored here
    recommender = TreatmentRecommender(
        n_bootstrap=2, min_support=0.08, model_params={"n_estimators": 20, "learning_rate": 0.1}
    ).fit(examples)
    return Fitted(root / "lock", examples, recommender)


def _decisions(fitted: Fitted, n: int) -> pd.DataFrame:
    return fitted.examples.iloc[:n].reset_index(drop=True)


def test_the_table_lays_out_predict_options(fitted: Fitted) -> None:
    decisions = _decisions(fitted, 3)
    rows = np.array([7, 3, 11])
    out = score_decisions(fitted.recommender, decisions, rows)
    predictions = fitted.recommender.predict_options(decisions[list(FEATURES)].to_numpy(float))

    assert list(out.columns[:7]) == [
        "row", "patient_key", "line_number", "decision_day", "candidate", "local_therapy", "option"
    ]  # fmt: skip
    assert list(out.columns[-9:]) == [
        "propensity",
        "support",
        "probability_best",
        "rank",
        "shap_top",
        "contrast_top",
        "sensitivity",
        "model_scale",
        "scope_warnings",
    ]
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert {name: str(out[name].dtype) for name, _ in OUTPUT_TYPES} == {
        name: PANDAS_TYPE[kind] for name, kind in OUTPUT_TYPES
    }
    k = len(OPTIONS)
    assert len(out) == 3 * k
    np.testing.assert_array_equal(out["row"], np.repeat(rows, k))
    assert list(out["option"]) == [option.label for option in OPTIONS] * 3
    for i in range(3):
        block = out.iloc[i * k : (i + 1) * k]
        assert set(block["patient_key"]) == {str(decisions.loc[i, "patient_key"])}
        assert set(block["line_number"]) == {int(decisions.loc[i, "line_number"])}
        for column in SUMMARY_COLUMNS:
            name, bound = column, "summary"
            if column.endswith("_lower"):
                name, bound = column.removesuffix("_lower"), "lower"
            elif column.endswith("_upper"):
                name, bound = column.removesuffix("_upper"), "upper"
            expected = getattr(predictions, bound)[name][i]
            # a median not reached within the grid (infinite) is written as NaN
            np.testing.assert_array_equal(
                block[column].to_numpy(), np.where(np.isinf(expected), np.nan, expected)
            )
        np.testing.assert_array_equal(block["propensity"], predictions.propensity[i])
        np.testing.assert_array_equal(block["support"], predictions.support[i])


def test_ranks_order_the_supported_options_by_rwpfs_rmst24(fitted: Fitted) -> None:
    out = score_decisions(fitted.recommender, _decisions(fitted, 4), np.arange(4))
    assert (~out["support"]).any(), "the fixture's threshold should leave some option unsupported"
    for _, block in out.groupby("row"):
        assert (block.loc[~block["support"], "rank"] == UNRANKED).all()
        supported = block[block["support"]]
        by_value = supported.sort_values("pfs_rmst24", ascending=False, kind="stable")
        assert list(by_value["rank"]) == list(range(1, len(supported) + 1))


def test_given_predictions_are_the_ones_laid_out(fitted: Fitted) -> None:
    decisions = _decisions(fitted, 2)
    predictions = fitted.recommender.predict_options(decisions[list(FEATURES)].to_numpy(float))
    # other numbers than the model's: the table must show these, not predict again
    shifted = {key: value + 100.0 for key, value in predictions.summary.items()}
    support = predictions.support.copy()
    support[:, 0] = ~support[:, 0]
    given = dataclasses.replace(predictions, summary=shifted, support=support)
    out = score_decisions(fitted.recommender, decisions, [0, 1], given)
    np.testing.assert_array_equal(
        out["pfs_rmst24"].to_numpy(), predictions.summary["pfs_rmst24"].ravel() + 100.0
    )
    np.testing.assert_array_equal(out["support"].to_numpy(), support.ravel())


def test_each_decisions_explanation_is_its_own(fitted: Fitted) -> None:
    decisions = _decisions(fitted, 2)
    out = score_decisions(fitted.recommender, decisions, [0, 1])
    for i in range(2):
        x = decisions[list(FEATURES)].to_numpy(float)[i]
        explanation = fitted.recommender.explain(x)
        block = out[out["row"] == i]
        outputs = [json.loads(text)["output"] for text in block["shap_top"]]
        np.testing.assert_allclose(outputs, explanation.output, rtol=1e-12)
        contrast = json.loads(block["contrast_top"].iloc[0])
        assert contrast["difference"] == pytest.approx(explanation.contrast_output, rel=1e-12)


def test_sensitivity_contrasts_ranks_one_and_two_from_the_replicates(fitted: Fitted) -> None:
    decisions = _decisions(fitted, 4)
    out = score_decisions(fitted.recommender, decisions, np.arange(4))
    model = fitted.recommender
    features = decisions[list(FEATURES)].to_numpy(float)
    rows = counterfactual_rows(features)
    # the S-learner's replicates, recomputed here from the bootstrap models' curves
    replicate_rmst = [
        rmst_from_curves(m.predict_survival_function(rows).reshape(4, len(OPTIONS), -1), m.time_grid_, 24.0)
        for m in model.replicates_["pfs"]
    ]
    for i, block in out.groupby("row"):
        sensitivity = json.loads(block["sensitivity"].iloc[0])
        assert block["sensitivity"].nunique() == 1
        first = block[block["rank"] == 1].iloc[0]
        second = block[block["rank"] == 2].iloc[0]
        assert (sensitivity["first_option"], sensitivity["second_option"]) == (
            first["option"],
            second["option"],
        )
        difference = first["pfs_rmst24"] - second["pfs_rmst24"]
        assert sensitivity["difference"] == pytest.approx(difference, rel=1e-12)
        a, b = (
            OPTIONS.index((first["candidate"], first["local_therapy"])),
            OPTIONS.index((second["candidate"], second["local_therapy"])),
        )
        spread = np.std([r[int(i), a] - r[int(i), b] for r in replicate_rmst], ddof=1)
        assert sensitivity["upper"] - sensitivity["lower"] == pytest.approx(2 * 1.6448536 * spread, rel=1e-5)
        ratio = np.exp(0.91 * difference / model.outcome_sd_)
        assert sensitivity["e_value"] == pytest.approx(ratio + np.sqrt(ratio * (ratio - 1)), rel=1e-9)
        assert 1.0 <= sensitivity["e_value_interval"] <= sensitivity["e_value"]
        assert sensitivity["interval"] == 0.9 and sensitivity["outcome_sd"] == pytest.approx(
            model.outcome_sd_
        )


def test_no_decision_gives_the_typed_empty_table(fitted: Fitted) -> None:
    out = score_decisions(fitted.recommender, fitted.examples.iloc[:0], [])
    assert len(out) == 0
    # types written by hand: the MLflow signature's long, string, boolean and double columns
    by_hand = {
        "row": "int64",
        "patient_key": "object",
        "local_therapy": "bool",
        "pfs_rmst24": "float64",
        "os_median_upper": "float64",
        "support": "bool",
        "rank": "int64",
        "shap_top": "object",
    }
    assert {name: str(out[name].dtype) for name in by_hand} == by_hand


def test_rows_must_match_the_decisions(fitted: Fitted) -> None:
    with pytest.raises(ValueError, match="rows has 1 values for 2 decisions"):
        score_decisions(fitted.recommender, _decisions(fitted, 2), [0])


def test_latest_decision_takes_the_latest_day_then_the_highest_line() -> None:
    examples = pd.DataFrame(
        {"decision_day": [400, 900, 900, 100], "line_number": [2, 3, 4, 1], "tag": ["a", "b", "c", "d"]}
    )
    assert list(latest_decision(examples)["tag"]) == ["c"]
    assert list(latest_decision(examples.iloc[[3, 0]])["tag"]) == ["a"]
    assert list(latest_decision(examples.iloc[[1, 2]].iloc[::-1])["tag"]) == ["c"]


def test_score_latest_decision_scores_the_patients_latest_decision(fitted: Fitted) -> None:
    counts = fitted.examples["patient_key"].astype(str).value_counts()
    key = str(counts.index[0])  # a patient with the most decisions
    assert counts.iloc[0] >= 2
    document = export_patients(fitted.lock, KEY, [key])[key]
    out = score_latest_decision(fitted.recommender, document, row=5)
    own = fitted.examples[fitted.examples["patient_key"].astype(str) == key]
    last = own.sort_values(["decision_day", "line_number"]).iloc[-1]
    assert set(out["row"]) == {5}
    assert set(out["decision_day"]) == {int(last["decision_day"])}
    assert set(out["line_number"]) == {int(last["line_number"])}


def test_a_patient_without_a_decision_is_refused(fitted: Fitted) -> None:
    key = str(fitted.examples["patient_key"].iloc[0])
    first_line = min(line["start_date"] for line in export_patients(fitted.lock, KEY, [key])[key]["lines"])
    # the history cut on the day first line started: no progression yet
    document = export_patients(fitted.lock, KEY, [key], as_of=dt.date.fromisoformat(first_line))[key]
    assert document["progressions"] == []
    with pytest.raises(ValueError, match="has no decision to score"):
        score_latest_decision(fitted.recommender, document, source="patient.json")


# ---------------------------------------------------------------- the explanation texts, by hand


def _hand_explanation() -> tuple[Explanation, np.ndarray]:
    k, names = len(OPTIONS), ("a", "b", "c", "d", "e", "f", "g")
    values = np.zeros((k, len(names)))
    values[0] = [0.1, -0.7, 0.3, 0.0, 0.5, -0.2, 0.05]  # |value| order: b, e, c, f, a, g, d
    values[3] = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -2.0]
    output = 10.0 + values.sum(axis=1)
    rows = np.arange(k * len(names), dtype=float).reshape(k, len(names))
    rows[0, 4] = np.nan  # a missing feature: its value is null
    explanation = Explanation(
        scale="rwPFS RMST to 24 months",
        higher_is_better=True,
        feature_names=names,
        base_value=10.0,
        output=output,
        values=values,
        tbp_option=0,
        switch_option=3,
        contrast_values=values[0] - values[3],
        contrast_output=float(output[0] - output[3]),
    )
    return explanation, rows


def test_explanation_json_lists_the_largest_contributions_by_hand() -> None:
    explanation, rows = _hand_explanation()
    shap_top, contrast_text = explanation_json(explanation, rows)
    assert TOP_CONTRIBUTIONS == 5
    assert len(shap_top) == len(OPTIONS)
    first = json.loads(shap_top[0])
    assert first == {
        "scale": "rwPFS RMST to 24 months",
        "higher_is_better": True,
        "base_value": 10.0,
        "output": pytest.approx(10.05),
        "top": [
            {"feature": "b", "value": 1.0, "shap": -0.7},
            {"feature": "e", "value": None, "shap": 0.5},
            {"feature": "c", "value": 2.0, "shap": 0.3},
            {"feature": "f", "value": 5.0, "shap": -0.2},
            {"feature": "a", "value": 0.0, "shap": 0.1},
        ],
    }
    contrast = json.loads(contrast_text)
    # contrast values: option 0 minus option 3 = [-0.9, -0.7, 0.3, 0, 0.5, -0.2, 2.05]
    assert contrast["tbp_option"] == OPTIONS[0].label
    assert contrast["switch_option"] == OPTIONS[3].label
    assert contrast["difference"] == pytest.approx(10.05 - 9.0)
    assert [(c["feature"], c["value"], c["switch_value"]) for c in contrast["top"]] == [
        ("g", 6.0, 27.0),
        ("a", 0.0, 21.0),
        ("b", 1.0, 22.0),
        ("e", None, 25.0),
        ("c", 2.0, 23.0),
    ]
    assert [c["shap"] for c in contrast["top"]] == pytest.approx([2.05, -0.9, -0.7, 0.5, 0.3])


def test_explanation_json_refuses_non_finite_values() -> None:
    explanation, rows = _hand_explanation()
    broken = Explanation(**{**explanation.__dict__, "base_value": float("nan")})
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        explanation_json(broken, rows)


def test_counterfactual_rows_feed_the_texts(fitted: Fitted) -> None:
    x = _decisions(fitted, 1)[list(FEATURES)].to_numpy(float)
    explanation = fitted.recommender.explain(x[0])
    shap_top, _ = explanation_json(explanation, counterfactual_rows(x))
    for i, text in enumerate(shap_top):
        top = json.loads(text)["top"]
        assert len(top) == 5  # the five largest contributions
        magnitudes = [abs(c["shap"]) for c in top]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert max(magnitudes) == pytest.approx(np.abs(explanation.values[i]).max(), rel=1e-12)
