"""`rip-atoms rip`, `spark`, `witness`: JSON contract, re-checkable numbers, exit status 2."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

from rip_atoms.cli import main

KEYS = {"k", "U_lower", "U_upper", "L_lower", "L_upper", "delta_lower", "delta_upper", "exact",
        "witness_U", "witness_L", "methods"}


@pytest.fixture
def dict_file(tmp_path):
    D = np.random.default_rng(0).standard_normal((6, 14))
    p = tmp_path / "d.npy"
    np.save(p, D)
    return p, D


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)


@pytest.mark.sensitive
def test_rip_json_entries_and_witnesses(capsys, dict_file):
    p, D = dict_file
    out = run_json(capsys, ["rip", str(p), "-k", "2,3,4", "--raw", "--budget-s", "0.5",
                            "--json"])
    assert [b["k"] for b in out["brackets"]] == [2, 3, 4]
    U = D / np.linalg.norm(D, axis=0)
    for b in out["brackets"]:
        assert KEYS <= set(b)
        assert b["U_lower"] <= b["U_upper"] and b["L_lower"] <= b["L_upper"]
        w = np.linalg.eigvalsh(U[:, b["witness_U"]].T @ U[:, b["witness_U"]])
        assert w[-1] - 1 == pytest.approx(b["U_lower"], abs=1e-12)
        # the witness command re-derives the number
        chk = run_json(capsys, ["witness", str(p), "--raw", "--json", "--support",
                                ",".join(map(str, b["witness_L"]))])
        assert chk["L"] == pytest.approx(b["L_lower"], abs=1e-12)
    assert out["brackets"][0]["exact"] is True  # δ₂ = μ


@pytest.mark.sensitive
def test_spark_json(capsys, tmp_path):
    D = np.hstack([np.eye(16), scipy.linalg.hadamard(16) / 4.0])
    p = tmp_path / "dh.npy"
    np.save(p, D)
    out = run_json(capsys, ["spark", str(p), "--raw", "--json", "--budget-s", "3"])
    assert {"lower", "upper", "exact", "witness", "methods"} <= set(out)
    assert out["lower"] == out["upper"] == 8 and out["exact"] is True
    v = np.array(out["null_vector"])
    assert np.linalg.norm(D[:, out["witness"]] @ v) < 1e-10


def test_spark_of_independent_atoms_is_null_in_json(capsys, tmp_path):
    p = tmp_path / "ind.npy"
    np.save(p, np.random.default_rng(1).standard_normal((8, 5)))
    out = run_json(capsys, ["spark", str(p), "--raw", "--json"])
    assert out["lower"] is None and out["upper"] is None  # ∞ is not JSON: null
    assert out["exact"] is True


@pytest.mark.parametrize("argv, words", [
    (["rip", "{p}", "-k", "0"], "k must be"),
    (["rip", "{p}", "-k", "99"], "exceeds"),
    (["rip", "{p}", "-k", "a,b"], "-k"),
    (["rip", "{p}", "-k", "3", "--budget-s", "0"], "budget"),
    (["witness", "{p}", "--support", "1,1"], "repeats"),
    (["witness", "{p}", "--support", "1,400"], "out of range"),
])
def test_bad_input_exit_2(dict_file, argv, words):
    p, _ = dict_file
    argv = [a.replace("{p}", str(p)) for a in argv] + ["--raw"]
    proc = subprocess.run([sys.executable, "-m", "rip_atoms", *argv], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]
    assert proc.stdout == ""


@pytest.mark.sensitive
def test_dead_atoms_rip_error_and_drop(capsys, tmp_path):
    D = np.random.default_rng(2).standard_normal((5, 12))
    D[:, 3] = 0
    p = tmp_path / "dead.npy"
    np.save(p, D)
    assert main(["rip", str(p), "-k", "3", "--raw"]) == 2
    assert "dead" in capsys.readouterr().err
    out = run_json(capsys, ["rip", str(p), "-k", "3", "--raw", "--drop-dead", "--json",
                            "--budget-s", "0.3"])
    assert 3 not in out["brackets"][0]["witness_U"]
