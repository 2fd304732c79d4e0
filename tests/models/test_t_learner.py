"""The T-learner's rule for a class of its own: events counted, not weighted."""

from __future__ import annotations

import numpy as np

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.models.candidates import OPTIONS, with_treatment
from linewise.models.survival import BoostedCoxModel
from linewise.models.t_learner import ClassSurvivalModels
from linewise.models.target import make_target


def test_a_class_needs_min_events_counted_events_whatever_their_weight() -> None:
    rng = np.random.default_rng(3)
    tbp, chemo = OPTIONS.index(("tbp", False)), OPTIONS.index(("chemo", False))
    # 400 TBP decisions, all events; 30 chemotherapy decisions with 12 events, each weighing 10
    options = np.r_[np.full(400, tbp), np.full(30, chemo)]
    event = np.r_[np.ones(400, bool), np.arange(30) < 12]
    weight = np.r_[np.ones(400), np.full(30, 10.0)]
    design = with_treatment(rng.normal(size=(430, 3)), options)
    y = make_target(rng.exponential(10, 430), event)
    base = BoostedCoxModel(n_estimators=5)
    fitted = ClassSurvivalModels(base, min_events=40).fit(design, y, sample_weight=weight)
    # 120 weighted events but 12 events: the class is pooled
    assert CANDIDATE_CLASSES[chemo // 2] in fitted.pooled_classes_
    assert set(fitted.models_) == {tbp // 2}
    # a row of zero weight does not count either
    zero = weight.copy()
    zero[400:412] = 0.0
    assert CANDIDATE_CLASSES[chemo // 2] in (
        ClassSurvivalModels(base, min_events=1).fit(design, y, sample_weight=zero).pooled_classes_
    )
    assert CANDIDATE_CLASSES[chemo // 2] not in (
        ClassSurvivalModels(base, min_events=12).fit(design, y, sample_weight=weight).pooled_classes_
    )


def test_bootstrap_refits_keep_the_point_fits_pooled_classes() -> None:
    rng = np.random.default_rng(8)
    tbp, chemo = OPTIONS.index(("tbp", False)), OPTIONS.index(("chemo", False))
    # chemotherapy has 50 events: a model of its own at min_events 40
    options = np.r_[np.full(300, tbp), np.full(60, chemo)]
    event = np.r_[np.ones(300, bool), np.arange(60) < 50]
    design = with_treatment(rng.normal(size=(360, 3)), options)
    y = make_target(rng.exponential(40, 360), event)
    base = BoostedCoxModel(n_estimators=5)
    point = ClassSurvivalModels(base).fit(design, y)
    assert CANDIDATE_CLASSES[chemo // 2] not in point.pooled_classes_
    counts = np.bincount(rng.integers(0, 360, 360), minlength=360).astype(float)
    assert np.count_nonzero(event[300:] & (counts[300:] > 0)) < 40  # a resample sees fewer events
    # the rule applied again would pool the class; the point fit's list keeps its model
    assert CANDIDATE_CLASSES[chemo // 2] in ClassSurvivalModels(base).fit(design, y, counts).pooled_classes_
    kept = ClassSurvivalModels(base, pooled_classes=tuple(point.pooled_classes_)).fit(design, y, counts)
    assert kept.pooled_classes_ == point.pooled_classes_ and set(kept.models_) == set(point.models_)
