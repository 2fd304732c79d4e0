"""Scoring a patient, the tumour-board report and the scoring service.

Started: :mod:`serving.score` (``linewise score``). The report, ``score-lock`` and the service are not
built yet.
"""
