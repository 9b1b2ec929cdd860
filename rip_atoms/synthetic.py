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

The plain-numpy building blocks behind the hypothesis strategies of
:mod:`rip_atoms.testing.strategies` and the example draws of :mod:`rip_atoms.theorems` live here
too (re-exported by :mod:`rip_atoms.testing.generators`); they take a ``numpy.random.Generator``
first and return arrays:

* :func:`gaussian_atoms` — iid Gaussian columns, normalised.
* :func:`near_etf_atoms` — the simplex ETF (N = H + 1, μ = 1/H) plus a small perturbation.
* :func:`etf_block_atoms` — a direct sum of simplex ETFs in orthogonal subspaces, rotated at
  random: μ = 1/min(mᵦ) exactly, spark = 1 + min(mᵦ), N = H + number of blocks.
* :func:`paired_atoms` — N ≤ H unit atoms whose Gram is block diagonal with 2×2 blocks
  [[1, ±c], [±c, 1]]: planted coherence μ = c exactly (for any c in [0, 1)).
* :func:`sparse_code_matrix` — n codes with exactly K non-zeros each, magnitudes in
  [δ_min, δ_max], a sign convention.
* :func:`shifted_moment`, :func:`second_moment_matrix`, :func:`activations_with_moment` —
  activations whose empirical uncentred second moment (1/n) XᵀX is a chosen Σ *exactly*, and
  whose mean is a chosen offset m (the representation shift on purpose: Σ = C + m mᵀ).
* :func:`planted_atom_set` — a planted atom set: unit atoms D̃ with planted ε, observed through
  an invertible mixing A (D = A D̃, optionally with random atom scales), the metric
  S̃ = (A Aᵀ)⁻¹ under which the AIP Gram of D is D̃ᵀD̃ exactly, K-sparse codes and x = D δ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rip_atoms.dictionary import Dictionary
