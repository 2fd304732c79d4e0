"""The tumour-board report: a self-contained page, its figures' numbers, escaping, and the CLI.

The page in a real browser is checked in ``test_report_browser.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import load_patient
from linewise.models.candidates import OPTIONS
from linewise.serving.report import option_name, render_context, render_report, report_context
from linewise.serving.scoring import ScoringError, patient_curves, score_patient

from .conftest import GENERATED, Served
from .report_page import Element, Page


def _text(element: Element) -> str:
    return " ".join(" ".join(element.text).split())


def _latest_features(document: dict[str, Any]) -> np.ndarray:
    """The decision's feature row, built the way the features package builds it (not via serving)."""
    examples = build_examples(load_patient(document))
    latest = examples.sort_values(["decision_day", "line_number"], kind="stable").tail(1)
    return latest[list(FEATURES)].to_numpy(float)[0]


@pytest.fixture(scope="module")
def page(html: str) -> Page:
    return Page(html)


# ---- a self-contained page -------------------------------------------------------------------------


def test_the_page_references_nothing_outside_itself(html: str, page: Page) -> None:
    assert html.startswith("<!DOCTYPE html>")
    for tag in ("script", "link", "iframe", "object", "embed", "img", "base", "form"):
        assert not page.find(tag), f"<{tag}> in the report"
    for element in page.elements:
        for name, value in element.attrs.items():
            if name in ("src", "href", "xlink:href", "action", "poster", "srcset", "data"):
                assert value.startswith(("data:", "#")), f"<{element.tag} {name}={value!r}>"
            assert "://" not in value, f"<{element.tag} {name}={value!r}>"
    css = " ".join(_text(e) for e in page.find("style"))
    assert "@import" not in css
    assert all(u.startswith(("data:", "#")) for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", css))
    assert not re.search(r"https?://", html)
    assert "<script" not in html.lower()


def test_every_element_the_tests_and_readers_rely_on_is_there(page: Page) -> None:
    for element_id in ("ranked-table", "curves", "waterfall", "timeline", "warnings", "provenance"):
        page.by_id(element_id)
    for element_id in ("curves", "waterfall", "timeline"):
        assert page.find("svg", within=element_id)


@pytest.mark.parametrize("which", [0, 1, 2, "closed"], ids=["open-1", "open-2", "open-3", "closed"])
def test_the_table_lists_every_option_ranked_as_scored(served: Served, which: int | str) -> None:
    documents = list(served.open_patients.values())
    document = served.closed_patient if which == "closed" else documents[int(which)]
    page = Page(render_report(served.model, document))
    rows = page.find("tr", within="ranked-table", cls="option-row")
    assert sorted(r.attrs["data-option"] for r in rows) == sorted(o.label for o in OPTIONS)
    scored = {e["option"]: e for e in score_patient(served.model, document)["candidates"]}
    ranks = []
    for row in rows:
        entry = scored[row.attrs["data-option"]]
        rank_cell = next(e for e in page.find("td", cls="rank") if row in e.ancestors)
        if entry["support"]:
            ranks.append(int(_text(rank_cell)))
            assert "supported" in _text(row) and "insufficient" not in _text(row)
        else:
            assert _text(rank_cell) == "—" and "insufficient evidence" in _text(row)
    assert ranks == list(range(1, len(ranks) + 1))
    warned = {e.attrs["data-option"] for e in page.find("li", within="warnings", cls="insufficient")}
    assert warned == {o for o, e in scored.items() if not e["support"]}


def test_the_table_shows_the_scored_numbers(served: Served, patient: dict[str, Any], page: Page) -> None:
    scored = {e["option"]: e for e in score_patient(served.model, patient)["candidates"]}
    for row in page.find("tr", within="ranked-table", cls="option-row"):
        pfs = scored[row.attrs["data-option"]]["rwpfs"]
        text = _text(row)
        assert f"{pfs['rmst24']:.1f}" in text
        assert f"{pfs['rmst24_lower']:.1f} to {pfs['rmst24_upper']:.1f}" in text
        assert f"{pfs['rmst24_vs_tbp']:+.1f}" in text


def test_the_uncertain_recommendation_is_flagged_exactly_when_its_interval_holds_zero(served: Served) -> None:
    for document in served.open_patients.values():
        result = score_patient(served.model, document)
        best = result["candidates"][0]
        pfs = best["rwpfs"]
        expected = (
            best["rank"] == 1
            and best["option"] != "tbp"
            and pfs["rmst24_vs_tbp_lower"] <= 0.0 <= pfs["rmst24_vs_tbp_upper"]
        )
        page = Page(render_report(served.model, document))
        flagged = [
            e
            for e in page.find("p", within="warnings")
            if e.attrs.get("data-warning") == "uncertain-difference"
        ]
        assert bool(flagged) == expected
        if flagged:
            assert flagged[0].attrs["data-option"] == best["option"]


def test_the_sensitivity_section_states_the_scored_e_values(served: Served) -> None:
    for document in served.open_patients.values():
        result = score_patient(served.model, document)
        sensitivity = result["sensitivity"]
        ranked = [e for e in result["candidates"] if e["rank"] is not None]
        section = Page(render_report(served.model, document)).by_id("sensitivity-section")
        text = _text(section)
        if len(ranked) < 2:
            assert sensitivity["second_option"] is None and "Fewer than two options" in text
            continue
        assert (sensitivity["first_option"], sensitivity["second_option"]) == (
            ranked[0]["option"],
            ranked[1]["option"],
        )
        # the E-value, computed here from the printed difference and SD (VanderWeele and Ding)
        ratio = math.exp(0.91 * sensitivity["difference"] / sensitivity["outcome_sd"])
        assert sensitivity["e_value"] == pytest.approx(ratio + math.sqrt(ratio * (ratio - 1)), rel=1e-9)
        assert f"{sensitivity['e_value']:.2f}" in text and f"{sensitivity['e_value_interval']:.2f}" in text
        assert f"{sensitivity['difference']:.1f}" in text and option_name(ranked[1]["option"]) in text


def test_the_sensitivity_section_says_what_is_missing(served: Served, patient: dict[str, Any]) -> None:
    context = report_context(served.model, patient, generated_at=GENERATED)
    assert context["sensitivity"]["second_option"] is not None, "the fixture's patient has two options"
    # a model without bootstrap refits has no interval; an E-value may be unavailable
    context["sensitivity"] |= {"lower": None, "upper": None, "e_value_interval": None}
    text = _text(Page(render_context(context)).by_id("sensitivity-section"))
    assert "no interval: the model has no bootstrap refits" in text and "to reverse their order" in text
    context["sensitivity"]["e_value"] = None
    assert "No E-value is available" in _text(Page(render_context(context)).by_id("sensitivity-section"))


# ---- the figures' numbers --------------------------------------------------------------------------


def test_the_waterfall_adds_up_to_the_models_own_contrast(
    served: Served, patient: dict[str, Any], page: Page
) -> None:
    explanation = served.model.recommender.explain(_latest_features(patient))
    steps = page.find("g", within="waterfall", cls="step")
    (total,) = page.find("g", within="waterfall", cls="total")
    values = [float(s.attrs["data-value"]) for s in steps]
    assert float(total.attrs["data-value"]) == pytest.approx(explanation.contrast_output, abs=1e-6)
    # the exact TreeSHAP values add up to the difference of the two outputs
    assert explanation.contrast_values.sum() == pytest.approx(explanation.contrast_output, abs=1e-4)
    top = np.argsort(-np.abs(explanation.contrast_values), kind="stable")[: len(steps) - 1]
    names = explanation.feature_names
    assert [s.attrs["data-feature"] for s in steps[:-1]] == [names[j] for j in top]
    assert values[:-1] == pytest.approx(explanation.contrast_values[top].tolist(), abs=1e-6)
    rest = np.delete(explanation.contrast_values, top).sum()
    assert values[-1] == pytest.approx(rest, abs=1e-4)


def test_the_waterfall_says_its_scale_and_which_side_it_favours(
    served: Served, patient: dict[str, Any], page: Page
) -> None:
    explanation = served.model.recommender.explain(_latest_features(patient))
    figure = page.by_id("waterfall")
    assert figure.attrs["data-scale"] == explanation.scale == "log hazard ratio of rwPFS"
    section = _text(page.by_id("explanation-section"))
    assert "log hazard ratio" in section and "favours the switch" in section
    # log hazard ratio: TBP minus switch > 0 means more hazard under TBP, so the switch is favoured
    tbp_better = explanation.contrast_output < 0
    caption = _text(next(e for e in page.find("figcaption", within="waterfall")))
    assert ("the model favours TBP" in caption) == tbp_better
    assert ("the model favours the switch" in caption) == (not tbp_better)
    assert OPTIONS[explanation.tbp_option].label in section
    assert OPTIONS[explanation.switch_option].label in section


def test_the_curves_end_where_the_predicted_survival_ends(
    served: Served, patient: dict[str, Any], page: Page
) -> None:
    curves = patient_curves(served.model, patient)
    result = score_patient(served.model, patient)
    switches = [e["option"] for e in result["candidates"] if e["rank"] and e["candidate"] != "tbp"][:3]
    for panel in page.find("g", within="curves", cls="panel"):
        drawn = [p.attrs["data-option"] for p in page.find("path", cls="curve") if panel in p.ancestors]
        assert drawn == ["tbp", "tbp + local therapy", *switches]
        assert len([p for p in page.find("path", cls="band") if panel in p.ancestors]) == len(drawn)
        y0, y1 = float(panel.attrs["data-y-at-0"]), float(panel.attrs["data-y-at-1"])
        for path in (p for p in page.find("path", cls="curve") if panel in p.ancestors):
            last_y = float(re.findall(r"V(-?[\d.]+)", path.attrs["d"])[-1])
            expected = curves[panel.attrs["data-endpoint"]][path.attrs["data-option"]]["survival"][-1]
            assert (y0 - last_y) / (y0 - y1) == pytest.approx(expected, abs=0.002)


def test_the_timeline_shows_the_history_as_it_stood_on_as_of(served: Served) -> None:
    document = max(served.open_patients.values(), key=lambda d: len(d["lines"]))
    page = Page(render_report(served.model, document))
    bars = page.find("g", within="timeline", cls="line-bar")
    assert len(bars) == len(document["lines"])
    for line, bar in zip(sorted(document["lines"], key=lambda r: r["line_number"]), bars, strict=True):
        assert " + ".join(line["drugs"].split("+")) in _text(bar)
    for kind, table in (
        ("progression", "progressions"),
        ("local", "local_therapies"),
        ("biomarker", "biomarkers"),
    ):
        assert len(page.find("g", within="timeline", cls=f"marker-{kind}")) == len(document[table])
    assert page.find(within="decision-marker", tag="line")
    # cut the history just after the first decision: later lines and records disappear from the page
    first = min(document["progressions"], key=lambda r: r["date"])
    cut = dt.date.fromisoformat(first["date"]) + dt.timedelta(days=1)
    earlier = Page(render_report(served.model, document, cut))
    started = [r for r in document["lines"] if r["start_date"] <= cut.isoformat()]
    assert len(earlier.find("g", within="timeline", cls="line-bar")) == len(started)
    assert _text(earlier.by_id("as-of")) == cut.isoformat()
    assert f"line {first['line_number']}" in _text(earlier.by_id("decision"))


def test_provenance_and_limitations_are_stated(served: Served, page: Page) -> None:
    provenance = _text(page.by_id("provenance"))
    for key in ("model_uri", "model_version", "lock_id", "lock_date", "training_run_id", "family"):
        assert str(served.model.provenance[key]) in provenance, key
    assert served.model.resolved_uri in provenance and "90%" in provenance
    limitations = _text(page.by_id("limitations"))
    for words in (
        "observational data",
        "unmeasured confounding is possible",
        "not this patient's own variability",
        "well under 90%",
        "docs/models.md",
        "not as a comparison of the options",
        "not a substitute for clinical judgement",
    ):
        assert words in limitations


# ---- escaping ---------------------------------------------------------------------------------------

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_text_from_the_patient_file_cannot_become_markup(served: Served, patient: dict[str, Any]) -> None:
    # center_id is the one free-text field the patient-file contract accepts: through the normal path
    document = {**patient, "patient": {**patient["patient"], "center_id": MARKUP}}
    html = render_report(served.model, document)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_the_template_escapes_every_value_it_is_given(served: Served, patient: dict[str, Any]) -> None:
    # the contract rejects markup in drugs, codes and biomarkers; the template must still escape them
    context = report_context(served.model, patient, generated_at=GENERATED)
    context["timeline"]["bars"][0]["label"] = MARKUP
    context["timeline"]["markers"].append(
        {
            **context["timeline"]["bars"][0],
            "kind": "biomarker",
            "title": MARKUP,
            "label_y": 0,
            "anchor": "middle",
        }
    )
    context["rows"][0]["name"] = MARKUP
    context["contrast"]["switch_name"] = MARKUP
    html = render_context(context)
    assert "<script" not in html and "<img" not in html
    assert html.count("&lt;script&gt;") >= 4


# ---- the command line ------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linewise", *args], capture_output=True, text=True, timeout=180, check=False
    )


