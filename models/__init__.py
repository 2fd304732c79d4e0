"""Survival models behind one scikit-learn interface.

Started: both survival families (models/survival.py) and the calibrated propensity model with positivity
flags (models/propensity.py). Not built yet: counterfactual
scoring, explanations, evaluation.
"""
