"""The CLI reads its parsed arguments and never writes to them: derived values live in a frozen
options object (:class:`rip_atoms.cli.verify.VerifyOptions`), ``--cards`` is parsed by an
argparse ``type``, and whether a spec is an SAE is decided by one function
(:func:`rip_atoms.dictionary.is_sae_spec`)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import rip_atoms.cli
from rip_atoms.cli import build_parser, main
from rip_atoms.cli.verify import VerifyOptions
from rip_atoms.dictionary import is_sae_spec

CLI = Path(rip_atoms.cli.__file__).parent


def test_the_namespace_is_never_assigned_to():
    """No ``args.NAME = …`` (nor ``setattr(args, …)``) anywhere in rip_atoms/cli."""
    pattern = re.compile(r"\bargs\.\w+\s*(=(?!=)|\+=|-=)|setattr\(\s*args\b")
    found = [f"{p.name}:{i}: {line.strip()}" for p in sorted(CLI.glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_verify_options_from_args():
    args = build_parser().parse_args(["verify", "D.npy", "--cards", "3,1", "--text", "a.txt",
                                      "--text", "b.txt", "--seed", "4"])
    before = dict(vars(args))
    opts = VerifyOptions.from_args(args)
    assert vars(args) == before  # read, not written
    assert opts.target == "D.npy" and opts.cards == (3, 1) and opts.card_atoms == [3, 1]
    assert opts.text == ("a.txt", "b.txt") and opts.seed == 4 and opts.argv == ("verify",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.acts = "x"  # type: ignore[misc]
    later = dataclasses.replace(opts, acts="OUT/activations", layer=3)
    assert (later.acts, later.layer, opts.acts, opts.layer) == ("OUT/activations", 3, None, None)
    assert VerifyOptions.from_args(build_parser().parse_args(["verify"])).card_atoms is None


@pytest.mark.parametrize(("argv", "line"), [
    (["verify", "D.npy", "--quick"],
     "rip-atoms: error: --quick runs the built-in synthetic default; drop TARGET or --quick"),
    (["verify", "--quick", "--effort", "0"],
     "rip-atoms: error: --effort must be ≥ 1 (units of search work), got 0"),
    (["verify", "--quick", "--tokens", "0"], "rip-atoms: error: --tokens must be ≥ 1, got 0"),
])
def test_verify_options_check_before_any_work(argv, line, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err == line + "\n" and not (tmp_path / "r").exists()


@pytest.mark.parametrize(("value", "message"), [
    ("-1", "atom indices are ≥ 0, got -1"),
    ("1,,2", "empty item in '1,,2' (expected e.g. 1,2,3)"),
    ("x", "expected comma-separated integers, got 'x'"),
    ("", "empty list"),
])
def test_cards_bad_values_are_one_line_naming_the_option(value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--quick", f"--cards={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"rip-atoms: error: verify: argument --cards: {message} (see rip-atoms "
                   "verify --help)\n")


def test_the_command_line_rides_in_the_namespace(monkeypatch):
    import rip_atoms.cli.verify as verify

    seen = {}
    monkeypatch.setattr(verify, "run", lambda args: seen.update(
        argv=VerifyOptions.from_args(args).argv) or 0)
    assert main(["verify", "--quick", "--seed", "2"]) == 0
    assert seen["argv"] == ("verify", "--quick", "--seed", "2")


def test_one_function_says_what_is_an_sae(tmp_path):
    (tmp_path / "folder").mkdir()
    np.save(tmp_path / "D.npy", np.eye(3))
    for spec, sae in ((tmp_path / "folder", True), (tmp_path / "params.npz", True),
                      (tmp_path / "ae.pt", True), (tmp_path / "x.PTH", True),
                      (tmp_path / "D.npy", False), (tmp_path / "W.safetensors", False),
                      ("neurons:12", False), ("neurons:x.pt", False)):
        assert is_sae_spec(spec) is sae, spec
        assert is_sae_spec(str(spec)) is sae, spec
