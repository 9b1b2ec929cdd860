"""Hypothesis strategies for testing sparse-coding code: dictionaries with known coherence,
K-sparse codes, activations with a chosen second moment, and planted atom sets with known ε, K.

Every size argument takes an ``int`` or a hypothesis strategy of ints. Dictionaries are H×N
float64 arrays with atoms as columns. What shrinks: sizes, μ, K and magnitudes always; the
*entries* of :func:`integer_dictionaries` and of :func:`codes_by_support` are drawn one by one
through hypothesis, so a failing example shrinks toward small integer matrices and codes on
supports {0, 1, …} with magnitudes δ_min; the other families are rebuilt from a drawn seed
(shrinking to seed 0, a canonical draw), since their law (Gaussian, Haar) or construction
(coherence packing) needs a numpy generator. Each strategy's docstring states what it
guarantees; ``tests/test_strategies.py`` checks every statement.

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
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from hypothesis.strategies import SearchStrategy

from rip_atoms.errors import ParameterError
from rip_atoms.testing import frames
from rip_atoms.testing import generators as gen

__all__ = [
    "activation_sets",
    "codes_by_support",
    "coherent_dictionaries",
    "dependent_dictionaries",
    "dictionaries",
    "etf_block_dictionaries",
    "gaussian_dictionaries",
    "integer_dictionaries",
    "near_etf_dictionaries",
    "paired_dictionaries",
    "planted_atom_sets",
    "second_moments",
    "sparse_codes",
    "union_of_bases_dictionaries",
]

_SEEDS = st.integers(0, 2**32 - 1)
IntArg = int | SearchStrategy[int] | None
FloatArg = float | SearchStrategy[float] | None


def as_strategy(x, default: SearchStrategy | None = None) -> SearchStrategy:
    if x is None:
        return default
    return x if isinstance(x, SearchStrategy) else st.just(x)


def _rng(draw) -> np.random.Generator:
    return np.random.default_rng(draw(_SEEDS))


@st.composite
def gaussian_dictionaries(draw, dim: IntArg = None, n_atoms: IntArg = None,
                          max_mu: float | None = None) -> np.ndarray:
    """H×N unit columns with iid Gaussian directions. ``dim`` default 2..16, ``n_atoms``
    default H..3H. Coherence ≈ sqrt(4 log N / H) for large H (Cai–Jiang). With ``max_mu``:
    conditioned on μ(D) ≤ max_mu by rejection (the exact conditional law; a bound far below the
    typical μ makes hypothesis report that it filtered too much)."""
    H = draw(as_strategy(dim, st.integers(2, 16)))
    N = draw(as_strategy(n_atoms, st.integers(H, 3 * H)))
    D = gen.gaussian_atoms(_rng(draw), H, N)
    if max_mu is not None:
        assume(frames.frame_coherence(D) <= max_mu)
    return D


@st.composite
def integer_dictionaries(draw, dim: IntArg = None, n_atoms: IntArg = None, *,
                         max_entry: int = 3, max_mu: float | None = None) -> np.ndarray:
    """H×N unit columns dⱼ = bⱼ/‖bⱼ‖ of an integer matrix B whose entries, in
    [−max_entry, max_entry], hypothesis draws one by one; a zero column bⱼ is replaced by the
    unit vector e_{j mod H}. Counterexamples shrink toward B = [e₀ e₁ … e_{H−1} e₀ …] (the
    identity when N ≤ H) and small integers. Defaults: H 1..8, N 1..2H. With ``max_mu``:
    conditioned on μ(D) ≤ max_mu by rejection. Duplicate and opposite atoms (μ = 1) are drawn
    on purpose unless max_mu < 1."""
    H = draw(as_strategy(dim, st.integers(1, 8)))
    N = draw(as_strategy(n_atoms, st.integers(1, 2 * H)))
    B = draw(arrays(np.int64, (H, N), elements=st.integers(-max_entry, max_entry))).astype(float)
    for j in np.flatnonzero(~B.any(axis=0)):
        B[j % H, j] = 1.0
    D = B / np.linalg.norm(B, axis=0)
    if max_mu is not None:
        assume(frames.frame_coherence(D) <= max_mu)
    return D


@st.composite
def near_etf_dictionaries(draw, dim: IntArg = None, noise: FloatArg = None) -> np.ndarray:
    """The simplex ETF in R^H (N = H + 1, μ = 1/H, the Welch bound) rotated at random and
    perturbed by ``noise`` (default 0..0.1): μ within O(noise) of 1/H."""
    H = draw(as_strategy(dim, st.integers(2, 16)))
    eta = draw(as_strategy(noise, st.floats(0.0, 0.1)))
    return gen.near_etf_atoms(_rng(draw), H, eta)


@st.composite
def etf_block_dictionaries(draw, block_dims: list[int] | SearchStrategy[list[int]] | None = None
                           ) -> tuple[np.ndarray, float]:
    """(D, μ): a direct sum of simplex ETFs with block dimensions mᵦ (default 1–4 blocks of
    1..6), rotated at random. Exactly μ = 1/min mᵦ, spark = 1 + min mᵦ, N = H + #blocks."""
    dims = draw(as_strategy(block_dims, st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    return gen.etf_block_atoms(_rng(draw), list(dims))


@st.composite
def paired_dictionaries(draw, dim: IntArg = None, n_atoms: IntArg = None, mu: FloatArg = None,
                        n_pairs: IntArg = None) -> tuple[np.ndarray, float]:
    """(D, μ): N ≤ H unit atoms with planted coherence — disjoint pairs with inner product ±μ,
    everything else orthogonal. Defaults: H 2..16, N 2..H, μ 0..0.9, all atoms paired."""
    H = draw(as_strategy(dim, st.integers(2, 16)))
    N = draw(as_strategy(n_atoms, st.integers(min(2, H), H)))
    c = draw(as_strategy(mu, st.floats(0.0, 0.9)))
    pairs = draw(as_strategy(n_pairs, st.just(N // 2)))
    return gen.paired_atoms(_rng(draw), H, N, c, pairs)


def max_atoms(H: int, mu: float) -> int:
    """The largest N ≤ 4H with :func:`~rip_atoms.testing.frames.coherence_floor` ≤ μ."""
    N = H
    while N < 4 * H and frames.coherence_floor(H, N + 1) <= mu:
        N += 1
    return N


@st.composite
def coherent_frame_draw(draw, dim: IntArg, n_atoms: IntArg, mu: FloatArg
                        ) -> tuple[np.ndarray, float]:
    H = draw(as_strategy(dim, st.integers(2, 16)))
    if n_atoms is None and mu is not None:
        m = float(draw(as_strategy(mu)))
        N = draw(st.integers(min(2, H), max(max_atoms(H, m), 2)))
    else:
        N = draw(as_strategy(n_atoms, st.integers(min(2, H), 4 * H)))
        lo = frames.coherence_floor(H, N)
        if mu is None and lo >= 1.0:
            raise ParameterError(f"coherent_dictionaries: no μ < 1 is promised for H = {H}, "
                                 f"N = {N}")
        m = float(draw(as_strategy(mu, st.floats(lo, max(0.9, (1.0 + lo) / 2), exclude_max=True))))
    rng = _rng(draw)
    if N <= H:
        return gen.paired_atoms(rng, H, N, m)
    return frames.coherent_frame(rng, H, N, m), m


def coherent_dictionaries(dim: IntArg = None, n_atoms: IntArg = None, mu: FloatArg = None
                          ) -> SearchStrategy[tuple[np.ndarray, float]]:
    """(D, μ): H×N unit atoms with coherence μ(D) = max_{i≠j} |⟨dᵢ, dⱼ⟩| equal to μ within
    1e-12, for N ≤ H and for overcomplete N > H alike.

    N ≤ H: :func:`~rip_atoms.testing.generators.paired_atoms` (⌊N/2⌋ pairs at ±μ, every other
    pair orthogonal; N = 1 gives μ = 0). N > H:
    :func:`~rip_atoms.testing.frames.coherent_frame` (one pair at exactly ±μ, every other pair
    ≤ (1 − 10⁻³/2)μ). Feasible μ: [0, 1) when N ≤ H; [W, 1) when N > H, W = sqrt((N − H)/(H(N − 1)))
    the Welch bound (below it raises :class:`~rip_atoms.errors.ParameterError`: no such frame
    exists); promised from 1.5·W (N ≤ 4H), attempted between W and 1.5·W.

    Defaults: H 2..16; N 2..4H; μ drawn in [floor, 0.9] (floor = 0 for N ≤ H, 1.5·W above);
    with μ given and N not, N is drawn in [2, the largest N ≤ 4H whose floor is ≤ μ]. With no
    argument: one of :func:`paired_dictionaries`, :func:`etf_block_dictionaries` and the
    overcomplete frames above (H 2..12).
    """
    if dim is not None or n_atoms is not None or mu is not None:
        return coherent_frame_draw(dim, n_atoms, mu)
    return st.one_of(paired_dictionaries(), etf_block_dictionaries(),
                     coherent_frame_draw(st.integers(2, 12), None, None))


@st.composite
def union_of_bases_dictionaries(draw, dim: IntArg = None, rotate: bool = True) -> frames.Frame:
    """:class:`~rip_atoms.testing.frames.Frame` of D = Q [I | Hₖ/√H], H = 2ᵏ (default 2..32,
    at most 64), N = 2H, Q Haar-random (I when not ``rotate``): μ = 1/√H exactly, spark =
    2^⌊k/2⌋ + 2^⌈k/2⌉ exactly (= 2√H for even k), and a null vector with that many non-zeros
    (:func:`~rip_atoms.testing.frames.hadamard_union`)."""
    H = draw(as_strategy(dim, st.sampled_from([2, 4, 8, 16, 32])))
    D, v = frames.hadamard_union(_rng(draw) if rotate else None, H)
    return frames.Frame(D, 1.0 / np.sqrt(H), frames.hadamard_spark(H), v)


@st.composite
def dependent_dictionaries(draw, dim: IntArg = None, n_atoms: IntArg = None,
                           spark: IntArg = None) -> frames.Frame:
    """:class:`~rip_atoms.testing.frames.Frame` with a planted dependent set
    (:func:`~rip_atoms.testing.frames.dependent_frame`): s = ``spark`` unit atoms in an
    (s − 1)-dimensional subspace, the rest Gaussian. Guarantees: D v = 0 (to 1e-12) for the
    returned v with exactly s non-zeros, so spark(D) ≤ s; spark(D) = s with probability 1
    (checked by enumeration in the tests); ``mu`` is μ(D) computed in float64. Defaults: H 2..8,
    N H..2H, s 2..min(H, N)."""
    H = draw(as_strategy(dim, st.integers(2, 8)))
    N = draw(as_strategy(n_atoms, st.integers(H, 2 * H)))
    s = draw(as_strategy(spark, st.integers(2, min(H, N))))
    D, v = frames.dependent_frame(_rng(draw), H, N, s)
    return frames.Frame(D, frames.frame_coherence(D), s, v)


def dictionaries(kinds: tuple[str, ...] = ("gaussian", "near_etf", "planted")
                 ) -> SearchStrategy[np.ndarray]:
    """Unit-column dictionaries from the chosen families: "gaussian", "near_etf", "planted"
    (planted coherence: :func:`coherent_dictionaries` with no argument), "integer"
    (:func:`integer_dictionaries`), "union_of_bases" and "dependent"."""
    table = {
        "gaussian": gaussian_dictionaries(),
        "near_etf": near_etf_dictionaries(),
        "planted": coherent_dictionaries().map(lambda t: t[0]),
        "integer": integer_dictionaries(),
        "union_of_bases": union_of_bases_dictionaries().map(lambda f: f.D),
        "dependent": dependent_dictionaries().map(lambda f: f.D),
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
    N = draw(as_strategy(n_atoms))
    k = draw(as_strategy(K))
    rows = draw(as_strategy(n))
    lo, hi = draw(as_strategy(magnitude))
    sg = draw(as_strategy(signs))
    return gen.sparse_code_matrix(_rng(draw), rows, N, min(k, N), magnitude=(lo, hi), signs=sg,
                                  hit_ends=hit_ends)


@st.composite
def codes_by_support(draw, n_atoms: IntArg, K: IntArg, *, n: IntArg = 1,
                     magnitude: tuple[float, float] | SearchStrategy = (1.0, 2.0),
                     signs: str | SearchStrategy[str] = "nonneg", hit_ends: bool = False
                     ) -> np.ndarray:
    """n×N codes drawn through hypothesis by support, sign and magnitude, so they shrink: each
    row has exactly k = min(K, N) non-zeros on a drawn support (shrinking toward {0, …, k−1}),
    magnitudes in [δ_min, δ_max] = ``magnitude`` (shrinking toward δ_min), signs per ``signs``
    ("nonneg", "signed": drawn ±, shrinking toward +, "nonpos"). ``hit_ends``: the first
    magnitude drawn is δ_min and the second (row 0's second non-zero, else row 1's first) is
    δ_max, so with n·k ≥ 2 the sample's magnitude range is exactly [δ_min, δ_max] (the TSAE
    window's inputs). Every argument may be a strategy."""
    N = draw(as_strategy(n_atoms))
    k = min(draw(as_strategy(K)), N)
    rows = draw(as_strategy(n))
    lo, hi = (float(v) for v in draw(as_strategy(magnitude)))
    sg = draw(as_strategy(signs))
    if not 0 < lo <= hi or sg not in gen.SIGNS:
        raise ParameterError(f"codes_by_support: need 0 < δ_min ≤ δ_max and signs in "
                             f"{gen.SIGNS}, got {(lo, hi)}, {sg!r}")
    C = np.zeros((rows, N))
    ends = [lo, hi] if hit_ends else []
    for r in range(rows):
        support = draw(st.lists(st.integers(0, N - 1), min_size=k, max_size=k, unique=True))
        for j in support:
            v = ends.pop(0) if ends else draw(st.floats(lo, hi))
            neg = sg == "nonpos" or (sg == "signed" and draw(st.booleans()))
            C[r, j] = -v if neg else v
    return C


@st.composite
def second_moments(draw, dim: IntArg = None, offset: FloatArg = None, decay: FloatArg = None
                   ) -> np.ndarray:
    """Σ = C + m mᵀ (SPD): C with eigenvalues i^{−decay} in a random basis (``decay`` default
    0..2) and a common offset m of norm offset·sqrt(tr C) (``offset`` default 0..5). A large
    offset is the representation shift: raw activation cosines concentrate away from 0."""
    H = draw(as_strategy(dim, st.integers(2, 16)))
    off = draw(as_strategy(offset, st.floats(0.0, 5.0)))
    dec = draw(as_strategy(decay, st.floats(0.0, 2.0)))
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
        H = draw(as_strategy(dim, st.integers(2, 16)))
        off = draw(as_strategy(offset, st.floats(0.0, 5.0)))
        dec = draw(as_strategy(decay, st.floats(0.0, 2.0)))
        n = draw(as_strategy(n_samples, st.integers(H + 1, 4 * H + 4)))
        rng = _rng(draw)
        C, m = gen.shifted_moment(rng, H, offset=off, decay=dec)
        sigma = 0.5 * (C + C.T) + np.outer(m, m)
        return gen.activations_with_moment(rng, n, sigma, mean=m), sigma
    sigma = np.asarray(draw(as_strategy(second_moment)), dtype=np.float64)
    H = sigma.shape[0]
    n = draw(as_strategy(n_samples, st.integers(H, 4 * H)))
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
    atoms (paired with coherence ``eps`` when N ≤ H; when N > H, ETF blocks with ε = 1/min block
    if ``eps`` is None, else an overcomplete frame with ε = ``eps`` within 1e-12 from
    :func:`~rip_atoms.testing.frames.coherent_frame`, feasible range as in
    :func:`coherent_dictionaries`), observed through a random invertible map (condition
    ``mixing_cond``, default 1..30) with random atom scales, the metric S̃ = (A Aᵀ)⁻¹ under which
    the AIP geometry is the planted one, K-sparse codes with normalised magnitudes exactly
    spanning ``magnitude`` and activations x = D δ. Defaults: H 2..12, N 2..H, K 1..3, ε 0..0.3,
    n 4..20."""
    H = draw(as_strategy(dim, st.integers(2, 12)))
    N = draw(as_strategy(n_atoms, st.integers(min(2, H), H)))
    k = min(draw(as_strategy(K, st.integers(1, 3))), N)
    n = draw(as_strategy(n_samples, st.integers(4, 20)))
    e = None if N > H and eps is None else float(draw(as_strategy(eps, st.floats(0.0, 0.3))))
    cond = draw(as_strategy(mixing_cond, st.floats(1.0, 30.0)))
    rng = _rng(draw)
    frame = None
    if N > H and e is not None:
        frame, e = frames.coherent_frame(rng, H, N, e), None
    return gen.planted_atom_set(rng, H, N, k, n, eps=e, magnitude=draw(as_strategy(magnitude)),
                                signs=draw(as_strategy(signs)), mixing_cond=cond,
                                scale_range=draw(as_strategy(scale_range)), unit_atoms=frame)
