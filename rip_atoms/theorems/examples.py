"""The seeded example draws the theorems share: small unit-column dictionaries from several
families, observed through a random invertible map with a metric, and the size key that orders
counterexamples."""

from __future__ import annotations

import numpy as np

from rip_atoms.errors import ParameterError
from rip_atoms.synthetic import (
    etf_block_atoms,
    gaussian_atoms,
    near_etf_atoms,
    paired_atoms,
    random_invertible,
)
from rip_atoms.theorems.linear_algebra import rel_sigma_min

_FAMILIES = ("gaussian", "near_etf", "etf_blocks", "paired", "two_bases")


def _hadamard(n: int) -> np.ndarray:
    Hm = np.ones((1, 1))
    while Hm.shape[0] < n:
        Hm = np.block([[Hm, Hm], [Hm, -Hm]])
    return Hm


def draw_unit_dictionary(rng: np.random.Generator, *, max_dim: int = 8, max_atoms: int = 12,
                         family: str | None = None) -> tuple[np.ndarray, str]:
    """A small unit-column dictionary D̃ from one of the families: "gaussian", "near_etf"
    (simplex ETF + noise), "etf_blocks" (planted μ = 1/min block), "paired" (planted μ = c,
    N ≤ H), "two_bases" ([I | Hadamard/√H] rotated, μ = 1/√H)."""
    fam = family or str(rng.choice(_FAMILIES))
    if fam == "gaussian":
        H = int(rng.integers(2, max_dim + 1))
        N = int(rng.integers(H, min(max_atoms, H + 6) + 1))
        return gaussian_atoms(rng, H, N), fam
    if fam == "near_etf":
        H = int(rng.integers(2, min(max_dim, max_atoms - 1) + 1))
        return near_etf_atoms(rng, H, float(rng.uniform(0.0, 0.15))), fam
    if fam == "etf_blocks":
        dims: list[int] = []
        while not dims or (sum(dims) < max_dim - 1 and rng.random() < 0.6):
            m = int(rng.integers(1, 6))
            if sum(dims) + m > max_dim or sum(dims) + len(dims) + m + 1 > max_atoms:
                break
            dims.append(m)
        if not dims:
            dims = [2]
        return etf_block_atoms(rng, dims)[0], fam
    if fam == "paired":
        H = int(rng.integers(2, max_dim + 1))
        N = int(rng.integers(2, H + 1))
        mu = float(rng.choice([rng.uniform(0, 0.2), rng.uniform(0, 0.9)]))
        return paired_atoms(rng, H, N, mu, int(rng.integers(0, N // 2 + 1)))[0], fam
    if fam == "two_bases":
        H = int(rng.choice([2, 4] if max_atoms < 16 else [2, 4, 8]))
        Q = np.linalg.qr(rng.standard_normal((H, H)))[0]
        return Q @ np.hstack([np.eye(H), _hadamard(H) / np.sqrt(H)]), fam
    raise ParameterError(f"unknown family {fam!r}")


def observe(rng: np.random.Generator, Dt: np.ndarray, how: str | None = None
            ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Observed atoms and metric for unit atoms D̃: "planted" (D = A D̃ diag(s), S̃ = (AAᵀ)⁻¹:
    the AIP geometry is exactly D̃'s), "self" (same D, S̃ = (D Dᵀ)⁻¹ when D has full row rank),
    or "raw" (D = D̃ diag(s), S̃ = None: Euclidean)."""
    how = how or str(rng.choice(["planted", "self", "raw"]))
    H, N = Dt.shape
    s = rng.uniform(0.3, 3.0, size=N)
    if how == "raw":
        return Dt * s, None, how
    A = random_invertible(rng, H, float(rng.uniform(1.0, 30.0)))
    D = (A @ Dt) * s
    if how == "self" and N >= H and rel_sigma_min(D.T) > 1e-8:
        return D, np.linalg.inv(D @ D.T), how
    return D, np.linalg.inv(A @ A.T), "planted"


def example_size(D: np.ndarray, *extra: int) -> tuple:
    return (*extra, int(D.shape[1]), int(D.shape[0]))
