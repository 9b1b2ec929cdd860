"""Theorems 1-3, consequences of a small AIP coherence μ: the RIP of order K (Gershgorin),
uniqueness of K-sparse codes (spark > 2K), and exact ℓ1 recovery (Tropp's ERC, basis pursuit)."""

from __future__ import annotations

import math

import numpy as np

from rip_atoms.synthetic import sparse_code_matrix
from rip_atoms.theorems.examples import draw_unit_dictionary, example_size, observe
from rip_atoms.theorems.framework import ENUM_MAX, HYP_MARGIN, INDEP_RTOL, Theorem, Verdict
from rip_atoms.theorems.linear_algebra import (
    aip_unit_atoms,
    combos,
    exact_delta_k,
    max_abs_coherence,
)
from rip_atoms.theory import uniqueness_holds


# ============================================================================== 1. RIP
def _draw_rip(rng: np.random.Generator, i: int) -> dict:
    Dt, fam = draw_unit_dictionary(rng)
    D, S, how = observe(rng, Dt)
    K = int(rng.integers(2, min(Dt.shape[1], 5) + 1)) if Dt.shape[1] >= 2 else 1
    return {"D": D, "S": S, "K": K, "family": fam, "metric": how}


def _check_rip(ex: dict) -> Verdict:
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    Dt = aip_unit_atoms(D, S)
    N = Dt.shape[1]
    if not 2 <= K <= N:
        return Verdict("discard", "need 2 ≤ K ≤ N")
    if math.comb(N, K) > ENUM_MAX:
        return Verdict("discard", "too many supports to enumerate")
    eps, pair = max_abs_coherence(Dt)
    if not (K - 1) * eps < 1 - HYP_MARGIN:
        return Verdict("discard", "(K − 1)ε ≥ 1")
    delta, supp = exact_delta_k(Dt, K)
    bound = (K - 1) * eps
    detail = {"D": D, "S": S, "K": K, "eps": eps, "pair": pair, "delta_K": delta,
              "witness_support": supp, "bound": bound, "family": ex.get("family")}
    ratio = delta / bound if bound > 1e-9 else None
    if delta <= bound * (1 + 1e-9) + 1e-12:
        return Verdict("pass", detail=detail, stats={"max_delta_over_bound": ratio})
    return Verdict("fail", f"δ_K = {delta:.6g} > (K − 1)ε = {bound:.6g}", detail,
                   example_size(D, K))


RIP = Theorem(
    name="rip_from_coherence",
    statement="If the AIP-normalised atoms satisfy |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε (i ≠ j) and (K − 1)ε < 1, "
              "then D has the RIP of order K with δ_K ≤ (K − 1)ε: "
              "(1 − δ_K)‖δ‖² ≤ ‖Dδ‖²_S ≤ (1 + δ_K)‖δ‖² for every K-sparse δ over AIP-unit atoms "
              "(δ_K = max_{|S|=K} max(λmax(G_S) − 1, 1 − λmin(G_S)), by enumeration).",
    hypotheses=("AIP-normalised atoms", "ε = max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩|", "(K − 1)ε < 1"),
    source="Hu et al. (Gershgorin); docs/design.md RIP",
    draw=_draw_rip, check=_check_rip)


# ============================================================================== 2. uniqueness
def max_certified_k(mu: float, cap: int) -> int:
    """The largest K ≤ cap with (2K − 1)μ < 1 (0 if none), by direct tests; bounded work for
    every μ ≥ 0 (μ that certify more than ``cap`` return ``cap``)."""
    if (2 * cap - 1) * mu < 1:
        return int(cap)
    k = int(0.5 * (1.0 / mu + 1.0))  # here 1/μ ≤ 2·cap − 1: no overflow, no long loop
    while k > 0 and (2 * k - 1) * mu >= 1:
        k -= 1
    while k < cap and (2 * k + 1) * mu < 1:
        k += 1
    return k


