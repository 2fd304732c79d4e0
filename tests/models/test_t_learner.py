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
