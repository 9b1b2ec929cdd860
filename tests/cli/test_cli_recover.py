"""``rip-atoms recover`` and ``rip-atoms phase-transition``: JSON, per-code output, bad input.

Counts are checked against independent float64 computations in this file: the exact certificate
LP (scipy HiGHS) decides every code of a small Gaussian dictionary, and the CLI must agree.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from rip_atoms.cli import main as cli_main

H, N = 16, 40


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rip_atoms", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


def main_json(capsys, *args) -> dict:
    capsys.readouterr()
    rc = cli_main([str(a) for a in args] + ["--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert cap.out.count("\n") == 1
    return json.loads(cap.out)


def bad_input(capsys, *args) -> str:
    capsys.readouterr()
    rc = cli_main([str(a) for a in args] + ["--json"])
    cap = capsys.readouterr()
    assert rc == 2
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rip-atoms: error:")
    return lines[0]


def t_star(D: np.ndarray, delta: np.ndarray, nonneg: bool) -> float:
    """Exact certificate LP optimum (independent of the library): δ unique iff t* < 1."""
    S = np.flatnonzero(delta)
    Sc = np.setdiff1d(np.arange(D.shape[1]), S)
    C = D[:, Sc].T
    rows = [np.hstack([C, -np.ones((len(Sc), 1))])]
    if not nonneg:
        rows.append(np.hstack([-C, -np.ones((len(Sc), 1))]))
    A_ub = np.vstack(rows)
    s = np.ones(len(S)) if nonneg else np.sign(delta[S])
    c = np.zeros(D.shape[0] + 1)
    c[-1] = 1
    r = linprog(c, A_ub=A_ub, b_ub=np.zeros(len(A_ub)),
                A_eq=np.hstack([D[:, S].T, np.zeros((len(S), 1))]), b_eq=s,
                bounds=[(None, None)] * D.shape[0] + [(-1, None)], method="highs")
    assert r.status == 0
    return float(r.fun)


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((H, N))
    D /= np.linalg.norm(D, axis=0)
    C = np.zeros((10, N))
    for i, k in enumerate([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]):
        S = rng.choice(N, size=k, replace=False)
        C[i, S] = rng.uniform(0.5, 2.0, size=k)
    np.save(tmp_path / "D.npy", D)
    np.save(tmp_path / "codes.npy", C)
    sp.save_npz(tmp_path / "codes.npz", sp.csr_matrix(C))
    return tmp_path, D, C


def test_recover_json_agrees_with_the_exact_lp(files, capsys):
    tmp, D, C = files
    out = main_json(capsys, "recover", tmp / "D.npy", "--codes", tmp / "codes.npy", "--raw",
                    "--nonneg", "--out", tmp / "per_code.npz")
    for key in ("n", "certified", "failed", "undetermined", "methods", "seconds"):
        assert key in out
    assert out["n"] == 10 and out["undetermined"] == 0 and out["invalid"] == 0
    ref = np.array([t_star(D, c, True) < 1 for c in C])
    assert out["certified"] == int(ref.sum()) and out["failed"] == int((~ref).sum())
    assert sum(out["methods"].values()) == 10
    with np.load(tmp / "per_code.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["status"] == 1, ref)
    # the same codes as a scipy-sparse .npz give the same answers
    out2 = main_json(capsys, "recover", tmp / "D.npy", "--codes", tmp / "codes.npz", "--raw",
                     "--nonneg")
    assert (out2["certified"], out2["failed"]) == (out["certified"], out["failed"])


def test_recover_signed_with_metric_and_text_output(files, capsys):
    tmp, D, C = files
    Cs = C * np.where(np.arange(N) % 2, 1.0, -1.0)
    np.save(tmp / "signed.npy", Cs)
    out = main_json(capsys, "recover", tmp / "D.npy", "--codes", tmp / "signed.npy")
    assert out["metric"]["kind"] == "dictionary" and not out["nonneg"]
    assert out["certified"] + out["failed"] + out["undetermined"] == 10
    capsys.readouterr()
    assert cli_main(["recover", str(tmp / "D.npy"), "--codes", str(tmp / "signed.npy"),
                     "--raw", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "certified" in text and "undetermined" in text


def test_recover_reports_bad_codes_by_index(files, capsys):
    tmp, D, C = files
    C2 = C.copy()
    C2[3] = 0
    C2[5, 0] = -1.0
    np.save(tmp / "some_bad.npy", C2)
    capsys.readouterr()
    rc = cli_main(["recover", str(tmp / "D.npy"), "--codes", str(tmp / "some_bad.npy"), "--raw",
                   "--nonneg", "--json"])
    cap = capsys.readouterr()
    assert rc == 0
    out = json.loads(cap.out)
    assert out["invalid"] == 2
    assert [e["index"] for e in out["invalid_examples"]] == [3, 5]
    assert "code 3: empty support" in cap.err and "some_bad.npy" in cap.err


def test_recover_bad_input_exits_2_naming_the_file(files, capsys, tmp_path):
    tmp, D, C = files
    np.save(tmp / "narrow.npy", C[:, :-1])
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "narrow.npy", "--raw")
    assert "narrow.npy" in line and "39 columns" in line
    Cn = C.copy()
    Cn[4, 2] = np.inf
    np.save(tmp / "inf.npy", Cn)
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "inf.npy", "--raw")
    assert "inf.npy" in line and "code 4" in line
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "missing.npy", "--raw")
    assert "missing.npy" in line and "no such file" in line
    (tmp / "codes.txt").write_text("1 2 3")
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "codes.txt", "--raw")
    assert "codes.txt" in line
    with open(tmp / "pickled.npy", "wb") as fh:
        np.save(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "pickled.npy", "--raw")
    assert "pickled.npy" in line and "pickle" in line
    np.savez(tmp / "dense.npz", a=C)
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "dense.npz", "--raw")
    assert "dense.npz" in line and "save_npz" in line
    (tmp / "evil.npz").write_bytes(pickle.dumps({"x": 1}))
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "evil.npz", "--raw")
    assert "evil.npz" in line
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "codes.npy", "--raw",
                     "--out", tmp / "no_such_folder" / "out.npz")
    assert "out.npz" in line and "cannot write" in line
    np.save(tmp / "neg.npy", -np.abs(C))
    line = bad_input(capsys, "recover", tmp / "D.npy", "--codes", tmp / "neg.npy", "--raw",
                     "--nonneg")
    assert "neg.npy" in line and "negative" in line


def test_phase_transition_json_and_bad_k(tmp_path, capsys):
    out = main_json(capsys, "phase-transition", "--dim", 20, "--atoms", 40, "--k", "2:18:4",
                    "--trials", 4, "--seed", 1)
    assert out["k"] == [2, 6, 10, 14, 18]
    assert len(out["success_rate"]) == 5
    assert out["rho_weak"] == pytest.approx(0.3856896661814809, rel=1e-9)
    assert out["k_weak"] == pytest.approx(0.3856896661814809 * 20, rel=1e-9)
    assert "k50_empirical" in out
    out = main_json(capsys, "phase-transition", "--dim", 20, "--atoms", 40, "--k", "3,9",
                    "--trials", 2, "--nonneg")
    assert out["k"] == [3, 9] and out["nonneg"]
    line = bad_input(capsys, "phase-transition", "--dim", 20, "--atoms", 40, "--k", "9:3",
                     "--trials", 2)
    assert "--k 9:3" in line
    bad_input(capsys, "phase-transition", "--dim", 20, "--atoms", 40, "--k", "x", "--trials", 2)
    bad_input(capsys, "phase-transition", "--dim", 20, "--atoms", 40, "--k", "0:4",
              "--trials", 2)


def test_entry_point_prints_one_json_object(files):
    tmp, D, C = files
    r = run_cli("recover", "D.npy", "--codes", "codes.npz", "--raw", "--nonneg", "--json",
                cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1
    out = json.loads(r.stdout)
    assert out["n"] == 10


@pytest.mark.slow
def test_recover_workers_and_torch_engine_give_the_same_per_code_results(files):
    """``--workers 2`` (a LocalCluster, as a subprocess: spawned workers re-import the main
    module) and ``--engine torch --device cpu`` write the per-code file of a plain run."""
    tmp, D, C = files
    base = ["recover", tmp / "D.npy", "--codes", tmp / "codes.npy", "--raw", "--nonneg",
            "--chunk-size", "3", "--json"]
    runs = {"plain": [], "workers": ["--workers", "2"]}
    try:
        import torch  # noqa: F401

        runs["torch"] = ["--engine", "torch", "--device", "cpu"]
    except ImportError:
        pass
    status = {}
    for name, extra in runs.items():
        out = tmp / f"{name}.npz"
        r = run_cli(*base, *extra, "--out", out, cwd=tmp)
        assert r.returncode == 0, r.stderr
        with np.load(out, allow_pickle=False) as z:
            status[name] = (z["status"].copy(), z["method"].copy(), z["witness_indices"].copy())
    for name in runs:
        for a, b in zip(status["plain"], status[name], strict=True):
            np.testing.assert_array_equal(a, b)
    r = run_cli(*base, "--device", "cpu", cwd=tmp)
    assert r.returncode == 2 and "--device needs --engine torch" in r.stderr
