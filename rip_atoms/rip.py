"""Restricted isometry constants as certified brackets with witnesses.

For unit atoms d̃ᵢ (AIP-corrected by default, raw on request) and a support S, G_S = D̃_Sᵀ D̃_S.

* U_k = max_{|S|=k} λmax(G_S) − 1   (upper restricted isometry constant)
* L_k = 1 − min_{|S|=k} λmin(G_S)   (lower restricted isometry constant)
* δ_k = max(U_k, L_k)

Computing them is NP-hard (Tillmann–Pfetsch 2014; Bandeira et al. 2013), so each is reported as
``[lower, upper]`` with the method of each side:

Lower bounds (any support S is a witness: U_k ≥ λmax(G_S) − 1, L_k ≥ 1 − λmin(G_S)):
  greedy growth from the most coherent pairs and the worst Babel rows (the atom whose screened
  correlation with the current extreme direction D̃_S v is largest is tried, exact small
  eigensolves pick the best), local swap search with correlation screening (one GEMM ranks the
  candidates of a whole population of supports; only the top few get an eigensolve), truncated
  power iterations z ← top_k(G z) (for λmin on c·I − G) as restarts, all under a time budget.
  Witness eigenvalues are recomputed in float64 from the atoms as given.

Upper bounds (certified):
  Babel/Gershgorin U_k, L_k ≤ μ₁(k−1) ≤ (k−1)μ (every eigenvalue of G_S lies within μ₁(k−1) of
  1; μ₁ from the coherence pass with its certified float32 error), the spectral bound
  U_k ≤ ‖D̃‖₂² − 1, L_k ≤ 1, monotonicity (U_k, L_k are non-decreasing in k), and on small
  problems an SDP relaxation: for every symmetric M, λmax_k(G) ≤ λmax(G − M) + k·max|Mᵢⱼ| and
  λmin_k(G) ≥ λmin(G − M) − k·max|Mᵢⱼ| (because ‖xxᵀ‖₁ = ‖x‖₁² ≤ k for a unit k-sparse x). cvxpy
  finds a good M by solving the DSPCA dual; the bound is then re-evaluated in float64 from that M,
  so solver inaccuracy cannot make it invalid.

Exact values: k = 1 (U = L = 0), k = 2 (U = L = μ, from the exhaustive coherence pass), k > H
(L_k = 1: any k atoms in R^H are dependent), and enumeration of all C(N, k) supports (batched
eigensolves of the float64 Gram) when that fits ``enumerate_max``; then ``exact`` is true.

The search itself lives in :mod:`rip_atoms.support_search`; this module assembles the brackets.

Free consistency checks: δ₂ = μ; δ_k ≥ sqrt((k−1)(N−H)/(H(N−1))) (generalised Welch), which also
serves as a lower bound on δ_k.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from rip_atoms.arguments import check_int, check_seed
from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.deadline import Deadline, search_seconds
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import DeadAtomsError, ParameterError
from rip_atoms.geometry import UNSET, Geometry
from rip_atoms.metric import AIPMetric
from rip_atoms.precision import near_singular_words
from rip_atoms.support_search import (
    SearchSettings,
    SearchSupport,
    SupportSearch,
    search_k,
)
from rip_atoms.theory import generalized_welch_delta

#: up to this many live atoms the coherence pass keeps 256 top pairs per row (RIP seeds; the
#: report also takes Babel to min(H + 1, 256) for spark); above it 64, since a per-row list of
#: 256 costs ~40 % more than one of 64 at 2304×16384 (measured 8.1 s vs 4.9 s) while there
#: μ₁(64) ≥ 1 already ends the Babel spark bound unless the atoms are nearly orthogonal
DEEP_PASS_MAX_ATOMS = 8192
_EIG_SECONDS_PER_SUPPORT = 2e-6  # enumeration cost model (measured: ~1–3 µs per k ≤ 5 support)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RIPBracket:
    """Bracket of the restricted isometry constants at one sparsity k.

    ``witness_U`` / ``witness_L`` are supports (atom indices as given) whose float64 Gram
    eigenvalues give ``U_lower`` = λmax − 1 and ``L_lower`` = 1 − λmin; re-check them with
    :func:`witness_eigenvalues`. ``methods`` names what gave each side. ``search`` says how the
    search ended ("exact", "converged", "budget exhausted").
    """

    k: int
    U_lower: float
    U_upper: float
    L_lower: float
    L_upper: float
    delta_lower: float
    delta_upper: float
    exact: bool
    witness_U: tuple[int, ...]
    witness_L: tuple[int, ...]
    methods: dict[str, str]
    search: str
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "k": self.k,
            "U_lower": self.U_lower,
            "U_upper": self.U_upper,
            "L_lower": self.L_lower,
            "L_upper": self.L_upper,
            "delta_lower": self.delta_lower,
            "delta_upper": self.delta_upper,
            "exact": self.exact,
            "witness_U": list(self.witness_U),
            "witness_L": list(self.witness_L),
            "methods": dict(self.methods),
            "search": self.search,
            "notes": list(self.notes),
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class RIPResult:
    """Brackets for several k, with the shared inputs (coherence, spectral norm, metric)."""

    brackets: list[RIPBracket]
    dim: int
    n_atoms: int
    n_live: int
    metric: dict
    mu: float
    spectral_norm_sq_upper: float
    seconds: float
    coherence: CoherenceResult | None = field(default=None, repr=False)
    #: the searches' budget and its use (:meth:`rip_atoms.deadline.Deadline.to_dict`)
    budget: dict = field(default_factory=dict)

    def __getitem__(self, k: int) -> RIPBracket:
        for b in self.brackets:
            if b.k == k:
                return b
        raise KeyError(k)

    def to_dict(self) -> dict:
        return {
            "dim": self.dim,
            "n_atoms": self.n_atoms,
            "n_live": self.n_live,
            "metric": self.metric,
            "mu": self.mu,
            "spectral_norm_sq_upper": self.spectral_norm_sq_upper,
            "seconds": self.seconds,
            "budget": self.budget,
            "brackets": [b.to_dict() for b in self.brackets],
        }


@dataclass(frozen=True)
class WitnessCheck:
    """Extreme eigenvalues of G_S = D̃_Sᵀ D̃_S for one support, in float64."""

    support: tuple[int, ...]
    lambda_min: float
    lambda_max: float
    metric: dict

    @property
    def U(self) -> float:
        """λmax − 1: a lower bound on U_|S|."""
        return self.lambda_max - 1.0

    @property
    def L(self) -> float:
        """1 − λmin: a lower bound on L_|S|."""
        return 1.0 - self.lambda_min

    def to_dict(self) -> dict:
        return {
            "support": list(self.support),
            "k": len(self.support),
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "U": self.U,
            "L": self.L,
            "metric": self.metric,
        }


def witness_eigenvalues(
    geom: Geometry | Dictionary | np.ndarray | CorrectedAtoms,
    support: Iterable[int],
    metric: AIPMetric | str | None = UNSET,
) -> WitnessCheck:
    """Re-check a witness: λmin and λmax of G_S = D̃_Sᵀ D̃_S in float64 (eigvalsh), where
    G_S[i, j] = dᵢᵀ S̃ dⱼ / (‖dᵢ‖_S ‖dⱼ‖_S) is formed from the atoms as given (of the geometry,
    of corrected atoms, or of a dictionary under ``metric``, default ``"self"``)."""
    atoms = geom if isinstance(geom, CorrectedAtoms) else \
        Geometry.of(geom, metric, default="self").atoms(rows=False, min_live=1)
    S = [int(i) for i in support]
    d = atoms.dictionary
    if not S:
        raise ParameterError("witness: the support is empty")
    if len(set(S)) != len(S):
        raise ParameterError(f"witness: the support {S} repeats an atom")
    bad = [i for i in S if not 0 <= i < d.n_atoms]
    if bad:
        raise ParameterError(
            f"{d.provenance.source}: atoms {bad} are out of range (N = {d.n_atoms})"
        )
    dead = sorted(set(S) & set(int(i) for i in d.dead_atoms))
    if dead:
        raise DeadAtomsError(f"{d.provenance.source}: atoms {dead} are dead (zero)")
    w = np.linalg.eigvalsh(atoms.gram(S))
    return WitnessCheck(tuple(S), float(w[0]), float(w[-1]), atoms.metric_info())


# ---------------------------------------------------------------------------- exact pieces
def _enumerate(G: np.ndarray, k: int, deadline: Deadline | None = None, chunk: int = 20_000):
    """Max λmax and min λmin of G_S over all C(n, k) supports (batched eigvalsh), and whether
    every support was seen (False when the deadline passed first; checked per chunk)."""
    n = G.shape[0]
    best_max, best_min = -np.inf, np.inf
    arg_max = arg_min = None
    combos = itertools.combinations(range(n), k)
    while True:
        if arg_max is not None and deadline is not None and deadline.expired():
            return best_max, arg_max, best_min, arg_min, False
        flat = np.fromiter(itertools.chain.from_iterable(itertools.islice(combos, chunk)),
                           dtype=np.int64)
        if flat.size == 0:
            break
        idx = flat.reshape(-1, k)
        w = np.linalg.eigvalsh(G[idx[:, :, None], idx[:, None, :]])
        i = int(np.argmax(w[:, -1]))
        if w[i, -1] > best_max:
            best_max, arg_max = float(w[i, -1]), idx[i].copy()
        i = int(np.argmin(w[:, 0]))
        if w[i, 0] < best_min:
            best_min, arg_min = float(w[i, 0]), idx[i].copy()
    return best_max, arg_max, best_min, arg_min, True


def sdp_sparse_eigen_bounds(G: np.ndarray, k: int) -> tuple[float, float]:
    """Certified bounds (upper on λmax_k(G), lower on λmin_k(G)) from the DSPCA relaxation.

    For any symmetric M: λmax_k(G) ≤ λmax(G − M) + k·max|Mᵢⱼ|, and
    λmin_k(G) ≥ λmin(G − M) − k·max|Mᵢⱼ|, since a unit k-sparse x has ‖xxᵀ‖₁ = ‖x‖₁² ≤ k
    (d'Aspremont, El Ghaoui, Jordan, Lanckriet, SIAM Review 2007). cvxpy chooses M by solving
    min t + kρ s.t. G − M ⪯ tI, |Mᵢⱼ| ≤ ρ (and the mirror problem); the bounds are then evaluated
    from the returned M with a float64 eigensolve, so they hold whatever the solver's accuracy.
    Both fall back to the trivial M = 0 (spectral) values if the solver fails.
    """
    import cvxpy as cp

    n = G.shape[0]
    w = np.linalg.eigvalsh(G)
    best_up, best_lo = float(w[-1]), float(w[0])
    for upper in (True, False):
        M = cp.Variable((n, n), symmetric=True)
        t = cp.Variable()
        rho = cp.Variable(nonneg=True)
        if upper:
            cons = [t * np.eye(n) - (G - M) >> 0, cp.abs(M) <= rho]
            prob = cp.Problem(cp.Minimize(t + k * rho), cons)
        else:
            cons = [(G - M) - t * np.eye(n) >> 0, cp.abs(M) <= rho]
            prob = cp.Problem(cp.Maximize(t - k * rho), cons)
        try:
            prob.solve()
        except Exception:  # noqa: BLE001 - any solver failure leaves the spectral bound
            continue
        if M.value is None:
            continue
        Mv = 0.5 * (M.value + M.value.T)
        r = float(np.abs(Mv).max())
        ev = np.linalg.eigvalsh(G - Mv)
        if upper:
            best_up = min(best_up, float(ev[-1]) + k * r)
        else:
            best_lo = max(best_lo, float(ev[0]) - k * r)
    return best_up, best_lo


def random_supports_lower_bound(
    atoms: CorrectedAtoms, k: int, budget_s: float, *, seed: int = 0, batch: int = 64
) -> tuple[float, tuple[int, ...], int]:
    """Baseline only: the best λmax(G_S) − 1 over uniformly random supports drawn for
    ``budget_s`` seconds (batched eigensolves). Biased low — the worst supports are
    exponentially rare — and kept to measure the real search against. Returns (bound, witness
    support (atom indices), supports tried); the witness is recomputed in float64."""
    rng = np.random.default_rng(seed)
    A = atoms.rows
    n = A.shape[0]
    t0 = time.perf_counter()
    best, best_S, tried = -np.inf, None, 0
    while time.perf_counter() - t0 < budget_s:
        S = np.stack([rng.choice(n, size=k, replace=False) for _ in range(batch)])
        X = A[S].astype(np.float64)  # (batch, k, H)
        w = np.linalg.eigvalsh(X @ X.transpose(0, 2, 1))[:, -1]
        i = int(np.argmax(w))
        tried += batch
        if w[i] > best:
            best, best_S = float(w[i]), S[i]
    S_atoms = tuple(sorted(int(atoms.live[i]) for i in best_S))
    lam = float(np.linalg.eigvalsh(atoms.gram(list(S_atoms)))[-1])
    return lam - 1.0, S_atoms, tried


# ---------------------------------------------------------------------------- main entry
def _validate_ks(k: int | Iterable[int], n_live: int) -> list[int]:
    if isinstance(k, int | np.integer | float | np.floating):
        ks = [k]
    elif isinstance(k, str | bytes):
        raise ParameterError(f"k must be an integer or a list of integers, not {k!r}")
    else:
        try:
            ks = list(k)
        except TypeError:
            raise ParameterError(f"k must be an integer or a list of integers, not "
                                 f"{type(k).__name__}") from None
    if not ks:
        raise ParameterError("no sparsity k given")
    out = []
    for v in ks:
        if isinstance(v, bool) or not isinstance(v, int | np.integer | float | np.floating) or (
                not math.isfinite(v) or int(v) != v):
            raise ParameterError(f"k must be an integer, got {v!r}")
        v = int(v)
        if v < 1:
            raise ParameterError(f"k must be ≥ 1, got {v}")
        if v > n_live:
            raise ParameterError(f"k = {v} exceeds the number of live atoms N = {n_live}")
        out.append(v)
    return sorted(set(out))


@dataclass
class _Side:
    """One side (U or L) of one bracket while it is assembled."""

    lower: float
    upper: float
    witness: tuple[int, ...]
    lower_method: str
    upper_method: str


def rip_bounds(
    geom: Geometry | Dictionary | np.ndarray,
    k: int | Iterable[int],
    metric: AIPMetric | str | None = UNSET,
    *,
    budget_s: float | None = None,
    effort: int | None = None,
    seed: int = 0,
    enumerate_max: int = 1_000_000,
    sdp_max_atoms: int = 40,
    screen: int = 16,
    population: int = 8,
    patience: int = 200,
    drop_dead: bool = False,
    backend: str = "numpy",
    device: str | None = None,
    progress: bool = False,
) -> RIPResult:
    """Brackets [lower, upper] of U_k, L_k and δ_k for each k, with witnesses and methods.

    Parameters
    ----------
    geom : the :class:`~rip_atoms.geometry.Geometry` of D: its float32 rows, its spectral-norm
        bound and a coherence pass it keeps (e.g. the report's) when that covers this call
        (:meth:`CoherenceResult.covers`: Babel to max(k) − 1, enough top pairs; otherwise the
        pass is made, and kept). At the API edge, a Dictionary or H×N array (columns are
        atoms) with ``metric``.
    k : one sparsity or several (shared work: one coherence/Babel pass, one growth pass).
    metric : with a dictionary, ``"self"`` (S̃ = (D Dᵀ)⁻¹, default), an :class:`AIPMetric`, or
        ``"raw"`` (None: ``"raw"``); with a Geometry, left out (or its own).
    budget_s : wall-clock budget of the call (> 0), its searches shared out over the k and
        checked between small units of work (one grow step, one chunk of eigensolves of about
        50 ms, one enumeration chunk), so the call ends within about budget_s; it counts from
        the call's start, the fixed costs before the searches (the coherence pass and the
        spectral norm) included. When it runs out the brackets found so far are returned with
        ``search = "budget exhausted"``.
        Default 10 s; with ``effort`` it is only a wall-clock cap (default: none).
    effort : a work budget instead of a time budget: this many units of search work (one unit
        per budget check, about 50 ms each on the reference machine; :mod:`rip_atoms.deadline`).
        The searches then read no clock, so the same D, k, seed and options give the same
        brackets on any machine; ``result.budget["cap_hit"]`` says whether the cap cut them.
    seed : seeds the random restarts.
    enumerate_max : enumerate all supports when C(N, k) ≤ this (and the estimated time fits the
        budget); 0 disables enumeration.
    sdp_max_atoms : use the SDP upper bound when N ≤ this (cvxpy; O(N²) variables).
    screen : how many screened candidates get an exact eigensolve per step (all when N is small).
    population : number of supports searched together per k (shares one GEMM per round).
    patience : stop a k early after this many restarts without improvement ("converged").
    drop_dead : dead (zero) atoms make the RIP of unit columns undefined: error unless True,
        in which case they are left out (and said so in the notes).
    backend, device : engine of the coherence/Babel pass (``"torch"`` runs it on a GPU; see
        :func:`rip_atoms.coherence.coherence`).

    Returns
    -------
    RIPResult
        One :class:`RIPBracket` per k, each with witnesses and the method of each side.

    Examples
    --------
    >>> import numpy as np
    >>> from rip_atoms import rip_bounds
    >>> D = np.random.default_rng(0).standard_normal((8, 12))
    >>> b = rip_bounds(D, 3, "raw", budget_s=1)[3]
    >>> b.exact and b.delta_lower == b.delta_upper  # C(12, 3) = 220 supports: enumerated
    True
    """
    t_start = time.perf_counter()
    geom = Geometry.of(geom, metric, default="self")
    d = geom.dictionary
    # validates both; the budget counts from here: the fixed costs are in it (docs/api.md)
    deadline = Deadline.of(search_seconds(budget_s, effort), effort)
    seed = check_seed(seed)
    for name, v, least in (("enumerate_max", enumerate_max, 0), ("sdp_max_atoms", sdp_max_atoms,
                           0), ("screen", screen, 1), ("population", population, 1),
                           ("patience", patience, 1)):
        check_int(name, v, least=least)
    if len(d.dead_atoms) and not drop_dead:
        shown = ", ".join(str(int(i)) for i in d.dead_atoms[:8])
        raise DeadAtomsError(
            f"{d.provenance.source}: {len(d.dead_atoms)} dead (zero) atoms ({shown}); the RIP of "
            "unit columns is undefined for them — drop them (drop_dead=True, --drop-dead)"
        )
    atoms = geom.atoms(min_live=1)
    n = atoms.n_live
    ks = _validate_ks(k, n)
    H = d.dim
    rng = np.random.default_rng(seed)
    notes_all = [f"{len(d.dead_atoms)} dead atoms left out"] if len(d.dead_atoms) else []
    settings = SearchSettings(enumerate_max=int(enumerate_max), sdp_max_atoms=int(sdp_max_atoms),
                              screen=int(screen), population=int(population),
                              patience=int(patience))

    coh = None
    mu = 0.0
    if n >= 2:
        need_p = max(1, max(ks) - 1)
        need_top = max(256 if n <= DEEP_PASS_MAX_ATOMS else 64, population)
        coh = geom.coherence_pass(babel_p=need_p, top=need_top)
        if coh is None:
            coh = coherence(geom, babel_p=need_p, top=need_top, backend=backend,
                            device=device, progress=progress)
        mu = coh.mu
    spectral = geom.spectral_norm_sq_upper()
    # the search is many small GEMMs and eigensolves: multithreaded BLAS only adds contention
    with threadpool_limits(1):
        brackets = _search_all(atoms, ks, coh, rng, spectral, deadline, settings, notes_all,
                               progress)
    return RIPResult(
        brackets=brackets, dim=H, n_atoms=d.n_atoms, n_live=n, metric=atoms.metric_info(),
        mu=mu, spectral_norm_sq_upper=spectral, seconds=time.perf_counter() - t_start,
        coherence=coh, budget=deadline.to_dict(),
    )


def _search_all(atoms: CorrectedAtoms, ks: list[int], coh: CoherenceResult | None,
                rng: np.random.Generator, spectral: float, deadline: Deadline,
                settings: SearchSettings, notes_all: list[str], progress: bool
                ) -> list[RIPBracket]:
    """Per-k brackets (shared growth pass first); see :func:`rip_bounds`."""
    A = atoms.rows
    live = atoms.live
    n = atoms.n_live
    H = atoms.dim
    mu = coh.mu if coh is not None else 0.0
    screen_eff = n if n <= 256 else settings.screen
    searched = [kk for kk in ks if kk >= 3]

    # ---- shared greedy growth from coherent pairs and Babel rows (supports for every k),
    # within a fifth of the budget (sizes not reached are grown per k later)
    grown: dict[tuple[bool, int], list[SearchSupport]] = {}
    k_grow = max(ks)
    if n >= 3 and k_grow >= 3:
        pos = {int(a): r for r, a in enumerate(live)}
        grow_deadline = deadline.share(0.2)
        for upper in (True, False):
            if upper is False and min(searched) > H:
                break  # L_k = 1 exactly for k > H: no λmin search
            search = SupportSearch(atoms, upper, rng, spectral, screen_eff,
                                   deadline=grow_deadline)
            seeds = [np.array([pos[a], pos[b]])
                     for a, b, _ in coh.top_pairs[:settings.population]]
            chains = [SearchSupport(A, s, upper) for s in seeds]
            size = 2
            while size < k_grow and chains and not search.expired():
                search.grow(chains, search.directions(chains))
                if any(len(ch.S) == size for ch in chains):
                    break  # the deadline stopped this step part-way
                size += 1
                if size in ks:
                    grown[(upper, size)] = [SearchSupport(A, ch.S.copy(), upper) for ch in chains]

    brackets: list[RIPBracket] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(ks), desc="RIP brackets", unit="k", leave=False)
    for kk in ks:
        t_k = time.perf_counter()
        notes: list[str] = list(notes_all)
        exact = False
        search_state = "exact"
        floor = generalized_welch_delta(H, n, kk) if n >= kk else 0.0
        if kk == 1:
            w = (int(live[0]),)
            how = "closed form (unit atoms)"
            U = _Side(0.0, 0.0, w, how, how)
            L = _Side(0.0, 0.0, w, how, how)
            exact = True
        elif kk == 2:
            # δ₂ = μ: the lower side is the float64 μ of the witness pair, the upper side the
            # certified upper bound on μ (1 with a duplicate pair, which counts as parallel)
            w = tuple(int(i) for i in coh.pair)
            how = "δ₂ = μ (exhaustive coherence pass, float64)"
            up_how = ("δ₂ = μ ≤ 1: a duplicate pair (|cos| ≥ 1 − 1e-6), treated as parallel"
                      if coh.duplicate_pairs else
                      "δ₂ = μ (exhaustive coherence pass, float64 + its error bound)")
            up = max(mu, coh.mu_upper)
            U = _Side(mu, up, w, how, up_how)
            L = _Side(mu, up, w, how, up_how)
            exact = not coh.duplicate_pairs
            search_state = "exact" if exact else "duplicate pair counted as parallel"
        else:
            k_deadline = deadline.share(1.0 / max(1, len([x for x in searched if x >= kk])))
            U, L, exact, search_state = _bracket_k(atoms, kk, coh, rng, spectral, k_deadline,
                                                   settings, screen_eff, grown)
            if kk > H:
                how = f"exact: k = {kk} > H = {H}, so every G_S is singular"
                L = _Side(1.0, 1.0, L.witness if len(L.witness) == kk else U.witness, how, how)
                notes.append(f"k > H: L_k = 1 exactly (any {kk} atoms in R^{H} are dependent)")
        if kk <= H:
            _label_dependent_witness(atoms, L, notes)
        brackets.append(_finish(kk, U, L, floor, exact, search_state, notes,
                                time.perf_counter() - t_k))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return _monotone(brackets)


def _bracket_k(atoms: CorrectedAtoms, kk: int, coh: CoherenceResult | None,
               rng: np.random.Generator, spectral: float, deadline: Deadline,
               settings: SearchSettings, screen: int,
               grown: dict[tuple[bool, int], list[SearchSupport]]
               ) -> tuple[_Side, _Side, bool, str]:
    """U and L sides of one k ≥ 3: enumeration when it fits, else search + certified bounds."""
    live = atoms.live
    n = atoms.n_live
    n_sup = math.comb(n, kk)
    can_enum = (settings.enumerate_max > 0 and n_sup <= settings.enumerate_max
                and n_sup * _EIG_SECONDS_PER_SUPPORT * kk <= max(deadline.remaining(), 1.0) * 4)
    if can_enum:
        lmax, smax, lmin, smin, complete = _enumerate(atoms.gram(live), kk, deadline)
        wU = tuple(int(live[i]) for i in smax)
        wL = tuple(int(live[i]) for i in smin)
        if complete:
            how = f"enumeration of all {n_sup} supports (float64)"
            return (_Side(lmax - 1.0, lmax - 1.0, wU, how, how),
                    _Side(1.0 - lmin, 1.0 - lmin, wL, how, how), True, "exact")
        # the budget stopped the enumeration: what it saw are lower sides only
        how = "enumeration (stopped by the budget; float64 witness)"
        U = _Side(lmax - 1.0, math.inf, wU, how, "")
        L = _Side(1.0 - lmin, 1.0, wL, how, "L_k ≤ 1")
        state = "budget exhausted"
    else:
        sides = {}
        states = []
        search_L = kk <= atoms.dim  # for k > H, L_k = 1 exactly: no search
        for upper in ((True, False) if search_L else (True,)):
            side_deadline = deadline.share(0.5 if upper and search_L else 1.0)
            w, bound, how, st = search_k(atoms, kk, upper, grown.get((upper, kk), []), coh,
                                          rng, spectral, screen, settings, side_deadline)
            sides[upper] = (w, bound, how)
            states.append(st)
        wU, U_lo, mU = sides[True]
        wL, L_lo, mL = sides.get(False, (wU, 1.0, "k > H"))
        U = _Side(U_lo, math.inf, wU, mU, "")
        L = _Side(L_lo, 1.0, wL, mL, "L_k ≤ 1")
        state = "budget exhausted" if "budget" in states else "converged"
    if coh is not None:
        bab = float(coh.babel_upper[kk - 2])
        if bab < U.upper:
            U.upper, U.upper_method = bab, "Babel μ₁(k−1) (Gershgorin)"
        if bab < L.upper:
            L.upper, L.upper_method = bab, "Babel μ₁(k−1) (Gershgorin)"
    if spectral - 1.0 < U.upper:
        U.upper, U.upper_method = spectral - 1.0, "spectral ‖D̃‖₂² − 1"
    if n <= settings.sdp_max_atoms and not deadline.expired():
        up, lo = sdp_sparse_eigen_bounds(atoms.gram(live), kk)
        if up - 1.0 < U.upper:
            U.upper, U.upper_method = up - 1.0, "SDP relaxation (DSPCA dual)"
        if 1.0 - lo < L.upper:
            L.upper, L.upper_method = 1.0 - lo, "SDP relaxation (DSPCA dual)"
    return U, L, False, state


def _label_dependent_witness(atoms: CorrectedAtoms, L: _Side, notes: list[str]) -> None:
    """L_k ≤ 1 always (1 − λmin of a float64 Gram can exceed 1 by rounding: clamped); when the
    L witness is near-singular, say by which standard it is dependent — in float64, or only
    within the input's precision (:func:`rip_atoms.precision.near_singular_words`)."""
    L.lower, L.upper = min(L.lower, 1.0), min(L.upper, 1.0)
    words = near_singular_words(atoms, L.witness, 1.0 - L.lower)
    if words:
        L.lower_method += f"; the witness support is {words}"
        notes.append(f"L_k ≈ 1 from a near-singular witness: it is {words}")


def _finish(k: int, U: _Side, L: _Side, floor: float, exact: bool, search: str,
            notes: list[str], sec: float) -> RIPBracket:
    methods = {"U_lower": U.lower_method, "U_upper": U.upper_method,
               "L_lower": L.lower_method, "L_upper": L.upper_method}
    d_lo, m = (U.lower, U.lower_method) if U.lower >= L.lower else (L.lower, L.lower_method)
    if floor > d_lo:
        d_lo, m = floor, "generalised Welch sqrt((k−1)(N−H)/(H(N−1)))"
    methods["delta_lower"] = m
    methods["delta_upper"] = U.upper_method if U.upper >= L.upper else L.upper_method
    return RIPBracket(
        k=k, U_lower=float(U.lower), U_upper=float(U.upper), L_lower=float(L.lower),
        L_upper=float(L.upper), delta_lower=float(d_lo), delta_upper=float(max(U.upper, L.upper)),
        exact=exact, witness_U=tuple(U.witness), witness_L=tuple(L.witness), methods=methods,
        search=search, notes=tuple(notes), seconds=sec,
    )


def _monotone(brackets: list[RIPBracket]) -> list[RIPBracket]:
    """U_k and L_k are non-decreasing in k: tighten each upper bound by those of larger k."""
    out = list(brackets)
    for i in range(len(out) - 2, -1, -1):
        b, nxt = out[i], out[i + 1]
        changes = {}
        methods = dict(b.methods)
        if nxt.U_upper < b.U_upper:
            changes["U_upper"] = nxt.U_upper
            methods["U_upper"] = f"monotonicity (U_k ≤ U_{nxt.k}: {nxt.methods['U_upper']})"
        if nxt.L_upper < b.L_upper:
            changes["L_upper"] = nxt.L_upper
            methods["L_upper"] = f"monotonicity (L_k ≤ L_{nxt.k}: {nxt.methods['L_upper']})"
        if changes:
            U_up = changes.get("U_upper", b.U_upper)
            L_up = changes.get("L_upper", b.L_upper)
            methods["delta_upper"] = methods["U_upper"] if U_up >= L_up else methods["L_upper"]
            out[i] = RIPBracket(**{**b.__dict__, **changes, "methods": methods,
                                   "delta_upper": max(U_up, L_up)})
    return out
