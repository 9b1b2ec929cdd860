"""Theorems 6-9, the AIP geometry under invertible maps: invariance of AIP cosines (the fitted
metric and the raw-atom self metric hold; the unit-column self metric fails), the whitened
dictionary as a Parseval frame, and the spark's invariance under whitening."""

from __future__ import annotations

import numpy as np

from rip_atoms.metric import AIPMetric, fit_metric
from rip_atoms.synthetic import (
    activations_with_moment,
    random_invertible,
    second_moment_matrix,
)
from rip_atoms.theorems.examples import example_size
from rip_atoms.theorems.framework import Theorem, Verdict
from rip_atoms.theorems.linear_algebra import enumerate_spark, rel_sigma_min, whitening_root


# ============================================================================== 6-7. invariance
def _draw_invariance(rng: np.random.Generator, i: int) -> dict:
    H = int(rng.integers(1, 7)) if i >= 8 else int(rng.integers(1, 3))
    N = int(rng.integers(H, H + 4)) if i >= 8 else H + int(rng.integers(0, 2))
    n = int(rng.integers(H + 2, 4 * H + 8))
    X = activations_with_moment(rng, n, second_moment_matrix(
        rng, H, offset=float(rng.uniform(0, 4)), decay=float(rng.uniform(0, 2))))
    X = X + 0.01 * rng.standard_normal(X.shape)  # not exactly the planted moment: any X works
    A = random_invertible(rng, H, float(rng.uniform(1.0, 100.0)))
    return {"X": X, "A": A, "D": rng.standard_normal((H, N)) * rng.uniform(0.2, 5.0, size=N),
            "u": rng.standard_normal(H), "v": rng.standard_normal(H)}


