"""The recommender: weights, positivity flags, counterfactual scoring and exact SHAP (both families)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linewise.features import load_lock
from linewise.features.examples import FEATURES, build_examples
from linewise.models.candidates import (
    BASELINE,
    OPTIONS,
    TREATMENT_COLUMNS,
    counterfactual_rows,
    option_index,
    training_decisions,
)
from linewise.models.cox_likelihood import cox_gradient
from linewise.models.explain import best_sides
from linewise.models.option_propensity import OptionPropensityModel
from linewise.models.policy_evaluation import evaluate_policy
from linewise.models.recommender import TreatmentRecommender
from linewise.models.summaries import UNRANKED
from linewise.models.survival import BoostedCoxModel
from linewise.models.target import make_target
from linewise.models.weights import balancing_weights
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

#: A fixed pseudonym key: the same patients, in the same order, on every run.
KEY = b"recommender-test-key------------"

SMALL = {
    "boosted_cox": {"n_estimators": 60, "learning_rate": 0.1},
    "random_survival_forest": {"n_estimators": 20, "min_samples_leaf": 20},
}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("recommender")
    simulate_lock(700, 3, root / "lock", root / "truth", load_config())
    return root, build_examples(load_lock(root / "lock", KEY))


@pytest.fixture(scope="module", params=list(SMALL))
def fitted(request: pytest.FixtureRequest, simulated: tuple[Path, pd.DataFrame]) -> TreatmentRecommender:
    _, examples = simulated
    family = request.param
    return TreatmentRecommender(family, n_bootstrap=3, model_params=SMALL[family]).fit(examples)


def _cox_loss(margin: np.ndarray, time: np.ndarray, event: np.ndarray, weight: np.ndarray) -> float:
    """Weighted negative Cox log partial likelihood, Breslow ties, written as the textbook double loop."""
    total = 0.0
    for i in range(len(time)):
        if event[i]:
            at_risk = time >= time[i]
            total -= weight[i] * (margin[i] - np.log(np.sum(weight[at_risk] * np.exp(margin[at_risk]))))
    return total


def test_cox_gradient_and_hessian_match_finite_differences_of_the_partial_likelihood() -> None:
    rng = np.random.default_rng(1)
    n = 40
    time = np.round(rng.exponential(5.0, n)) + 1.0  # ties on purpose
    event = rng.random(n) < 0.7
    weight = rng.integers(0, 3, n).astype(float)
    margin = rng.normal(size=n)
    gradient, hessian = cox_gradient(margin, time, event, weight)
    step = 1e-5
    for k in range(n):
        bump = np.zeros(n)
        bump[k] = step
        up, down = (
            _cox_loss(margin + bump, time, event, weight),
            _cox_loss(margin - bump, time, event, weight),
        )
        assert gradient[k] == pytest.approx((up - down) / (2 * step), abs=1e-6)
        # the diagonal Hessian per copy times the weight: for weight 1 it is the exact second derivative
        if weight[k] == 1.0:
            second = (up - 2 * _cox_loss(margin, time, event, weight) + down) / step**2
            assert hessian[k] == pytest.approx(second, abs=1e-3)


def _survival_data(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    time = rng.exponential(10.0 * np.exp(-0.7 * X[:, 0]))
    censor = rng.uniform(2, 40, n)
    return X, make_target(np.maximum(np.minimum(time, censor), 0.05), time <= censor)


def test_boosted_cox_weights_are_case_weights() -> None:
    X, y = _survival_data()
    weight = np.random.default_rng(2).integers(0, 3, len(y)).astype(float)
    params = {"n_estimators": 50, "subsample": 1.0, "colsample_bytree": 1.0}
    weighted = BoostedCoxModel(**params).fit(X, y, sample_weight=weight)
    rows = np.repeat(np.arange(len(y)), weight.astype(int))  # weight 2 = twice, weight 0 = dropped
    repeated = BoostedCoxModel(**params).fit(X[rows], y[rows])
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        weighted.predict_survival_function(X[:20]), repeated.predict_survival_function(X[:20]), atol=1e-6
    )
    unweighted = BoostedCoxModel(**params).fit(X, y)
    assert np.abs(unweighted.predict(X) - weighted.predict(X)).max() > 1e-2  # the weights do something


def test_balancing_weights_by_hand() -> None:
    propensity = np.array([[0.8, 0.2], [0.5, 0.5], [0.25, 0.75], [0.5, 0.5]])
    observed = np.array([0, 1, 1, 0])
    # stabilised IPW: P(option) / e = 0.5/0.8, 0.5/0.5, 0.5/0.75, 0.5/0.5 = 0.625, 1, 2/3, 1
    # (no truncation at q=1)
    raw = np.array([0.625, 1.0, 2.0 / 3.0, 1.0])
    np.testing.assert_allclose(
        balancing_weights(propensity, observed, "ipw", truncate_quantile=1.0), raw / raw.mean()
    )
    # overlap: (1/e_own) / sum_k 1/e_k = e_other... for two options: 0.2, 0.5, 0.25, 0.5
    overlap = np.array([0.2, 0.5, 0.25, 0.5])
    np.testing.assert_allclose(balancing_weights(propensity, observed, "overlap"), overlap / overlap.mean())
    np.testing.assert_array_equal(balancing_weights(propensity, observed, "none"), np.ones(4))
    with pytest.raises(ValueError, match="weighting must be one of"):
        balancing_weights(propensity, observed, "matching")


def test_a_decision_of_an_unmodelled_class_keeps_an_unweighted_decisions_weight() -> None:
    # the third column is a class the propensity model left out: probability exactly 0
    propensity = np.array([[0.8, 0.2, 0.0], [0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.5, 0.5, 0.0]])
    observed = np.array([0, 1, 2, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no truncation warning for it
        ipw = balancing_weights(propensity, observed, "ipw", truncate_quantile=1.0)
        overlap = balancing_weights(propensity, observed, "overlap")
    # by hand: P(option) / e for the others (shares 0.5, 0.25, 0.5), then the unmodelled one at their mean
    for weights, others in (
        (ipw, np.array([0.5 / 0.8, 0.25 / 0.5, 0.5 / 0.5])),
        (overlap, np.array([0.2, 0.5, 0.5])),
    ):
        expected = np.array([others[0], others[1], others.mean(), others[2]])
        np.testing.assert_allclose(weights, expected / expected.mean())


def test_a_propensity_below_the_floor_truncates_the_weight_and_warns() -> None:
    from linewise.models.exceptions import WeightTruncationWarning
    from linewise.models.weights import PROPENSITY_FLOOR

    propensity = np.array([[0.9995, 0.0005], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    observed = np.array([1, 1, 0, 0])  # the first decision got an option of propensity 0.0005
    with pytest.warns(WeightTruncationWarning, match=r"1 of 4 decisions .* below 0\.001"):
        weights = balancing_weights(propensity, observed, "ipw", truncate_quantile=1.0)
    # by hand: P(option) = 0.5 for both; weights 0.5 / max(0.0005, floor), 0.5 / 0.5, 1, 1
    raw = np.array([0.5 / PROPENSITY_FLOOR, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(weights, raw / raw.mean())


def test_counterfactual_rows_set_only_the_treatment_columns() -> None:
    X = np.arange(6.0).reshape(2, 3)
    rows = counterfactual_rows(X)
    assert rows.shape == (2 * len(OPTIONS), 3 + len(TREATMENT_COLUMNS))
    np.testing.assert_array_equal(rows[: len(OPTIONS), :3], np.repeat(X[:1], len(OPTIONS), axis=0))
    tbp_local = OPTIONS.index(("tbp", True))
    assert rows[tbp_local, 3] == 1 and rows[tbp_local, 3 + 1 : -1].sum() == 0 and rows[tbp_local, -1] == 1
    np.testing.assert_array_equal(option_index(["chemo", "tbp"], [False, True]), [12, 1])
    with pytest.raises(ValueError, match="not candidate classes"):
        option_index(["surgery"], [False])


def test_positivity_flags_follow_who_received_what() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    X = rng.normal(size=(n, 2))
    # chemo (index 6) only when x0 > 0; local therapy only with TBP; otherwise tbp or et_mono at random
    klass = np.where(X[:, 0] > 0, rng.choice([0, 6], n), rng.choice([0, 3], n))
    local = (klass == 0) & (rng.random(n) < 0.4)
    options = 2 * klass + local
    model = OptionPropensityModel(min_support=0.05).fit(X, options)
    probe = np.array([[2.0, 0.0], [-2.0, 0.0]])
    support = model.support(probe)
    labels = [o.label for o in OPTIONS]
    assert support[0, labels.index("chemo")] and not support[1, labels.index("chemo")]
    assert (
        support[0, labels.index("tbp + local therapy")]
        and not support[0, labels.index("chemo + local therapy")]
    )
    assert not support[:, labels.index("adc")].any()  # never given


def test_interface_and_ranking(fitted: TreatmentRecommender, simulated: tuple[Path, pd.DataFrame]) -> None:
    _, examples = simulated
    decisions = training_decisions(examples).head(25)
    table = fitted.recommend(decisions)
    assert len(table) == 25 * len(OPTIONS)
    assert {"patient_key", "line_number", "decision_day", "candidate", "local_therapy", "rank"} <= set(table)
    for endpoint in ("pfs", "os"):
        assert (table[f"{endpoint}_rmst12"] <= table[f"{endpoint}_rmst24"] + 1e-9).all()
    # a difference from TBP is the option's RMST minus TBP's (without local therapy), row by row
    keys = ["patient_key", "line_number", "decision_day"]
    baseline = table[(table["candidate"] == BASELINE.candidate) & ~table["local_therapy"]]
    tbp = table[keys].merge(baseline[[*keys, "pfs_rmst24"]], on=keys, how="left")["pfs_rmst24"]
    np.testing.assert_allclose(table["pfs_rmst24_vs_tbp"], table["pfs_rmst24"] - tbp.to_numpy(), atol=1e-12)
    # the interval of an RMST: +/- 1.645 SD of the refits' RMSTs around the estimate, within [0, 24]
    rows = counterfactual_rows(decisions[list(FEATURES)].to_numpy(float))
    refits = np.stack([m.predict_rmst(rows, 24.0) for m in fitted.replicates_["pfs"]])
    half = 1.6448536269514722 * refits.std(axis=0, ddof=1)
    np.testing.assert_allclose(
        table["pfs_rmst24_lower"], np.clip(table["pfs_rmst24"] - half, 0, 24), atol=1e-9
    )
    np.testing.assert_allclose(
        table["pfs_rmst24_upper"], np.clip(table["pfs_rmst24"] + half, 0, 24), atol=1e-9
    )
    for _, group in table.groupby(["patient_key", "line_number", "decision_day"]):
        supported = group[group["support"]]
        assert (group.loc[~group["support"], "rank"] == UNRANKED).all()
        assert sorted(supported["rank"]) == list(range(1, len(supported) + 1))
        best = supported.loc[supported["rank"] == 1, "pfs_rmst24"].item()
        assert best == pytest.approx(supported["pfs_rmst24"].max())
    predictions = fitted.predict_options(decisions[list(FEATURES)].to_numpy(float))
    curves = predictions.curves["pfs"]
    assert curves.shape == (25, len(OPTIONS), len(predictions.grid))
    assert np.all(np.diff(curves, axis=2) <= 1e-12)


def test_shap_adds_up_for_every_option_and_for_the_contrast(
    fitted: TreatmentRecommender, simulated: tuple[Path, pd.DataFrame]
) -> None:
    _, examples = simulated
    X = training_decisions(examples)[list(FEATURES)].to_numpy(float)[:5]
    model = fitted.models_["pfs"]
    for x in X:
        explanation = fitted.explain(x)
        rows = counterfactual_rows(x[None, :])
        # the model's own output, computed without the explainer
        expected = (
            model.predict_rmst(rows, 24.0)
            if fitted.family == "random_survival_forest"
            else model.predict(rows)
        )
        tolerance = 1e-8 if fitted.family == "random_survival_forest" else 1e-4  # XGBoost works in float32
        np.testing.assert_allclose(
            explanation.values.sum(axis=1) + explanation.base_value, expected, atol=tolerance
        )
        tbp, switch = explanation.tbp_option, explanation.switch_option
        assert OPTIONS[tbp].candidate == "tbp" and OPTIONS[switch].candidate != "tbp"
        assert explanation.contrast_values.sum() == pytest.approx(
            expected[tbp] - expected[switch], abs=2 * tolerance
        )


def test_best_sides_prefer_supported_options() -> None:
    score = np.arange(16, dtype=float)
    support = np.zeros(16, dtype=bool)
    support[[0, 4, 6]] = True
    assert best_sides(score, support) == (0, 6)  # best supported TBP and switch, not the unsupported 1 and 15
    assert best_sides(score, np.zeros(16, dtype=bool)) == (1, 15)


@pytest.mark.parametrize("refits", [-1, 1])
def test_one_bootstrap_refit_is_refused(simulated: tuple[Path, pd.DataFrame], refits: int) -> None:
    with pytest.raises(
        ValueError,
        match=r"n_bootstrap. parameter of TreatmentRecommender must be a int among \{0\} or an int in "
        r"the range \[2, inf\)",
    ):
        TreatmentRecommender(n_bootstrap=refits).fit(simulated[1])


@pytest.mark.parametrize("refits", [0, 1])
def test_evaluate_policy_needs_intervals_to_judge(simulated: tuple[Path, pd.DataFrame], refits: int) -> None:
    examples = simulated[1]
    with pytest.raises(ValueError, match=f"at least 2 bootstrap refits; asked for {refits}"):
        evaluate_policy(examples, examples, n_bootstrap=refits)


def test_evaluate_policy_refuses_a_registered_model_without_refits(
    simulated: tuple[Path, pd.DataFrame],
) -> None:
    registered = TreatmentRecommender(n_bootstrap=0)  # checked before anything is fitted or read
    with pytest.raises(ValueError, match="the registered model was fitted with 0"):
        evaluate_policy(simulated[1], simulated[1], model=registered)


def test_naive_and_adjusted_differ_only_by_weights(simulated: tuple[Path, pd.DataFrame]) -> None:
    _, examples = simulated
    settings = {"n_bootstrap": 0, "model_params": SMALL["boosted_cox"]}
    naive = TreatmentRecommender(weighting="none", **settings).fit(examples)
    adjusted = TreatmentRecommender(weighting="ipw", **settings).fit(examples)
    X = training_decisions(examples)[list(FEATURES)].to_numpy(float)[:50]
    a, b = naive.predict_options(X), adjusted.predict_options(X)
    np.testing.assert_array_equal(a.support, b.support)  # same propensity model
    assert np.abs(a.summary["pfs_rmst24"] - b.summary["pfs_rmst24"]).max() > 1e-3
    with pytest.raises(
        ValueError, match="X has 10 features, but TreatmentRecommender is expecting 64 features"
    ):
        naive.predict_options(X[:, :10])


@pytest.mark.slow
def test_evaluate_policy_command_end_to_end(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from linewise.cli import app

    config = load_config()
    simulate_lock(600, 21, tmp_path / "train", tmp_path / "train-truth", config)
    simulate_lock(300, 22, tmp_path / "test", tmp_path / "test-truth", config)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "evaluate-policy",
            "--train",
            str(tmp_path / "train"),
            "--test",
            str(tmp_path / "test"),
            "--truth",
            str(tmp_path / "test-truth"),
            "--bootstrap",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)  # numerical warnings, if any, go to standard error
    assert all(line.startswith("linewise: warning: ") for line in result.stderr.splitlines())
    for key in (
        "capture_rwpfs_rmst24",
        "naive_capture_rwpfs_rmst24",
        "c_index_rwpfs",
        "c_index_true_risk",
        "interval_coverage_90",
        "aipw_rwpfs_rmst24_model",
    ):
        assert isinstance(figures[key], float), key
    assert figures["value_oracle_rwpfs_rmst24"] >= figures["value_model_rwpfs_rmst24"]
    documented = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    undocumented = [key for key in figures if f"`{_stem(key)}`" not in documented]
    assert not undocumented
    missing = runner.invoke(
        app,
        [
            "evaluate-policy",
            "--train",
            str(tmp_path / "train"),
            "--test",
            str(tmp_path / "test"),
            "--truth",
            str(tmp_path),
        ],
    )
    assert missing.exit_code == 2 and "no truth.parquet" in missing.output
    common = ["evaluate-policy", "--train", str(tmp_path / "train"), "--truth", str(tmp_path / "test-truth")]
    same = runner.invoke(app, [*common, "--test", str(tmp_path / "train"), "--bootstrap", "2"])
    assert same.exit_code == 2 and "same data (same digest)" in same.output and "Traceback" not in same.output
    one = runner.invoke(app, [*common, "--test", str(tmp_path / "test"), "--bootstrap", "1"])
    assert one.exit_code == 2 and "--bootstrap" in one.output


def _stem(key: str) -> str:
    """A figure's documented name: without the naive prefix, bound suffixes and endpoint suffixes."""
    key = key.removeprefix("naive_")
    for suffix in ("_lower", "_upper"):
        key = key.removesuffix(suffix)
    for suffix in ("_rwpfs_rmst24", "_os_rmst24", "_rwpfs", "_os"):
        if key.endswith(suffix) and not key.startswith("aipw_"):
            key = key.removesuffix(suffix)
            break
    return key.removesuffix("_all")


