"""Every non-clean case the fuzz harness (tools/reliability_sweep.py) found, each pinned: a wrong δ₂
upper side on duplicate pairs, tracebacks, silently accepted bad values, messy messages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rip_atoms.coherence import coherence
from rip_atoms.errors import InsufficientMemoryError, ParameterError, ParameterTypeError
from rip_atoms.recovery import classify_recovery, phase_transition
from rip_atoms.rip import rip_bounds
from rip_atoms.spark import spark_bounds


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rip_atoms", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def one_line_error(r, *words):
    assert r.returncode == 2 and r.stdout == "", r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def D():
    return np.random.default_rng(0).standard_normal((8, 20))


@pytest.mark.sensitive
@pytest.mark.parametrize("factor", [1.0, -3.0])
def test_delta2_upper_side_is_one_on_a_duplicate_pair(D, factor):
    E = D.astype(np.float32)
    E[:, 7] = factor * E[:, 2]
    b = rip_bounds(E, 2, budget_s=0.2)[2]
    # closed form: a duplicate pair is treated as parallel, so δ₂ ≤ 1 is all that is certified
    assert b.delta_upper == 1.0 and b.U_upper == 1.0 and b.L_upper == 1.0
    assert not b.exact
    assert b.delta_lower <= 1.0


@pytest.mark.sensitive
def test_delta2_upper_side_covers_the_float64_error(D):
    b = rip_bounds(D, 2, "raw", budget_s=0.2)[2]
    U = D / np.linalg.norm(D, axis=0)
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0)
    assert b.delta_lower <= G.max() + 1e-15 and b.delta_upper >= G.max()
    assert b.delta_upper - b.delta_lower < 1e-12


@pytest.mark.parametrize("call", [
    lambda D: rip_bounds(D, 2, seed=-1),
    lambda D: spark_bounds(D, seed=-1),
    lambda D: phase_transition(8, 16, [1, 2], 1, seed=-1),
    lambda D: coherence(D, duplicate_tol=float("nan")),
    lambda D: spark_bounds(D, rank_rtol=float("nan")),
    lambda D: classify_recovery(D, np.eye(20)[:2], lp_time_limit=0),
])
def test_bad_values_are_parameter_errors(D, call):
    with pytest.raises(ParameterError):
        call(D)


def test_non_integer_counts_are_type_errors(D):
    with pytest.raises(ParameterTypeError, match="babel_p"):
        coherence(D, babel_p=2.5)


def test_phase_transition_refuses_what_cannot_fit(monkeypatch):
    monkeypatch.setenv("RIP_ATOMS_MEMORY_LIMIT", "1G")
    with pytest.raises(InsufficientMemoryError, match="100000×200000"):
        phase_transition(100000, 200000, [1], 1)


@pytest.mark.parametrize("args, words", [
    (["phase-transition", "--dim", 8, "--atoms", 16, "--k", "1:2:1", "--seed", -1], ["--seed"]),
    (["phase-transition", "--dim", 8, "--atoms", 16, "--k", "1,,2"], ["--k", "empty item"]),
])
def test_phase_transition_cli_checks(tmp_path, args, words):
    one_line_error(run_cli(*args, cwd=tmp_path), *words)


def test_criteria_no_units_left(tmp_path):
    p = tmp_path / "acts.npy"
    np.save(p, np.random.default_rng(0).standard_normal((200, 6)))
    one_line_error(run_cli("criteria", "--acts", p, "--no-neurons", "--no-l1", cwd=tmp_path),
                   "--no-neurons")


def test_criteria_errors_name_the_activations_file(tmp_path):
    X = np.random.default_rng(0).standard_normal((300, 6))
    X[17, 2] = np.nan
    p = tmp_path / "acts_nan.npy"
    np.save(p, X)
    one_line_error(run_cli("criteria", "--acts", p, "--no-l1", "--split", "tail", cwd=tmp_path),
                   str(p))


def test_huge_activations_give_one_line(tmp_path):
    rng = np.random.default_rng(0)
    d, a = tmp_path / "D.npy", tmp_path / "acts_huge.npy"
    np.save(d, rng.standard_normal((6, 12)))
    np.save(a, rng.standard_normal((100, 6)) * 1e300)
    r = run_cli("coherence", d, "--metric", a, "--json", cwd=tmp_path)
    one_line_error(r, str(a))


def test_complex_activations_are_refused_by_train(tmp_path):
    pytest.importorskip("torch")
    p = tmp_path / "acts_complex.npy"
    np.save(p, (np.random.default_rng(0).standard_normal((300, 8)) + 1j).astype(np.complex64))
    r = run_cli("train", p, "--out", tmp_path / "out", "--steps", 5, "--width", 64, "--batch", 32,
                cwd=tmp_path)
    one_line_error(r, str(p))