def _cos(metric: AIPMetric, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return metric.cosine(a, b)


def _pair_cosines(metric: AIPMetric, D: np.ndarray) -> np.ndarray:
    Dt = metric.W @ D
    Dt = Dt / np.linalg.norm(Dt, axis=0)
    return Dt.T @ Dt


def _invariance_setup(ex: dict):
    X, A, D = np.asarray(ex["X"], float), np.asarray(ex["A"], float), np.asarray(ex["D"], float)
    H = X.shape[1]
    if rel_sigma_min(A) < 1e-6:
        return Verdict("discard", "A is not (numerically) invertible")
    if X.shape[0] < H or rel_sigma_min(X) < 1e-6:
        return Verdict("discard", "the second moment of X is (numerically) singular")
    for M in (D, A @ D):
        if M.shape[1] < H or min(rel_sigma_min(M.T),
                                 rel_sigma_min((M / np.linalg.norm(M, axis=0)).T)) < 1e-5:
            return Verdict("discard", "D (or A D) does not have full row rank")
    return None


def _check_invariance(ex: dict) -> Verdict:
    v = _invariance_setup(ex)
    if v is not None:
        return v
    X, A, D = np.asarray(ex["X"], float), np.asarray(ex["A"], float), np.asarray(ex["D"], float)
    u, w = np.asarray(ex["u"], float), np.asarray(ex["v"], float)
    m1 = fit_metric(X)
    m2 = fit_metric(X @ A.T)
    d_fit = float(abs(_cos(m2, A @ u, A @ w) - _cos(m1, u, w)))
    # the fitted metric transforms as S̃' = A⁻ᵀ S̃ A⁻¹
    Ainv = np.linalg.inv(A)
    d_cov = float(np.max(np.abs(m2.S - Ainv.T @ m1.S @ Ainv)) / np.max(np.abs(m2.S)))
    s1 = AIPMetric.from_dictionary(D, atoms="raw")
    s2 = AIPMetric.from_dictionary(A @ D, atoms="raw")
    d_self = float(np.max(np.abs(_pair_cosines(s2, A @ D) - _pair_cosines(s1, D))))
    worst = max(d_fit, d_self)
    # rounding: the eigendecompositions lose ~ u·cond of the inverted matrices
    tol = 1e-13 * max(m2.condition_number, s2.condition_number, m1.condition_number,
                      s1.condition_number, 1.0)
    detail = {"X_shape": list(X.shape), "A": A, "D": D, "u": u, "v": w,
              "fit_difference": d_fit, "self_raw_difference": d_self,
              "metric_transform_difference": d_cov, "tolerance": tol}
    if worst <= tol and d_cov <= tol:
        return Verdict("pass", stats={"max_difference": worst, "max_difference_over_tolerance":
                                      max(worst, d_cov) / tol})
    return Verdict("fail", "an AIP cosine changed under x ↦ A x", detail, example_size(D))


def _check_invariance_unit(ex: dict) -> Verdict:
    v = _invariance_setup(ex)
    if v is not None:
        return v
    A, D = np.asarray(ex["A"], float), np.asarray(ex["D"], float)
    s1 = AIPMetric.from_dictionary(D, atoms="unit")  # Euclidean-unit columns
    s2 = AIPMetric.from_dictionary(A @ D, atoms="unit")
    diff = np.abs(_pair_cosines(s2, A @ D) - _pair_cosines(s1, D))
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    tol = 1e-13 * max(s1.condition_number, s2.condition_number, 1.0)
    if diff[i, j] <= max(tol, 1e-12):
        return Verdict("pass", stats={"max_difference": float(diff[i, j])})
    detail = {"A": A, "D": D, "atoms": [int(i), int(j)],
              "cos_before": float(_pair_cosines(s1, D)[i, j]),
              "cos_after": float(_pair_cosines(s2, A @ D)[i, j]),
              "euclidean_norms_before": np.linalg.norm(D, axis=0),
              "euclidean_norms_after": np.linalg.norm(A @ D, axis=0)}
    return Verdict("fail", "the unit-column self metric changed an AIP cosine", detail,
                   example_size(D))


_INV_HYP = ("A invertible", "the second moment of X invertible (ridge 0)",
            "D of full row rank (for the self metric)")

INVARIANCE = Theorem(
    name="aip_invariance",
    statement="For invertible A: the metric fitted on X Aᵀ is S̃' = A⁻ᵀS̃A⁻¹ and "
              "⟨Au, Av⟩_{S̃'} = ⟨u, v⟩_{S̃} (S̃ fitted on X, ridge 0); likewise for the self "
              "metric on the raw atoms, S̃ = (D Dᵀ)⁻¹ vs S̃' = (A D Dᵀ Aᵀ)⁻¹, every AIP cosine "
              "between atoms is unchanged.",
    hypotheses=_INV_HYP,
    source="docs/design.md AIP metric; Hu et al. (invariance)",
    draw=_draw_invariance, check=_check_invariance)

INVARIANCE_UNIT = Theorem(
    name="aip_invariance_unit_columns",
    statement="For invertible A, the self metric built from Euclidean-unit columns, "
              "S̃ = (D_u D_uᵀ)⁻¹ with D_u = D diag(1/‖dⱼ‖₂) "
              "(AIPMetric.from_dictionary(D, atoms='unit')), gives the same AIP cosines between "
              "the atoms of A D as between those of D.",
    hypotheses=_INV_HYP,
    source="rip_atoms.metric.AIPMetric.from_dictionary(atoms='unit')",
    draw=_draw_invariance, check=_check_invariance_unit,
    expected="fails",
    corrected_statement="Invariance holds for the self metric on the raw atoms "
                        "(from_dictionary(D, atoms='raw')) and for the activation-fitted metric; "
                        "the unit-column self metric is invariant only under maps that scale "
                        "every atom's Euclidean norm by the same factor (e.g. scaled orthogonal "
                        "A), or when N = H (then every atom pair is AIP-orthogonal). The "
                        "smallest counterexample has H = 2, N = 3.",
    corrected_by="aip_invariance")


# ============================================================================== 8. Parseval
def _draw_parseval(rng: np.random.Generator, i: int) -> dict:
    H = int(rng.integers(1, 9))
    N = int(rng.integers(max(1, H - 1), H + 8))
    D = rng.standard_normal((H, N)) * rng.uniform(0.1, 10.0, size=N)
    if rng.random() < 0.3:
        D = random_invertible(rng, H, float(rng.uniform(1, 1e3))) @ D
    return {"D": D}


def _check_parseval(ex: dict) -> Verdict:
    D = np.asarray(ex["D"], float)
    H, N = D.shape
    if N < H or min(rel_sigma_min(D.T),
                    rel_sigma_min((D / np.linalg.norm(D, axis=0)).T)) < 1e-5:
        return Verdict("discard", "D does not have full row rank")
    out = {}
    for atoms, M in (("raw", D), ("unit", D / np.linalg.norm(D, axis=0))):
        m = AIPMetric.from_dictionary(D, atoms=atoms)
        F = m.W @ M
        cond = m.condition_number
        P = M.T @ m.S @ M
        out[atoms] = {
            "parseval_error": float(np.linalg.norm(F @ F.T - np.eye(H), 2)),
            "projector_error": float(np.linalg.norm(P @ P - P, 2)),
            "trace_error": float(abs(np.trace(P) - H)),
            "tolerance": 1e-12 * H * max(cond, 1.0),
        }
    bad = [k for k, r in out.items()
           if max(r["parseval_error"], r["projector_error"], r["trace_error"]) > r["tolerance"]]
    if bad:
        return Verdict("fail", f"W D is not a Parseval frame ({bad[0]} atoms)",
                       {"D": D, "errors": out}, example_size(D))
    return Verdict("pass", stats={"max_parseval_error": max(r["parseval_error"]
                                                            for r in out.values())})


PARSEVAL = Theorem(
    name="whitening_parseval",
    statement="If D has full row rank and S̃ = (D Dᵀ)⁻¹, W = S̃^{1/2}, then W D is a Parseval "
              "frame, (W D)(W D)ᵀ = I_H, and Dᵀ S̃ D is the orthogonal projector onto the row "
              "space of D (trace H); the same holds for the unit-column self metric applied to "
              "the unit columns. (The AIP-normalised atoms W dⱼ/‖W dⱼ‖ are not a Parseval "
              "frame in general.)",
    hypotheses=("D of full row rank",),
    source="Hu et al. (tight frame)",
    draw=_draw_parseval, check=_check_parseval)


# ============================================================================== 9. spark
def _draw_spark(rng: np.random.Generator, i: int) -> dict:
    H = int(rng.integers(1, 6))
    N = int(rng.integers(max(2, H - 1), H + 4))
    D = rng.standard_normal((H, N))
    t = int(rng.integers(2, min(N, H + 1) + 1)) if rng.random() < 0.8 and N >= 2 else 0
    if t:
        idx = rng.permutation(N)[:t]
        coef = rng.choice([-1.0, 1.0], t - 1) * rng.uniform(0.5, 2.0, t - 1)
        D[:, idx[-1]] = D[:, idx[:-1]] @ coef
    D = D * rng.uniform(0.2, 5.0, size=N)
    if rng.random() < 0.5:  # (the draws in this order: the examples are seeded)
        W = whitening_root(np.linalg.inv(second_moment_matrix(rng, H,
                                                              offset=float(rng.uniform(0, 3)))))
    else:
        W = random_invertible(rng, H, float(rng.uniform(1, 100)))
    return {"D": D, "W": W, "planted_circuit": t}


def _check_spark(ex: dict) -> Verdict:
    D, W = np.asarray(ex["D"], float), np.asarray(ex["W"], float)
    if rel_sigma_min(W) < 1e-6:
        return Verdict("discard", "W is not (numerically) invertible")
    s1, T1, a1 = enumerate_spark(D)
    s2, T2, a2 = enumerate_spark(W @ D)
    if a1 or a2:
        return Verdict("discard", "a subset is numerically ambiguous")
    detail = {"D": D, "W": W, "spark": s1, "spark_whitened": s2, "circuit": T1,
              "circuit_whitened": T2}
    if s1 != s2:
        return Verdict("fail", "spark(W D) ≠ spark(D)", detail, example_size(D))
    return Verdict("pass", detail=detail)


SPARK = Theorem(
    name="spark_whitening_invariance",
    statement="spark(W D) = spark(D) for every invertible W (in particular the AIP whitening "
              "S̃^{1/2}); column scaling does not change it either, so the spark of the "
              "AIP-normalised atoms is the spark of D (by enumeration of all subsets).",
    hypotheses=("W invertible",),
    source="Hu et al.; docs/design.md spark",
    draw=_draw_spark, check=_check_spark)
