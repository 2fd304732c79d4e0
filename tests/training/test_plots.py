"""Training figures: what each draws, pooling of small groups, and no identifier or date in any text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

from linewise.models.evaluation import calibration_table
from linewise.models.target import make_target
from linewise.training.plots import calibration_figure, kaplan_meier_by_action_figure, shap_summary_figure

SurvivalData = tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]
GROUP_SIZES = {"tbp": 80, "chemo": 60, "adc": 40, "oral_serd": 12, "et_mono": 10}


def _keys(n: int, rng: np.random.Generator) -> list[str]:
    """Pseudonym-like keys of the rows: they must never reach a figure."""
    return [f"{value:016x}" for value in rng.integers(0, 2**63, size=n)]


def _survival(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    event_time = rng.exponential(10.0, size=n)
    censor_time = rng.uniform(3.0, 40.0, size=n)
    return np.minimum(event_time, censor_time), event_time <= censor_time


def _actions(sizes: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    labels = np.concatenate([np.full(size, name, dtype=object) for name, size in sizes.items()])
    return rng.permutation(labels)


def _texts(figure: Figure) -> list[str]:
    figure.draw_without_rendering()  # tick labels are filled in when drawn
    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]


#: What a patient's data looks like in text, written here (not the plots' own guard): an ISO or day-first
#: date, a 16-hex pseudonym, a simulated or example raw id.
LEAKS = (
    re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4}"),
    re.compile(r"\b[0-9a-f]{16}\b"),
    re.compile(r"\b(?:SIM|EX)-\d+\b"),
)


def _assert_aggregate_only(figure: Figure, keys: list[str]) -> None:
    texts = _texts(figure)
    assert texts
    for text in texts:
        assert not any(pattern.search(text) for pattern in LEAKS), text
        assert not any(key in text for key in keys), text


def _assert_saves(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=50)
    assert path.stat().st_size > 0


# ----------------------------------------------------------------------------------------------------------
# Calibration
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibration() -> tuple[Figure, int]:
    rng = np.random.default_rng(0)
    time, event = _survival(400, rng)
    predicted = np.clip(np.exp(-12.0 / 10.0) + rng.normal(0, 0.1, size=400), 0.01, 0.99)
    table = calibration_table(make_target(time, event), predicted, 12.0, n_groups=10)
    return calibration_figure(table, 12.0, "pfs"), len(table)


def test_calibration_draws_groups_with_error_bars_and_diagonal(calibration: tuple[Figure, int]) -> None:
    figure, n_groups = calibration
    (axes,) = figure.axes
    (container,) = axes.containers
    points, _, (bars,) = container.lines
    assert len(points.get_xdata()) == n_groups
    assert len(bars.get_segments()) == n_groups
    diagonal = [line for line in axes.get_lines() if list(line.get_xdata()) == [0.0, 1.0]]
    assert len(diagonal) == 1
    assert list(diagonal[0].get_ydata()) == [0.0, 1.0]
    assert "rwPFS" in axes.get_title()


def test_calibration_text_and_png(calibration: tuple[Figure, int], tmp_path: Path) -> None:
    _assert_aggregate_only(calibration[0], [])
    _assert_saves(calibration[0], tmp_path / "calibration.png")


def test_calibration_rejects_other_tables() -> None:
    with pytest.raises(ValueError, match=r"table lacks columns \['observed_lower', 'observed_upper'\]"):
        calibration_figure(
            pd.DataFrame({"group": [1], "n": [3], "predicted": [0.5], "observed": [0.4]}),
            12.0,
            "os",
        )


# ----------------------------------------------------------------------------------------------------------
# Kaplan-Meier by action
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def survival_data() -> SurvivalData:
    rng = np.random.default_rng(1)
    n = sum(GROUP_SIZES.values())
    time, event = _survival(n, rng)
    return time, event, _actions(GROUP_SIZES, rng), _keys(n, rng)


def _legend_labels(figure: Figure) -> list[str]:
    legend = figure.axes[0].get_legend()
    return [text.get_text() for text in legend.get_texts()]


def test_kaplan_meier_one_line_per_large_group_plus_pooled(survival_data: SurvivalData) -> None:
    time, event, action, _ = survival_data
    figure = kaplan_meier_by_action_figure(time, event, action, "pfs", min_group=20)
    (axes,) = figure.axes
    assert len(axes.get_lines()) == 4  # tbp, chemo, adc, and oral_serd + et_mono pooled (22)
    assert len(axes.collections) == 4  # one confidence band each
    labels = _legend_labels(figure)
    assert [label.split(":")[0] for label in labels] == ["tbp", "chemo", "adc", "other (n<20)"]
    assert labels[0].startswith("tbp: 80/")
    assert labels[3].startswith("other (n<20): 22/")
    assert not any("oral_serd" in label or "et_mono" in label for label in labels)
    title = axes.get_title()
    assert "descriptive, unadjusted" in title
    assert "confounded by indication" in title


def test_kaplan_meier_curves_match_scikit_survival(survival_data: SurvivalData) -> None:
    from sksurv.nonparametric import kaplan_meier_estimator

    time, event, action, _ = survival_data
    figure = kaplan_meier_by_action_figure(time, event, action, "os")
    tbp = action == "tbp"
    expected_time, expected_survival = kaplan_meier_estimator(event[tbp], time[tbp])
    line = figure.axes[0].get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), np.r_[0.0, expected_time])
    np.testing.assert_allclose(line.get_ydata(), np.r_[1.0, expected_survival])


def test_kaplan_meier_leaves_out_a_pool_that_is_still_small() -> None:
    rng = np.random.default_rng(2)
    sizes = {"tbp": 50, "chemo": 30, "oral_serd": 8, "et_mono": 7}
    time, event = _survival(sum(sizes.values()), rng)
    figure = kaplan_meier_by_action_figure(time, event, _actions(sizes, rng), "pfs", min_group=20)
    assert len(figure.axes[0].get_lines()) == 2
    assert "15 decisions in actions too small to draw are not shown" in figure.axes[0].get_xlabel()


def test_kaplan_meier_text_and_png(survival_data: SurvivalData, tmp_path: Path) -> None:
    time, event, action, keys = survival_data
    figure = kaplan_meier_by_action_figure(time, event, action, "pfs")
    _assert_aggregate_only(figure, keys)
    _assert_saves(figure, tmp_path / "km.png")


@pytest.mark.parametrize(
    ("label", "message"),
    [("0123456789abcdef", "patient identifier"), ("given 2023-02-01", "exact date")],
    ids=["pseudonym", "date"],
)
def test_kaplan_meier_refuses_identifying_labels(label: str, message: str) -> None:
    action = np.array(["tbp"] * 25 + [label] * 25, dtype=object)
    time, event = _survival(50, np.random.default_rng(3))
    with pytest.raises(ValueError, match=message):
        kaplan_meier_by_action_figure(time, event, action, "pfs")


def test_kaplan_meier_rejects_bad_input() -> None:
    time, event = _survival(10, np.random.default_rng(4))
    with pytest.raises(ValueError, match="need at least min_group=20 decisions"):
        kaplan_meier_by_action_figure(time, event, np.full(10, "tbp"), "pfs")
    with pytest.raises(ValueError, match="action has 1 missing values"):
        kaplan_meier_by_action_figure(time, event, np.array(["tbp"] * 9 + [None]), "pfs", min_group=5)


# ----------------------------------------------------------------------------------------------------------
# SHAP summary
# ----------------------------------------------------------------------------------------------------------


def _shap_data(n: int, p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    features = rng.normal(size=(n, p))
    features[rng.random(size=(n, p)) < 0.2] = np.nan
    weights = np.linspace(2.0, 0.1, p) * np.where(np.arange(p) % 2 == 0, 1.0, -1.0)
    values = np.nan_to_num(features) * weights + rng.normal(0, 0.01, size=(n, p))
    return values, features, [f"feature_{j:02d}" for j in range(p)]


def test_shap_summary_shows_the_top_features_in_order(tmp_path: Path) -> None:
    values, features, names = _shap_data(200, 30, np.random.default_rng(5))
    figure = shap_summary_figure(values, features, names, "log hazard ratio of rwPFS", top=15)
    (axes,) = figure.axes
    assert len(axes.patches) == 15
    _texts(figure)
    shown = [label.get_text() for label in axes.get_yticklabels()]
    expected = [names[j] for j in np.argsort(-np.abs(values).mean(axis=0))[:15]]
    assert shown[::-1] == expected
    widths = [patch.get_width() for patch in axes.patches]
    np.testing.assert_allclose(widths[::-1], np.sort(np.abs(values).mean(axis=0))[::-1][:15])
    assert "log hazard ratio of rwPFS" in axes.get_xlabel()
    colours = {tuple(patch.get_facecolor()) for patch in axes.patches}
    assert len(colours) == 2  # alternating signs of association
    _assert_aggregate_only(figure, [])
    _assert_saves(figure, tmp_path / "shap.png")


def test_shap_summary_with_fewer_features_than_top() -> None:
    values, features, names = _shap_data(50, 5, np.random.default_rng(6))
    features[:, 0] = 1.0  # constant: no direction
    figure = shap_summary_figure(values, features, names, "rwPFS RMST to 24 months")
    assert len(figure.axes[0].patches) == 5
    top_bar = figure.axes[0].patches[-1]
    assert tuple(top_bar.get_facecolor()) == to_rgba("tab:grey")
    assert re.search(r"Top 5 of 5 features, over 50 rows", figure.axes[0].get_title())


def test_shap_summary_rejects_bad_input() -> None:
    values, features, names = _shap_data(20, 4, np.random.default_rng(7))
    with pytest.raises(ValueError, match="feature_names must hold 4 distinct names"):
        shap_summary_figure(values, features, names[:3], "scale")
    with pytest.raises(ValueError, match="exact date"):
        shap_summary_figure(values, features, [*names[:3], "seen 2024-01-02"], "scale")
    with pytest.raises(ValueError, match="top must be a positive integer"):
        shap_summary_figure(values, features, names, "scale", top=0)
