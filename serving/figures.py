"""Geometry of the report's three figures: the patient's timeline, survival curves, the waterfall.

Each function returns plain data (coordinates, path strings, labels) that the Jinja template
(``serving/templates/report.html.j2``) draws as inline SVG with autoescaping on: no text reaches the
page except through the template, so a value from a patient file cannot become markup. Coordinates are
in the SVG's own units (its ``viewBox``); the page scales the figure to its width.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Final

#: Width of every figure's viewBox.
WIDTH: Final = 900.0
#: Days per month, as in :data:`linewise.features.decisions.DAYS_PER_MONTH`.
DAYS_PER_MONTH: Final = 365.25 / 12
#: Colours (Okabe-Ito, readable in grey print) and dashes of the curves, in legend order.
CURVE_STYLES: Final = (
    ("#000000", ""),
    ("#6e6e6e", "6 3"),
    ("#0072b2", ""),
    ("#d55e00", "8 3 2 3"),
    ("#009e73", "2 2"),
)
FAVOURS_TBP: Final = "#0072b2"
FAVOURS_SWITCH: Final = "#d55e00"
_GENOMIC_VALUES: Final = {"mutated": "mut", "wild_type": "wt"}
#: Width of one character of the timeline's 11-unit labels, a generous estimate.
_TEXT_WIDTH: Final = 6.6


def _months(day: dt.date, origin: dt.date) -> float:
    return (day - origin).days / DAYS_PER_MONTH


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None


def _ticks(low: float, high: float, target: int = 8) -> list[float]:
    """Round tick positions covering ``[low, high]``: steps of 1, 2, 3, 6, 12, 24 ... months."""
    span = max(high - low, 1.0)
    steps = (1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 36.0, 60.0, 120.0)
    step = next((s for s in steps if span / s <= target), steps[-1])
    first = math.ceil(low / step) * step
    count = math.floor((high - first) / step) + 1
    return [first + i * step for i in range(max(count, 0))]


def _scale(low: float, high: float, left: float, right: float) -> Any:
    span = (high - low) or 1.0
    return lambda value: round(left + (value - low) / span * (right - left), 1)


def timeline(document: dict[str, Any], decision_day: int, line_number: int) -> dict[str, Any]:
    """Lay out a patient's history: lines as bars, progressions, local therapies, biomarkers, decision.

    Parameters
    ----------
    document : dict
        A valid patient document (already cut at ``as_of``).
    decision_day : int
        Days from metastatic diagnosis to the decision.
    line_number : int
        The line that progressed at the decision.

    Returns
    -------
    dict
        ``height``, ``lanes`` (label, y), ``bars``, ``markers``, ``ticks``, ``decision`` and the axis,
        all in viewBox units; times in months from metastatic diagnosis.
    """
    patient = document["patient"]
    origin = dt.date.fromisoformat(patient["metastatic_dx_date"])
    as_of = dt.date.fromisoformat(document["as_of"])
    end = _months(as_of, origin)
    dates = [
        _date(record.get(column))
        for table, column in (
            ("lines", "start_date"),
            ("progressions", "date"),
            ("local_therapies", "date"),
            ("biomarkers", "date"),
        )
        for record in document.get(table, [])
    ]
    start = min([0.0, *(_months(d, origin) for d in dates if d is not None)])
    decision = decision_day / DAYS_PER_MONTH
    high = max(end, decision, 1.0)
    left, right = 150.0, WIDTH - 20.0
    x = _scale(start, high, left, right)
    lanes: list[dict[str, Any]] = []
    bars: list[dict[str, Any]] = []
    markers: list[dict[str, Any]] = []
    y = 30.0
    for line in sorted(document.get("lines", []), key=lambda r: int(r["line_number"])):
        first = _months(dt.date.fromisoformat(line["start_date"]), origin)
        stop = _date(line.get("end_date"))
        last = _months(stop, origin) if stop is not None else end
        ongoing = stop is None
        drugs = " + ".join(str(line["drugs"]).split("+"))
        lanes.append({"label": f"Line {line['line_number']}", "y": y})
        label = drugs + (" (ongoing)" if ongoing else "")
        fits_right = x(first) + 4 + _TEXT_WIDTH * len(label) <= right
        bars.append(
            {
                "label_x": x(first) + 4 if fits_right else x(first) - 4,
                "label_anchor": "start" if fits_right else "end",
                "x": x(first),
                "y": y - 8,
                "width": max(x(last) - x(first), 2.0),
                "height": 16,
                "label": label,
                "title": f"Line {line['line_number']}: {drugs}, {line['start_date']} to "
                + (line.get("end_date") or "ongoing")
                + (f" ({line['end_reason']})" if line.get("end_reason") else ""),
                "current": int(line["line_number"]) == line_number,
                "ongoing": ongoing,
            }
        )
        y += 26
    rows = (
        ("Progressions", "progression", "progressions", _progression_label),
        ("Local therapy", "local", "local_therapies", _local_label),
        ("Biomarkers", "biomarker", "biomarkers", _biomarker_label),
    )
    for label, kind, table, describe in rows:
        records = sorted(document.get(table, []), key=lambda r: str(r["date"]))
        y += 6
        lanes.append({"label": label, "y": y})
        previous = -1e9
        level = 0
        for record in records:
            where = x(_months(dt.date.fromisoformat(record["date"]), origin))
            short, title = describe(record)
            level = level + 1 if where - previous < 70 else 0
            previous = where
            markers.append(
                {
                    "kind": kind,
                    "x": where,
                    "y": y,
                    "label": short,
                    "label_y": y + 16 + 10 * (level % 3),
                    "anchor": "end" if where > right - 60 else "start" if where < left + 40 else "middle",
                    "title": f"{record['date']}: {title}",
                }
            )
        y += 48
    return {
        "height": y + 44,
        "top": 12.0,
        "bottom": y,
        "left": left,
        "right": right,
        "lanes": lanes,
        "bars": bars,
        "markers": markers,
        "ticks": [{"x": x(t), "label": f"{t:g}"} for t in _ticks(start, high)],
        "decision": {"x": x(decision), "months": round(decision, 1)},
        "as_of": {"x": x(end)},
    }


def _progression_label(record: dict[str, Any]) -> tuple[str, str]:
    sites = str(record.get("new_sites") or "").replace("+", ", ").replace("_", " ")
    text = f"{record['pattern']}" + (f": {sites}" if sites else "")
    return text, f"progression on line {record['line_number']}, {text}"


def _local_label(record: dict[str, Any]) -> tuple[str, str]:
    text = f"{record['type']} {str(record['site']).replace('_', ' ')}"
    return text, text


def _biomarker_label(record: dict[str, Any]) -> tuple[str, str]:
    marker = str(record["marker"])
    value = str(record["value"])
    name = "HER2 IHC" if marker == "her2_ihc" else "Ki-67" if marker == "ki67" else marker.upper()
    short = f"{name} {_GENOMIC_VALUES.get(value, value)}"
    if marker in ("ki67", "er", "pgr"):
        short += "%"
    sample = f" ({record['sample']})" if record.get("sample") else ""
    return short, f"{name} {value.replace('_', ' ')}{sample}"


def _step_path(grid: Sequence[float], values: Sequence[float], x: Any, y: Any) -> str:
    """SVG path of a step function that starts at 1 at time 0 and steps at each grid time."""
    parts = [f"M{x(0.0)},{y(1.0)}"]
    for t, value in zip(grid, values, strict=True):
        parts.append(f"H{x(t)}V{y(value)}")
    return "".join(parts)


def _band_path(grid: Sequence[float], lower: Sequence[float], upper: Sequence[float], x: Any, y: Any) -> str:
    """Return the closed SVG path between the lower and upper step functions."""
    top = _step_path(grid, upper, x, y)
    points = [(x(0.0), y(1.0))]
    for i in range(len(grid)):
        previous = 1.0 if i == 0 else lower[i - 1]
        points.append((x(grid[i]), y(previous)))
        points.append((x(grid[i]), y(lower[i])))
    back = "".join(f"L{px},{py}" for px, py in reversed(points))
    return f"{top}{back}Z"


def curves(curve_data: dict[str, Any], options: Sequence[str], labels: dict[str, str]) -> dict[str, Any]:
    """Lay out the rwPFS and OS curves of ``options`` side by side, with their interval bands.

    Parameters
    ----------
    curve_data : dict
        :func:`linewise.serving.scoring.patient_curves`.
    options : sequence of str
        Option labels to draw, in legend order (at most :data:`CURVE_STYLES` of them).
    labels : dict
        Readable name of each option for the legend.

    Returns
    -------
    dict
        ``panels`` (title, axes, one path and band per option) and ``legend``.
    """
    grid = [float(t) for t in curve_data["grid"]]
    horizon = grid[-1]
    panels = []
    for number, (endpoint, title) in enumerate((("rwpfs", "rwPFS"), ("os", "Overall survival"))):
        left = 60.0 + number * 450.0
        right, top, bottom = left + 370.0, 30.0, 270.0
        x = _scale(0.0, horizon, left, right)
        y = _scale(0.0, 1.0, bottom, top)
        series = []
        for i, option in enumerate(options):
            colour, dash = CURVE_STYLES[i]
            curve = curve_data[endpoint][option]
            series.append(
                {
                    "option": option,
                    "colour": colour,
                    "dash": dash,
                    "path": _step_path(grid, curve["survival"], x, y),
                    "band": _band_path(grid, curve["lower"], curve["upper"], x, y),
                }
            )
        panels.append(
            {
                "title": title,
                "endpoint": endpoint,
                "left": left,
                "right": right,
                "top": top,
                "bottom": bottom,
                "xticks": [{"x": x(t), "label": f"{t:g}"} for t in _ticks(0.0, horizon, 7)],
                "yticks": [{"y": y(p), "label": f"{p:g}"} for p in (0.0, 0.25, 0.5, 0.75, 1.0)],
                "series": series,
            }
        )
    legend = [
        {"option": option, "label": labels[option], "colour": CURVE_STYLES[i][0], "dash": CURVE_STYLES[i][1]}
        for i, option in enumerate(options)
    ]
    return {"panels": panels, "legend": legend, "height": 310.0}


def waterfall(contrast: dict[str, Any], feature_label: Any) -> dict[str, Any]:
    """Lay out TBP versus the best switch as a horizontal waterfall that adds up to their difference.

    The steps are the contrast's largest SHAP contributions, then one step for all other features
    (the difference minus the listed ones), so the steps sum to ``difference`` exactly; the last bar
    is the total. The explainer's base value is the same on both sides and cancels, so the waterfall
    starts at 0.

    Parameters
    ----------
    contrast : dict
        ``tbp_versus_best_switch`` of :func:`linewise.serving.scoring.score_patient`.
    feature_label : callable
        Readable name of a feature column.

    Returns
    -------
    dict
        ``steps`` (label, values on both sides, value, bar coordinates, direction), ``total``, axis.
    """
    difference = float(contrast["difference"])
    higher_is_better = bool(contrast["higher_is_better"])
    entries = [
        {
            "feature": top["feature"],
            "label": feature_label(top["feature"]),
            "sides": _sides(top.get("value"), top.get("switch_value", top.get("value"))),
            "value": float(top["shap"]),
        }
        for top in contrast["top"]
    ]
    rest = difference - math.fsum(e["value"] for e in entries)
    entries.append({"feature": "", "label": "all other features", "sides": "", "value": rest})
    running, ends = 0.0, [0.0]
    for entry in entries:
        entry["start"], running = running, running + entry["value"]
        entry["end"] = running
        ends.append(running)
    low, high = min(*ends, difference), max(*ends, difference)
    pad = 0.08 * ((high - low) or 1.0)
    left, right = 380.0, WIDTH - 70.0
    x = _scale(low - pad, high + pad, left, right)
    row = 28.0
    steps = []
    for i, entry in enumerate(entries):
        y = 44.0 + i * row
        favours_tbp = (entry["value"] > 0) == higher_is_better
        steps.append(
            {
                **entry,
                "y": y,
                "x": min(x(entry["start"]), x(entry["end"])),
                "width": max(abs(x(entry["end"]) - x(entry["start"])), 1.0),
                "colour": FAVOURS_TBP if favours_tbp else FAVOURS_SWITCH,
                "text_x": max(x(entry["start"]), x(entry["end"])) + 4,
                "connector_x": x(entry["end"]),
            }
        )
    total_y = 44.0 + len(entries) * row + 6
    total_favours_tbp = (difference > 0) == higher_is_better
    ticks = _ticks_linear(low - pad, high + pad)
    return {
        "steps": steps,
        "total": {
            "value": difference,
            "y": total_y,
            "x": min(x(0.0), x(difference)),
            "width": max(abs(x(difference) - x(0.0)), 1.0),
            "colour": FAVOURS_TBP if total_favours_tbp else FAVOURS_SWITCH,
            "text_x": max(x(0.0), x(difference)) + 4,
            "favours_tbp": total_favours_tbp,
        },
        "zero_x": x(0.0),
        "top": 18.0,
        "bottom": total_y + 24,
        "left": left,
        "right": right,
        "ticks": [{"x": x(t), "label": f"{t:+.2g}" if t else "0"} for t in ticks],
        "height": total_y + 58,
    }


def _ticks_linear(low: float, high: float) -> list[float]:
    span = (high - low) or 1.0
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) // step) + 1)]


def _sides(tbp: Any, switch: Any) -> str:
    if tbp == switch:
        return _value(tbp)
    return f"TBP {_value(tbp)}, switch {_value(switch)}"


def _value(value: Any) -> str:
    if value is None:
        return "missing"
    number = float(value)
    return f"{number:.0f}" if number.is_integer() else f"{number:.3g}"
