"""The ``dagtrio`` command line: ``--version``, and ``-`` for the bench's output files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dagtrio
from dagtrio.bench.results import SCHEMA
from dagtrio.cli import main

QUICK = ["bench", "--in-process", "--repeats", "1", "--nodes", "10", "--memory", "none"]


def test_version_prints_the_package_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == f"dagtrio {dagtrio.__version__}\n"
    assert err == ""


def test_version_wins_over_a_missing_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version", "bench"]) == 0
    assert capsys.readouterr().out.startswith("dagtrio ")


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_bench_json_dash_writes_the_document_alone_on_stdout(
    quiet: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, *quiet, "--json", "-"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["schema"] == SCHEMA
    assert [r["name"] for r in data["results"]] == ["trio-floor", "dagtrio"]
    assert list(tmp_path.iterdir()) == []
    # The human table still shows, on stderr.
    assert "x floor" in err and "trio-floor" in err
    assert "results written to" not in out + err


def test_bench_json_dot_slash_dash_is_a_file_named_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, "--quiet", "--json", "./-"]) == 0
    out = capsys.readouterr().out
    assert json.loads((tmp_path / "-").read_text())["schema"] == SCHEMA
    assert "x floor" in out  # the table is on stdout as usual


def test_bench_json_to_a_file_keeps_the_table_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, "--json", "out.json"]) == 0
    out = capsys.readouterr().out
    assert "x floor" in out and "results written to out.json" in out
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_bench_plot_dash_is_refused_in_one_line_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, "--plot", "-"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("dagtrio bench: error: argument --plot: a PNG cannot go to standard")
    assert list(tmp_path.iterdir()) == []


def test_bench_help_says_where_json_dash_sends_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "- writes them to stdout, and the tables and notes then go to stderr" in help_text


SUBCOMMANDS = ("bench", "report", "resume", "completion")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example:" in out
    assert f"    dagtrio {command} " in out  # an example of this very command


@pytest.mark.parametrize("shell", ["bash", "zsh", "tcsh"])
def test_completion_prints_a_script_that_knows_every_command(
    shell: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in script
    assert "actions" in script and "max-parallel" in script  # (tcsh lists them bare)
    if shell == "bash":
        import shutil
        import subprocess

        bash = shutil.which("bash")
        if bash is not None:  # the script must at least parse
            path = tmp_path / "dagtrio.bash"
            path.write_text(script)
            checked = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stderr


def test_completion_of_an_unknown_shell_is_refused_with_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["completion", "fish"]) == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err
