"""The ``linewise`` command line: the one module that wires the packages together.

It builds the Typer application and registers the commands, which live in
:mod:`linewise.data_commands`, :mod:`linewise.omop_command`, :mod:`linewise.model_commands`,
:mod:`linewise.serving_commands` and :mod:`linewise.demo_command`. Configuration and the
environment are read by the commands and nowhere else. Errors that the user can fix (a bad lock,
a missing key) print one clear message to standard error and exit with status 2, without a
traceback (:mod:`linewise.cli_support`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from linewise import __version__, data_commands, demo_command, model_commands, omop_command, serving_commands
from linewise.cli_support import reporting_numerical_warnings

app = typer.Typer(
    name="linewise",
    help="Treatment-sequencing recommender for HR+/HER2- advanced breast cancer after progression on "
    "first-line endocrine therapy + CDK4/6 inhibitor.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"linewise {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Treatment-sequencing recommender for HR+/HER2- advanced breast cancer."""


# registered in the order ``linewise --help`` lists them
app.command()(reporting_numerical_warnings(data_commands.validate))
app.command("import-omop")(reporting_numerical_warnings(omop_command.import_omop_command))
app.command("pseudonymize")(reporting_numerical_warnings(data_commands.pseudonymize_command))
app.command()(reporting_numerical_warnings(data_commands.simulate))
app.command("scenario")(reporting_numerical_warnings(data_commands.scenario_command))
app.command()(reporting_numerical_warnings(data_commands.calibrate))
app.command()(reporting_numerical_warnings(data_commands.features))
app.command("evaluate-policy")(reporting_numerical_warnings(model_commands.evaluate_policy_command))
app.command()(reporting_numerical_warnings(model_commands.train))
app.command()(reporting_numerical_warnings(serving_commands.score))
app.command()(reporting_numerical_warnings(serving_commands.report))
app.command("export-patient")(reporting_numerical_warnings(data_commands.export_patient))
app.command("score-lock")(reporting_numerical_warnings(serving_commands.score_lock_command))
app.command()(reporting_numerical_warnings(demo_command.demo))
# not wrapped: the server runs until stopped, and warnings recorded meanwhile would wait for its end
app.command()(serving_commands.serve)


def main() -> None:
    """Run the command line (console-script entry point)."""
    app()
