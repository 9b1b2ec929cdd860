"""Seeded synthetic dictionaries and activations with known properties.

* :func:`gaussian_dictionary` — iid N(0, 1/H) entries (columns nearly unit); coherence follows the
  Cai–Jiang law (:func:`rip_atoms.theory.gaussian_coherence`).
* :func:`simplex_etf` — N = H + 1 unit vectors with ⟨dᵢ, dⱼ⟩ = −1/H for all i ≠ j: an
  equiangular tight frame, μ = 1/H = the Welch bound, and δ_k = (k−1)/H exactly.
* :func:`union_of_bases` — [I | Q₁ | … ] with Qᵢ Haar-random orthogonal matrices.
* :func:`planted_atoms` — a dictionary, K-sparse codes with magnitudes in [δ_min, δ_max]
  (non-negative or signed) and the activations x = D δ, optionally seen through an invertible
  mixing A (x ↦ A x, D ↦ A D) to plant a representation shift the AIP should undo.
* :func:`shifted_activations` — activations with a chosen anisotropic second moment
  Σ = E[x xᵀ] = C + m mᵀ (power-law spectrum C and a common offset m), the representation
  shift on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rip_atoms.dictionary import Dictionary


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_orthogonal(dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """A Haar-distributed orthogonal H×H matrix (QR of a Gaussian with the sign fix)."""
    rng = _rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def gaussian_dictionary(dim: int, n_atoms: int, seed: int = 0, *,
                        dtype: type = np.float64) -> Dictionary:
    """D with iid N(0, 1/H) entries (H×N)."""
    rng = _rng(seed)
    D = (rng.standard_normal((dim, n_atoms)) / np.sqrt(dim)).astype(dtype)
    return Dictionary(D, source=f"synthetic:gaussian(H={dim}, N={n_atoms}, seed={seed})")


def simplex_etf(dim: int) -> Dictionary:
    """The simplex ETF: H + 1 unit vectors in R^H with pairwise inner products −1/H.

    Construction: eᵢ − 𝟙/(H+1) in R^{H+1} lie in the hyperplane 𝟙ᵀx = 0; expressing them in an
    orthonormal basis of that hyperplane (the last H columns of a Householder-type orthogonal
    matrix whose first column is 𝟙/sqrt(H+1)) and normalising gives the frame.
    """
    if dim < 1:
        raise ValueError("dim must be ≥ 1")
    n = dim + 1
    E = np.eye(n) - 1.0 / n
    # orthonormal basis of {x : 1ᵀx = 0}: Householder reflection mapping e₁ to 1/sqrt(n)
    v = np.ones(n) / np.sqrt(n)
    v[0] -= 1.0
    Q = np.eye(n) - 2.0 * np.outer(v, v) / (v @ v)
    B = Q[:, 1:]  # n×H, orthonormal columns ⟂ 1
    D = B.T @ E
    D /= np.linalg.norm(D, axis=0)
    return Dictionary(D, source=f"synthetic:simplex_etf(H={dim})")


def union_of_bases(dim: int, n_bases: int = 2, seed: int = 0) -> Dictionary:
    """[I_H | Q₁ | … | Q_{n−1}], Haar-random orthogonal Qᵢ; N = n_bases·H."""
    rng = _rng(seed)
    blocks = [np.eye(dim)] + [random_orthogonal(dim, rng) for _ in range(n_bases - 1)]
    return Dictionary(np.hstack(blocks),
                      source=f"synthetic:union_of_bases(H={dim}, bases={n_bases}, seed={seed})")


def anisotropic_map(dim: int, *, decay: float = 1.0, seed: int = 0) -> np.ndarray:
    """An invertible A = Q diag(s) Q'ᵀ with power-law singular values sᵢ = i^{−decay/2}."""
    rng = _rng(seed)
    s = np.arange(1, dim + 1, dtype=np.float64) ** (-decay / 2)
    return random_orthogonal(dim, rng) @ np.diag(s) @ random_orthogonal(dim, rng).T


@dataclass(frozen=True)
class PlantedAtoms:
    """A planted atom set: activations X = codes · Dᵀ (rows), codes K-sparse.

    ``dictionary`` is the observed dictionary (A D when a mixing A was applied), ``codes`` an
    n×N CSR matrix with exactly K non-zeros per row, magnitudes in [delta_min, delta_max].
    """

    dictionary: Dictionary
    codes: sp.csr_matrix
    activations: np.ndarray
    K: int
    delta_min: float
    delta_max: float
    nonneg: bool
    mixing: np.ndarray | None
    offset_vector: np.ndarray