def test_the_report_command_writes_the_page(
    served: Served, store: str, patient: dict[str, Any], tmp_path: Path
) -> None:
    source = tmp_path / "patient.json"
    source.write_text(json.dumps(patient), encoding="utf-8")
    out = tmp_path / "board" / "report.html"
    result = _cli("report", str(source), "--out", str(out), "--model", "models:/linewise@champion")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    page = Page(out.read_text(encoding="utf-8"))
    assert len(page.find("tr", within="ranked-table", cls="option-row")) == len(OPTIONS)
    assert _text(page.by_id("patient-key")) == patient["patient_key"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_report_help_describes_its_options() -> None:
    assert "report" in CliRunner().invoke(app, ["--help"]).output
    result = CliRunner().invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    for words in ("--out", "--model", "--as-of", "self-contained", "models:/linewise@champion"):
        assert words in result.output


def _bad_json(tmp: Path, served: Served, patient: dict[str, Any]) -> list[str]:
    (tmp / "p.json").write_text("{not json", encoding="utf-8")
    return [str(tmp / "p.json")]


def _undecided(tmp: Path, served: Served, patient: dict[str, Any]) -> list[str]:
    (tmp / "p.json").write_text(json.dumps(served.undecided_patient), encoding="utf-8")
    return [str(tmp / "p.json")]


def _bad_as_of(tmp: Path, served: Served, patient: dict[str, Any]) -> list[str]:
    (tmp / "p.json").write_text(json.dumps(patient), encoding="utf-8")
    return [str(tmp / "p.json"), "--as-of", "2024-02-30"]


def _late_as_of(tmp: Path, served: Served, patient: dict[str, Any]) -> list[str]:
    (tmp / "p.json").write_text(json.dumps(patient), encoding="utf-8")
    return [str(tmp / "p.json"), "--as-of", "2099-01-01"]


def _unknown_model(tmp: Path, served: Served, patient: dict[str, Any]) -> list[str]:
    (tmp / "p.json").write_text(json.dumps(patient), encoding="utf-8")
    return [str(tmp / "p.json"), "--model", "models:/no-such-model@champion"]


def _missing_file(tmp: Path, served: Served, patient: dict[str, Any]) -> list[str]:
    return [str(tmp / "absent.json")]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (_bad_json, "not valid JSON"),
        (_undecided, "no decision to score"),
        (_bad_as_of, "--as-of must be a date YYYY-MM-DD"),
        (_late_as_of, "is after the document's as_of"),
        (_unknown_model, "cannot load the model models:/no-such-model@champion"),
        (_missing_file, "absent.json"),
    ],
    ids=["bad-json", "no-decision", "bad-as-of", "late-as-of", "unknown-model", "missing-file"],
)
def test_report_errors_exit_2_with_one_message_and_no_file(
    served: Served,
    store: str,
    patient: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: Any,
    message: str,
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    args = case(tmp_path, served, patient)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(app, ["report", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""
    assert list((tmp_path / "out").iterdir()) == []


def test_report_errors_in_a_real_process_show_no_traceback(
    served: Served, store: str, tmp_path: Path
) -> None:
    source = tmp_path / "p.json"
    source.write_text(json.dumps(served.undecided_patient), encoding="utf-8")
    out = tmp_path / "report.html"
    result = _cli("report", str(source), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "linewise report: p.json has no decision to score: no progression recorded while alive up to as_of"
    ]
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_a_patient_without_decision_cannot_be_reported(served: Served) -> None:
    with pytest.raises(ScoringError, match="no decision to score"):
        render_report(served.model, served.undecided_patient)
