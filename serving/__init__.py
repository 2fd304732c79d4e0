"""Scoring a patient, the tumour-board report and the scoring service.

:mod:`serving.scoring` is the one scoring path (``linewise score``); :mod:`serving.app` is the scoring
service (``linewise serve``, ``docs/service.md``). ``score-lock`` is not built yet.
"""
