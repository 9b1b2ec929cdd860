"""Mutual coherence, per-atom coherence, the Babel function and the most coherent pairs.

For unit atoms d̃ᵢ (by default the AIP-corrected ones, d̃ᵢ = W dᵢ/‖W dᵢ‖; raw on request):

* μ = max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩|, with the pair attaining it;
* per-atom coherence μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| for every atom;
* Babel μ₁(p) = maxⱼ (sum of the p largest |⟨d̃ⱼ, d̃ₗ⟩|, l ≠ j), p = 1..p_max (μ₁(1) = μ);
* the top-r pairs by |⟨d̃ᵢ, d̃ⱼ⟩|, and a histogram of |⟨d̃ᵢ, d̃ⱼ⟩| over all pairs i < j;
* the Welch bound sqrt((N−H)/(H(N−1))) ≤ μ for the N live atoms in R^H.

``babel`` holds float64 values that are certified *lower* bounds on μ₁(p) (see Precision) and
``babel_upper`` certified *upper* bounds: maxⱼ (float32 top-p sum of row j) + p·tol32.

Dead atoms (zero) are excluded and reported; duplicate pairs (|cos| ≥ 1 − 1e-6) are reported and
*not* dropped. For every guarantee a duplicate pair is treated as parallel: at that distance
from ±1 the two atoms cannot be told apart at the precision of real SAE weights (float32 rounding
of an exactly parallel pair such as dⱼ = −3dᵢ leaves |cos| = 1 − 1e-15), so every certified upper
bound counts it as |cos| = 1 (``mu_upper`` = 1, ``per_atom_upper`` = 1 for both atoms, the
entry counts 1 in ``babel_upper``): a dictionary with a duplicate pair certifies nothing from
μ (certified K = 0, and the coherence bound gives only spark ≥ 2). That is a conservative upper
bound, never a refutation: spark's upper side, RIP's L_k and the ℓ1 certificates and witnesses
decide on the float64 atoms themselves (:mod:`rip_atoms.precision`), so a pair at
|cos| = 1 − 1e-6 is no dependent set and a code on it may be certified. The measured values
(``mu``, ``per_atom``, ``babel``, the pair lists) stay what they are: true values up to their
stated float error, clamped to ≤ 1, never rounded up.

Certified values. Every guarantee (uniqueness K, spark lower bounds, Babel K, RIP upper sides) is
taken from an upper bound on μ, never from the float value itself: ``mu_upper`` =
min(μ + tol64, maxⱼ float32 μⱼ + tol32, 1) (tol64 = 4(H + 2)·ε₆₄·κ(S̃) bounds the float64
recomputation, :func:`rip_atoms.precision.float64_cosine_tolerance`), 1 with a duplicate
pair; ``per_atom_upper`` = min(μⱼ + tol32, 1), 1 for atoms in a duplicate pair.

Precision. The pass over all pairs is blocked float32 GEMM (:mod:`rip_atoms.kernels`), never
holding the N×N Gram. Every float32 cosine is within ``tol32`` = γ_H + 2.5u of the exact value
(u = 2⁻²⁴, γ_H = Hu/(1 − Hu): rounding of the unit rows to float32 plus the GEMM's accumulation
bound for unit vectors). The reported extremes are recomputed in float64 as
cos(j, l) = dⱼᵀ S̃ dₗ / (‖dⱼ‖_S ‖dₗ‖_S) from the atoms as given: μ and its pair, the top pairs,
duplicate pairs, and the Babel values (the float64 sum over the float32-selected top-p list of
every row whose float32 sum is within p·2·tol32 of the best; the value is a sum of p true |cos|
values, so it is a certified lower bound on μ₁(p), and within p·2·tol32 of it). Per-atom μⱼ are
the float32 values (error ≤ tol32).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rip_atoms.arguments import check_int, check_real
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import DUPLICATE_TOL, Dictionary
from rip_atoms.errors import ParameterError
from rip_atoms.geometry import UNSET, Geometry
from rip_atoms.kernels import blocked_gram_reduce
from rip_atoms.metric import AIPMetric
from rip_atoms.theory import welch_bound

#: the quantile levels every per-atom or per-token distribution is summarised at
PER_ATOM_QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
#: per_atom_coherence computes every value in float64 up to this many live atoms
EXACT_MAX_ATOMS = 4096
_MAX_BABEL_ROWS = 64
_MAX_EXTRA_PAIRS = 20000


@dataclass(frozen=True)
class CoherenceResult:
    """Coherence of a dictionary (indices are atom indices of the dictionary as given)."""

    dim: int
    n_atoms: int
    n_live: int
    metric: dict
    mu: float
    pair: tuple[int, int]
    welch_bound: float
    per_atom: np.ndarray = field(repr=False)  # (N,), NaN for dead atoms
    per_atom_partner: np.ndarray = field(repr=False)  # (N,), -1 for dead atoms
    babel: np.ndarray = field(repr=False)  # (p_max,), entry p-1 is μ₁(p)
    babel_rows: np.ndarray = field(repr=False)  # atom attaining μ₁(p)
    babel_upper: np.ndarray = field(repr=False)  # certified upper bound on μ₁(p)
    top_pairs: list[tuple[int, int, float]] = field(repr=False)
    histogram_counts: np.ndarray = field(repr=False)
    histogram_edges: np.ndarray = field(repr=False)
    dead_atoms: np.ndarray = field(repr=False)
    duplicate_pairs: list[tuple[int, int, float]] = field(repr=False)
    float32_tolerance: float = 0.0
    seconds: float = 0.0
    mu_upper: float = 1.0  # certified upper bound on μ (1 with a duplicate pair)
    float64_tolerance: float = 0.0

    @property
    def per_atom_upper(self) -> np.ndarray:
        """Certified upper bounds on μⱼ: min(μⱼ + tol32, 1); 1 for atoms in a duplicate pair;
        NaN for dead atoms."""
        up = np.minimum(self.per_atom + self.float32_tolerance, 1.0)
        for i, j, _ in self.duplicate_pairs:
            up[[i, j]] = 1.0
        return up

    @property
    def certified_k(self) -> int | float:
        """Largest K with (2K − 1)·mu_upper < 1: every code with at most K non-zeros is the
        unique K-sparse representation of its signal and basis pursuit and OMP recover it
        (Donoho–Elad 2003, Tropp 2004); 0 with a duplicate pair."""
        from rip_atoms.theory import coherence_certified_k

        return coherence_certified_k(self.mu_upper)

    @property
    def per_atom_quantiles(self) -> dict[float, float]:
        live = self.per_atom[np.isfinite(self.per_atom)]
        values = np.quantile(live, PER_ATOM_QUANTILES)
        return {q: float(v) for q, v in zip(PER_ATOM_QUANTILES, values, strict=True)}

    def covers(self, atoms: CorrectedAtoms, *, babel_p: int = 1, top: int = 0) -> bool:
        """Can this result stand in for a new pass over ``atoms``? Same dictionary shape, live
        atoms and metric description, Babel to at least ``babel_p`` and at least ``top`` top
        pairs (each capped by what exists), and the pair's float64 cosine recomputed from
        ``atoms`` equals ``mu`` (a cheap check that it is the same dictionary and metric)."""
        n = atoms.n_live
        if (self.dim, self.n_atoms, self.n_live) != (atoms.dim, atoms.dictionary.n_atoms, n):
            return False
        if self.metric != atoms.metric_info():
            return False
        if len(self.babel) < min(babel_p, n - 1):
            return False
        if len(self.top_pairs) < min(top, n * (n - 1) // 2):
            return False
        again = float(atoms.cosines_pairs(np.array([self.pair]))[0])
        return abs(again - self.mu) <= 1e-9

    def to_dict(self) -> dict:
        return {
            "dim": self.dim,
            "n_atoms": self.n_atoms,
            "n_live": self.n_live,
            "metric": self.metric,
            "mu": self.mu,
            "mu_upper": self.mu_upper,
            "certified_K": self.certified_k,
            "pair": list(self.pair),
            "welch_bound": self.welch_bound,
            "mu_over_welch": self.mu / self.welch_bound if self.welch_bound > 0 else None,
            "babel": self.babel.tolist(),
            "babel_rows": self.babel_rows.tolist(),
            "babel_upper": self.babel_upper.tolist(),
            "per_atom_quantiles": {str(q): v for q, v in self.per_atom_quantiles.items()},
            "top_pairs": [[i, j, v] for i, j, v in self.top_pairs],
            "histogram": {
                "counts": self.histogram_counts.tolist(),
                "edges": self.histogram_edges.tolist(),
                "of": "|cos| over pairs i < j of live atoms (float32)",
            },
            "dead_atoms": self.dead_atoms.tolist(),
            "duplicate_pairs": [[i, j, v] for i, j, v in self.duplicate_pairs],
            "float32_tolerance": self.float32_tolerance,
            "float64_tolerance": self.float64_tolerance,
            "precision": "mu, pair, top_pairs, duplicate_pairs and babel recomputed in float64; "
            "per_atom and histogram are float32 (error <= float32_tolerance); mu_upper, "
            "babel_upper and certified_K are certified (a duplicate pair counts as parallel: "
            "mu_upper = 1)",
            "seconds": self.seconds,
        }


def coherence(
    geom: Geometry | Dictionary | np.ndarray,
    metric: AIPMetric | str | None = UNSET,
    *,
    babel_p: int = 64,
    top: int = 100,
    bins: int = 200,
    block_size: int = 2048,
    duplicate_tol: float = DUPLICATE_TOL,
    backend: str = "numpy",
    device: str | None = None,
    progress: bool = False,
    client=None,
) -> CoherenceResult:
    """Coherence report of D under a metric (module docstring has the formulas and precision).

    Parameters
    ----------
    geom : the :class:`~rip_atoms.geometry.Geometry` of D (or, at the API edge, a Dictionary
        or H×N array with ``metric``). The pass is kept on the geometry: another call with the
        same arguments (``babel_p``, ``top``, ``bins``, ``duplicate_tol``, ``backend``,
        ``device``) returns it, and the analyses of the geometry (RIP, spark, per-atom μⱼ)
        reuse it when it covers them.
    metric : with a dictionary: ``"self"`` (default: S̃ = (D Dᵀ)⁻¹, the paper's closed form),
        an :class:`AIPMetric` (e.g. fitted on activations), or ``"raw"`` (None: ``"raw"``) for
        Euclidean cosines; with a Geometry, left out (or its own).
    babel_p : largest p for the Babel function (capped at N_live − 1).
    top : number of most coherent pairs to return.
    bins : histogram bins of |cos| over [0, 1].
    block_size : GEMM block edge B (memory O(B²)).
    duplicate_tol : pairs with |cos| ≥ 1 − duplicate_tol are reported as duplicates.
    backend : ``"numpy"`` (blocked numpy GEMM + numba merges, the reference) or ``"torch"``
        (the same reduction through torch, on ``device`` — CUDA when available). Both feed the
        same float64 recomputation, so the reported extremes agree.
    client : a ``distributed.Client`` (:func:`rip_atoms.cluster.dask_client`), numpy backend
        only: the corrected rows are scattered once to every worker and the Gram tiles run as
        pure Dask tasks, a few runs of tiles per worker, whose partial per-row lists and
        histograms are merged here (:func:`rip_atoms.kernels.blocked_gram_reduce`). The result
        is bit-identical to the single-process pass (each row keeps its top entries in a total
        order, ties by index); a task whose worker dies is rerun with the same result.

    Returns
    -------
    CoherenceResult
        μ and its pair, per-atom μⱼ, Babel (lower and certified upper), top pairs, duplicates,
        and the certified ``mu_upper`` / ``certified_k`` every guarantee is taken from.

    Examples
    --------
    Three unit atoms in the plane at 60° (|cos| = 1/2 for every pair): μ = 1/2, μ₁(2) = 1, and
    (2K − 1)·μ < 1 holds for K = 1 only.

    >>> import numpy as np
    >>> from rip_atoms import coherence
    >>> a = np.deg2rad([0, 60, 120])
    >>> res = coherence(np.vstack([np.cos(a), np.sin(a)]), "raw")
    >>> round(res.mu, 12), [round(float(b), 12) for b in res.babel], res.certified_k
    (0.5, [0.5, 1.0], 1)
    """
    t0 = time.perf_counter()
    block_size = check_int("block_size", block_size, least=1)
    babel_p = check_int("babel_p", babel_p, least=1)
    top = check_int("top", top, least=0)
    bins = check_int("bins", bins, least=1)
    duplicate_tol = check_real("duplicate_tol", duplicate_tol, lo=0.0, hi=1.0, hi_open=True)
    geom = Geometry.of(geom, metric, default="self")
    atoms = geom.atoms(min_live=2)
    if client is not None and backend != "numpy":
        raise ParameterError("a Dask client runs the numpy backend's tiles; use "
                             "backend='numpy' with client=")
    if backend not in ("numpy", "torch"):
        raise ParameterError(f"backend must be 'numpy' or 'torch', not {backend!r}")
    key = (babel_p, top, bins, duplicate_tol, backend, device)
    kept = geom.coherence_pass(key)
    if kept is not None:
        return kept
    res = _coherence_pass(atoms, t0, babel_p=babel_p, top=top, bins=bins,
                          block_size=block_size, duplicate_tol=duplicate_tol, backend=backend,
                          device=device, progress=progress, client=client)
    geom.keep_coherence(res, key)
    return res


def _coherence_pass(atoms: CorrectedAtoms, t0: float, *, babel_p: int, top: int, bins: int,
                    block_size: int, duplicate_tol: float, backend: str, device: str | None,
                    progress: bool, client) -> CoherenceResult:
    """The blocked float32 pass of :func:`coherence` over the rows of ``atoms`` and the float64
    recomputation of its extremes (module docstring)."""
    d = atoms.dictionary
    live = atoms.live
    n_live = atoms.n_live
    tol = atoms.tolerance
    babel_p = max(1, min(babel_p, n_live - 1))
    n_top_pairs = max(1, top)
    P = min(max(babel_p, n_top_pairs), n_live - 1)
    if backend == "torch":
        from rip_atoms.kernels.torch_gram import blocked_gram_reduce_torch

        red = blocked_gram_reduce_torch(atoms.rows, P, bins=bins, block_size=block_size,
                                        device=device, progress=progress)
    else:
        red = blocked_gram_reduce(atoms.rows, P, bins=bins, block_size=block_size,
                                  progress=progress, client=client)
    topv = red.top_values  # float32
    topi = red.top_indices
    r = min(n_top_pairs, n_live * (n_live - 1) // 2)
    dup_cutoff = 1.0 - duplicate_tol - 2 * tol
    top_pairs, window_complete, cand_pairs_atoms, cand_exact = _top_pairs(
        atoms, topv, topi, r, dup_cutoff)
    mu = top_pairs[0][2]
    pair = (top_pairs[0][0], top_pairs[0][1])
    duplicate_pairs = _duplicate_pairs(atoms, topv, P, cand_pairs_atoms, cand_exact,
                                       duplicate_tol, dup_cutoff)
    babel, babel_rows = _babel(atoms, topv, topi, babel_p, mu, pair)

    per_atom = np.full(d.n_atoms, np.nan)
    row_max = topv[:, 0]
    per_atom[live] = np.minimum(row_max, 1.0)  # float32 cosines can exceed 1 by an ulp
    partner = np.full(d.n_atoms, -1, dtype=np.int64)
    partner[live] = live[topi[:, 0]]
    # certified: float32 top-p sums + p·tol32, with duplicate-range entries counted as 1
    top_up = np.where(topv[:, :babel_p] >= dup_cutoff, np.float32(1.0), topv[:, :babel_p])
    babel_upper = (np.cumsum(top_up, axis=1, dtype=np.float64).max(axis=0)
                   + tol * np.arange(1, babel_p + 1))
    # μ + tol64 bounds the true μ only when the candidate window held every possible maximum
    mu_upper = min(1.0, mu + atoms.tolerance64 if window_complete else 1.0,
                   float(babel_upper[0]))
    if duplicate_pairs:  # treated as parallel: nothing is certified
        mu_upper = 1.0
    return CoherenceResult(
        dim=d.dim,
        n_atoms=d.n_atoms,
        n_live=n_live,
        metric=atoms.metric_info(),
        mu=mu,
        pair=pair,
        welch_bound=welch_bound(d.dim, n_live),
        per_atom=per_atom,
        per_atom_partner=partner,
        babel=babel,
        babel_rows=babel_rows,
        babel_upper=babel_upper,
        top_pairs=top_pairs[: max(0, top)] if top > 0 else [],
        histogram_counts=red.histogram,
        histogram_edges=red.bin_edges,
        dead_atoms=np.asarray(d.dead_atoms),
        duplicate_pairs=duplicate_pairs,
        float32_tolerance=tol,
        seconds=time.perf_counter() - t0,
        mu_upper=mu_upper,
        float64_tolerance=atoms.tolerance64,
    )


def _top_pairs(atoms: CorrectedAtoms, topv: np.ndarray, topi: np.ndarray, r: int,
               dup_cutoff: float) -> tuple[list[tuple[int, int, float]], bool, np.ndarray,
                                           np.ndarray]:
    """The r most coherent pairs |cos(i, j)|, recomputed in float64, from the per-row float32
    lists (``topv``, ``topi``) of the live atoms; with whether the candidate window held every
    pair that could be the maximum, and the candidates (atom pairs, float64 |cos|).

    A pair in the global top r is in its own row's top r, and the 2r largest row maxima name at
    least r distinct pairs, so every top-r pair has |cos| ≥ t := the 2r-th largest row maximum
    (float32); list entries ≥ t − 2·tol32 are kept (and the duplicate range, ≥ ``dup_cutoff``).
    """
    live = atoms.live
    n_live = atoms.n_live
    tol = atoms.tolerance
    row_max = topv[:, 0]
    t = -1.0 if 2 * r > n_live else float(np.partition(row_max, n_live - 2 * r)[n_live - 2 * r])
    keep_rows, keep_pos = np.nonzero(topv >= min(t - 2 * tol, dup_cutoff))
    lo = np.minimum(keep_rows, topi[keep_rows, keep_pos]).astype(np.int64)
    hi = np.maximum(keep_rows, topi[keep_rows, keep_pos]).astype(np.int64)
    key, first = np.unique(lo * n_live + hi, return_index=True)
    vals = topv[keep_rows[first], keep_pos[first]].astype(np.float64)
    order = np.argsort(-vals, kind="stable")
    cutoff = vals[order[r - 1]] - 2 * tol
    n_cand = int(np.sum(vals >= min(cutoff, dup_cutoff)))
    cand = order[: min(max(r, n_cand), r + _MAX_EXTRA_PAIRS)]
    window_complete = len(cand) >= n_cand  # every pair that could be the maximum is in it
    cand_pairs = np.stack([key[cand] // n_live, key[cand] % n_live], axis=1)
    cand_pairs_atoms = live[cand_pairs]
    cand_exact = atoms.cosines_pairs(cand_pairs_atoms)
    ex_order = np.argsort(-cand_exact, kind="stable")
    top_pairs = [
        (int(cand_pairs_atoms[k, 0]), int(cand_pairs_atoms[k, 1]), float(cand_exact[k]))
        for k in ex_order[:r]
    ]
    return top_pairs, window_complete, cand_pairs_atoms, cand_exact


def _duplicate_pairs(atoms: CorrectedAtoms, topv: np.ndarray, P: int,
                     cand_pairs_atoms: np.ndarray, cand_exact: np.ndarray, duplicate_tol: float,
                     dup_cutoff: float) -> list[tuple[int, int, float]]:
    """Pairs with float64 |cos(i, j)| ≥ 1 − ``duplicate_tol``, most parallel first: the listed
    candidates, plus the full float32 rows of atoms whose list of P entries is saturated by the
    duplicate range (≥ ``dup_cutoff``), recomputed in float64."""
    live = atoms.live
    dup = {}
    for k in np.flatnonzero(cand_exact >= 1.0 - duplicate_tol):
        i, j = cand_pairs_atoms[k]
        dup[(int(min(i, j)), int(max(i, j)))] = float(cand_exact[k])
    saturated = np.flatnonzero(topv[:, P - 1] >= dup_cutoff)
    if saturated.size:
        A_sat = atoms.rows
        for jr in saturated:
            row = np.abs(A_sat @ A_sat[jr])
            row[jr] = -1
            others = np.flatnonzero(row >= dup_cutoff)
            ex = atoms.cosines_row(int(live[jr]), live[others])
            for o, v in zip(others, ex, strict=True):
                if v >= 1.0 - duplicate_tol:
                    i, j = sorted((int(live[jr]), int(live[o])))
                    dup[(i, j)] = float(v)
    return sorted(((i, j, v) for (i, j), v in dup.items()), key=lambda t: -t[2])


def _babel(atoms: CorrectedAtoms, topv: np.ndarray, topi: np.ndarray, babel_p: int, mu: float,
           pair: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Babel μ₁(p) = maxⱼ Σ of the p largest |cos(j, l)|, p = 1..``babel_p``: the float64 re-sum
    of the listed entries of every row whose float32 sum is within 2p·tol32 of the best (at
    most 8 per p, up to 64 rows, and each p's float32 argmax), a certified lower bound; with the
    row attaining each value. μ₁(1) is at least μ (its ``pair``)."""
    live = atoms.live
    tol = atoms.tolerance
    cums = np.cumsum(topv[:, :babel_p], axis=1, dtype=np.float64)  # (n_live, babel_p)
    cand_rows: set[int] = {int(x) for x in np.searchsorted(live, pair)}
    for p in range(1, babel_p + 1):
        col = cums[:, p - 1]
        best = col.max()
        near = np.flatnonzero(col >= best - 2 * p * tol)
        if near.size > 8:
            near = near[np.argsort(-col[near], kind="stable")[:8]]
        cand_rows.update(int(x) for x in near)
        if len(cand_rows) >= _MAX_BABEL_ROWS:
            break
    for p in range(1, babel_p + 1):  # always include each p's float32 argmax
        cand_rows.add(int(np.argmax(cums[:, p - 1])))
    cand_rows_arr = np.array(sorted(cand_rows))
    exact_cums = np.empty((len(cand_rows_arr), babel_p))
    for k, jr in enumerate(cand_rows_arr):
        ex = np.sort(atoms.cosines_row(int(live[jr]), live[topi[jr, :babel_p]]))[::-1]
        exact_cums[k] = np.cumsum(ex)
    best_k = np.argmax(exact_cums, axis=0)
    babel = exact_cums[best_k, np.arange(babel_p)]
    babel_rows = live[cand_rows_arr[best_k]]
    # μ₁(1) = μ: the pair search saw every row's top entry, so it is at least as good
    if mu > babel[0]:
        babel[0], babel_rows[0] = mu, pair[0]
    return babel, babel_rows


# =============================================================================== per-atom coherence
def quantile_table(values: np.ndarray) -> dict[str, float] | None:
    """Inverse-empirical-CDF quantiles at :data:`PER_ATOM_QUANTILES` (None for an empty sample).

    Parameters
    ----------
    values : array_like
        The sample (non-finite values are dropped).

    Returns
    -------
    dict or None
        level (as a string) → quantile.

    Examples
    --------
    >>> quantile_table(np.arange(1.0, 5.0))["0.5"]
    2.0
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    qs = np.quantile(v, PER_ATOM_QUANTILES, method="inverted_cdf")
    return {str(q): float(x) for q, x in zip(PER_ATOM_QUANTILES, qs, strict=True)}


@dataclass(frozen=True)
class PerAtomCoherence:
    """Per-atom AIP coherence μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| over the live atoms.

    ``values`` (N,) float64, NaN for dead atoms; ``partner`` the l attaining it (−1 if none);
    ``exact`` marks values computed in float64 (within ``tolerance64`` of the truth; the others
    are float32 values within ``tolerance`` of the truth, and at least ``tolerance`` away from
    every threshold 1/(2k − 1), so each uniqueness comparison is decided exactly). ``mu`` and
    ``pair`` are the float64 maximum and its pair. A single live atom has μⱼ = 0 (no other
    atom).

    Decisions (q* readings, the atom-set check) use upper bounds (:meth:`decision_values`,
    :meth:`for_supports`, :attr:`mu_upper`): the float64 values raised by ``tolerance64``, so a
    value that only rounding puts below a threshold 1/(2k − 1) never passes it, and 1 for atoms
    in a duplicate pair (|cos| ≥ 1 − 1e-6: treated as parallel, as in
    :mod:`rip_atoms.coherence`).
    """

    values: np.ndarray = field(repr=False)
    partner: np.ndarray = field(repr=False)
    exact: np.ndarray = field(repr=False)
    tolerance: float
    mu: float
    pair: tuple[int, int] | None
    n_atoms: int
    n_live: int
    metric: dict
    method: str
    tolerance64: float = 0.0

    @property
    def mu_upper(self) -> float:
        """Certified upper bound on μ: min(μ + tolerance64, 1); 1 with a duplicate pair."""
        return 1.0 if self.mu >= 1.0 - DUPLICATE_TOL else min(1.0, self.mu + self.tolerance64)

    def live_values(self) -> np.ndarray:
        """μⱼ of the live atoms."""
        return self.values[np.isfinite(self.values)]

    def _upper(self) -> np.ndarray:
        up = np.where(self.exact, np.minimum(self.values + self.tolerance64, 1.0), self.values)
        return np.where(self.values >= 1.0 - DUPLICATE_TOL, 1.0, up)  # NaN stays NaN

    def decision_values(self) -> np.ndarray:
        """Upper bounds on μⱼ of the live atoms for uniqueness decisions: float64 values plus
        ``tolerance64`` (capped at 1), float32 values as they are (already decided exactly),
        1 for atoms in a duplicate pair."""
        up = self._upper()
        return up[np.isfinite(up)]

    def for_supports(self) -> np.ndarray:
        """Upper bounds on μⱼ (as :meth:`decision_values`) for every atom, dead atoms set to 1:
        a code that uses a zero atom is never unique (its coefficient can be changed freely), so
        it fails every uniqueness condition."""
        up = self._upper()
        return np.where(np.isfinite(up), up, 1.0)

    def to_dict(self) -> dict:
        return {
            "mu": self.mu,
            "pair": None if self.pair is None else list(self.pair),
            "n_atoms": self.n_atoms,
            "n_live": self.n_live,
            "quantiles": quantile_table(self.live_values()),
            "n_exact": int(self.exact.sum()),
            "tolerance": self.tolerance,
            "method": self.method,
            "metric": self.metric,
        }


def _near_thresholds(f: np.ndarray, tol: float) -> np.ndarray:
    """Mask of values within ``tol`` of some threshold 1/(2k − 1), k ≥ 1 (or of 0)."""
    band = tol * (1 + 1e-6) + 1e-15
    mask = f <= 3 * band
    safe = np.where(mask, 1.0, f)
    k0 = np.floor(0.5 * (1.0 / safe + 1.0))
    for dk in (-1.0, 0.0, 1.0, 2.0):
        k = np.maximum(k0 + dk, 1.0)
        mask |= np.abs(f - 1.0 / (2.0 * k - 1.0)) <= band
    return mask


def _is_diagonal(d: Dictionary) -> bool:
    """Is D a square diagonal matrix (the neuron basis, up to scaling and signs)?"""
    A = d.atoms
    if A.shape[0] != A.shape[1]:
        return False
    return np.count_nonzero(A) == np.count_nonzero(np.diagonal(A))


def _diagonal_rows(atoms: CorrectedAtoms, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 max_{l≠j} |cos(j, l)| and its argmax for diagonal atoms dⱼ = cⱼeⱼ: cos(j, l) =
    sign(cⱼcₗ)·S̃ⱼₗ/√(S̃ⱼⱼS̃ₗₗ) (raw geometry: 0), each entry from three stored numbers (the
    same float64 formula as :meth:`CorrectedAtoms.cosines_row`, without a GEMM)."""
    n = len(live)
    if atoms.metric is None:
        # orthogonal atoms: every cosine is 0; the partner is the first other atom, as in the
        # GEMM path
        return np.zeros(n), live[np.where(np.arange(n) == 0, 1, 0)]
    S = atoms.metric.S[np.ix_(live, live)]
    s = np.sqrt(np.diagonal(S))
    C = np.abs(S) / s[:, None] / s[None, :]
    np.fill_diagonal(C, -1.0)
    r = np.argmax(C, axis=1)
    return np.minimum(C[np.arange(n), r], 1.0), live[r]


def _exact_rows(atoms: CorrectedAtoms, J: np.ndarray, live: np.ndarray, block: int = 2048,
                V_live: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float64 max_{l live, l≠j} |⟨d̃ⱼ, d̃ₗ⟩| and its argmax, for the atoms J.

    With few rows (|J| < H/4) and no whitened atoms given, each cosine is computed as
    |dⱼᵀ S̃ dₗ| / (‖dⱼ‖_S ‖dₗ‖_S) from the raw columns (``CorrectedAtoms.cosines_row``'s
    formula): |J|·(H² + H·N) multiply-adds instead of whitening every atom (H²·N).
    """
    d = atoms.dictionary
    few = V_live is None and 4 * len(J) < atoms.dim
    best = np.full(len(J), -1.0)
    arg = np.full(len(J), -1, dtype=np.int64)
    for js in range(0, len(J), block):
        Jb = J[js: js + block]
        if V_live is None and atoms.rows64 is not None:  # float64 unit rows already made
            RJ = atoms.rows64[Jb]

            def cosines(cols, _cs, RJ=RJ):
                return np.abs(atoms.rows64[cols] @ RJ.T)
        elif few:
            XJ = d.scaled_columns(Jb)
            SJ = (XJ if atoms.metric is None else atoms.metric.S @ XJ) / atoms._snorms[Jb]

            def cosines(cols, _cs, SJ=SJ):
                return np.abs(d.scaled_columns(cols).T @ SJ) / atoms._snorms[cols][:, None]
        else:
            VJ = atoms.vectors(Jb)

            def cosines(cols, cs, VJ=VJ):
                Vc = V_live[:, cs: cs + block] if V_live is not None else atoms.vectors(cols)
                return np.abs(Vc.T @ VJ)
        bb = np.full(len(Jb), -1.0)
        ab = np.full(len(Jb), -1, dtype=np.int64)
        for cs in range(0, len(live), block):
            cols = live[cs: cs + block]
            C = cosines(cols, cs)  # (cols, Jb)
            C[cols[:, None] == Jb[None, :]] = -1.0
            r = np.argmax(C, axis=0)
            v = C[r, np.arange(len(Jb))]
            upd = v > bb
            bb[upd] = v[upd]
            ab[upd] = cols[r[upd]]
        best[js: js + len(Jb)] = bb
        arg[js: js + len(Jb)] = ab
    return np.minimum(best, 1.0), arg


def per_atom_coherence(
    geom: Geometry | Dictionary | np.ndarray,
    metric: AIPMetric | str | None = UNSET,
    *,
    exact_max_atoms: int = EXACT_MAX_ATOMS,
    progress: bool = False,
    client=None,
) -> PerAtomCoherence:
    """μⱼ = max_{l≠j} |⟨d̃ⱼ, d̃ₗ⟩| for every live atom of the geometry (with a dictionary:
    under ``metric``, an :class:`AIPMetric`, ``"self"`` for (D Dᵀ)⁻¹, or ``"raw"``/None for
    Euclidean cosines; no default).

    Up to ``exact_max_atoms`` live atoms: all pairs in float64. Above: the blocked float32 pass
    of :func:`coherence`, then float64 recomputation of every atom within the float32 tolerance
    of a threshold 1/(2k − 1) (see :class:`PerAtomCoherence`).
    A blocked pass the geometry keeps (e.g. the report's) is used instead of a new pass when it
    :meth:`~CoherenceResult.covers` the atoms, so the report's Gram is computed once.

    Parameters
    ----------
    geom : Geometry, Dictionary or array_like
        The geometry (:class:`~rip_atoms.geometry.Geometry`), or a dictionary, H×N, columns
        are atoms, with ``metric``.
    metric : AIPMetric, "self", "raw" or None
        With a dictionary, the inner product (None and "raw": Euclidean); with a Geometry,
        left out (or its own).
    exact_max_atoms : int
        All pairs in float64 up to this many live atoms.
    progress : bool
        A progress bar for the blocked pass (large dictionaries only).
    client : distributed.Client, optional
        Runs the blocked pass's tiles on a Dask cluster (see :func:`coherence`; same result).

    Returns
    -------
    PerAtomCoherence

    Examples
    --------
    >>> D = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.8]])
    >>> pac = per_atom_coherence(D, None)
    >>> [round(float(v), 6) for v in pac.values], pac.pair
    ([0.6, 0.8, 0.8], (1, 2))
    """
    geom = Geometry.of(geom, metric)
    atoms = geom.atoms(rows=False, min_live=1)
    d = atoms.dictionary
    live = atoms.live
    n = len(live)
    values = np.full(d.n_atoms, np.nan)
    partner = np.full(d.n_atoms, -1, dtype=np.int64)
    exact = np.zeros(d.n_atoms, dtype=bool)
    tol = 0.0
    if n == 1:
        values[live] = 0.0
        exact[live] = True
        mu, pair, method = 0.0, None, "single live atom (μⱼ = 0)"
    elif n <= exact_max_atoms:
        if _is_diagonal(d):  # the neuron basis: the cosines are S̃'s correlations, no GEMM
            vals, part = _diagonal_rows(atoms, live)
            method = "float64, all pairs (diagonal atoms: |S̃ᵢⱼ|/√(S̃ᵢᵢS̃ⱼⱼ))"
        else:
            V = atoms.vectors(live)
            vals, part = _exact_rows(atoms, live, live, V_live=V)
            method = "float64, all pairs"
        values[live], partner[live], exact[live] = vals, part, True
        r = int(np.argmax(vals))
        mu, pair = float(vals[r]), (int(min(live[r], part[r])), int(max(live[r], part[r])))
    else:
        coh = geom.coherence_pass(babel_p=1, top=1)
        if coh is None:
            coh = coherence(geom, babel_p=1, top=1, progress=progress, client=client)
        tol = float(coh.float32_tolerance)
        values[live] = coh.per_atom[live]
        partner[live] = coh.per_atom_partner[live]
        J = live[_near_thresholds(values[live], tol)]
        if J.size:
            vals, part = _exact_rows(atoms, J, live)
            values[J], partner[J], exact[J] = vals, part, True
        mu, pair = float(coh.mu), (int(coh.pair[0]), int(coh.pair[1]))
        method = (f"float32 blocked pass (tolerance {tol:.2g}); {int(J.size)} atoms near a "
                  "threshold 1/(2k−1) recomputed in float64")
    if np.any(values >= 1.0 - DUPLICATE_TOL):  # NaN (dead) compares False
        method += "; atoms in a duplicate pair (|cos| ≥ 1 − 1e-6) decide as μⱼ = 1"
    return PerAtomCoherence(
        values=values, partner=partner, exact=exact, tolerance=tol, mu=mu, pair=pair,
        n_atoms=d.n_atoms, n_live=n, metric=atoms.metric_info(), method=method,
        tolerance64=atoms.tolerance64,
    )

