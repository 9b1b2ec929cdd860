"""`rip-atoms theorems` and `rip-atoms criteria`: JSON contract, values against independent
computations, exit status 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from rip_atoms.cli import main
from rip_atoms.testing.generators import planted_atom_set


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("criteria")
    rng = np.random.default_rng(4)
    p = planted_atom_set(rng, 16, 16, 2, 400, eps=0.05, magnitude=(1.0, 1.5),
                         scale_range=(0.5, 2.0))
    np.save(tmp / "acts.npy", p.activations)
    np.save(tmp / "W_dec.npy", p.dictionary.T.copy())  # N×H, like an SAE
    sp.save_npz(tmp / "codes.npz", sp.csr_matrix(p.codes))
    np.save(tmp / "codes.npy", p.codes)
    bias = rng.standard_normal(16)
    np.save(tmp / "acts_b.npy", p.activations + bias)
    np.save(tmp / "b_dec.npy", bias)
    np.save(tmp / "wide.npy", rng.standard_normal((20, 16)))  # N×H with N = 20
    np.save(tmp / "short_codes.npy", p.codes[:10])
    return tmp, p


def test_theorems_json(capsys):
    out = run_json(capsys, ["theorems", "--max-examples", "20", "--seed", "3", "--json",
                            "--quiet"])
    names = [t["name"] for t in out["theorems"]]
    assert "rip_from_coherence" in names and "tsae_exact_reconstruction" in names
    for t in out["theorems"]:
        assert {"name", "statement", "examples", "passed", "counterexample"} <= set(t)
        assert t["examples"] == 20
        if t["expected"] == "holds":
            assert t["passed"] is True and t["counterexample"] is None
        else:
            assert t["passed"] is False and t["counterexample"] is not None
    assert out["all_as_documented"] is True and out["seed"] == 3


def test_theorems_only_and_text(capsys):
    assert main(["theorems", "--max-examples", "5", "--only", "whitening_parseval",
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "whitening_parseval" in text and "all as documented: True" in text


def test_criteria_json_on_planted(capsys, files):
    tmp, p = files
    out = run_json(capsys, ["criteria", "--acts", str(tmp / "acts.npy"), "--units", "neurons",
                            f"atoms={tmp / 'W_dec.npy'}:rows,codes={tmp / 'codes.npz'}",
                            "--l1-tokens", "30", "--json", "--quiet"])
    rows = {r["name"]: r for r in out["rows"]}
    assert list(rows) == ["neurons", "atoms"]
    a = rows["atoms"]
    assert abs(a["r2_aip"] - 1) < 1e-9 and abs(a["r2_euclidean"] - 1) < 1e-9
    assert a["mean_l0"] == 2.0 and a["l1_sampled"] == 30 and a["kind"] == "atoms"
    # μ under the metric fitted on the fit tokens, recomputed here
    X = p.activations[np.sort(np.random.default_rng(0).permutation(400)[:200])]
    S = np.linalg.inv(X.T @ X / 200)
    lam, V = np.linalg.eigh(S)
    Wd = ((V * np.sqrt(lam)) @ V.T) @ p.dictionary
    U = Wd / np.linalg.norm(Wd, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0)
    assert a["mu"] == pytest.approx(G.max(), rel=1e-9)
    assert a["q_star_quantile"] == (1.0 if 3 * G.max() < 1 else a["q_star_quantile"])
    assert rows["neurons"]["r2_aip"] == 1.0 and rows["neurons"]["q_star_quantile"] == 0.0
    assert out["split"]["n_eval"] == 200 and out["acts"]["shape"] == [400, 16]
    assert "stability" in a and "faithfulness" in a


def test_criteria_dense_codes_bias_and_brief(capsys, files):
    tmp, p = files
    out = run_json(capsys, ["criteria", "--acts", str(tmp / "acts_b.npy"), "--units",
                            f"feat={tmp / 'W_dec.npy'}:rows,codes={tmp / 'codes.npy'},"
                            f"bias={tmp / 'b_dec.npy'},kind=features", "--no-neurons",
                            "--no-l1", "--brief", "--json", "--quiet", "--split", "tail"])
    (r,) = out["rows"]
    assert r["name"] == "feat" and r["kind"] == "features"
    assert abs(r["r2_aip"] - 1) < 1e-9 and r["l1_certified_fraction"] is None
    assert "stability" not in r and out["split"]["mode"] == "tail"


def test_criteria_text(capsys, files):
    tmp, _ = files
    assert main(["criteria", "--acts", str(tmp / "acts.npy"), "--no-l1", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("unit set") and "neurons" in text


@pytest.mark.parametrize("units, words", [
    (["atoms"], "NAME=DICT"),
    (["atoms={d}:rows,codes={t}/nope.npz"], "no such file"),
    (["atoms={d}:rows,color=red"], "unknown key"),
    (["atoms={t}/wide.npy"], "add ':rows'"),  # N×H file read as H×N
    (["atoms={d}:rows,codes={t}/short_codes.npy"], "codes of shape"),
    (["atoms={d}:rows,bias={t}/codes.npy"], "decoder bias"),
])
def test_criteria_bad_input_exit_2(files, units, words):
    tmp, _ = files
    units = [u.format(d=tmp / "W_dec.npy", t=tmp) for u in units]
    proc = subprocess.run([sys.executable, "-m", "rip_atoms", "criteria", "--acts",
                           str(tmp / "acts.npy"), "--units", *units, "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr


def test_theorems_bad_input_exit_2():
    for argv in (["--max-examples", "0"], ["--only", "nope"]):
        proc = subprocess.run([sys.executable, "-m", "rip_atoms", "theorems", *argv, "--json"],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1
