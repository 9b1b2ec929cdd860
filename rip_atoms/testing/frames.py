"""Overcomplete frames with a chosen coherence, unions of bases and planted dependent sets, in
plain numpy (no hypothesis): the constructions behind the strategies of
:mod:`rip_atoms.testing.strategies`.

Notation (docs/design.md): D ∈ R^{H×N}, columns dᵢ are atoms, here of unit norm;
μ(D) = max_{i≠j} |⟨dᵢ, dⱼ⟩|; the Welch bound W(H, N) = sqrt((N − H)/(H(N − 1))) ≤ μ(D) for every
unit-norm D with N > H; spark(D) = the size of the smallest linearly dependent set of atoms.

* :func:`frame_coherence` — μ(D) in float64, the reference every construction is checked with.
* :func:`coherence_floor` — the lowest μ :func:`coherent_frame` is documented (and tested) to
  reach: 0 for N ≤ H, 1.5·W(H, N) for H < N ≤ 4H.
* :func:`coherent_frame` — unit atoms with μ(D) equal to a requested μ (to 1e-12), with planted
  pairs at exactly ±μ.
* :func:`hadamard_union` — [I | Hₖ/√H] for H = 2ᵏ: μ = 1/√H, spark = 2^⌊k/2⌋ + 2^⌈k/2⌉.
* :func:`dependent_frame` — a planted dependent set of s atoms with its null vector.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rip_atoms.errors import ParameterError
from rip_atoms.theory import welch_bound

__all__ = [
    "Frame",
    "coherence_floor",
    "coherent_frame",
    "dependent_frame",
    "frame_coherence",
    "hadamard_spark",
    "hadamard_union",
    "pack_to_coherence",
]

#: every unpinned pair of a :func:`coherent_frame` has |⟨dᵢ, dⱼ⟩| ≤ (1 − GAP)·μ
GAP = 1e-3
FLOOR_FACTOR = 1.5
MAX_DIM_HADAMARD = 64


class Frame(NamedTuple):
    """A frame with known invariants: unit atoms ``D`` (H×N), coherence ``mu`` = μ(D), ``spark``
    and a ``null_vector`` v with D v = 0 and exactly ``spark`` non-zeros (the witness that
    spark(D) ≤ spark)."""

    D: np.ndarray
    mu: float
    spark: int
    null_vector: np.ndarray


def _unit(D: np.ndarray) -> np.ndarray:
    return D / np.linalg.norm(D, axis=0)


def frame_coherence(D: np.ndarray) -> float:
    """μ(D) = max_{i≠j} |⟨dᵢ, dⱼ⟩| / (‖dᵢ‖‖dⱼ‖), in float64 (0 for fewer than two atoms)."""
    U = _unit(np.asarray(D, dtype=np.float64))
    if U.shape[1] < 2:
        return 0.0
    G = np.abs(U.T @ U)
    np.fill_diagonal(G, 0.0)
    return float(G.max())


def coherence_floor(dim: int, n_atoms: int) -> float:
    """The lowest μ that :func:`coherent_frame` promises for (H, N): 0 when N ≤ H, and
    1.5·W(H, N) = 1.5·sqrt((N − H)/(H(N − 1))) when N > H (checked on every H ≤ 12, N ≤ 4H and
    on larger samples by the tests; above 4H it is attempted, not promised). Values ≥ 1 mean
    no μ < 1 is promised (H = 1 with N ≥ 2 has μ = 1)."""
    if n_atoms <= dim:
        return 0.0
    return FLOOR_FACTOR * welch_bound(dim, n_atoms)


def _pin(D: np.ndarray, pairs: list[tuple[int, int, float]]) -> None:
    """Set ⟨d_i, d_j⟩ = c exactly for each pinned (i, j, c): d_j ← c·d_i + sqrt(1 − c²)·u with u
    the unit component of d_j orthogonal to d_i (in place)."""
    for i, j, c in pairs:
        u = D[:, j] - (D[:, j] @ D[:, i]) * D[:, i]
        nu = np.linalg.norm(u)
        if nu < 1e-12:  # d_j ∥ d_i: any direction orthogonal to d_i will do
            u = np.roll(D[:, i], 1) - (np.roll(D[:, i], 1) @ D[:, i]) * D[:, i]
            nu = np.linalg.norm(u)
        D[:, j] = c * D[:, i] + math.sqrt(1.0 - c * c) * (u / nu)


def pack_to_coherence(D0: np.ndarray, bound: float, *, pinned: list[tuple[int, int, float]] = (),
                      max_iter: int = 3000, step: float = 1.0) -> tuple[np.ndarray, bool]:
    """Push every unpinned pair of unit atoms to |⟨dᵢ, dⱼ⟩| ≤ ``bound``, keeping the pinned pairs
    at their inner products: projected gradient descent on
    f(D) = ½ Σ_{i≠j unpinned} max(0, |⟨dᵢ, dⱼ⟩| − (1 − GAP)·bound)² over unit columns (the
    gradient of atom i is Σⱼ eᵢⱼ dⱼ with eᵢⱼ the signed excess, projected on the tangent space
    of the sphere), then the pins (:func:`_pin`). Converged when every unpinned pair has
    |⟨dᵢ, dⱼ⟩| ≤ bound·(1 − GAP/2) in float64; the target of the descent sits GAP/2 lower, so
    convergence is decided with a margin. Returns (D, converged)."""
    D = _unit(np.array(D0, dtype=np.float64))
    N = D.shape[1]
    mask = ~np.eye(N, dtype=bool)
    for i, j, _ in pinned:
        mask[i, j] = mask[j, i] = False
    target, accept = bound * (1.0 - GAP), bound * (1.0 - GAP / 2)
    _pin(D, list(pinned))
    for _ in range(max_iter):
        G = D.T @ D
        if np.abs(G[mask]).max(initial=0.0) <= accept:
            return D, True
        E = np.where(mask, np.sign(G) * np.maximum(np.abs(G) - target, 0.0), 0.0)
        g = D @ E
        g -= D * np.sum(D * g, axis=0)
        D = _unit(D - step * g)
        _pin(D, list(pinned))
    G = D.T @ D
    return D, bool(np.abs(G[mask]).max(initial=0.0) <= accept)


def _check_coherence_args(dim: int, n_atoms: int, mu: float, n_pinned: int) -> None:
    if dim < 1 or n_atoms < 1:
        raise ParameterError(f"coherent frame: need H ≥ 1 and N ≥ 1, got H = {dim}, "
                             f"N = {n_atoms}")
    if not 0.0 <= mu < 1.0:
        raise ParameterError(f"coherent frame: μ must be in [0, 1), got {mu}")
    if not 1 <= n_pinned <= n_atoms // 2:
        raise ParameterError(f"coherent frame: {n_pinned} pinned pairs do not fit in "
                             f"N = {n_atoms} atoms (need 1 ≤ pairs ≤ N/2)")
    if n_atoms > dim and mu < welch_bound(dim, n_atoms):
        raise ParameterError(
            f"coherent frame: μ = {mu:.6g} is below the Welch bound "
            f"sqrt((N − H)/(H(N − 1))) = {welch_bound(dim, n_atoms):.6g} for H = {dim}, "
            f"N = {n_atoms}: no such frame exists")


def coherent_frame(rng: np.random.Generator, dim: int, n_atoms: int, mu: float, *,
                   n_pinned: int = 1, restarts: int = 8, max_iter: int = 3000) -> np.ndarray:
    """H×N unit atoms with coherence exactly μ: ``n_pinned`` disjoint pairs have
    ⟨dᵢ, dⱼ⟩ = ±μ (random signs) and every other pair |⟨dᵢ, dⱼ⟩| ≤ (1 − GAP/2)·μ, so
    μ(D) = max_{i≠j} |⟨dᵢ, dⱼ⟩| = μ to 1e-12 (checked in float64 before returning).

    Construction: N ≤ H — an orthonormal set (Haar) with the pins (other pairs exactly 0); N > H
    — a Gaussian start pushed below μ by :func:`pack_to_coherence` with the pins held, from up
    to ``restarts`` fresh starts; then the columns are permuted at random.

    Feasible range: μ ∈ [W(H, N), 1) for N > H (the Welch bound; below it raises
    :class:`~rip_atoms.errors.ParameterError`, no frame exists), any μ ∈ [0, 1) for N ≤ H;
    promised for μ ≥ :func:`coherence_floor` (1.5·W for N ≤ 4H); between W and the floor it is
    attempted and raises ParameterError, naming the best μ reached, when no start converges
    (the optimal packing of N lines in R^H can lie above W: 4 lines in R² have μ ≥ 1/√2).
    N < 2 has no pair: μ must then be 0.
    """
    if n_atoms < 2:
        if mu != 0.0 or dim < 1 or n_atoms < 1:
            raise ParameterError(f"coherent frame: N = {n_atoms} < 2 atoms have no pair, so "
                                 f"μ = 0; asked μ = {mu} with H = {dim}")
        return _unit(rng.standard_normal((dim, n_atoms)))
    _check_coherence_args(dim, n_atoms, mu, n_pinned)
    pins = [(2 * p, 2 * p + 1, float(rng.choice([-1.0, 1.0])) * mu) for p in range(n_pinned)]
    if n_atoms <= dim:
        q, r = np.linalg.qr(rng.standard_normal((dim, n_atoms)))
        D = q * np.sign(np.diag(r))
        _pin(D, pins)
        return _checked(D[:, rng.permutation(n_atoms)], mu)
    best = math.inf
    for _ in range(restarts):
        D, ok = pack_to_coherence(rng.standard_normal((dim, n_atoms)), mu, pinned=pins,
                                  max_iter=max_iter)
        if ok:
            return _checked(D[:, rng.permutation(n_atoms)], mu)
        G = np.abs(D.T @ D)
        np.fill_diagonal(G, 0.0)
        best = min(best, float(G.max()))
    raise ParameterError(
        f"coherent frame: no start reached μ = {mu:.6g} for H = {dim}, N = {n_atoms} "
        f"(best {best:.6g}; Welch bound {welch_bound(dim, n_atoms):.6g}, promised from "
        f"{coherence_floor(dim, n_atoms):.6g})")


def _checked(D: np.ndarray, mu: float) -> np.ndarray:
    got = frame_coherence(D)
    if abs(got - mu) > 1e-12:  # pragma: no cover - a broken invariant, not bad input
        raise RuntimeError(f"coherent frame: built μ = {got!r} for target {mu!r}")
    return D


def _hadamard(k: int) -> np.ndarray:
    """Sylvester's Hadamard matrix H_k (2ᵏ×2ᵏ, entries ±1): H₀ = [1], H_{k+1} = [[H, H], [H, −H]];
    entry (a, b) = (−1)^{popcount(a & b)}."""
    Hm = np.ones((1, 1))
    for _ in range(k):
        Hm = np.block([[Hm, Hm], [Hm, -Hm]])
    return Hm


def hadamard_spark(dim: int) -> int:
    """spark([I | Hₖ/√H]) = 2^⌊k/2⌋ + 2^⌈k/2⌉ for H = 2ᵏ ≤ 64: the indicator of a subgroup A of
    F₂ᵏ is a combination of |A| spikes and of the |A⊥| = H/|A| Walsh atoms of its annihilator;
    the minimum over |A| = 2ᵃ is that sum, and it meets the lower bound ⌈2/μ⌉ = ⌈2√H⌉ for
    two orthonormal bases (Elad–Bruckstein) for every k ≤ 6."""
    k = _log2(dim)
    return 2 ** (k // 2) + 2 ** ((k + 1) // 2)


def _log2(dim: int) -> int:
    k = int(dim).bit_length() - 1
    if dim < 1 or 2**k != dim or dim > MAX_DIM_HADAMARD:
        raise ParameterError(f"Hadamard union: H must be a power of 2 in [1, "
                             f"{MAX_DIM_HADAMARD}], got {dim}")
    return k


def hadamard_union(rng: np.random.Generator | None, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(D, witness): D = Q [I | Hₖ/√H] (H = 2ᵏ ≤ 64, N = 2H; Q Haar-random orthogonal, or I
    when ``rng`` is None) with μ(D) = 1/√H exactly (every spike–Walsh pair has
    |⟨eᵢ, hⱼ⟩| = 1/√H, pairs within a basis are orthogonal) and spark(D) =
    :func:`hadamard_spark`; ``witness`` is a null vector of D with exactly that many non-zeros
    (subgroup A = span of the first ⌊k/2⌋ unit vectors of F₂ᵏ: 1_A = (|A|/√H)·Σ_{b∈A⊥} hᵦ)."""
    k = _log2(dim)
    W = _hadamard(k) / math.sqrt(dim)
    D = np.hstack([np.eye(dim), W])
    a = k // 2
    A = np.arange(2**a)  # the elements of F₂ᵏ with support in the first a bits
    perp = np.array([b for b in range(dim) if all(bin(b & x).count("1") % 2 == 0 for x in A)])
    v = np.zeros(2 * dim)
    v[A] = 1.0
    v[dim + perp] = -len(A) / math.sqrt(dim)
    if rng is not None:
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        D = (q * np.sign(np.diag(r))) @ D
    return D, v


