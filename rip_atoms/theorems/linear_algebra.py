"""The exact quantities the theorems are checked against, in float64 and by brute force on small
dictionaries: the AIP-normalised atoms, coherence, δ_k by enumerating every support, and the spark
by enumerating every subset."""

from __future__ import annotations

import itertools
import math

import numpy as np

from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.metric import AIPMetric
from rip_atoms.theorems.framework import DEP_RTOL, INDEP_RTOL


def whitening_root(S: np.ndarray) -> np.ndarray:
    lam, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(lam)) @ V.T


def _given_metric(S: np.ndarray) -> AIPMetric:
    """S̃ as given (an example's metric) as an :class:`AIPMetric`, W = S̃^{1/2} from S̃ itself."""
    S = np.asarray(S, dtype=np.float64)
    lam = np.linalg.eigvalsh(0.5 * (S + S.T))
    return AIPMetric(S=S, W=whitening_root(S), moment_eigenvalues=np.sort(1.0 / lam), kind="given")


def aip_unit_atoms(D: np.ndarray, S: np.ndarray | None) -> np.ndarray:
    """D̃ (H×N, float64): columns W dⱼ/‖W dⱼ‖ with W = S̃^{1/2} (Euclidean when S is None) — the
    corrected atoms of :class:`~rip_atoms.corrected_atoms.CorrectedAtoms` under S̃."""
    metric = None if S is None else _given_metric(S)
    return CorrectedAtoms(D, metric, rows=False, rows64=True, min_live=0).cols64


def max_abs_coherence(Dt: np.ndarray) -> tuple[float, tuple[int, int]]:
    G = np.abs(Dt.T @ Dt)
    np.fill_diagonal(G, -1.0)
    i, j = np.unravel_index(int(np.argmax(G)), G.shape)
    return (float(max(G[i, j], 0.0)), (int(min(i, j)), int(max(i, j)))) if Dt.shape[1] > 1 \
        else (0.0, (0, 0))


def combos(n: int, k: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)


def exact_delta_k(Dt: np.ndarray, k: int) -> tuple[float, tuple[int, ...]]:
    """δ_k = max_{|S|=k} max(λmax(G_S) − 1, 1 − λmin(G_S)) by enumerating every support."""
    G = Dt.T @ Dt
    C = combos(Dt.shape[1], k)
    Gs = G[C[:, :, None], C[:, None, :]]
    w = np.linalg.eigvalsh(Gs)
    dev = np.maximum(w[:, -1] - 1.0, 1.0 - w[:, 0])
    r = int(np.argmax(dev))
    return float(dev[r]), tuple(int(x) for x in C[r])


def rel_sigma_min(X: np.ndarray) -> float:
    if X.shape[1] > X.shape[0]:
        return 0.0
    s = np.linalg.svd(X, compute_uv=False)
    return float(s[-1] / s[0]) if s[0] > 0 else 0.0


def enumerate_spark(D: np.ndarray) -> tuple[float, tuple[int, ...] | None, bool]:
    """(spark, a smallest dependent set, ambiguous) by enumeration of subsets in increasing size.
    ``ambiguous`` is True when some subset's σ_min/σ_max fell between DEP_RTOL and INDEP_RTOL."""
    H, N = D.shape
    ambiguous = False
    Dn = D / np.linalg.norm(D, axis=0)
    for t in range(1, min(N, H + 1) + 1):
        for T in itertools.combinations(range(N), t):
            r = rel_sigma_min(Dn[:, T])
            if r <= DEP_RTOL:
                return float(t), T, ambiguous
            if r < INDEP_RTOL:
                ambiguous = True
    return math.inf, None, ambiguous