def _draw_sparse(rng: np.random.Generator, i: int, *, signs: str | None = None,
                 k_max: int | None = None) -> dict:
    Dt, fam = draw_unit_dictionary(rng)
    D, S, how = observe(rng, Dt)
    mu = max_abs_coherence(aip_unit_atoms(D, S))[0]
    kc = max_certified_k(mu, min(Dt.shape[1], k_max or Dt.shape[1]))
    # mostly the largest K the hypothesis allows (the boundary), sometimes one more (discarded)
    K = max(1, kc + int(rng.choice([0, 0, 0, -1, 1])))
    K = min(K, Dt.shape[1])
    sg = signs or str(rng.choice(["signed", "nonneg"]))
    code = sparse_code_matrix(rng, 1, Dt.shape[1], int(rng.integers(1, K + 1)),
                              magnitude=(0.2, 2.0), signs=sg)[0]
    return {"D": D, "S": S, "K": K, "code": code, "signs": sg, "family": fam, "metric": how}


def _check_uniqueness(ex: dict) -> Verdict:
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    code = np.asarray(ex["code"], float)
    Dt = aip_unit_atoms(D, S)
    H, N = Dt.shape
    supp = np.flatnonzero(code)
    if K < 1 or supp.size == 0 or supp.size > K:
        return Verdict("discard", "need 1 ≤ ‖δ‖₀ ≤ K")
    eps, _ = max_abs_coherence(Dt)
    if not uniqueness_holds(eps, K) or (2 * K - 1) * eps >= 1 - HYP_MARGIN:
        return Verdict("discard", "μ ≥ 1/(2K − 1)")
    t = min(2 * K, N)
    k = min(K, N)
    if math.comb(N, t) > ENUM_MAX or math.comb(N, k) > ENUM_MAX:
        return Verdict("discard", "too many subsets to enumerate")
    # (a) spark > 2K: every set of min(2K, N) atoms is independent (batched Gram spectra)
    T_all = combos(N, t)
    w = np.linalg.eigvalsh(np.einsum("hbi,hbj->bij", Dt[:, T_all], Dt[:, T_all]))
    b = int(np.argmin(w[:, 0] / w[:, -1]))
    lam_min = float(w[b, 0])
    rel = math.sqrt(max(lam_min, 0.0) / float(w[b, -1]))
    detail = {"D": D, "S": S, "K": K, "code": code, "eps": eps, "min_lambda_2K": lam_min,
              "min_rel_sigma_2K": rel, "subset": T_all[b]}
    if rel <= INDEP_RTOL:
        return Verdict("fail", f"atoms {T_all[b].tolist()} are (numerically) dependent: "
                       "spark ≤ 2K", detail, example_size(D, K))
    # (b) no other support of size ≤ K represents y = D̃ δ
    y = Dt @ code
    C = combos(N, k)
    Gs = np.einsum("hbi,hbj->bij", Dt[:, C], Dt[:, C])
    rhs = np.einsum("hbi,h->bi", Dt[:, C], y)
    coef = np.linalg.solve(Gs, rhs[..., None])[..., 0]
    resid = np.linalg.norm(y[:, None] - np.einsum("hbi,bi->hb", Dt[:, C], coef), axis=0)
    ny = np.linalg.norm(y)
    for b in np.flatnonzero(resid <= 1e-9 * ny):
        other = np.zeros(N)
        other[C[b]] = coef[b]
        if np.max(np.abs(other - code)) > 1e-7 * np.max(np.abs(code)):
            detail["other_code"] = other
            return Verdict("fail", "another code with ≤ K non-zeros represents y", detail,
                           example_size(D, K))
    # Gershgorin: λmin(G_T) ≥ 1 − (|T| − 1)μ; the ratio shows how tight that is (≤ 1)
    lam_all = float(w[:, 0].min())
    return Verdict("pass", detail=detail, stats={
        "max_gershgorin_over_lambda_min": (1.0 - (t - 1) * eps) / lam_all})


UNIQUENESS = Theorem(
    name="uniqueness_from_coherence",
    statement="If μ < 1/(2K − 1) then spark(D) > 2K, and every code δ with ‖δ‖₀ ≤ K is the "
              "unique representation of y = D̃δ with at most K non-zeros (checked by "
              "enumerating every set of 2K atoms and every support of size K).",
    hypotheses=("AIP-normalised atoms", "μ < 1/(2K − 1)", "1 ≤ ‖δ‖₀ ≤ K"),
    source="Hu et al.; Donoho–Elad 2003, Gribonval–Nielsen 2003",
    draw=_draw_sparse, check=_check_uniqueness)