from rip_atoms.metric import AIPMetric


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_orthogonal(dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """A Haar-distributed orthogonal H×H matrix (QR of a Gaussian with the sign fix):
    :func:`random_orthonormal` with n = H."""
    return random_orthonormal(_rng(seed), dim, dim)


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


# ======================================================================== Generator building blocks
SIGNS = ("nonneg", "signed", "nonpos")


def _unit(D: np.ndarray) -> np.ndarray:
    return D / np.linalg.norm(D, axis=0)


def random_orthonormal(rng: np.random.Generator, dim: int, n: int) -> np.ndarray:
    """H×n matrix with Haar-random orthonormal columns (n ≤ H)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, n)))
    return q * np.sign(np.diag(r))


def random_invertible(rng: np.random.Generator, dim: int, cond: float = 10.0) -> np.ndarray:
    """A = U diag(s) Vᵀ with Haar U, V and singular values log-spaced in [1/cond, 1]."""
    s = np.geomspace(1.0, 1.0 / cond, dim) if dim > 1 else np.ones(1)
    return random_orthonormal(rng, dim, dim) @ np.diag(s) @ random_orthonormal(rng, dim, dim).T


def gaussian_atoms(rng: np.random.Generator, dim: int, n_atoms: int) -> np.ndarray:
    """H×N unit columns, iid Gaussian directions."""
    return _unit(rng.standard_normal((dim, n_atoms)))


def simplex_etf_atoms(dim: int) -> np.ndarray:
    """The simplex ETF: H + 1 unit vectors in R^H with all inner products −1/H."""
    n = dim + 1
    E = np.eye(n) - 1.0 / n
    # orthonormal basis of {x in R^n : 1ᵀx = 0} from the SVD of the centring projector
    U = np.linalg.svd(E)[0][:, :dim]
    return _unit(U.T @ E)


def near_etf_atoms(rng: np.random.Generator, dim: int, noise: float = 0.05) -> np.ndarray:
    """The simplex ETF in R^H, randomly rotated, each atom perturbed by ``noise``·(Gaussian of
    norm ≈ 1) and renormalised: μ within O(noise) of the Welch bound 1/H."""
    D = random_orthonormal(rng, dim, dim) @ simplex_etf_atoms(dim)
    D = D + noise * rng.standard_normal(D.shape) / np.sqrt(dim)
    return _unit(D)


def etf_block_atoms(rng: np.random.Generator, block_dims: list[int] | tuple[int, ...]
                    ) -> tuple[np.ndarray, float]:
    """Direct sum of simplex ETFs of dimensions mᵦ (≥ 1) in orthogonal subspaces, rotated by a
    Haar orthogonal matrix. H = Σ mᵦ, N = Σ (mᵦ + 1); returns (D, μ) with μ = 1/min mᵦ (each
    block's atoms have inner products −1/mᵦ, atoms of different blocks are orthogonal) and
    spark(D) = 1 + min mᵦ (a whole block is the smallest dependent set)."""
    dims = [int(m) for m in block_dims]
    if not dims or min(dims) < 1:
        raise ValueError("block dimensions must be ≥ 1")
    H = sum(dims)
    D = np.zeros((H, H + len(dims)))
    r = c = 0
    for m in dims:
        D[r:r + m, c:c + m + 1] = simplex_etf_atoms(m)
        r += m
        c += m + 1
    return random_orthonormal(rng, H, H) @ D, 1.0 / min(dims)


def paired_atoms(rng: np.random.Generator, dim: int, n_atoms: int, mu: float,
                 n_pairs: int | None = None) -> tuple[np.ndarray, float]:
    """N ≤ H unit atoms with planted coherence: ``n_pairs`` disjoint pairs (default ⌊N/2⌋) with
    inner product ±mu (random sign), all other pairs orthogonal. Returns (D, μ) with μ = mu
    (0 when there are no pairs); per-atom μⱼ = mu on paired atoms, 0 on the others."""
    if n_atoms > dim:
        raise ValueError(f"paired atoms need N ≤ H, got N = {n_atoms} > H = {dim}")
    if not 0.0 <= mu < 1.0:
        raise ValueError(f"mu must be in [0, 1), got {mu}")
    pairs = n_atoms // 2 if n_pairs is None else int(n_pairs)
    if not 0 <= 2 * pairs <= n_atoms:
        raise ValueError(f"n_pairs = {pairs} does not fit in N = {n_atoms}")
    B = np.eye(n_atoms)
    for p in range(pairs):
        s = rng.choice([-1.0, 1.0])
        B[:, 2 * p + 1] = 0.0
        B[2 * p, 2 * p + 1] = s * mu
        B[2 * p + 1, 2 * p + 1] = np.sqrt(1.0 - mu * mu)
    perm = rng.permutation(n_atoms)
    D = random_orthonormal(rng, dim, n_atoms) @ B[:, perm]
    return D, (float(mu) if pairs else 0.0)


def sparse_code_matrix(rng: np.random.Generator, n: int, n_atoms: int, K: int, *,
                       magnitude: tuple[float, float] = (1.0, 2.0), signs: str = "nonneg",
                       hit_ends: bool = False) -> np.ndarray:
    """n×N codes, each with exactly K non-zeros on a uniform random support, magnitudes uniform
    in [δ_min, δ_max] and signs per ``signs`` ("nonneg", "signed": random ±, "nonpos").
    ``hit_ends``: the first non-zero of code 0 is δ_min and of code 1 (or code 0's second) is
    δ_max, so the sample's magnitude range is exactly [δ_min, δ_max]."""
    lo, hi = magnitude
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < δ_min ≤ δ_max, got {magnitude}")
    if not 0 <= K <= n_atoms:
        raise ValueError(f"K must be in [0, N], got {K}")
    if signs not in SIGNS:
        raise ValueError(f"signs must be one of {SIGNS}, not {signs!r}")
    C = np.zeros((n, n_atoms))
    if K == 0 or n == 0:
        return C
    supp = np.argsort(rng.random((n, n_atoms)), axis=1)[:, :K]
    mags = rng.uniform(lo, hi, size=(n, K))
    if hit_ends:
        mags[0, 0] = lo
        if n > 1:
            mags[1, 0] = hi
        elif K > 1:
            mags[0, 1] = hi
    if signs == "signed":
        mags *= rng.choice([-1.0, 1.0], size=(n, K))
    elif signs == "nonpos":
        mags = -mags
    np.put_along_axis(C, supp, mags, axis=1)
    return C


def shifted_moment(rng: np.random.Generator, dim: int, *, offset: float = 2.0,
                   decay: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(C, m): a covariance C with eigenvalues i^{−decay} in a Haar eigenbasis and a common
    offset m of norm ``offset``·sqrt(tr C). The second moment of x = m + (noise with covariance
    C) is Σ = C + m mᵀ."""
    Q = random_orthonormal(rng, dim, dim)
    lam = np.arange(1, dim + 1, dtype=np.float64) ** (-decay)
    m = rng.standard_normal(dim)
    m *= offset * np.sqrt(lam.sum()) / np.linalg.norm(m)
    C = (Q * lam) @ Q.T
    return 0.5 * (C + C.T), m


def second_moment_matrix(rng: np.random.Generator, dim: int, *, offset: float = 2.0,
                         decay: float = 1.0) -> np.ndarray:
    """Σ = C + m mᵀ from :func:`shifted_moment`. A large offset is the representation shift:
    raw pairwise cosines of activations with mean m concentrate near ‖m‖²/(‖m‖² + tr C)."""
    C, m = shifted_moment(rng, dim, offset=offset, decay=decay)
    S = C + np.outer(m, m)
    return 0.5 * (S + S.T)


def _sqrt_psd(S: np.ndarray, what: str) -> np.ndarray:
    lam, V = np.linalg.eigh(0.5 * (S + S.T))
    if lam[0] <= 0:
        raise ValueError(f"{what} must be positive definite")
    return (V * np.sqrt(lam)) @ V.T


def activations_with_moment(rng: np.random.Generator, n: int, sigma: np.ndarray,
                            mean: np.ndarray | None = None) -> np.ndarray:
    """n×H activations X whose empirical uncentred second moment (1/n) XᵀX equals Σ exactly (up
    to rounding).

    Without ``mean``: X = sqrt(n)·Q Σ^{1/2} with Q (n×H) Haar orthonormal columns (n ≥ H); the
    mean is not controlled (≈ 0). With ``mean`` m (Σ − m mᵀ must be positive definite):
    X = 𝟙mᵀ + sqrt(n)·Q (Σ − m mᵀ)^{1/2} with Q's columns orthonormal and orthogonal to 𝟙
    (n ≥ H + 1), so the mean of the rows is exactly m and their covariance exactly Σ − m mᵀ —
    the common offset that makes raw activation cosines concentrate away from 0.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    H = sigma.shape[0]
    if mean is None:
        if n < H:
            raise ValueError(f"need n ≥ H to realise a full-rank second moment, got n = {n}")
        return np.sqrt(n) * random_orthonormal(rng, n, H) @ _sqrt_psd(sigma, "Σ")
    m = np.asarray(mean, dtype=np.float64).reshape(H)
    if n < H + 1:
        raise ValueError(f"need n ≥ H + 1 to realise a mean and a covariance, got n = {n}")
    Z = rng.standard_normal((n, H))
    Z -= Z.mean(axis=0)
    Q, r = np.linalg.qr(Z)
    Q *= np.sign(np.diag(r))
    return m + np.sqrt(n) * Q @ _sqrt_psd(sigma - np.outer(m, m), "Σ − m mᵀ")


@dataclass(frozen=True)
class PlantedAtomSet:
    """A planted atom set with known ε and K (see :func:`planted_atom_set`).

    Attributes
    ----------
    dictionary : observed D = A D̃ diag(s) (H×N, columns are atoms).
    unit_atoms : D̃, the planted unit atoms in whitened coordinates (its Gram is planted).
    metric : S̃ = (A Aᵀ)⁻¹ as an :class:`~rip_atoms.metric.AIPMetric`; under it the AIP Gram of
        the observed atoms is exactly D̃ᵀD̃ (W A is orthogonal for W = S̃^{1/2}).
    scales : the atom scales s (observed atom j has AIP norm s_j).
    codes : n×N codes for the observed atoms (x = D δ); ``unit_codes`` = codes·s are the codes
        over AIP-normalised atoms (magnitudes in [delta_min, delta_max]).
    activations : n×H, x_i = D δ_i.
    eps : the planted AIP coherence ε = max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩| (exact by construction).
    per_atom_mu : planted per-atom coherence μⱼ.
    K : non-zeros per code (every code has exactly K).
    delta_min, delta_max : magnitude range of ``unit_codes`` (attained when ``hit_ends``).
    signs : "nonneg", "signed" or "nonpos".
    mixing : A.
    kind : "paired", "etf_blocks" or "given" (``unit_atoms`` passed in).
    """

    dictionary: np.ndarray
    unit_atoms: np.ndarray
    metric: AIPMetric
    scales: np.ndarray
    codes: np.ndarray
    unit_codes: np.ndarray
    activations: np.ndarray
    eps: float
    per_atom_mu: np.ndarray
    K: int
    delta_min: float
    delta_max: float
    signs: str
    mixing: np.ndarray
    kind: str

    @property
    def dim(self) -> int:
        return int(self.dictionary.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.dictionary.shape[1])


def planted_atom_set(
    rng: np.random.Generator,
    dim: int,
    n_atoms: int,
    K: int,
    n_samples: int,
    *,
    eps: float | None = None,
    n_pairs: int | None = None,
    block_dims: list[int] | tuple[int, ...] | None = None,
    magnitude: tuple[float, float] = (1.0, 2.0),
    signs: str = "nonneg",
    mixing_cond: float = 10.0,
    scale_range: tuple[float, float] = (1.0, 1.0),
    hit_ends: bool = True,
    unit_atoms: np.ndarray | None = None,
) -> PlantedAtomSet:
    """A planted atom set with known ε and K.

    Planted geometry: with N ≤ H, :func:`paired_atoms` with coherence ``eps`` (default 0.1);
    with N > H, :func:`etf_block_atoms` with ``block_dims`` (default: N − H blocks as equal as
    possible; ε = 1/min mᵦ, so ``eps`` cannot be chosen and must be None). The observed
    dictionary is D = A D̃ diag(s) with A = :func:`random_invertible` (condition ``mixing_cond``;
    1 gives an orthogonal A) and scales s uniform in ``scale_range``; codes δ = δ̂ / s where δ̂
    has exactly K non-zeros in [δ_min, δ_max] (``signs``), so x = D δ = A D̃ δ̂.

    With ``unit_atoms`` (H×N, e.g. an overcomplete frame of chosen coherence) D̃ is those atoms
    normalised, ε = max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩| and μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| computed from them
    (``eps``, ``n_pairs`` and ``block_dims`` must then be None); kind "given".
    """
    if unit_atoms is not None:
        if eps is not None or n_pairs is not None or block_dims is not None:
            raise ValueError("unit_atoms fixes ε: pass no eps, n_pairs or block_dims")
        D_unit = _unit(np.asarray(unit_atoms, dtype=np.float64))
        if D_unit.shape != (dim, n_atoms):
            raise ValueError(f"unit_atoms has shape {D_unit.shape}, expected {(dim, n_atoms)}")
        G = np.abs(D_unit.T @ D_unit)
        np.fill_diagonal(G, 0.0)
        per = G.max(axis=0)
        eps_true, kind = float(per.max(initial=0.0)), "given"
    elif n_atoms <= dim:
        mu = 0.1 if eps is None else float(eps)
        D_unit, eps_true = paired_atoms(rng, dim, n_atoms, mu, n_pairs)
        G = np.abs(D_unit.T @ D_unit)
        np.fill_diagonal(G, 0.0)
        per = np.where(G.max(axis=0) > 0.5 * mu, mu, 0.0)
        kind = "paired"
    else:
        if eps is not None:
            raise ValueError("with N > H the planted ε is 1/min(block_dims); pass block_dims")
        if block_dims is None:
            b = n_atoms - dim
            if b > dim:
                raise ValueError(f"N = {n_atoms} > 2H = {2 * dim}: ETF blocks need N ≤ 2H")
            block_dims = [dim // b + (1 if i < dim % b else 0) for i in range(b)]
        if sum(block_dims) != dim or sum(block_dims) + len(block_dims) != n_atoms:
            raise ValueError(f"block_dims {list(block_dims)} do not give H = {dim}, "
                             f"N = {n_atoms}")
        D_unit, eps_true = etf_block_atoms(rng, block_dims)
        per = np.concatenate([np.full(m + 1, 1.0 / m) for m in block_dims])
        kind = "etf_blocks"
    A = random_invertible(rng, dim, mixing_cond)
    s = rng.uniform(scale_range[0], scale_range[1], size=n_atoms)
    D = (A @ D_unit) * s
    unit_codes = sparse_code_matrix(rng, n_samples, n_atoms, K, magnitude=magnitude,
                                    signs=signs, hit_ends=hit_ends)
    codes = unit_codes / s
    X = codes @ D.T
    metric = AIPMetric.from_moment(A @ A.T, kind="planted", what="A Aᵀ",
                                   source="planted mixing: S̃ = (A Aᵀ)⁻¹")
    return PlantedAtomSet(
        dictionary=D, unit_atoms=D_unit, metric=metric, scales=s, codes=codes,
        unit_codes=unit_codes, activations=X, eps=float(eps_true), per_atom_mu=per, K=K,
        delta_min=float(magnitude[0]), delta_max=float(magnitude[1]), signs=signs, mixing=A,
        kind=kind,
    )
