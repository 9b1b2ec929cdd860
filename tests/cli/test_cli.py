"""The ``rip-atoms`` command line: JSON output, metrics, file formats, entry points, verify.

Every expected number is computed independently in this file with plain float64 numpy (full
Gram matrix, sorting, ``eigh``/``solve``) or scipy, never taken from the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy import optimize, stats

from rip_atoms.cli import main as cli_main

H, N = 16, 40
TOL = 1e-9  # mu, babel and top_pairs are recomputed in float64 by the library
TOL32 = 1e-5  # per-atom values are float32 (error ≤ γ_H + 2.5u ≈ 1e-6 for these H)
QUANTILE_KEYS = ["0.0", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "1.0"]


# ---------------------------------------------------------------------------------------------
# helpers and independent references
# ---------------------------------------------------------------------------------------------
def run_cli(*args, cwd: Path, exe: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = (exe or [sys.executable, "-m", "rip_atoms"]) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=180)


def _reject_constant(name: str):
    raise AssertionError(f"non-standard JSON constant {name} on stdout")


def run_json(*args, cwd: Path) -> dict:
    """Run a command with --json; stdout must be exactly one strict-JSON object."""
    r = run_cli(*args, "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout, parse_constant=_reject_constant)  # the whole of stdout
    assert isinstance(out, dict)
    assert r.stdout.count("\n") == 1 and r.stdout.endswith("\n")
    return out


def main_json(capsys, *args) -> dict:
    """In-process ``rip_atoms.cli.main`` (no interpreter start-up) for the many numeric cases;
    stdout must again be exactly one strict-JSON object."""
    capsys.readouterr()
    rc = cli_main([str(a) for a in args] + ["--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = json.loads(captured.out, parse_constant=_reject_constant)
    assert isinstance(out, dict) and captured.out.count("\n") == 1
    return out


class Ref:
    """Independent float64 coherence quantities of unit vectors (columns of U), with the
    original atom indices ``idx`` of those columns."""

    def __init__(self, U: np.ndarray, idx: np.ndarray) -> None:
        U = U / np.linalg.norm(U, axis=0)
        G = np.abs(U.T @ U)
        np.fill_diagonal(G, -np.inf)
        self.idx = np.asarray(idx)
        self.G = G
        n = G.shape[0]
        self.n = n
        self.mu = float(G.max())
        rows = np.sort(G, axis=1)[:, ::-1][:, : n - 1]  # drop the diagonal (−inf, sorts last)
        self.row_max = rows[:, 0]
        self.babel = np.cumsum(rows, axis=1).max(axis=0)
        iu = np.triu_indices(n, 1)
        self.pair_values = np.sort(G[iu])[::-1]
        self.pos = {int(a): k for k, a in enumerate(self.idx)}

    def value(self, i: int, j: int) -> float:
        return float(self.G[self.pos[i], self.pos[j]])


def ref_raw(D: np.ndarray, dead=()) -> Ref:
    live = np.array([i for i in range(D.shape[1]) if i not in set(dead)])
    return Ref(D[:, live].astype(np.float64), live)


def ref_self(D: np.ndarray, dead=()) -> Ref:
    """S̃ = (D Dᵀ)⁻¹ over the live atoms as given; cosines of W D, W = (D Dᵀ)^{-1/2} via eigh."""
    live = np.array([i for i in range(D.shape[1]) if i not in set(dead)])
    U = D[:, live].astype(np.float64)
    lam, V = np.linalg.eigh(U @ U.T)
    W = (V * lam**-0.5) @ V.T
    return Ref(W @ U, live)


def ref_acts(D: np.ndarray, X: np.ndarray) -> Ref:
    """S̃ = Σ⁻¹, Σ = XᵀX/n (uncentred); cos = dᵢᵀ S̃ dⱼ / (‖dᵢ‖_S ‖dⱼ‖_S), via a Cholesky
    factor Σ = L Lᵀ: dᵢᵀ Σ⁻¹ dⱼ = (L⁻¹dᵢ)ᵀ(L⁻¹dⱼ)."""
    sigma = X.T @ X / X.shape[0]
    L = np.linalg.cholesky(sigma)
    return Ref(np.linalg.solve(L, D), np.arange(D.shape[1]))


def welch(h: int, n: int) -> float:
    """Welch bound sqrt((N−H)/(H(N−1))); 0 when N ≤ H (orthonormal atoms are possible)."""
    return float(np.sqrt((n - h) / (h * (n - 1)))) if n > h else 0.0


def check_against(out: dict, ref: Ref, *, babel: int, top: int) -> None:
    """Compare a coherence JSON object with the independent reference."""
    assert out["mu"] == pytest.approx(ref.mu, abs=TOL)
    i, j = out["pair"]
    assert isinstance(i, int) and isinstance(j, int) and i != j
    assert ref.value(i, j) == pytest.approx(ref.mu, abs=TOL)
    assert out["welch_bound"] == pytest.approx(welch(out["dim"], ref.n), abs=1e-12)
    assert out["mu"] >= out["welch_bound"]
    # Babel: entry p-1 is μ₁(p), length min(P, N_live − 1)
    assert len(out["babel"]) == min(babel, ref.n - 1)
    np.testing.assert_allclose(out["babel"], ref.babel[: len(out["babel"])], rtol=0, atol=TOL)
    assert out["babel"][0] == pytest.approx(out["mu"], abs=TOL)
    # top pairs: R of them, descending, each value the true |cos| of its pair
    tp = out["top_pairs"]
    assert len(tp) == min(top, ref.n * (ref.n - 1) // 2)
    np.testing.assert_allclose([v for _, _, v in tp], ref.pair_values[: len(tp)], atol=TOL,
                               rtol=0)
    for a, b, v in tp:
        assert a != b
        assert v == pytest.approx(ref.value(a, b), abs=TOL)
    assert len({(min(a, b), max(a, b)) for a, b, _ in tp}) == len(tp)
    # per-atom quantiles (float32 values)
    q = out["per_atom_quantiles"]
    assert sorted(q, key=float) == QUANTILE_KEYS
    for k in QUANTILE_KEYS:
        assert q[k] == pytest.approx(float(np.quantile(ref.row_max, float(k))), abs=TOL32)
    assert q["1.0"] == pytest.approx(ref.mu, abs=TOL32)


@pytest.fixture(scope="module")
def gauss() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((H, N))


@pytest.fixture
def gauss_npy(tmp_path, gauss) -> Path:
    p = tmp_path / "dict.npy"
    np.save(p, gauss)
    return p


# ---------------------------------------------------------------------------------------------
# coherence --json
# ---------------------------------------------------------------------------------------------
REQUIRED_KEYS = {"dim", "n_atoms", "mu", "pair", "welch_bound", "babel", "per_atom_quantiles",
                 "top_pairs", "dead_atoms", "duplicate_pairs", "metric"}


def test_coherence_json_raw(tmp_path, gauss, gauss_npy):
    out = run_json("coherence", gauss_npy, "--raw", "--babel", 6, "--top", 9, cwd=tmp_path)
    assert REQUIRED_KEYS <= set(out)
    assert out["dim"] == H and out["n_atoms"] == N
    assert out["metric"]["kind"] == "raw"
    assert out["dead_atoms"] == [] and out["duplicate_pairs"] == []
    check_against(out, ref_raw(gauss), babel=6, top=9)


def test_coherence_json_self_metric_is_default(tmp_path, gauss, gauss_npy):
    out = run_json("coherence", gauss_npy, "--babel", 5, "--top", 12, cwd=tmp_path)
    assert REQUIRED_KEYS <= set(out)
    assert out["metric"]["kind"] == "dictionary"
    ref = ref_self(gauss)
    check_against(out, ref, babel=5, top=12)
    # the self metric changes the geometry: it is not the raw answer
    assert abs(out["mu"] - ref_raw(gauss).mu) > 1e-3
    # explicit `--metric self` is the same thing
    out2 = run_json("coherence", gauss_npy, "--metric", "self", "--babel", 5, "--top", 12,
                    cwd=tmp_path)
    assert out2["mu"] == out["mu"] and out2["babel"] == out["babel"]


def test_coherence_json_activations_metric(tmp_path, gauss, gauss_npy):
    r = np.random.default_rng(1)
    A = np.eye(H) + 0.5 * r.standard_normal((H, H))  # anisotropic, invertible
    X = r.standard_normal((3000, H)) @ A.T + 0.3
    acts = tmp_path / "acts.npy"
    np.save(acts, X)
    out = run_json("coherence", gauss_npy, "--metric", acts, "--babel", 4, "--top", 6,
                   "--quiet", cwd=tmp_path)
    assert out["metric"]["kind"] == "activations"
    assert out["metric"]["n_samples"] == 3000
    check_against(out, ref_acts(gauss, X), babel=4, top=6)


@pytest.mark.parametrize("top", [1, 3, 25, 780, 2000])
def test_top_pairs_length_and_values(capsys, tmp_path, gauss, gauss_npy, top):
    out = main_json(capsys, "coherence", gauss_npy, "--raw", "--top", top, "--babel", 3)
    check_against(out, ref_raw(gauss), babel=3, top=top)


@pytest.mark.parametrize("babel", [1, 2, 20, N - 1, N, 500])
def test_babel_length(capsys, tmp_path, gauss, gauss_npy, babel):
    out = main_json(capsys, "coherence", gauss_npy, "--raw", "--babel", babel, "--top", 4)
    assert len(out["babel"]) == min(babel, N - 1)
    check_against(out, ref_raw(gauss), babel=babel, top=4)


def _with_duplicates(gauss: np.ndarray) -> np.ndarray:
    D = gauss.copy()
    D[:, 7] = D[:, 3]  # exact repeat
    D[:, 11] = -2.5 * D[:, 2]  # negated and rescaled: |cos| = 1
    D[:, 30] = 0.0  # dead
    return D


@pytest.mark.parametrize("metric", ["raw", "self"])
def test_duplicates_and_dead_atoms(capsys, tmp_path, gauss, metric):
    D = _with_duplicates(gauss)
    p = tmp_path / "dups.npy"
    np.save(p, D)
    args = ["--raw"] if metric == "raw" else []
    out = main_json(capsys, "coherence", p, *args, "--top", 5, "--babel", 8)
    assert out["metric"]["kind"] == ("raw" if metric == "raw" else "dictionary")
    assert out["dead_atoms"] == [30]
    assert out["n_atoms"] == N and out["n_live"] == N - 1
    dups = {(min(i, j), max(i, j)): v for i, j, v in out["duplicate_pairs"]}
    assert set(dups) == {(3, 7), (2, 11)}
    for v in dups.values():
        assert v == pytest.approx(1.0, abs=1e-12)
    assert out["mu"] == pytest.approx(1.0, abs=1e-12)
    assert tuple(sorted(out["pair"])) in {(3, 7), (2, 11)}
    assert all(30 not in (i, j) for i, j, _ in out["top_pairs"])
    ref = (ref_raw if metric == "raw" else ref_self)(D, dead=(30,))
    check_against(out, ref, babel=8, top=5)


def test_safetensors_with_tensor_and_rows_are_atoms(capsys, tmp_path, gauss):
    D32 = gauss.astype(np.float32)
    p = tmp_path / "sae_weights.safetensors"
    save_file({"W_dec": np.ascontiguousarray(D32.T), "b_dec": np.zeros(H, np.float32),
               "W_enc": np.ascontiguousarray(D32)}, str(p))
    ref = ref_raw(D32.astype(np.float64))
    out = run_json("coherence", p, "--tensor", "W_dec", "--rows-are-atoms", "--raw",
                   "--top", 5, "--babel", 5, cwd=tmp_path)
    assert out["dim"] == H and out["n_atoms"] == N
    assert out["source"]["tensor"] == "W_dec" and out["source"]["rows_are_atoms"] is True
    check_against(out, ref, babel=5, top=5)
    # the same atoms stored H×N, without --rows-are-atoms
    out2 = main_json(capsys, "coherence", p, "--tensor", "W_enc", "--raw", "--top", 5,
                     "--babel", 5)
    assert out2["mu"] == out["mu"] and out2["babel"] == out["babel"]
    # and a one-tensor file needs no --tensor; --rows-are-atoms also works for .npy
    p1 = tmp_path / "one.safetensors"
    save_file({"decoder": np.ascontiguousarray(D32.T)}, str(p1))
    out3 = main_json(capsys, "coherence", p1, "--rows-are-atoms", "--raw", "--top", 5,
                     "--babel", 5)
    assert out3["mu"] == out["mu"]
    pn = tmp_path / "wdec.npy"
    np.save(pn, D32.T)
    out4 = main_json(capsys, "coherence", pn, "--rows-are-atoms", "--raw", "--top", 5,
                     "--babel", 5)
    assert out4["dim"] == H and out4["n_atoms"] == N and out4["mu"] == out["mu"]


def test_rows_are_atoms_matters(capsys, tmp_path, gauss, gauss_npy):
    # read the other way round, the "atoms" are the H rows in R^N
    out = main_json(capsys, "coherence", gauss_npy, "--rows-are-atoms", "--raw", "--top", 3,
                    "--babel", 3)
    assert out["dim"] == N and out["n_atoms"] == H
    check_against(out, ref_raw(gauss.T), babel=3, top=3)


@pytest.mark.parametrize("metric", [["--raw"], []], ids=["raw", "self"])
def test_neurons_have_zero_coherence(capsys, tmp_path, metric):
    out = main_json(capsys, "coherence", "neurons:8", *metric)
    assert out["dim"] == 8 and out["n_atoms"] == 8
    assert out["mu"] == 0.0
    assert out["welch_bound"] == 0.0
    assert out["babel"] == [0.0] * 7
    assert out["dead_atoms"] == [] and out["duplicate_pairs"] == []


def test_coherence_text_summary(tmp_path, gauss, gauss_npy):
    r = run_cli("coherence", gauss_npy, "--raw", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) >= 5
    assert str(gauss_npy) in r.stdout
    assert f"H = {H}, N = {N}" in r.stdout
    assert f"{ref_raw(gauss).mu:.6f}" in r.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)


def test_progress_goes_to_stderr_never_stdout(tmp_path):
    rng = np.random.default_rng(2)
    D = rng.standard_normal((32, 600))
    p = tmp_path / "big.npy"
    np.save(p, D)
    ref = ref_raw(D)
    # > 4 GEMM blocks (10 block rows → 55 block pairs); --json: stdout is pure JSON
    out = run_json("coherence", p, "--raw", "--block-size", 64, "--top", 10, "--babel", 10,
                   cwd=tmp_path)
    check_against(out, ref, babel=10, top=10)
    # without --json the progress bar is shown, on stderr only
    r = run_cli("coherence", p, "--raw", "--block-size", 64, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "gram blocks" in r.stderr
    assert "gram blocks" not in r.stdout and "\r" not in r.stdout
    assert r.stdout.startswith("dictionary")
    assert f"{ref.mu:.6f}" in r.stdout
    # --quiet: nothing at all on stderr
    r = run_cli("coherence", p, "--raw", "--block-size", 64, "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""


def test_block_size_does_not_change_the_answer(capsys, tmp_path):
    D = np.random.default_rng(3).standard_normal((12, 150))
    p = tmp_path / "d.npy"
    np.save(p, D)
    ref = ref_raw(D)
    for bs in (7, 64, 150, 4096):
        out = main_json(capsys, "coherence", p, "--raw", "--block-size", bs, "--top", 8,
                        "--babel", 6)
        check_against(out, ref, babel=6, top=8)


def test_block_size_zero_message(tmp_path, gauss_npy):
    r = run_cli("coherence", gauss_npy, "--raw", "--block-size", 0, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1
    assert "block" in r.stderr


# ---------------------------------------------------------------------------------------------
# theory
# ---------------------------------------------------------------------------------------------
def _rho_weak_reference(delta: float, nonneg: bool) -> float:
    """ρ_W(δ) = ε*/δ with ψ(ε*) = δ, ψ(ε) = min_τ ε(1+τ²) + (1−ε)·c·E[(g−τ)₊²]·... written with
    the Gaussian tail closed form E[(g−τ)₊²] = (1+τ²)Q(τ) − τφ(τ); c = 2 (signed) or 1 (≥ 0)."""
    c = 1.0 if nonneg else 2.0

    def psi(eps: float) -> float:
        def f(t: float) -> float:
            tail = (1 + t * t) * stats.norm.sf(t) - t * stats.norm.pdf(t)
            return eps * (1 + t * t) + (1 - eps) * c * tail

        return optimize.minimize_scalar(f, bounds=(0.0, 12.0), method="bounded",
                                        options={"xatol": 1e-12}).fun

    eps = optimize.brentq(lambda e: psi(e) - delta, 1e-12, delta - 1e-12, xtol=1e-15)
    return eps / delta


@pytest.mark.parametrize(("nonneg", "approx"), [(False, 0.3857), (True, 0.5582)])
def test_theory_rho_weak_json(tmp_path, nonneg, approx):
    args = ["theory", "rho-weak", "--delta", "0.5"] + (["--nonneg"] if nonneg else [])
    out = run_json(*args, cwd=tmp_path)
    assert out["rho_weak"] == pytest.approx(approx, abs=1e-4)
    assert out["rho_weak"] == pytest.approx(_rho_weak_reference(0.5, nonneg), abs=1e-7)
    assert out["nonneg"] is nonneg and out["delta"] == 0.5


def test_theory_welch_json(capsys, tmp_path):
    out = main_json(capsys, "theory", "welch", "--dim", 16, "--atoms", 40)
    assert out["welch_bound"] == pytest.approx(welch(16, 40), abs=1e-15)
    r = run_cli("theory", "welch", "--dim", 16, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and "--atoms" in r.stderr


# ---------------------------------------------------------------------------------------------
# the two entry points
# ---------------------------------------------------------------------------------------------
ENTRY_POINT = Path(sys.executable).parent / "rip-atoms"


@pytest.mark.skipif(not ENTRY_POINT.exists(), reason="no rip-atoms script next to the python")
def test_entry_point_matches_python_m(tmp_path, gauss_npy):
    def both(*args):
        a = run_cli(*args, cwd=tmp_path)
        b = run_cli(*args, cwd=tmp_path, exe=[str(ENTRY_POINT)])
        return a, b

    a, b = both("theory", "rho-weak", "--delta", "0.5", "--json")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout

    a, b = both("coherence", gauss_npy, "--json", "--top", 5)
    assert a.returncode == b.returncode == 0
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    ja.pop("seconds")
    jb.pop("seconds")
    assert ja == jb

    a, b = both("coherence", tmp_path / "missing.npy")
    assert a.returncode == b.returncode == 2
    assert a.stderr == b.stderr and a.stdout == b.stdout == ""


# ---------------------------------------------------------------------------------------------
# verify --quick (the synthetic default; the SmolLM2 default is in test_sae_llm.py, the
# report's contents in test_report.py)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verify_json(tmp_path_factory) -> dict:
    cwd = tmp_path_factory.mktemp("verify")
    return run_json("verify", "--quick", cwd=cwd)


def test_verify_json(verify_json):
    out = verify_json
    assert {"target", "coherence", "representation_shift", "rip", "spark", "recovery",
            "criteria", "tsae_window", "not_computed", "verdict"} <= set(out)
    assert "--quick" in out["target"]["description"]
    shift = out["representation_shift"]
    # the planted activations have a common offset seen through an anisotropic map: raw cosines
    # are strongly positive, under the fitted AIP they are centred on 0
    assert shift["raw"]["mean"] > 0.5
    assert abs(shift["aip"]["mean"]) < 0.05
    assert shift["aip"]["mean_angle_deg"] == pytest.approx(90.0, abs=3.0)
    assert shift["n_pairs"] == shift["n_vectors"] * (shift["n_vectors"] - 1) // 2
    coh = out["coherence"]
    for res in (coh["raw"], coh["aip"]):
        assert 0.0 < res["mu"] <= 1.0 and res["mu"] >= res["welch_bound"]
    # the AIP undoes the distortion: it is far less coherent than the raw geometry
    assert coh["aip"]["mu"] < coh["raw"]["mu"]
    assert out["not_computed"] == []


def test_verify_text_summary(tmp_path):
    r = run_cli("verify", "--quick", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert len(text.strip().splitlines()) >= 6
    for phrase in ("representation shift", "coherence", "verdict", "report.html"):
        assert phrase in text
    assert (tmp_path / "rip-atoms-report" / "report.html").exists()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
