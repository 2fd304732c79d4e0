"""Survival models, the propensity model, counterfactual scoring and explanations (not built yet)."""
