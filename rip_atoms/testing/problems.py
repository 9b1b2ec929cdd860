"""Hypothesis strategies for whole test cases — a dictionary, codes and signals that satisfy a
theorem's hypotheses — so a property test of someone's solver or encoder is one ``@given``.

* :func:`recovery_problems` — unit atoms with μ < 1/(2K − 1) and K-sparse codes: Tropp's and
  Donoho–Elad's condition, under which OMP (K steps) and basis pursuit recover every code.
* :func:`tsae_problems` — a planted atom set inside the TSAE identifiability window with a
  threshold τ strictly inside it: the paper's theorem says W_enc = DᵀS̃ with σ_τ recovers every
  support.

Both draw the dictionary first from shrinkable content where it can (integer matrices) and the
codes through :func:`~rip_atoms.testing.strategies.codes_by_support`, so failures shrink to
small H, N, K and simple codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from rip_atoms.criteria.tsae import TSAEWindow, tsae_window
from rip_atoms.testing import frames
from rip_atoms.testing import generators as gen
from rip_atoms.testing.strategies import (
    FloatArg,
    IntArg,
    as_strategy,
    codes_by_support,
    coherent_frame_draw,
    integer_dictionaries,
    max_atoms,
    planted_atom_sets,
)

__all__ = ["RecoveryProblem", "TSAEProblem", "recovery_problems", "tsae_problems"]


@dataclass(frozen=True)
class RecoveryProblem:
    """A sparse-recovery test case: unit atoms ``D`` (H×N) with coherence ``mu`` = μ(D),
    ``codes`` (n×N, exactly ``K`` non-zeros each, magnitudes in [delta_min, delta_max], sign
    convention ``signs``) and the signals ``Y`` = codes·Dᵀ (n×H, one per row)."""

    D: np.ndarray
    codes: np.ndarray
    Y: np.ndarray
    K: int
    mu: float
    signs: str
    delta_min: float
    delta_max: float

    @property
    def dim(self) -> int:
        return int(self.D.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.D.shape[1])

    def support(self, i: int) -> np.ndarray:
        """The sorted support of code i."""
        return np.flatnonzero(self.codes[i])


def _sizes(H: int, k: int, cap: int, limit: int) -> st.SearchStrategy[int]:
    """N in (H, min(cap, limit)] — overcomplete — when that is non-empty, else in [k, H]."""
    top = min(cap, limit)
    return st.integers(H + 1, top) if top > H else st.integers(min(k, H), H)


@st.composite
def _recovery_dictionary(draw, dim: IntArg, n_atoms: IntArg, K: int) -> np.ndarray:
    """Unit atoms with μ < 1/(2K − 1): an integer dictionary conditioned on it (first, so
    failures shrink toward it), or a coherent frame with μ drawn below the bound."""
    bound = 1.0 / (2 * K - 1)
    if draw(st.booleans()):
        H = draw(as_strategy(dim, st.integers(2, 12)))
        N = draw(as_strategy(n_atoms, _sizes(H, K, max_atoms(H, bound * (1 - 1e-3)), 4 * H)))
        lo = frames.coherence_floor(H, N)
        assume(lo < bound * (1 - 1e-3))
        D, _ = draw(coherent_frame_draw(H, N, st.floats(lo, bound * (1 - 1e-3))))
        return D
    H = draw(as_strategy(dim, st.integers(1, 8)))
    N = draw(as_strategy(n_atoms, st.integers(K, max(K, H + 2))))
    return draw(integer_dictionaries(H, N, max_entry=2, max_mu=np.nextafter(bound, 0.0)))


@st.composite
def recovery_problems(draw, dim: IntArg = None, n_atoms: IntArg = None, K: IntArg = None, *,
                      n_codes: IntArg = None, signs: str | st.SearchStrategy[str] = "signed",
                      magnitude: tuple[float, float] | st.SearchStrategy = (1.0, 2.0)
                      ) -> RecoveryProblem:
    """A :class:`RecoveryProblem` with μ(D) < 1/(2K − 1) (strictly, in float64), unit atoms, and
    ``n_codes`` (default 1..3) codes with exactly K non-zeros (K default 1..3, at most N).

    Theorem it serves (Tropp 2004, Thm 3.5 with the coherence form of his ERC; Donoho–Elad
    2003; Gribonval–Nielsen 2003): if μ < 1/(2K − 1), every K-sparse δ is the unique sparsest
    and the unique ℓ1-minimal solution of D x = Dδ, and OMP run K steps recovers it exactly.

    Dictionaries: half from :func:`~rip_atoms.testing.strategies.integer_dictionaries`
    (entries in [−2, 2], H 1..8, N K..H + 2, conditioned on μ < 1/(2K − 1); the shrink
    target), half from :func:`~rip_atoms.testing.strategies.coherent_dictionaries` (H 2..12,
    H < N ≤ 4H where the promised floor 1.5·W(H, N) is below the bound, else N ≤ H; μ drawn in
    [floor, (1 − 10⁻³)/(2K − 1)]); ``dim`` and ``n_atoms`` override the sizes. Codes from
    :func:`~rip_atoms.testing.strategies.codes_by_support`.
    """
    k = draw(as_strategy(K, st.integers(1, 3)))
    D = draw(_recovery_dictionary(dim, n_atoms, k))
    N = D.shape[1]
    k = min(k, N)
    lo, hi = (float(v) for v in draw(as_strategy(magnitude)))
    sg = draw(as_strategy(signs))
    C = draw(codes_by_support(N, k, n=draw(as_strategy(n_codes, st.integers(1, 3))),
                              magnitude=(lo, hi), signs=sg))
    mu = frames.frame_coherence(D)
    assert (2 * k - 1) * mu < 1.0, (mu, k)
    return RecoveryProblem(D=D, codes=C, Y=C @ D.T, K=k, mu=mu, signs=sg, delta_min=lo,
                           delta_max=hi)


@dataclass(frozen=True)
class TSAEProblem:
    """A planted atom set inside the TSAE window: ``atoms``
    (:class:`~rip_atoms.testing.generators.PlantedAtomSet`: observed D, metric S̃, codes over
    D as given, activations X = codes·Dᵀ), the feasible ``window`` for its ε, K, δ_min, δ_max,
    and a threshold ``tau`` strictly inside it (in AIP-normalised code units)."""

    atoms: gen.PlantedAtomSet
    window: TSAEWindow
    tau: float

    def thresholds_for_atoms(self) -> np.ndarray:
        """τⱼ = τ/‖dⱼ‖_S: the threshold on the code of atom j *as given* (codes over D are
        codes over AIP-unit atoms divided by the atoms' AIP norms ``atoms.scales``)."""
        return self.tau / self.atoms.scales


@st.composite
def tsae_problems(draw, dim: IntArg = None, n_atoms: IntArg = None, K: IntArg = None, *,
                  n_samples: IntArg = None,
                  magnitude: tuple[float, float] | st.SearchStrategy = (1.0, 1.5),
                  mixing_cond: FloatArg = None, position: FloatArg = None) -> TSAEProblem:
    """A :class:`TSAEProblem`: non-negative K-sparse codes (K default 1..2) with AIP-normalised
    magnitudes spanning exactly [δ_min, δ_max] = ``magnitude``, planted atoms of AIP coherence ε
    with δ_min > ε(2K − 1)δ_max (a feasible window), and τ = lower + ``position``·(upper −
    lower) (position default 0.1..0.9) — so εKδ_max < τ < δ_min − ε(K − 1)δ_max.

    Theorem it serves (docs/design.md § TSAE identifiability;
    :func:`~rip_atoms.criteria.tsae.tsae_window`): with
    W_enc = D̂ᵀS̃ (AIP-unit atoms) and σ_τ(z) = z·1[z > τ], the encoder's support is the code's
    support for every such code.

    Atoms: :func:`~rip_atoms.testing.strategies.planted_atom_sets` with ε drawn in
    [floor, 0.98·ε_max), ε_max = δ_min/((2K − 1)δ_max) — paired atoms for N ≤ H (half the
    draws, the shrink target), an overcomplete coherent frame for H < N ≤ 2H where the floor
    allows (the other half; H 2..10 by default) — seen
    through a random invertible map (condition ``mixing_cond``, default 1..30) with random atom
    scales in [0.5, 2].
    """
    k = draw(as_strategy(K, st.integers(1, 2)))
    lo, hi = (float(v) for v in draw(as_strategy(magnitude)))
    eps_max = lo / ((2 * k - 1) * hi)
    H = draw(as_strategy(dim, st.integers(2, 10)))
    if draw(st.booleans()):
        N = draw(as_strategy(n_atoms, _sizes(H, max(2, k), max_atoms(H, 0.97 * eps_max), 2 * H)))
    else:
        N = draw(as_strategy(n_atoms, st.integers(min(max(2, k), H), H)))
    floor = frames.coherence_floor(H, N)
    assume(floor < 0.98 * eps_max)
    eps = draw(st.floats(floor, 0.98 * eps_max))
    p = draw(planted_atom_sets(H, N, k, n_samples, eps=eps, magnitude=(lo, hi),
                               signs="nonneg", mixing_cond=mixing_cond))
    w = tsae_window(p.eps, p.K, p.delta_min, p.delta_max)
    t = draw(as_strategy(position, st.floats(0.1, 0.9)))
    return TSAEProblem(atoms=p, window=w, tau=w.lower + t * (w.upper - w.lower))
