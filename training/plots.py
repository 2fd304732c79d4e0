"""Figures of a training run: calibration, Kaplan-Meier curves by action, SHAP summary.

Each function returns a plain :class:`matplotlib.figure.Figure`, built without pyplot (no global
state, no interactive backend). The caller saves it (``fig.savefig(path)``, or
``mlflow.log_figure``) and then lets it go; nothing else holds a reference to it.

Only aggregated information is drawn: group means, curves of groups of at least ``min_group``
decisions, counts, means of absolute SHAP values. No figure shows a patient key, a date or a
per-patient annotation; every label that comes from the caller goes through
:func:`linewise.training.text_guard.check_aggregate_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sksurv.nonparametric import kaplan_meier_estimator

from linewise.training.text_guard import check_aggregate_text

#: Readable names of the endpoints of :mod:`linewise.models.recommender`; other names are used as given.
ENDPOINT_LABELS: Final = {"pfs": "rwPFS", "os": "OS"}
#: Times (months) of the numbers at risk in the Kaplan-Meier legend.
AT_RISK_TIMES: Final = (0.0, 12.0, 24.0)
_CALIBRATION_COLUMNS: Final = ("group", "n", "predicted", "observed", "observed_lower", "observed_upper")
_DIRECTION_COLOURS: Final = {"positive": "tab:red", "negative": "tab:blue", "undefined": "tab:grey"}
_DIRECTION_LABELS: Final = {
    "positive": "higher feature value, higher SHAP value",
    "negative": "higher feature value, lower SHAP value",
    "undefined": "no direction (constant or too few known values)",
}


def _endpoint_label(endpoint: str) -> str:
    label = ENDPOINT_LABELS.get(endpoint, endpoint)
    check_aggregate_text(label, what="endpoint")
    return label


# ----------------------------------------------------------------------------------------------------------
# Calibration
# ----------------------------------------------------------------------------------------------------------


def calibration_figure(table: pd.DataFrame, time: float, endpoint: str) -> Figure:
    """Predicted against observed (Kaplan-Meier) survival at one time, by group of prediction.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`linewise.models.evaluation.calibration_table`: columns ``group``, ``n``,
        ``predicted``, ``observed``, ``observed_lower``, ``observed_upper``.
    time : float
        The time of the table, months.
    endpoint : str
        ``"pfs"``, ``"os"`` or a label used as given.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: the diagonal of perfect calibration and one point per group with the 95% confidence
        interval of the Kaplan-Meier estimate as error bars. A plain figure: the caller saves it and
        releases it.

    Raises
    ------
    ValueError
        If a column is missing, the table is empty, values are not probabilities, or ``time`` is not
        positive.
    """
    missing = [column for column in _CALIBRATION_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing} (expected calibration_table's output)")
    if table.empty:
        raise ValueError("table is empty: no calibration groups to draw")
    if not time > 0:
        raise ValueError(f"time must be positive, found {time}")
    values = table[list(_CALIBRATION_COLUMNS[2:])].to_numpy(dtype=float)
    if not (np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))):
        raise ValueError("predicted, observed and its bounds must be probabilities in [0, 1]")
    predicted, observed, lower, upper = values.T
    label = _endpoint_label(endpoint)

    figure = Figure(figsize=(5.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", label="perfect calibration")
    errors = np.vstack([np.clip(observed - lower, 0, None), np.clip(upper - observed, 0, None)])
    axes.errorbar(predicted, observed, yerr=errors, fmt="o", capsize=3, label="group of predictions (95% CI)")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_aspect("equal")
    axes.set_xlabel(f"mean predicted {label} survival at {time:g} months")
    axes.set_ylabel(f"Kaplan-Meier {label} survival at {time:g} months")
    axes.set_title(
        f"Calibration of {label} at {time:g} months\n"
        f"{len(table)} groups of predicted survival, {int(table['n'].sum()):,} decisions"
    )
    axes.legend(loc="upper left")
    return figure


# ----------------------------------------------------------------------------------------------------------
# Kaplan-Meier by action
# ----------------------------------------------------------------------------------------------------------


def _check_survival_data(
    time: np.ndarray, event: np.ndarray, action: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    time = np.asarray(time, dtype=float)
    event_values = np.asarray(event)
    labels = np.asarray(action, dtype=object)
    if time.ndim != 1 or event_values.shape != time.shape or labels.shape != time.shape:
        raise ValueError(
            f"time, event and action must be 1-d of one length, found shapes {time.shape}, "
            f"{event_values.shape}, {labels.shape}"
        )
    if not (np.all(np.isfinite(time)) and np.all(time >= 0)):
        raise ValueError("time must be finite and non-negative")
    if not np.all(np.isin(event_values, (0, 1))):
        raise ValueError("event must be boolean (or 0/1)")
    if pd.isna(labels).any():
        raise ValueError(f"action has {int(pd.isna(labels).sum())} missing values")
    return time, event_values.astype(bool), labels.astype(str)


def _action_groups(labels: np.ndarray, min_group: int) -> tuple[list[tuple[str, np.ndarray]], int]:
    """Split rows into groups to draw (largest first, pooled small ones last); count rows left undrawn."""
    names, counts = np.unique(labels, return_counts=True)
    order = sorted(zip(names.tolist(), counts.tolist(), strict=True), key=lambda item: (-item[1], item[0]))
    groups = [(name, labels == name) for name, count in order if count >= min_group]
    small = [name for name, count in order if count < min_group]
    pooled = np.isin(labels, small)
    if pooled.sum() >= min_group:
        groups.append((f"other (n<{min_group})", pooled))
        return groups, 0
    return groups, int(pooled.sum())


def _draw_kaplan_meier(axes: Axes, name: str, time: np.ndarray, event: np.ndarray) -> None:
    with np.errstate(divide="ignore", invalid="ignore"):
        times, survival, (low, high) = kaplan_meier_estimator(event, time, conf_type="log-log")
    times = np.concatenate([[0.0], times])
    survival, low, high = (np.concatenate([[1.0], values]) for values in (survival, low, high))
    at_risk = "/".join(f"{int((time >= t).sum())}" for t in AT_RISK_TIMES)
    (line,) = axes.step(times, survival, where="post", label=f"{name}: {at_risk}")
    axes.fill_between(times, low, high, step="post", alpha=0.2, color=line.get_color(), linewidth=0)


def kaplan_meier_by_action_figure(
    time: np.ndarray, event: np.ndarray, action: np.ndarray, endpoint: str, min_group: int = 20
) -> Figure:
    """Descriptive Kaplan-Meier curves of one endpoint by the action actually taken.

    The curves are unadjusted: the action was chosen by clinicians on prognosis (confounded by
    indication), so they describe practice and do not compare treatments; the title says so.

    Parameters
    ----------
    time : array of shape (n,)
        Follow-up from the decision, months.
    event : array of shape (n,)
        Whether the follow-up ends with the event.
    action : array of shape (n,)
        The action class taken at each decision.
    endpoint : str
        ``"pfs"``, ``"os"`` or a label used as given.
    min_group : int
        Smallest group drawn. Actions with fewer decisions are pooled as ``"other (n<min_group)"``,
        drawn only when the pool itself has ``min_group`` decisions or more.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: one step line per group drawn, each with its 95% log-log confidence band; the legend
        gives each group's numbers at risk at :data:`AT_RISK_TIMES`. A plain figure: the caller saves
        it and releases it.

    Raises
    ------
    ValueError
        If the arrays disagree in shape, hold invalid values, ``min_group`` is not a positive integer,
        there are fewer than ``min_group`` decisions, or an action label looks like an identifier.
    """
    if isinstance(min_group, bool) or not isinstance(min_group, int | np.integer) or min_group < 1:
        raise ValueError(f"min_group must be a positive integer, found {min_group!r}")
    time, event, labels = _check_survival_data(time, event, action)
    if time.size < min_group:
        raise ValueError(f"need at least min_group={min_group} decisions to draw a curve, found {time.size}")
    for name in np.unique(labels):
        check_aggregate_text(str(name), what="an action label")
    label = _endpoint_label(endpoint)
    groups, undrawn = _action_groups(labels, int(min_group))

    figure = Figure(figsize=(8.0, 5.5), layout="constrained")
    axes = figure.add_subplot()
    for name, members in groups:
        _draw_kaplan_meier(axes, name, time[members], event[members])
    axes.set_xlim(left=0.0)
    axes.set_ylim(0.0, 1.02)
    axes.set_ylabel(f"{label} survival (Kaplan-Meier)")
    axes.set_title(
        f"{label} by action taken: descriptive, unadjusted\n"
        "confounded by indication (chosen on prognosis): not a comparison of treatments"
    )
    times = "/".join(f"{t:g}" for t in AT_RISK_TIMES)
    axes.legend(title=f"action: number at risk at {times} months", loc="upper right", fontsize="small")
    note = f"{time.size:,} decisions; shaded: 95% confidence bands"
    if undrawn:
        note += f"; {undrawn} decisions in actions too small to draw are not shown"
    axes.set_xlabel(f"months from the decision\n{note}")
    return figure


# ----------------------------------------------------------------------------------------------------------
# SHAP summary
# ----------------------------------------------------------------------------------------------------------


def _direction(values: np.ndarray, features: np.ndarray) -> str:
    """Sign of the correlation between a feature's values and its SHAP values (known values only)."""
    known = np.isfinite(features)
    if known.sum() < 3 or np.ptp(features[known]) == 0 or np.ptp(values[known]) == 0:
        return "undefined"
    correlation = np.corrcoef(features[known], values[known])[0, 1]
    return "positive" if correlation > 0 else "negative"


