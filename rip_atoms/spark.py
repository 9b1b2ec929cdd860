"""Spark bounds with witnesses, and the uniqueness of sparse codes they certify.

spark(D) = min{‖v‖₀ : D v = 0, v ≠ 0}, the size of the smallest linearly dependent set of atoms
(∞ when the atoms are independent). It is invariant under invertible maps and column scaling, so
the AIP does not change it (the coherence bounds below use whichever metric is given). A K-sparse
code is the unique K-sparse representation of its signal iff 2K < spark (Donoho & Elad 2003).

Dependence is numerical, with the two standards of :mod:`rip_atoms.precision`: a set T with
ρ(T) = σ_min(D̃_T)/σ_max(D̃_T) (float64 SVD) ≤ r = max(``rank_rtol``, √(H + 1)·κ(W)·u_in)
(:func:`rank_tolerance`, u_in the unit roundoff of the dtype the atoms arrived in) is **dependent
within the input's precision**; with ρ(T) ≤ ``PROOF_RTOL`` = 1e-9 it is **proven dependent**:
its unit null vector v re-checks in float64, ‖D̃_T v‖₂ ≤ 1e-9·‖D̃_T‖₂. The bracket has two upper
sides, each with its circuit, null vector, residual and method:

* ``upper`` — proven: the smallest proven-dependent circuit found, or H + 1 by dimension (any
  H + 1 atoms of R^H are dependent). [lower, upper] is a proof, ``exact`` means lower = upper,
  and only this side makes the statement "uniqueness fails for some codes with K = ⌈upper/2⌉".
* ``upper_within_precision`` ≤ ``upper`` — the smallest circuit dependent within the input's
  precision (the searches' target). A float32 pair dⱼ = −3dᵢ (ρ ≈ 1e-8 after rounding) is
  dependent within float32 precision and independent in float64: the spark of the float64 data
  may be far larger. It certifies nothing and refutes nothing.

A duplicate pair (|cos| ≥ 1 − 1e-6, see :mod:`rip_atoms.coherence`) counts as parallel in the
coherence lower bounds (μ ≤ 1 only); it is a dependent set only if it meets one of the standards
(a pair at |cos| = 1 − ε has ρ ≈ √(ε/2): ε = 1e-6 gives ρ ≈ 7e-4, independent).

Computing the spark is NP-hard (Tillmann 2019); we report a bracket:

Lower bounds (each also holds at the tolerance r: a set is independent at r when
σ_min²/σ_max² > r², which Gershgorin gives when μ₁(|T|−1) < c_r := (1 − r²)/(1 + r²)):
spark ≥ 1 + c_r/μ (Donoho–Elad); spark ≥ min{t : μ₁(t−1) ≥ c_r} (Babel: every set with
μ₁(|T|−1) < c_r is independent, by Gershgorin), using the certified upper values of μ and μ₁;
spark ≥ 2/μ for a union of two orthonormal bases (Elad–Bruckstein); ∞ when the whole dictionary
has full column rank; and t + 1 when every set of size ≤ t was enumerated and found independent.

Upper bounds (each with a null vector as witness): rank(D) + 1 (a pivoted-QR basis plus one atom);
sparse dependent sets found by the λmin local search of :mod:`rip_atoms.rip` and by ℓ1
self-expression of the most coherent atoms (homotopy: min ‖c‖₁ s.t. D̃₋ⱼ c = d̃ⱼ); every dependent
set is reduced to a circuit (a minimal dependent set) at r, and one that is only within
precision is reduced again at 1e-9 for the proven side (:class:`_ProvenUpper`). Exact when the
lower side meets the proven upper side, by enumeration on small cases.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from rip_atoms.arguments import check_int, check_real, check_seed
from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.deadline import Deadline, search_seconds
from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import DeadAtomsError
from rip_atoms.geometry import UNSET, Geometry
from rip_atoms.metric import AIPMetric
from rip_atoms.precision import (  # noqa: F401  (UNIT_ROUNDOFF, input_unit_roundoff re-exported)
    PROOF_RTOL,
    UNIT_ROUNDOFF,
    input_precision_name,
    input_unit_roundoff,
    rank_tolerance,
)

RANK_RTOL = PROOF_RTOL
#: seconds per H³ of the rank step (a pivoted QR of 2H atoms and the SVD of an (H+1)-atom
#: circuit, one thread; measured 5.4 s + 6.5 s at H = 2304 on a 2-core EPYC VM): the step is
#: skipped for the dimension bound when it would not fit the budget left
RANK_SECONDS_PER_H3 = 1e-9
#: seconds per flop of an unstoppable step (LARS self-expression; ~5 Gflop/s on one thread):
#: a step whose estimated cost exceeds the budget left is not started
SECONDS_PER_FLOP = 2e-10
#: seconds of scikit-learn's first import (lars_path), counted in the first LARS step's cost
SKLEARN_IMPORT_S = 1.5


def _gershgorin_threshold(rtol: float) -> float:
    """c_r = (1 − r²)/(1 + r²): μ₁(|T|−1) < c_r ⇒ σ_min²/σ_max² > r² (independent at r)."""
    return (1.0 - rtol * rtol) / (1.0 + rtol * rtol)


@dataclass(frozen=True)
class SparkResult:
    """A proven bracket [lower, upper] on the spark, its witness, and the side within precision.

    ``upper`` is proven (module docstring): ``witness`` is a circuit (atom indices as given) and
    ``null_vector`` its coefficients, unit ℓ2, with relative residual ``residual`` =
    ‖D̃_witness v‖₂/‖D̃_witness‖₂ ≤ ``proof_rtol`` in float64 (``witness`` is None when the side
    is H + 1 by dimension alone, or ∞). ``exact`` is lower == upper.
    ``upper_within_precision`` ≤ upper is the smallest circuit dependent within the input's
    precision (``precision``, σ_min/σ_max ≤ ``rank_rtol``), with ``witness_within_precision``,
    ``null_vector_within_precision`` and ``residual_within_precision`` (equal to the proven side
    when that is as small); it proves nothing. ``methods`` names how each side was obtained
    ("lower", "upper", "upper_within_precision"). ``unique_up_to`` is the largest K with
    2K < lower: every code with K ≤ unique_up_to non-zeros is the unique K-sparse
    representation of its signal.
    """

    lower: float
    upper: float
    exact: bool
    witness: tuple[int, ...] | None
    null_vector: np.ndarray | None = field(repr=False)
    residual: float | None
    methods: dict[str, str]
    rank_rtol: float
    unique_up_to: float
    statement: str
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    #: the searches' budget and its use (:meth:`rip_atoms.deadline.Deadline.to_dict`)
    budget: dict = field(default_factory=dict)
    upper_within_precision: float = math.inf
    witness_within_precision: tuple[int, ...] | None = None
    null_vector_within_precision: np.ndarray | None = field(default=None, repr=False)
    residual_within_precision: float | None = None
    precision: str = "float64"
    proof_rtol: float = PROOF_RTOL

    def to_dict(self) -> dict:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "exact": self.exact,
            "witness": None if self.witness is None else list(self.witness),
            "null_vector": None if self.null_vector is None else self.null_vector.tolist(),
            "residual": self.residual,
            "methods": dict(self.methods),
            "rank_rtol": self.rank_rtol,
            "unique_up_to": self.unique_up_to,
            "statement": self.statement,
            "notes": list(self.notes),
            "seconds": self.seconds,
            "budget": self.budget,
            "upper_within_precision": self.upper_within_precision,
            "witness_within_precision": (None if self.witness_within_precision is None
                                         else list(self.witness_within_precision)),
            "null_vector_within_precision": (
                None if self.null_vector_within_precision is None
                else self.null_vector_within_precision.tolist()),
            "residual_within_precision": self.residual_within_precision,
            "precision": self.precision,
            "proof_rtol": self.proof_rtol,
        }


def _relative_smallest_singular(X: np.ndarray) -> tuple[float, np.ndarray]:
    """σ_min/σ_max of X (H×t, float64) and the right singular vector of σ_min."""
    if X.shape[1] > X.shape[0]:  # more columns than rows: dependent, take a null vector
        _, s, Vt = np.linalg.svd(X, full_matrices=True)
        return 0.0, Vt[-1]
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    return float(s[-1] / s[0]) if s[0] > 0 else 0.0, Vt[-1]


def _null_space(X: np.ndarray, rtol: float) -> tuple[np.ndarray, float]:
    """Orthonormal basis (t×m) of the numerical null space {v : ‖X v‖ ≤ rtol·‖X‖₂ ‖v‖}, and
    ‖X‖₂ (the largest singular value, from the same SVD)."""
    _, s, Vt = np.linalg.svd(X, full_matrices=True)
    s_full = np.zeros(X.shape[1])
    s_full[: len(s)] = s
    top = float(s_full.max()) if s_full.size else 0.0
    return Vt[s_full <= rtol * top].T, top


def circuit(atoms: CorrectedAtoms, T, rtol: float = RANK_RTOL):
    """Reduce a dependent set T to a circuit (a minimal dependent subset) and its null vector.

    While the numerical null space of D̃_T has dimension m ≥ 2, dropping any atom leaves a
    null space of dimension ≥ m − 1 ≥ 1, so T stays dependent; once m = 1 the unique null vector
    v is kept and the atoms where v vanishes are dropped: supp(v) is then a circuit (any proper
    subset would need a null vector that is not a multiple of v). Returns (circuit atoms, unit
    null vector, ‖D̃_T v‖/‖D̃_T‖₂) or None when T is not dependent at ``rtol``.
    """
    T = list(dict.fromkeys(int(i) for i in T))
    X = atoms.vectors(T)
    Z, top = _null_space(X, rtol)
    if Z.shape[1] == 0:
        return None
    while Z.shape[1] > 1:
        i = int(np.argmin(np.abs(Z).max(axis=1)))  # the atom the null space needs least
        T.pop(i)
        X = np.delete(X, i, axis=1)
        Z, top = _null_space(X, rtol)
    v = Z[:, 0]
    keep = np.abs(v) > 1e-12 * np.abs(v).max()
    if not keep.all():
        T = [a for a, k in zip(T, keep, strict=True) if k]
        X = X[:, keep]
        Z, top = _null_space(X, rtol)
        if Z.shape[1] != 1:
            return None
        v = Z[:, 0]
    v = v / np.linalg.norm(v)
    res = float(np.linalg.norm(X @ v) / max(top, 1e-300))  # ‖X‖₂ from the SVD just made
    order = np.argsort(T)
    return tuple(int(T[i]) for i in order), v[order], res


def _dimension_witness(atoms: CorrectedAtoms, T, rtol: float = RANK_RTOL):
    """A null vector of H + 1 atoms of R^H without an SVD: v = (−A⁻¹b, 1) normalised, where
    D̃_T = [A | b] with A square (LU solve, ~H³/3 multiply-adds against ~20 H³ for the SVD of
    :func:`circuit`). Dependence is certified as in :func:`circuit` — σ_min/σ_max ≤ rtol — from
    σ_min ≤ ‖D̃_T v‖ (‖v‖ = 1) and σ_max ≥ the largest column norm. Returns (the support of v,
    v on it, ‖D̃_T v‖ / max column norm — an upper bound on the residual ‖D̃_T v‖/‖D̃_T‖₂ of
    :func:`circuit`) or None (A singular, or that ratio above rtol). The support is a dependent
    set, not necessarily a circuit."""
    T = [int(i) for i in T]
    X = atoms.vectors(T)
    H = X.shape[0]
    if X.shape[1] != H + 1:
        return None
    try:
        lu = scipy.linalg.lu_factor(X[:, :H], check_finite=False)
        y = scipy.linalg.lu_solve(lu, -X[:, H], check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    v = np.append(y, 1.0)
    if not np.all(np.isfinite(v)):
        return None
    v /= np.linalg.norm(v)
    keep = np.abs(v) > 1e-12 * np.abs(v).max()
    sigma_lb = float(np.linalg.norm(X, axis=0).max())
    res = float(np.linalg.norm(X[:, keep] @ v[keep]) / max(sigma_lb, 1e-300))
    if res > rtol:
        return None
    Tk = [a for a, k in zip(T, keep, strict=True) if k]
    order = np.argsort(Tk)
    return tuple(int(Tk[i]) for i in order), v[keep][order], res


def _babel_lower(babel_upper: np.ndarray, threshold: float = 1.0) -> tuple[int, bool]:
    """min{t : μ₁(t−1) ≥ c} from certified upper Babel values; (t, reached within the list)."""
    hit = np.flatnonzero(babel_upper >= threshold)
    if hit.size:
        return int(hit[0]) + 2, True  # babel_upper[p − 1] = μ₁(p), t = p + 1
    return len(babel_upper) + 2, False


def _two_orthonormal_bases(U: np.ndarray, tol: float = 1e-10) -> bool:
    """Is D̃ = [Φ | Ψ] with Φ, Ψ both orthonormal bases of R^H (N = 2H)?"""
    H, N = U.shape
    if N != 2 * H:
        return False
    eye = np.eye(H)
    return bool(np.abs(U[:, :H].T @ U[:, :H] - eye).max() < tol
                and np.abs(U[:, H:].T @ U[:, H:] - eye).max() < tol)


class _ProvenUpper:
    """spark's proven upper side (module docstring): the smallest circuit found whose unit null
    vector v has ‖D̃_T v‖₂ ≤ PROOF_RTOL·‖D̃_T‖₂ in float64; a circuit found at the input's
    tolerance that is not proven is reduced again at PROOF_RTOL (:func:`circuit`), so a set with
    an exact null vector beside near-null ones still proves its own circuit."""

    def __init__(self) -> None:
        self.size: float = math.inf
        self.found = None  # (circuit, null vector, residual)
        self.how = "no set proven dependent in float64"

    def offer(self, atoms: CorrectedAtoms, found, how: str) -> None:
        if found is None or len(found[0]) >= self.size:
            return
        if not found[2] <= PROOF_RTOL:
            if len(found[0]) > atoms.dim:  # H + 1 or more atoms: :meth:`dimension` covers it
                return
            found = circuit(atoms, found[0], PROOF_RTOL)
            if found is None or len(found[0]) >= self.size:
                return
        self.size, self.found = len(found[0]), found
        self.how = f"{how}; re-checked in float64 (residual ≤ {PROOF_RTOL:g})"

    def dimension(self, n_live: int, dim: int) -> None:
        """H + 1 by dimension, without a witness, when nothing smaller was proven."""
        if n_live > dim and self.size > dim + 1:
            self.size, self.found = dim + 1, None
            self.how = f"H + 1: any {dim + 1} atoms of R^{dim} are dependent (dimension)"


def _statement(lower: float, methods: dict, proven: _ProvenUpper, within: float,
               precision: str, rtol: float) -> str:
    """The uniqueness sentence: certified below lower/2 (2K < spark); "uniqueness fails" only
    from the proven side; the side within precision said as such."""
    if math.isinf(lower):
        return ("the atoms are linearly independent: every code is the unique representation "
                "of its signal")
    unique = int((lower - 1) // 2)
    out = (f"every code with K ≤ {unique} non-zeros is the unique K-sparse representation of "
           f"its signal (2K < spark, spark ≥ {int(lower)} by {methods['lower']})")
    if math.isfinite(proven.size):
        why = ("any H + 1 atoms are dependent" if proven.found is None else
               "the witness null vector, re-checked in float64, splits into two such codes")
        out += (f"; uniqueness fails for some codes with K = {math.ceil(proven.size / 2)} "
                f"({why})")
    if within < proven.size:
        out += (f"; {int(within)} atoms are dependent within the input's precision ({precision}: "
                f"σ_min/σ_max ≤ {rtol:.1e}) but not in float64, so codes with K = "
                f"{math.ceil(within / 2)} may not be unique at that precision (not proven)")
    return out


def spark_bounds(
    geom: Geometry | Dictionary | np.ndarray,
    metric: AIPMetric | str | None = UNSET,
    *,
    budget_s: float | None = None,
    effort: int | None = None,
    rank_rtol: float = RANK_RTOL,
    enumerate_max: int = 200_000,
    seed: int = 0,
    drop_dead: bool = False,
    progress: bool = False,
) -> SparkResult:
    """Bracket the spark of D (see the module docstring for every method).

    Parameters
    ----------
    geom : the :class:`~rip_atoms.geometry.Geometry` of D: its float32 rows, its coherence
        pass when one it keeps covers the live atoms (:meth:`CoherenceResult.covers`; its Babel
        depth bounds how far the Babel lower bound can reach; otherwise the pass is made, and
        kept). At the API edge, a Dictionary or H×N array (columns are atoms) with ``metric``.
    metric : with a dictionary, the metric for the coherence-based lower bounds and the search
        geometry: ``"self"`` (default), an :class:`AIPMetric` or ``"raw"`` (None: ``"raw"``);
        with a Geometry, left out (or its own). The spark itself does not depend on it
        (:func:`_spark_geometry`): with N_live < H, where (D Dᵀ)⁻¹ does not exist, ``"self"``
        is replaced by the raw geometry and a note says so.
    budget_s : wall-clock budget of the call from its start (the coherence pass before the
        searches included), spent by the rank test, enumeration and null-vector search
        (scikit-learn's first import is counted in the first LARS step's estimated cost),
        checked between small units of work; the bracket found so far is returned and a note
        says the budget ran out.
        Default 10 s; with ``effort`` it is only a wall-clock cap (default: none).
    effort : a work budget instead of a time budget: this many units of search work (one unit
        per budget check; uninterruptible steps charged by their estimated operation count;
        :mod:`rip_atoms.deadline`). The searches then read no clock, so the same D, seed and
        options give the same bracket on any machine.
    rank_rtol : floor of the rank tolerance: a set is dependent when σ_min/σ_max ≤
        max(rank_rtol, √(H + 1)·κ(W)·u_in) (float64 SVD; :func:`rank_tolerance`).
    enumerate_max : enumerate all subsets of a size when there are at most this many.
    drop_dead : a zero atom is a dependent set of size 1 (spark = 1); by default that is
        reported as an error, with ``drop_dead`` the live atoms are analysed.

    Returns
    -------
    SparkResult
        The proven bracket, its methods, the circuit witnessing the upper side, the side
        within the input's precision and the uniqueness statement (:class:`SparkResult`).

    Examples
    --------
    Four atoms in R³ with d₄ = d₁ + d₂ (a circuit of size 3) and every pair independent:

    >>> import numpy as np
    >>> from rip_atoms.spark import spark_bounds
    >>> D = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    >>> res = spark_bounds(D, "raw", budget_s=1)
    >>> res.lower, res.upper, res.witness, res.unique_up_to
    (3.0, 3.0, (0, 1, 3), 1.0)
    """
    t0 = time.perf_counter()
    budget_s = search_seconds(budget_s, effort)
    # validates both; the budget counts from here: the fixed costs are in it (docs/api.md)
    deadline = Deadline.of(budget_s, effort)
    seed = check_seed(seed)
    check_real("rank_rtol", rank_rtol, lo=0.0, hi=1.0, hi_open=True)
    check_int("enumerate_max", enumerate_max, least=0)
    notes: list[str] = []
    geom = _spark_geometry(geom, metric, drop_dead, notes)
    d = geom.dictionary
    atoms = geom.atoms(min_live=1)
    n, H = atoms.n_live, d.dim
    rank_rtol = rank_tolerance(d, atoms.metric, rank_rtol)
    rng = np.random.default_rng(seed)
    br = _Bracket(atoms)
    coh = _coherence_lower(geom, atoms, br, rank_rtol, progress) if n >= 2 else None

    with threadpool_limits(1):
        _rank_test(atoms, br, rank_rtol, rng, deadline, notes)
        enumerated_all = _enumerate_small(atoms, br, rank_rtol, enumerate_max, deadline, notes)
        # ---- search for sparse null vectors within the budget
        if (math.isfinite(br.lower) and br.lower < br.upper and not enumerated_all
                and not deadline.expired()):
            _search_null_vectors(atoms, br.lower, br.upper, rank_rtol, deadline, rng,
                                 br.take_upper, coh)
        if deadline.expired() and br.lower < br.upper:
            spent = (f"{effort} units of effort" if effort is not None
                     and not deadline.cap_hit else f"{budget_s:g} s")
            notes.append(f"search stopped by the budget ({spent}): the bracket is the "
                         "best found so far")

    lower, upper, best, proven, methods = br.lower, br.upper, br.best, br.proven, br.methods
    proven.dimension(n, H)
    methods["upper"] = ("full column rank: the atoms are linearly independent"
                        if math.isinf(lower) else proven.how)
    if best is not None and len(best[0]) < lower:  # cannot happen if sound
        notes.append("inconsistent bracket: a dependent set smaller than the lower bound")
    if upper < proven.size:
        notes.append(f"the smallest set found dependent within the input's precision "
                     f"({input_precision_name(d)}) has {int(upper)} atoms; the smallest proven "
                     "dependent in float64 has "
                     f"{'∞' if math.isinf(proven.size) else int(proven.size)}")
    pf = proven.found
    return SparkResult(
        lower=float(lower), upper=float(proven.size), exact=bool(lower == proven.size),
        witness=None if pf is None else pf[0], null_vector=None if pf is None else pf[1],
        residual=None if pf is None else pf[2], methods=methods, rank_rtol=rank_rtol,
        unique_up_to=float(math.inf if math.isinf(lower) else int((lower - 1) // 2)),
        statement=_statement(lower, methods, proven, upper, input_precision_name(d), rank_rtol),
        notes=tuple(notes), seconds=time.perf_counter() - t0,
        upper_within_precision=float(upper),
        witness_within_precision=None if best is None else best[0],
        null_vector_within_precision=None if best is None else best[1],
        residual_within_precision=None if best is None else best[2],
        precision=input_precision_name(d), budget=deadline.to_dict(),
    )


def _spark_geometry(D: Geometry | Dictionary | np.ndarray, metric: AIPMetric | str | None,
                    drop_dead: bool, notes: list[str]) -> Geometry:
    """The geometry spark_bounds searches in, after the dead-atom check.

    A dead atom alone is dependent (spark = 1): a :class:`DeadAtomsError` unless ``drop_dead``
    (then the live atoms are analysed, and a note says so). The spark does not depend on the
    metric: for an invertible W, D̃ = W D diag(1/‖W dᵢ‖) has exactly the dependent sets of D, so
    the metric only steers the search and the coherence lower bounds, which hold under any
    such geometry. ``"self"`` (S̃ = (D Dᵀ)⁻¹, the default) does not exist when N_live < H
    (D Dᵀ has rank ≤ N_live < H: :meth:`AIPMetric.from_dictionary` raises): a dictionary asked
    for it is then searched in the raw geometry, with a note. A Geometry given is used as it
    is (with ``metric`` checked to be its own)."""
    d = D.dictionary if isinstance(D, Geometry) else as_dictionary(D)
    if len(d.dead_atoms):
        if not drop_dead:
            raise DeadAtomsError(
                f"{d.provenance.source}: {len(d.dead_atoms)} dead (zero) atoms "
                f"(e.g. {int(d.dead_atoms[0])}): the spark is 1; drop them to bound the spark "
                "of the live atoms (drop_dead=True, --drop-dead)"
            )
        notes.append(f"{len(d.dead_atoms)} dead atoms left out (each alone has spark 1)")
    if isinstance(D, Geometry):
        return Geometry.of(D, metric)
    asked_self = metric is UNSET or (isinstance(metric, str) and metric == "self")
    if asked_self and len(d.live_atoms) < d.dim:
        notes.append("self metric unavailable (N < H): raw geometry used")
        return Geometry.of(d, "raw")
    return Geometry.of(d, metric, default="self")


class _Bracket:
    """The spark bracket being built: ``lower`` (proven), ``upper`` (within the input's
    precision: the searches' target) with its ``best`` set (circuit, null vector, residual),
    the ``proven`` upper side and the ``methods`` of each."""

    def __init__(self, atoms: CorrectedAtoms) -> None:
        self.atoms = atoms
        self.lower: float = 1.0
        self.upper: float = math.inf
        self.methods: dict[str, str] = {"lower": "trivial",
                                        "upper_within_precision": "no dependent set found"}
        self.best = None
        self.proven = _ProvenUpper()

    def take_upper(self, found, how: str) -> None:
        """Offer a dependent set found (or None) to both upper sides."""
        if found is not None and len(found[0]) < self.upper:
            self.upper = len(found[0])
            self.best = found
            self.methods["upper_within_precision"] = how
        self.proven.offer(self.atoms, found, how)

    def raise_lower(self, value: float, how: str) -> None:
        if value > self.lower:
            self.lower, self.methods["lower"] = value, how


def _coherence_lower(geom: Geometry, atoms: CorrectedAtoms, br: _Bracket, rank_rtol: float,
                     progress: bool) -> CoherenceResult:
    """Lower bounds from coherence and Babel (module docstring), the certified μ̄ = mu_upper:
    sets of size t with (t − 1)·μ̄ < c_r are independent, so spark ≥ ⌈1 + c_r/μ̄⌉; Babel:
    min{t : μ₁(t − 1) ≥ c_r}; two orthonormal bases (N = 2H): 2/μ (Elad–Bruckstein). The most
    parallel duplicate pair is offered as an upper bound. Returns the coherence pass used."""
    live = atoms.live
    n, H = atoms.n_live, atoms.dim
    c_r = _gershgorin_threshold(rank_rtol)
    coh = geom.coherence_pass(babel_p=2, top=4)
    if coh is None:
        coh = coherence(geom, babel_p=min(n - 1, max(2, min(H + 1, 256))), top=64,
                        progress=progress)
    mu_up = coh.mu_upper  # certified upper bound on μ (1 with a duplicate pair)
    if mu_up < c_r:
        # sets of size t with (t − 1)·μ < c_r are independent: t < 1 + c_r/μ
        r = c_r / mu_up
        br.raise_lower(math.ceil(1 + r), "1 + 1/μ (coherence, certified μ)")
    t_b, reached = _babel_lower(coh.babel_upper, c_r)
    br.raise_lower(t_b, "Babel: min{t : μ₁(t−1) ≥ 1}")
    if (not coh.duplicate_pairs and coh.mu > 0 and n == 2 * H  # else D̃ is not computed
            and _two_orthonormal_bases(atoms.vectors(live))):
        lb2 = math.ceil(2 / (coh.mu + atoms.tolerance) - 1e-12)
        br.raise_lower(lb2, "two orthonormal bases: 2/μ (Elad–Bruckstein)")
    for i, j, _ in coh.duplicate_pairs[:1]:  # the most parallel pair: the smallest ρ
        br.take_upper(circuit(atoms, [i, j], rank_rtol), "duplicate pair (|cos| ≥ 1 − 1e-6)")
    return coh


def _rank_test(atoms: CorrectedAtoms, br: _Bracket, rank_rtol: float, rng: np.random.Generator,
               deadline: Deadline, notes: list[str]) -> None:
    """Rank: full column rank (σ_min/σ_max > rank_rtol) ⇒ spark = ∞; otherwise a pivoted-QR
    basis plus one atom is dependent. When the rank test (≈ RANK_SECONDS_PER_H3·H³) does not fit
    the budget, H + 1 atoms (dependent by dimension) give the upper side instead."""
    live = atoms.live
    n, H = atoms.n_live, atoms.dim
    sample = live if n <= 2 * H else np.sort(rng.choice(live, size=2 * H, replace=False))
    rank_cost = RANK_SECONDS_PER_H3 * H ** 3  # pivoted QR of ≤ 2H atoms + a circuit's SVD
    if n > H and not deadline.fits(rank_cost):
        # the rank test would not fit the budget: H + 1 atoms of R^H are dependent anyway
        found = _dimension_witness(atoms, sample[: H + 1], rank_rtol)
        br.take_upper(found, "H + 1: any H + 1 atoms of R^H are dependent (null vector by an "
                             "LU solve; the rank test did not fit the budget)")
        notes.append(f"rank test skipped: ~{rank_cost:.0f} s at H = {H} does not fit the "
                     "budget left (the upper side is then at most H + 1)")
        return
    deadline.charge(rank_cost)
    X = atoms.vectors(sample)
    _, R, piv = scipy.linalg.qr(X, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    rank = int(np.sum(diag > rank_rtol * diag[0])) if diag.size else 0
    if rank == len(sample) and n == len(sample):
        r_rel, _ = _relative_smallest_singular(X)
        if r_rel > rank_rtol:
            br.lower, br.upper = math.inf, math.inf
            br.methods["lower"] = br.methods["upper_within_precision"] = (
                "full column rank: the atoms are linearly independent")
    if rank < len(sample):
        T = list(sample[piv[: rank + 1]])
        br.take_upper(circuit(atoms, T, rank_rtol), "rank + 1 (pivoted-QR basis plus one atom)")


def _enumerate_small(atoms: CorrectedAtoms, br: _Bracket, rank_rtol: float, enumerate_max: int,
                     deadline: Deadline, notes: list[str]) -> bool:
    """Exact enumeration of the sizes t = lower, lower + 1, … while C(N, t) ≤ enumerate_max:
    a dependent t-set is an upper side, none raises the lower side to t + 1. Returns whether
    every size below the upper side was enumerated."""
    n = atoms.n_live
    t = int(br.lower) if math.isfinite(br.lower) else None
    enumerated_all = False
    while (t is not None and t < br.upper and math.comb(n, t) <= enumerate_max
           and not deadline.expired()):
        found = _enumerate_dependent(atoms, t, rank_rtol, deadline)
        if found is _BUDGET:
            notes.append(f"budget exhausted while enumerating the sets of size {t}")
            break
        if found is not None:
            br.take_upper(circuit(atoms, found, rank_rtol), f"enumeration of all size-{t} sets")
            break
        br.lower, br.methods["lower"] = t + 1, f"enumeration: every set of size ≤ {t} independent"
        t += 1
    else:
        enumerated_all = t is not None and t >= br.upper
    return enumerated_all


_BUDGET = object()  # returned by searches stopped by their deadline


def _enumerate_dependent(atoms: CorrectedAtoms, t: int, rtol: float,
                         deadline: Deadline | None = None, chunk_size: int = 2000):
    """The first dependent t-subset of live atoms (batched SVD), None when every t-subset is
    independent, or ``_BUDGET`` when the deadline passed first (checked per chunk)."""
    live = atoms.live
    U = atoms.vectors(live)
    if t > atoms.dim:
        return [int(a) for a in live[:t]]
    combos = itertools.combinations(range(len(live)), t)
    while True:
        if deadline is not None and deadline.expired():
            return _BUDGET
        flat = np.fromiter(itertools.chain.from_iterable(itertools.islice(combos, chunk_size)),
                           dtype=np.int64)
        if flat.size == 0:
            return None
        idx = flat.reshape(-1, t)
        s = np.linalg.svd(U[:, idx].transpose(1, 0, 2), compute_uv=False)
        rel = s[:, -1] / s[:, 0]
        hit = np.flatnonzero(rel <= rtol)
        if hit.size:
            return [int(live[i]) for i in idx[hit[0]]]


def _search_null_vectors(atoms, lower, upper, rtol, deadline: Deadline, rng, take_upper,
                         coh) -> None:
    """λmin local search at sizes t = lower, lower+1, … and ℓ1 self-expression of the most
    coherent atoms, until the deadline; every dependent set found is reduced to a circuit and
    offered as an upper bound."""
    from rip_atoms.support_search import SearchSupport, SupportSearch

    n = atoms.n_live
    live = atoms.live
    half = deadline.share(0.5)
    # ℓ1 self-expression (homotopy) for the atoms with the largest coherence first
    if coh is not None:
        order = np.argsort(-np.nan_to_num(coh.per_atom[live], nan=-1.0), kind="stable")
        # one lars_path cannot be stopped: ~2·iterations·H·N flops, started only if it fits
        cost = SECONDS_PER_FLOP * 2 * min(4 * atoms.dim, 2000) * atoms.dim * n
        if "sklearn.linear_model" not in sys.modules and not half.deterministic:
            cost += SKLEARN_IMPORT_S  # its first import takes ~1.5 s (not work: a time cost)
        for r in order[: min(n, 16)]:
            if half.expired() or not half.take(cost):
                break
            found = _self_expression(atoms, int(r), rtol)
            if found is not None:
                take_upper(circuit(atoms, found, rtol), "ℓ1 self-expression (homotopy)")
    # λmin search: a set of size t with λmin(G_S) ≈ 0 is dependent
    spectral = atoms.spectral_norm_sq_upper()  # the c of the c·I − G power iteration
    t = int(lower)
    while not deadline.expired() and t < min(upper, atoms.dim + 1) and t <= n:
        search = SupportSearch(atoms, False, rng, spectral, n if n <= 256 else 16,
                               deadline=deadline)
        chains = [search.power_start(t) for _ in range(4)]
        if coh is not None:
            pos = {int(a): i for i, a in enumerate(live)}
            for a, b, _ in coh.top_pairs[:4]:
                ch = SearchSupport(atoms.rows, np.array([pos[a], pos[b]]), False)
                search.grow_to([ch], t)
                chains.append(ch)
        per_size = deadline.share(0.25)
        while not per_size.expired():
            if not search.swap(chains, search.directions(chains), min(t, 4)):
                break
        for ch in chains:
            if -ch.score <= 1e-5:  # float32 λmin ≈ 0: verify in float64
                take_upper(circuit(atoms, [int(live[i]) for i in ch.S], rtol),
                           f"λmin local search at size {t}")
        t += 1


def _self_expression(atoms: CorrectedAtoms, r: int, rtol: float):
    """min ‖c‖₁ s.t. D̃₋ⱼ c = d̃ⱼ by the lasso homotopy; the support of c plus j, if dependent."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lars_path

    live = atoms.live
    others = np.delete(np.arange(atoms.n_live), r)
    X = atoms.rows[others].T.astype(np.float64)
    y = atoms.rows[r].astype(np.float64)
    try:
        with warnings.catch_warnings():  # degenerate active sets are expected here
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, _, coefs = lars_path(X, y, method="lasso", alpha_min=0.0,
                                    max_iter=min(4 * atoms.dim, 2000))
    except (ValueError, np.linalg.LinAlgError):
        return None
    c = coefs[:, -1]
    if np.linalg.norm(X @ c - y) > 1e-6:
        return None
    T = [int(live[r])] + [int(live[others[i]]) for i in np.flatnonzero(np.abs(c) > 1e-10)]
    return T
