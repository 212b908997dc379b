"""The one error boundary around every command: one line, the right exit code, never a
traceback — for bad files (the committed corpus), bugs, Ctrl-C and stray warnings."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from sim import cli
from sim.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, InputError, elide

CORPUS = Path(__file__).resolve().parents[1] / "fuzz_corpus"
MAX_LINE = 500


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text[:2000]
    assert "Traceback" not in text
    assert len(lines[0]) <= MAX_LINE, len(lines[0])
    return lines[0]


REFUSED = sorted((CORPUS / "scenarios").iterdir()) + sorted((CORPUS / "traces").iterdir())


@pytest.mark.parametrize("path", REFUSED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_input_is_refused_in_one_line(path, capsys):
    assert cli.main(["validate", str(path)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert line.startswith(f"capsim: error: {path}")
    assert captured.out == ""


def test_deep_nesting_in_a_fresh_interpreter_prints_no_traceback():
    path = CORPUS / "scenarios" / "deep-nesting.yaml"
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "nested too deeply" in _one_line(proc.stderr)


def _raising(exc: BaseException):
    def handler(args: argparse.Namespace) -> int:
        raise exc
    return handler


def test_an_internal_error_is_one_line_exit_3_with_the_traceback_in_a_file(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = cli.run_command(_raising(ZeroDivisionError("x" * 10_000)), argparse.Namespace())
    assert code == EXIT_INTERNAL
    line = _one_line(capsys.readouterr().err)
    assert "bug" in line and "ZeroDivisionError" in line
    report = Path(line.rsplit(" ", 1)[-1])
    assert report.parent == tmp_path / "capsim"
    assert "Traceback" in report.read_text() and "ZeroDivisionError" in report.read_text()


def test_an_unwritable_cache_falls_back_to_the_temporary_folder(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(cli.tempfile, "gettempdir", lambda: str(tmp_path))
    assert cli.run_command(_raising(KeyError("k")), argparse.Namespace()) == EXIT_INTERNAL
    report = Path(_one_line(capsys.readouterr().err).rsplit(" ", 1)[-1])
    assert report.parent == tmp_path and report.is_file()


def test_ctrl_c_is_one_line_exit_130(capsys):
    code = cli.run_command(_raising(KeyboardInterrupt()), argparse.Namespace())
    assert code == EXIT_INTERRUPTED
    assert _one_line(capsys.readouterr().err) == "capsim: interrupted"


def test_a_recursion_error_deep_inside_is_a_bug_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.run_command(_raising(RecursionError("deep")), argparse.Namespace()) == 3
    _one_line(capsys.readouterr().err)


def test_warnings_are_not_printed_before_an_error_line(capsys):
    def handler(args: argparse.Namespace) -> int:
        warnings.warn("invalid value encountered in divide", RuntimeWarning, stacklevel=1)
        raise InputError("bad", file="f.yaml", where="x")

    assert cli.run_command(handler, argparse.Namespace()) == EXIT_BAD_INPUT
    assert _one_line(capsys.readouterr().err) == "capsim: error: f.yaml: x: bad"


def test_warnings_of_a_successful_command_are_still_shown(capsys):
    def handler(args: argparse.Namespace) -> int:
        warnings.warn("something odd", UserWarning, stacklevel=1)
        return 0

    assert cli.run_command(handler, argparse.Namespace()) == 0
    assert "something odd" in capsys.readouterr().err


def test_an_os_error_is_one_line_exit_2(capsys):
    exc = PermissionError(13, "Permission denied", "/nowhere/out")
    assert cli.run_command(_raising(exc), argparse.Namespace()) == EXIT_BAD_INPUT
    assert _one_line(capsys.readouterr().err) == "capsim: error: /nowhere/out: Permission denied"


def test_every_subcommand_goes_through_the_boundary():
    """A subcommand added later gets the boundary for free: main() dispatches only
    through ``args.handler``, so every subparser must set one."""
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, subparser in sub.choices.items():
        assert callable(subparser.get_default("handler")), name


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for code in ("0", "1", "2", "3", "130"):
        assert f"\n  {code} " in out


def test_long_values_are_elided_in_error_lines():
    err = InputError("value " + "v" * 100_000 + " is wrong", file="f" * 5000, where="w" * 5000)
    assert len(str(err)) <= 400
    assert elide("a" * 1000, 50).count("…") == 1 and len(elide("a" * 1000, 50)) == 50
    assert elide("two\nlines") == "two lines"