def shap_summary_figure(
    values: np.ndarray, features: np.ndarray, feature_names: Sequence[str], scale: str, top: int = 15
) -> Figure:
    """Bar summary of the mean absolute SHAP value of the most important features.

    Parameters
    ----------
    values : array of shape (n, p)
        SHAP values of ``n`` rows on ``scale``.
    features : array of shape (n, p)
        The explained feature values (NaN where missing); used only for the colour of each bar: the
        sign of the correlation between the feature and its SHAP values.
    feature_names : sequence of str
        ``p`` distinct names.
    scale : str
        What the SHAP values are in, e.g. ``"log hazard ratio of rwPFS"``.
    top : int
        Number of features shown (fewer when ``p`` is smaller).

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one horizontal bar per feature shown, the most important on top, coloured by the
        direction of the association (legend below). A plain figure: the caller saves it and releases
        it.

    Raises
    ------
    ValueError
        If shapes disagree, SHAP values are not finite, names are not distinct, ``top`` is not a
        positive integer, or a name or the scale looks like an identifier or a date.
    """
    values = np.asarray(values, dtype=float)
    features = np.asarray(features, dtype=float)
    names = [str(name) for name in feature_names]
    if values.ndim != 2 or values.shape[0] == 0 or features.shape != values.shape:
        raise ValueError(
            f"values and features must be 2-d of one shape with rows, found {values.shape}, {features.shape}"
        )
    if len(names) != values.shape[1] or len(set(names)) != len(names):
        raise ValueError(f"feature_names must hold {values.shape[1]} distinct names, found {len(names)}")
    if not np.all(np.isfinite(values)):
        raise ValueError("SHAP values must be finite")
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"top must be a positive integer, found {top!r}")
    for text in (*names, scale):
        check_aggregate_text(text, what="a feature name or the scale")

    importance = np.abs(values).mean(axis=0)
    shown = np.argsort(-importance, kind="stable")[: int(top)][::-1]
    directions = [_direction(values[:, j], features[:, j]) for j in shown]

    figure = Figure(figsize=(7.0, 2.5 + 0.35 * len(shown)), layout="constrained")
    axes = figure.add_subplot()
    axes.barh(
        np.arange(len(shown)),
        importance[shown],
        color=[_DIRECTION_COLOURS[d] for d in directions],
        tick_label=[names[j] for j in shown],
    )
    axes.set_xlabel(f"mean |SHAP value| ({scale})")
    axes.set_title(f"Top {len(shown)} of {len(names)} features, over {values.shape[0]:,} rows")
    handles = [
        Patch(color=colour, label=_DIRECTION_LABELS[direction])
        for direction, colour in _DIRECTION_COLOURS.items()
    ]
    figure.legend(handles=handles, loc="outside lower center", fontsize="small", ncols=1)
    return figure
