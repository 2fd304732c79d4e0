"""Scoring a patient or a lock with a registered model, the tumour-board report and the scoring service.

:mod:`linewise.serving.scoring` is the one scoring path (``linewise score``, ``report`` and the
service), :mod:`linewise.serving.batch` scores every open decision of a lock (``linewise score-lock``),
:mod:`linewise.serving.report` writes the report and :mod:`linewise.serving.app` is the HTTP service
(``linewise serve``). Fitted models are read only through MLflow; this package imports
:mod:`linewise.features` and :mod:`linewise.models`, never :mod:`linewise.training`.
"""
