"""Argparse's own errors keep the CLI's error contract: one line ``rip-atoms: error: …`` on
stderr, nothing on stdout, exit status 2 — never a usage block. Each kind argparse raises (a
type error, a missing required argument, an unknown option, an invalid choice, an ambiguous
abbreviation, mutually exclusive options), on the top parser and on every subcommand; ``--help``
still prints the usage and exits 0."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from rip_atoms.cli import build_parser, main


def run_main(capsys, argv: list[str]) -> tuple[int, str, str]:
    """In-process ``main`` (argparse exits through SystemExit): status, stdout, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def assert_one_line(capsys, argv: list[str], *words: str) -> str:
    code, out, err = run_main(capsys, argv)
    assert code == 2, (code, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("rip-atoms: error: "), line
    assert "usage:" not in err
    for w in words:
        assert w in line, (w, line)
    return line


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.fixture
def dict_file(tmp_path):
    p = tmp_path / "D.npy"
    np.save(p, np.random.default_rng(0).standard_normal((6, 12)))
    return str(p)


# ------------------------------------------------------------------ the cases
def test_a_float_type_error(capsys):
    assert_one_line(capsys, ["verify", "--budget-s", "abc"], "verify", "--budget-s", "'abc'")


def test_an_int_type_error(capsys, dict_file):
    assert_one_line(capsys, ["coherence", dict_file, "--top", "1e9"], "coherence", "--top",
                    "'1e9'")


def test_a_missing_required_argument(capsys):
    assert_one_line(capsys, ["coherence"], "coherence", "required", "DICT")
    assert_one_line(capsys, ["recover"], "recover", "required", "--codes")
    assert_one_line(capsys, [], "required", "command")


def test_an_unknown_option_names_the_command(capsys, dict_file):
    assert_one_line(capsys, ["coherence", dict_file, "--bogus"], "coherence", "unrecognized",
                    "--bogus")
    assert_one_line(capsys, ["--bogus"])


def test_an_invalid_choice(capsys, dict_file):
    assert_one_line(capsys, ["frobnicate"], "invalid choice", "'frobnicate'")
    assert_one_line(capsys, ["theory", "nonsense"], "theory", "invalid choice", "rho-weak")
    assert_one_line(capsys, ["coherence", dict_file, "--backend", "cuda"], "--backend",
                    "'cuda'")


def test_an_ambiguous_abbreviation_and_exclusive_options(capsys, dict_file):
    assert_one_line(capsys, ["coherence", dict_file, "--b", "3"], "ambiguous", "--b")
    assert_one_line(capsys, ["coherence", dict_file, "--raw", "--metric", "acts.npy"],
                    "not allowed with")


# ------------------------------------------------------------------ every subcommand
@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_subcommand_gives_one_line(capsys, command):
    parser = subcommands()[command]
    # (a command with required arguments names those first; either way one line)
    assert_one_line(capsys, [command, "--no-such-option"], f"error: {command}: ")
    # every option that takes an int or a float rejects a word in one line naming it
    typed = [a for a in parser._actions
             if a.option_strings and a.type in (int, float) and a.nargs is None]
    assert typed, "every command has a numeric option"
    for action in typed:
        opt = action.option_strings[-1]
        assert_one_line(capsys, [command, opt, "abc"], command, opt, "invalid")


@pytest.mark.parametrize("argv", [["--help"], ["coherence", "--help"], ["verify", "-h"]])
def test_help_still_prints_the_usage(capsys, argv):
    code, out, err = run_main(capsys, argv)
    assert code == 0 and err == ""
    assert out.startswith("usage: rip-atoms") and "--help" in out


def test_the_installed_command_line(tmp_path):
    """The same through ``python -m rip_atoms`` (the process's real stderr and status)."""
    r = subprocess.run([sys.executable, "-m", "rip_atoms", "rip", "x.npy", "-k", "3",
                        "--budget-s", "abc"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        "rip-atoms: error: rip: argument --budget-s: invalid float value: 'abc' "
        "(see rip-atoms rip --help)"]
