"""Cohort simulator that writes data locks and their ground truth (not built yet)."""