def test_a_clone_with_a_frozen_shared_propensity_fits_with_the_same_propensities(
    simulated: tuple[Path, pd.DataFrame],
) -> None:
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator

    _, examples = simulated
    decisions = training_decisions(examples)
    X = decisions[list(FEATURES)].to_numpy(float)
    observed = option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool))
    shared = OptionPropensityModel().fit(X, observed)
    settings = {"n_bootstrap": 0, "model_params": SMALL["boosted_cox"]}
    original = TreatmentRecommender(propensity=FrozenEstimator(shared), **settings)
    fitted = clone(original).fit(examples)  # the clone keeps the fitted model: no NotFittedError
    # the propensities of the fitted clone are the shared model's own, computed here directly
    np.testing.assert_array_equal(fitted.predict_options(X[:20]).propensity, shared.predict_proba(X[:20]))
    # an unfrozen template is refitted on the examples instead, and is left unfitted itself
    template = OptionPropensityModel(min_support=0.2)
    refitted = TreatmentRecommender(propensity=template, **settings).fit(examples)
    assert not hasattr(template, "local_model_")
    assert refitted.propensity_ is not template and refitted.propensity_.min_support == 0.2
    # the template's own setting decides support: with 0.2 instead of the default 0.05, fewer options
    strict = refitted.predict_options(X).support
    default = TreatmentRecommender(**settings).fit(examples).predict_options(X).support
    assert not (strict & ~default).any() and strict.sum() < default.sum()
