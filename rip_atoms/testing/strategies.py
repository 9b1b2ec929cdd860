"""Hypothesis strategies for testing sparse-coding code: dictionaries with known coherence,
K-sparse codes, activations with a chosen second moment, and planted atom sets with known ε, K.

Every size argument takes an ``int`` or a hypothesis strategy of ints; values are drawn from a
numpy generator seeded by hypothesis, so examples are reproducible and sizes shrink (the random
content itself does not shrink). Dictionaries are H×N float64 arrays with atoms as columns.

Example — test that your solver recovers planted codes when the coherence certifies it::

    from hypothesis import given
    from rip_atoms.testing import planted_atom_sets

    @given(planted_atom_sets(dim=16, n_atoms=16, K=2, n_samples=20, eps=0.1))
    def test_my_solver(p):
        # p.dictionary (H×N), p.activations (n×H), p.codes (n×N), p.eps, p.K, p.metric
        codes = my_sparse_solver(p.dictionary, p.activations, metric=p.metric.S)
        assert np.allclose(codes, p.codes, atol=1e-8)

Example — a property over several dictionary families::

    from rip_atoms.testing import dictionaries, sparse_codes

    @given(dictionaries(), st.data())
    def test_decoder_is_linear(D, data):
        C = data.draw(sparse_codes(n_atoms=D.shape[1], K=2, n=5, signs="signed"))
        ...
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from rip_atoms.testing import generators as gen

__all__ = [
    "activation_sets",
    "coherent_dictionaries",
    "dictionaries",
    "etf_block_dictionaries",
    "gaussian_dictionaries",
    "near_etf_dictionaries",
    "paired_dictionaries",
    "planted_atom_sets",
    "second_moments",
    "sparse_codes",
]

_SEEDS = st.integers(0, 2**32 - 1)
IntArg = int | SearchStrategy[int] | None
FloatArg = float | SearchStrategy[float] | None


def _s(x, default: SearchStrategy | None = None) -> SearchStrategy:
    if x is None:
        return default
    return x if isinstance(x, SearchStrategy) else st.just(x)


def _rng(draw) -> np.random.Generator:
    return np.random.default_rng(draw(_SEEDS))


@st.composite
def gaussian_dictionaries(draw, dim: IntArg = None, n_atoms: IntArg = None) -> np.ndarray:
    """H×N unit columns with iid Gaussian directions. ``dim`` default 2..16, ``n_atoms``
    default H..3H. Coherence ≈ sqrt(4 log N / H) for large H (Cai–Jiang)."""
    H = draw(_s(dim, st.integers(2, 16)))
    N = draw(_s(n_atoms, st.integers(H, 3 * H)))
    return gen.gaussian_atoms(_rng(draw), H, N)


@st.composite
def near_etf_dictionaries(draw, dim: IntArg = None, noise: FloatArg = None) -> np.ndarray:
    """The simplex ETF in R^H (N = H + 1, μ = 1/H, the Welch bound) rotated at random and
    perturbed by ``noise`` (default 0..0.1): μ within O(noise) of 1/H."""
    H = draw(_s(dim, st.integers(2, 16)))
    eta = draw(_s(noise, st.floats(0.0, 0.1)))
    return gen.near_etf_atoms(_rng(draw), H, eta)


@st.composite
def etf_block_dictionaries(draw, block_dims: list[int] | SearchStrategy[list[int]] | None = None
                           ) -> tuple[np.ndarray, float]:
    """(D, μ): a direct sum of simplex ETFs with block dimensions mᵦ (default 1–4 blocks of
    1..6), rotated at random. Exactly μ = 1/min mᵦ, spark = 1 + min mᵦ, N = H + #blocks."""
    dims = draw(_s(block_dims, st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    return gen.etf_block_atoms(_rng(draw), list(dims))


@st.composite
def paired_dictionaries(draw, dim: IntArg = None, n_atoms: IntArg = None, mu: FloatArg = None,
                        n_pairs: IntArg = None) -> tuple[np.ndarray, float]:
    """(D, μ): N ≤ H unit atoms with planted coherence — disjoint pairs with inner product ±μ,
    everything else orthogonal. Defaults: H 2..16, N 2..H, μ 0..0.9, all atoms paired."""
    H = draw(_s(dim, st.integers(2, 16)))
    N = draw(_s(n_atoms, st.integers(min(2, H), H)))
    c = draw(_s(mu, st.floats(0.0, 0.9)))
    pairs = draw(_s(n_pairs, st.just(N // 2)))
    return gen.paired_atoms(_rng(draw), H, N, c, pairs)


def coherent_dictionaries(dim: IntArg = None, n_atoms: IntArg = None, mu: FloatArg = None
                          ) -> SearchStrategy[tuple[np.ndarray, float]]:
    """(D, μ) with planted (exact) coherence: :func:`paired_dictionaries` (any μ, N ≤ H) or
    :func:`etf_block_dictionaries` (μ = 1/min block, N > H)."""
    if dim is not None or n_atoms is not None or mu is not None:
        return paired_dictionaries(dim=dim, n_atoms=n_atoms, mu=mu)
    return st.one_of(paired_dictionaries(), etf_block_dictionaries())


def dictionaries(kinds: tuple[str, ...] = ("gaussian", "near_etf", "planted")
                 ) -> SearchStrategy[np.ndarray]:
    """Unit-column dictionaries from the chosen families: "gaussian", "near_etf", "planted"
    (planted coherence: paired atoms or ETF blocks)."""
    table = {
        "gaussian": gaussian_dictionaries(),
        "near_etf": near_etf_dictionaries(),
        "planted": coherent_dictionaries().map(lambda t: t[0]),
    }
    unknown = set(kinds) - set(table)
    if unknown:
        raise ValueError(f"unknown dictionary kinds {sorted(unknown)}; known: {sorted(table)}")
    return st.one_of(*[table[k] for k in kinds])


@st.composite
def sparse_codes(draw, n_atoms: IntArg, K: IntArg, *, n: IntArg = 1,
                 magnitude: tuple[float, float] | SearchStrategy = (1.0, 2.0),
                 signs: str | SearchStrategy[str] = "nonneg", hit_ends: bool = False
                 ) -> np.ndarray:
    """n×N codes with exactly K non-zeros each (uniform supports), magnitudes uniform in
    ``magnitude`` = (δ_min, δ_max), sign convention ``signs``: "nonneg" (SAE codes), "signed"
    (random ±) or "nonpos". ``hit_ends`` makes the sample's magnitude range exactly
    [δ_min, δ_max]. Every argument may be a strategy."""
    N = draw(_s(n_atoms))
    k = draw(_s(K))
    rows = draw(_s(n))
    lo, hi = draw(_s(magnitude))
    sg = draw(_s(signs))
    return gen.sparse_code_matrix(_rng(draw), rows, N, min(k, N), magnitude=(lo, hi), signs=sg,
                                  hit_ends=hit_ends)


@st.composite
def second_moments(draw, dim: IntArg = None, offset: FloatArg = None, decay: FloatArg = None
                   ) -> np.ndarray:
    """Σ = C + m mᵀ (SPD): C with eigenvalues i^{−decay} in a random basis (``decay`` default
    0..2) and a common offset m of norm offset·sqrt(tr C) (``offset`` default 0..5). A large
    offset is the representation shift: raw activation cosines concentrate away from 0."""
    H = draw(_s(dim, st.integers(2, 16)))
    off = draw(_s(offset, st.floats(0.0, 5.0)))
    dec = draw(_s(decay, st.floats(0.0, 2.0)))
    return gen.second_moment_matrix(_rng(draw), H, offset=off, decay=dec)


@st.composite
def activation_sets(draw, dim: IntArg = None, n_samples: IntArg = None,
                    second_moment: np.ndarray | SearchStrategy | None = None, *,
                    offset: FloatArg = None, decay: FloatArg = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(X, Σ): n×H activations whose empirical uncentred second moment (1/n)XᵀX is exactly Σ,
    so the AIP metric fitted on X is Σ⁻¹ to rounding.

    By default Σ = C + m mᵀ (see :func:`second_moments`; ``offset`` default 0..5, ``decay``
    0..2) and the rows of X have mean exactly m: the representation shift on purpose (raw
    pairwise cosines concentrate near ‖m‖²/(‖m‖² + tr C), AIP cosines near 0). With
    ``second_moment`` (an SPD array or a strategy) X realises that Σ with mean ≈ 0.
    ``n_samples`` default H + 1..4H + 4.
    """
    if second_moment is None:
        H = draw(_s(dim, st.integers(2, 16)))
        off = draw(_s(offset, st.floats(0.0, 5.0)))
        dec = draw(_s(decay, st.floats(0.0, 2.0)))
        n = draw(_s(n_samples, st.integers(H + 1, 4 * H + 4)))
        rng = _rng(draw)
        C, m = gen.shifted_moment(rng, H, offset=off, decay=dec)
        sigma = 0.5 * (C + C.T) + np.outer(m, m)
        return gen.activations_with_moment(rng, n, sigma, mean=m), sigma
    sigma = np.asarray(draw(_s(second_moment)), dtype=np.float64)
    H = sigma.shape[0]
    n = draw(_s(n_samples, st.integers(H, 4 * H)))
    return gen.activations_with_moment(_rng(draw), n, sigma), sigma


@st.composite
def planted_atom_sets(draw, dim: IntArg = None, n_atoms: IntArg = None, K: IntArg = None,
                      n_samples: IntArg = None, *, eps: FloatArg = None,
                      magnitude: tuple[float, float] | SearchStrategy = (1.0, 2.0),
                      signs: str | SearchStrategy[str] = "nonneg",
                      mixing_cond: FloatArg = None,
                      scale_range: tuple[float, float] | SearchStrategy = (0.5, 2.0)
                      ) -> gen.PlantedAtomSet:
    """A :class:`~rip_atoms.testing.generators.PlantedAtomSet` with known ε and K: planted unit
    atoms (paired with coherence ``eps`` when N ≤ H; ETF blocks with ε = 1/min block when N > H,
    then ``eps`` must be None), observed through a random invertible map (condition
    ``mixing_cond``, default 1..30) with random atom scales, the metric S̃ = (A Aᵀ)⁻¹ under which
    the AIP geometry is the planted one, K-sparse codes with normalised magnitudes exactly
    spanning ``magnitude`` and activations x = D δ. Defaults: H 2..12, N 2..H, K 1..3, ε 0..0.3,
    n 4..20."""
    H = draw(_s(dim, st.integers(2, 12)))
    N = draw(_s(n_atoms, st.integers(min(2, H), H)))
    k = min(draw(_s(K, st.integers(1, 3))), N)
    n = draw(_s(n_samples, st.integers(4, 20)))
    e = None if N > H else draw(_s(eps, st.floats(0.0, 0.3)))
    cond = draw(_s(mixing_cond, st.floats(1.0, 30.0)))
    return gen.planted_atom_set(_rng(draw), H, N, k, n, eps=e, magnitude=draw(_s(magnitude)),
                                signs=draw(_s(signs)), mixing_cond=cond,
                                scale_range=draw(_s(scale_range)))
