"""Survival models behind one scikit-learn interface.

Started: both survival families (models/survival.py). Not built yet: propensity, counterfactual
scoring, explanations, evaluation.
"""