def planted_atoms(
    dim: int,
    n_atoms: int,
    K: int,
    n_samples: int,
    *,
    delta_min: float = 1.0,
    delta_max: float = 2.0,
    nonneg: bool = True,
    mixing: np.ndarray | str | None = None,
    offset: float = 0.0,
    dictionary: Dictionary | np.ndarray | None = None,
    seed: int = 0,
) -> PlantedAtoms:
    """Draw K-sparse codes (uniform supports; magnitudes uniform in [δ_min, δ_max]; random signs
    unless ``nonneg``) over unit atoms (Gaussian unless ``dictionary`` is given) and form
    activations xᵢ = D δᵢ. ``offset`` > 0 adds a common vector b (random direction, norm
    offset·sqrt(K·E[δ²])) to every activation — the shared direction that makes LLM activations
    non-orthogonal (xᵢ = D δᵢ + b; b is recorded in ``offset_vector``). With ``mixing`` (an
    invertible H×H matrix, or ``"random"`` for :func:`anisotropic_map`), the observed dictionary
    is A D and the activations A xᵢ.
    """
    if not 1 <= K <= n_atoms:
        raise ValueError(f"K must be in [1, N], got {K}")
    if not 0 < delta_min <= delta_max:
        raise ValueError("need 0 < delta_min ≤ delta_max")
    rng = _rng(seed)
    if dictionary is None:
        D = rng.standard_normal((dim, n_atoms))
    else:
        D = np.asarray(dictionary.atoms if isinstance(dictionary, Dictionary) else dictionary,
                       dtype=np.float64)
        if D.shape != (dim, n_atoms):
            raise ValueError(f"dictionary has shape {D.shape}, expected {(dim, n_atoms)}")
    D = D / np.linalg.norm(D, axis=0)
    supports = np.argsort(rng.random((n_samples, n_atoms)), axis=1)[:, :K]
    mags = rng.uniform(delta_min, delta_max, size=(n_samples, K))
    if not nonneg:
        mags *= rng.choice([-1.0, 1.0], size=(n_samples, K))
    indptr = np.arange(0, n_samples * K + 1, K)
    order = np.argsort(supports, axis=1)
    cols = np.take_along_axis(supports, order, axis=1).ravel()
    vals = np.take_along_axis(mags, order, axis=1).ravel()
    codes = sp.csr_matrix((vals, cols, indptr), shape=(n_samples, n_atoms))
    b = np.zeros(dim)
    if offset > 0:
        b = rng.standard_normal(dim)
        mean_sq = (delta_max**3 - delta_min**3) / (3 * (delta_max - delta_min)) if (
            delta_max > delta_min) else delta_min**2
        b *= offset * np.sqrt(K * mean_sq) / np.linalg.norm(b)
    A = None
    if mixing is not None:
        A = anisotropic_map(dim, seed=rng.integers(2**31)) if isinstance(mixing, str) else (
            np.asarray(mixing, dtype=np.float64))
        D = A @ D
        b = A @ b
    X = np.asarray(codes @ D.T) + b
    label = f"synthetic:planted_atoms(H={dim}, N={n_atoms}, K={K}, seed={seed})"
    return PlantedAtoms(
        dictionary=Dictionary(D, source=label),
        codes=codes,
        activations=X,
        K=K,
        delta_min=delta_min,
        delta_max=delta_max,
        nonneg=nonneg,
        mixing=A,
        offset_vector=b,
    )


def shifted_activations(
    n_samples: int,
    dim: int,
    *,
    offset: float = 3.0,
    decay: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Activations x = m + C^{1/2} z (z ~ N(0, I)) with a power-law covariance C (eigenvalues
    i^{−decay}, random eigenbasis) and a common offset m of norm ``offset``·sqrt(tr C).

    Returns (X, Σ) with Σ = E[x xᵀ] = C + m mᵀ, the exact uncentred second moment. The offset
    makes pairwise cosines of activations concentrate near ‖m‖²/(‖m‖² + tr C) > 0 — a
    representation shift — which whitening by Σ⁻¹ removes.
    """
    rng = _rng(seed)
    Q = random_orthogonal(dim, rng)
    lam = np.arange(1, dim + 1, dtype=np.float64) ** (-decay)
    C_half = Q * np.sqrt(lam)
    m = rng.standard_normal(dim)
    m *= offset * np.sqrt(lam.sum()) / np.linalg.norm(m)
    X = m + rng.standard_normal((n_samples, dim)) @ C_half.T
    sigma = (Q * lam) @ Q.T + np.outer(m, m)
    return X, sigma
