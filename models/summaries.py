"""What is reported for every option: the endpoints, their summaries, and the rank of an unranked option.

A light module (no model code), so that the score document and the command line can name the columns
without importing the estimators.
"""

from __future__ import annotations

from typing import Final

#: The two endpoints: real-world progression-free survival and overall survival.
ENDPOINTS: Final = ("pfs", "os")
#: Summaries of each endpoint, in months.
SUMMARIES: Final = ("rmst12", "rmst24", "median")
#: Differences from TBP of each endpoint, in months (an RMST minus TBP's).
DIFFERENCES: Final = ("rmst12_vs_tbp", "rmst24_vs_tbp")
#: ``rank`` of an unsupported option in every table: it is never ranked (supported options rank 1, 2, ...).
UNRANKED: Final = -1
