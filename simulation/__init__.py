"""Cohort simulator that writes data locks and their ground truth, and calibration against the evidence.

:func:`linewise.simulation.simulate.simulate_lock` writes a lock to the data-lock contract and the true
outcome of every option at every decision; :mod:`linewise.simulation.calibration` compares a lock with
the published targets. The package stands apart: it may read locks through :mod:`linewise.features`,
and only the command line, the benchmarks and the tests import it.
"""
