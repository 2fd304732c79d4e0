"""Output paths are checked before any work, and every file of one output is written, or none."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from linewise.cli import app
from tests.lockedit import read_rows


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".linewise-*"))


def test_features_with_a_folder_where_its_column_list_goes_writes_nothing(lock: Path, tmp_path: Path) -> None:
    out = tmp_path / "examples.parquet"
    (tmp_path / "examples.json").mkdir()
    code, output = _run("features", str(lock), "--out", str(out))
    assert code == 2
    assert output.strip().splitlines() == [
        f"linewise features: cannot write {tmp_path / 'examples.json'}: it is a folder"
    ]
    assert not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["features", "export-patient"])
def test_an_output_below_a_file_is_one_line_before_any_work(command: str, lock: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n", encoding="utf-8")
    out = blocker / "sub" / ("x.parquet" if command == "features" else "x.json")
    extra = ["--patient", "0000000000000000"] if command == "export-patient" else []
    code, output = _run(command, str(lock), "--out", str(out), *extra)
    assert code == 2
    assert output.strip().splitlines() == [
        f"linewise {command}: cannot write {out}: {blocker} is not a folder"
    ]
    assert "Traceback" not in output and blocker.read_text(encoding="utf-8") == "a file, not a folder\n"


def test_features_writes_both_files_into_folders_it_creates(lock: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "examples.parquet"
    code, output = _run("features", str(lock), "--out", str(out))
    assert code == 0, output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert _leftovers(tmp_path) == []
    assert [row["patient_id"] for row in read_rows(lock, "patients")[1] if row["patient_id"] in output] == []


def test_a_failure_while_staging_the_second_file_leaves_neither(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    from linewise.cli_support import write_outputs

    def broken(path: Path) -> None:
        raise OSError(28, "No space left on device")

    first, second = tmp_path / "a.parquet", tmp_path / "a.json"
    files = {first: lambda path: path.write_text("x", encoding="utf-8"), second: broken}
    with pytest.raises(typer.Exit, match=r"^2$") as caught:  # the exit status; the message is on stderr
        write_outputs("features", files)
    assert caught.value.exit_code == 2
    assert capsys.readouterr().err == f"linewise features: cannot write {second}: No space left on device\n"
    assert not first.exists() and not second.exists() and _leftovers(tmp_path) == []