# ============================================================================== 3. ℓ1 recovery
def basis_pursuit_lp(Dt: np.ndarray, y: np.ndarray, nonneg: bool) -> np.ndarray:
    """min ‖x‖₁ s.t. D̃x = y (signed, as u − v with u, v ≥ 0) or min 𝟙ᵀx s.t. D̃x = y, x ≥ 0,
    through scipy's HiGHS (an independent solver; the library's own is rip_atoms.recovery)."""
    from scipy.optimize import linprog

    H, N = Dt.shape
    if nonneg:
        res = linprog(np.ones(N), A_eq=Dt, b_eq=y, bounds=(0, None), method="highs")
        return res.x if res.status == 0 else np.full(N, np.nan)
    res = linprog(np.ones(2 * N), A_eq=np.hstack([Dt, -Dt]), b_eq=y, bounds=(0, None),
                  method="highs")
    return res.x[:N] - res.x[N:] if res.status == 0 else np.full(N, np.nan)


def erc(Dt: np.ndarray, supp: np.ndarray) -> float:
    """Tropp's exact recovery coefficient max_{l∉S} ‖D̃_S⁺ d̃ₗ‖₁ (0 when S is everything)."""
    rest = np.setdiff1d(np.arange(Dt.shape[1]), supp)
    if rest.size == 0:
        return 0.0
    P = np.linalg.lstsq(Dt[:, supp], Dt[:, rest], rcond=None)[0]
    return float(np.abs(P).sum(axis=0).max())


def _check_l1(ex: dict) -> Verdict:
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    code = np.asarray(ex["code"], float)
    nonneg = ex.get("signs") == "nonneg"
    if nonneg and code.min() < 0:
        return Verdict("discard", "non-negative reading needs δ ≥ 0")
    Dt = aip_unit_atoms(D, S)
    supp = np.flatnonzero(code)
    if K < 1 or supp.size == 0 or supp.size > K:
        return Verdict("discard", "need 1 ≤ ‖δ‖₀ ≤ K")
    eps, _ = max_abs_coherence(Dt)
    if not uniqueness_holds(eps, K) or (2 * K - 1) * eps >= 1 - HYP_MARGIN:
        return Verdict("discard", "μ ≥ 1/(2K − 1)")
    e = erc(Dt, supp)
    x = basis_pursuit_lp(Dt, Dt @ code, nonneg)
    err = float(np.max(np.abs(x - code)) / np.max(np.abs(code)))
    detail = {"D": D, "S": S, "K": K, "code": code, "nonneg": nonneg, "eps": eps, "erc": e,
              "bp_solution": x, "relative_error": err}
    if not e < 1:
        return Verdict("fail", f"ERC = {e:.6g} ≥ 1 although (2K − 1)μ < 1", detail,
                       example_size(D, K))
    if not err <= 1e-6:
        return Verdict("fail", f"basis pursuit returned a different x (error {err:.3g})",
                       detail, example_size(D, K))
    return Verdict("pass", detail=detail, stats={"max_erc": e, "max_relative_error": err})


L1 = Theorem(
    name="l1_recovery_from_coherence",
    statement="If μ < 1/(2K − 1), basis pursuit over the AIP-normalised atoms recovers every "
              "code with ‖δ‖₀ ≤ K exactly (signed: min ‖x‖₁ s.t. D̃x = D̃δ; non-negative codes: "
              "min 𝟙ᵀx s.t. D̃x = D̃δ, x ≥ 0), because Tropp's ERC "
              "max_{l∉S} ‖D̃_S⁺ d̃ₗ‖₁ ≤ Kμ/(1 − (K − 1)μ) < 1.",
    hypotheses=("AIP-normalised atoms", "μ < 1/(2K − 1)", "1 ≤ ‖δ‖₀ ≤ K"),
    source="Hu et al.; Donoho–Elad 2003, Tropp 2004",
    draw=_draw_sparse, check=_check_l1)
