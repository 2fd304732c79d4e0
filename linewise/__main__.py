"""Run the command line as ``python -m linewise``."""

from linewise.cli import main

main()