def dependent_frame(rng: np.random.Generator, dim: int, n_atoms: int, spark: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(D, v): H×N unit atoms of which s = ``spark`` (2 ≤ s ≤ min(H, N)) lie in a random
    (s − 1)-dimensional subspace with Gaussian coefficients, the others Gaussian in R^H, columns
    permuted at random; v is a null vector of D supported exactly on the planted set
    (‖D v‖₂ ≤ 1e-12‖v‖₂). So spark(D) ≤ s, with equality with probability 1 (the planted set
    minus any atom, with any further atoms up to H in all, is in general position); the tests
    check the equality by enumeration."""
    if not 2 <= spark <= min(dim, n_atoms):
        raise ParameterError(f"dependent frame: need 2 ≤ spark ≤ min(H, N) = "
                             f"{min(dim, n_atoms)}, got {spark}")
    q, _ = np.linalg.qr(rng.standard_normal((dim, spark - 1)))
    C = rng.standard_normal((spark - 1, spark))
    planted = q @ C
    D = np.hstack([planted, rng.standard_normal((dim, n_atoms - spark))])
    norms = np.linalg.norm(D, axis=0)
    v = np.zeros(n_atoms)
    v[:spark] = np.linalg.svd(C)[2][-1] * norms[:spark]  # C w = 0 ⇒ D_S (w·‖d‖) ∝ q C w = 0
    perm = rng.permutation(n_atoms)
    return D[:, perm] / norms[perm], v[perm]
