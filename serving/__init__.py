"""Scoring a patient, the tumour-board report and the scoring service (not built yet)."""
