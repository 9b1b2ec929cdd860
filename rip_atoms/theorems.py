"""The paper's theorems as executable properties, with their hypotheses checked, not assumed.

Each :class:`Theorem` has a ``name``, a ``statement`` (DESIGN.md notation), its ``hypotheses``,
a ``draw`` that makes a seeded random example (numpy ``Generator``) and a ``check`` that first
verifies the hypotheses on that example — an example whose hypotheses fail is *discarded*, never
counted — and then the conclusion, by brute force where the claim is combinatorial (enumeration
of every support on small dictionaries) and in float64 throughout. :meth:`Theorem.run` draws
until ``max_examples`` examples met the hypotheses and returns a :class:`TheoremResult` with
``passed`` and, if any example failed, the smallest counterexample found (by the theorem's size
key), re-checkable from its JSON.

Some claims, as reconstructed from the paper's notes, are false; they are kept in the suite with
``expected = "fails"``, their minimal counterexample and a ``corrected_statement`` (itself a
theorem of the suite that passes):

* ``tsae_exact_reconstruction``: thresholds in the window recover every *support*, but the TSAE
  output W_dec σ_τ(W_enc x) is not x unless co-occurring atoms are exactly AIP-orthogonal; the
  minimal counterexample has H = N = K = 2 (K = 1 cannot fail). Corrected:
  ``tsae_support_recovery``.
* ``aip_invariance_unit_columns``: the self metric built from *Euclidean-unit* columns
  (``AIPMetric.from_dictionary(D, atoms="unit")``; the library's default is the raw atoms,
  ``atoms="raw"``, because of this finding) is not invariant under
  invertible maps, because x ↦ A x changes the atoms' Euclidean norms non-uniformly; minimal
  counterexample H = 2, N = 3 (with N = H every atom pair is AIP-orthogonal on both sides).
  Corrected: ``aip_invariance`` (activation-fitted metric, and self metric on the raw atoms).

Conventions. A strict-inequality hypothesis must hold with room ``HYP_MARGIN`` = 1e-9 (so that
rounding cannot make a false hypothesis look true: e.g. antipodal atoms whose computed coherence
is 1 − 1e-16). Codes in examples are over the AIP-normalised atoms d̃ⱼ = W dⱼ/‖W dⱼ‖ (W = S̃^{1/2});
the observed atoms D may be any invertible image A D̃ with any column scales. "Dependent" means
σ_min/σ_max ≤ 1e-10 of the float64 SVD; examples whose subsets are numerically ambiguous
(a ratio between 1e-10 and 1e-7) are discarded.
"""

from __future__ import annotations

import itertools
import math
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.criteria.tsae import tsae_window
from rip_atoms.errors import ParameterError
from rip_atoms.metric import AIPMetric, fit_metric
from rip_atoms.strict_json import json_ready
from rip_atoms.synthetic import (
    activations_with_moment,
    etf_block_atoms,
    gaussian_atoms,
    near_etf_atoms,
    paired_atoms,
    random_invertible,
    second_moment_matrix,
    sparse_code_matrix,
)
from rip_atoms.theory import uniqueness_holds

DEP_RTOL = 1e-10
INDEP_RTOL = 1e-7
HYP_MARGIN = 1e-9  # a strict inequality hypothesis must hold with this much room
ENUM_MAX = 20000

__all__ = [
    "THEOREMS",
    "Theorem",
    "TheoremResult",
    "TheoremSuiteResult",
    "Verdict",
    "get_theorem",
    "run_theorems",
]


# ============================================================================== framework
@dataclass(frozen=True)
class Verdict:
    """The outcome of one example: ``status`` is "pass", "fail" or "discard" (hypotheses not
    met). ``detail`` holds the example and the computed quantities (a counterexample when
    failed); ``size`` orders counterexamples (smallest first); ``stats`` are per-example numbers
    the run aggregates by maximum (e.g. how tight a bound was)."""

    status: str
    reason: str = ""
    detail: dict = field(default_factory=dict)
    size: tuple = ()
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TheoremResult:
    """What running one theorem found.

    ``examples``: examples whose hypotheses held and whose conclusion was checked;
    ``discarded``: draws whose hypotheses failed; ``failures``: examples contradicting the
    statement; ``passed``: examples > 0 and failures = 0; ``as_documented``: the outcome matches
    ``expected`` ("holds" → passed, "fails" → a counterexample was found).
    """

    name: str
    statement: str
    hypotheses: tuple[str, ...]
    expected: str
    examples: int
    discarded: int
    failures: int
    passed: bool
    counterexample: dict | None
    corrected_statement: str | None
    corrected_by: str | None
    stats: dict
    seed: int
    seconds: float

    @property
    def as_documented(self) -> bool:
        return self.passed if self.expected == "holds" else (self.counterexample is not None)

    def to_dict(self) -> dict:
        return json_ready({
            "name": self.name,
            "statement": self.statement,
            "hypotheses": list(self.hypotheses),
            "expected": self.expected,
            "examples": self.examples,
            "discarded": self.discarded,
            "failures": self.failures,
            "passed": self.passed,
            "as_documented": self.as_documented,
            "counterexample": self.counterexample,
            "corrected_statement": self.corrected_statement,
            "corrected_by": self.corrected_by,
            "stats": self.stats,
            "seed": self.seed,
            "seconds": self.seconds,
        })


@dataclass(frozen=True)
class Theorem:
    """An executable claim: ``draw(rng, i)`` makes example i, ``check(example)`` → Verdict."""

    name: str
    statement: str
    hypotheses: tuple[str, ...]
    source: str
    draw: Callable[[np.random.Generator, int], dict] = field(repr=False)
    check: Callable[[dict], Verdict] = field(repr=False)
    expected: str = "holds"
    corrected_statement: str | None = None
    corrected_by: str | None = None

    def run(self, max_examples: int = 200, seed: int = 0, *,
            max_draws: int | None = None) -> TheoremResult:
        """Draw seeded examples until ``max_examples`` met the hypotheses (or ``max_draws``,
        default 20·max_examples, were drawn); check each. The generator is seeded with
        (seed, crc32(name)), so each theorem's examples do not depend on the others."""
        if max_examples < 1:
            raise ParameterError(f"max_examples must be ≥ 1, got {max_examples}")
        t0 = time.perf_counter()
        rng = np.random.default_rng([int(seed), zlib.crc32(self.name.encode())])
        limit = 20 * max_examples if max_draws is None else int(max_draws)
        examples = discarded = failures = draws = 0
        best: Verdict | None = None
        stats: dict[str, float] = {}
        while examples < max_examples and draws < limit:
            v = self.check(self.draw(rng, draws))
            draws += 1
            if v.status == "discard":
                discarded += 1
                continue
            examples += 1
            for k, x in v.stats.items():
                if x is not None and math.isfinite(x):
                    stats[k] = max(stats.get(k, -math.inf), float(x))
            if v.status == "fail":
                failures += 1
                if best is None or v.size < best.size:
                    best = v
        ce = None
        if best is not None:
            ce = dict(best.detail)
            ce["reason"] = best.reason
        return TheoremResult(
            name=self.name, statement=self.statement, hypotheses=self.hypotheses,
            expected=self.expected, examples=examples, discarded=discarded, failures=failures,
            passed=examples > 0 and failures == 0, counterexample=json_ready(ce),
            corrected_statement=self.corrected_statement, corrected_by=self.corrected_by,
            stats=stats, seed=int(seed), seconds=time.perf_counter() - t0)


# ============================================================================== linear algebra
def _whitening(S: np.ndarray) -> np.ndarray:
    lam, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(lam)) @ V.T


def _given_metric(S: np.ndarray) -> AIPMetric:
    """S̃ as given (an example's metric) as an :class:`AIPMetric`, W = S̃^{1/2} from S̃ itself."""
    S = np.asarray(S, dtype=np.float64)
    lam = np.linalg.eigvalsh(0.5 * (S + S.T))
    return AIPMetric(S=S, W=_whitening(S), moment_eigenvalues=np.sort(1.0 / lam), kind="given")


def aip_unit_atoms(D: np.ndarray, S: np.ndarray | None) -> np.ndarray:
    """D̃ (H×N, float64): columns W dⱼ/‖W dⱼ‖ with W = S̃^{1/2} (Euclidean when S is None) — the
    corrected atoms of :class:`~rip_atoms.corrected_atoms.CorrectedAtoms` under S̃."""
    metric = None if S is None else _given_metric(S)
    return CorrectedAtoms(D, metric, rows=False, rows64=True, min_live=0).cols64


def _coherence(Dt: np.ndarray) -> tuple[float, tuple[int, int]]:
    G = np.abs(Dt.T @ Dt)
    np.fill_diagonal(G, -1.0)
    i, j = np.unravel_index(int(np.argmax(G)), G.shape)
    return (float(max(G[i, j], 0.0)), (int(min(i, j)), int(max(i, j)))) if Dt.shape[1] > 1 \
        else (0.0, (0, 0))


def _combos(n: int, k: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(n), k)), dtype=np.int64).reshape(-1, k)


def exact_delta_k(Dt: np.ndarray, k: int) -> tuple[float, tuple[int, ...]]:
    """δ_k = max_{|S|=k} max(λmax(G_S) − 1, 1 − λmin(G_S)) by enumerating every support."""
    G = Dt.T @ Dt
    C = _combos(Dt.shape[1], k)
    Gs = G[C[:, :, None], C[:, None, :]]
    w = np.linalg.eigvalsh(Gs)
    dev = np.maximum(w[:, -1] - 1.0, 1.0 - w[:, 0])
    r = int(np.argmax(dev))
    return float(dev[r]), tuple(int(x) for x in C[r])


def _rel_sigma_min(X: np.ndarray) -> float:
    if X.shape[1] > X.shape[0]:
        return 0.0
    s = np.linalg.svd(X, compute_uv=False)
    return float(s[-1] / s[0]) if s[0] > 0 else 0.0


def enumerate_spark(D: np.ndarray) -> tuple[float, tuple[int, ...] | None, bool]:
    """(spark, a smallest dependent set, ambiguous) by enumeration of subsets in increasing size.
    ``ambiguous`` is True when some subset's σ_min/σ_max fell between DEP_RTOL and INDEP_RTOL."""
    H, N = D.shape
    ambiguous = False
    Dn = D / np.linalg.norm(D, axis=0)
    for t in range(1, min(N, H + 1) + 1):
        for T in itertools.combinations(range(N), t):
            r = _rel_sigma_min(Dn[:, T])
            if r <= DEP_RTOL:
                return float(t), T, ambiguous
            if r < INDEP_RTOL:
                ambiguous = True
    return math.inf, None, ambiguous


# ============================================================================== example draws
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
    if how == "self" and N >= H and _rel_sigma_min(D.T) > 1e-8:
        return D, np.linalg.inv(D @ D.T), how
    return D, np.linalg.inv(A @ A.T), "planted"


def _size(D: np.ndarray, *extra: int) -> tuple:
    return (*extra, int(D.shape[1]), int(D.shape[0]))


# ============================================================================== 1. RIP
def _draw_rip(rng: np.random.Generator, i: int) -> dict:
    Dt, fam = draw_unit_dictionary(rng)
    D, S, how = observe(rng, Dt)
    K = int(rng.integers(2, min(Dt.shape[1], 5) + 1)) if Dt.shape[1] >= 2 else 1
    return {"D": D, "S": S, "K": K, "family": fam, "metric": how}


def _check_rip(ex: dict) -> Verdict:
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    Dt = aip_unit_atoms(D, S)
    N = Dt.shape[1]
    if not 2 <= K <= N:
        return Verdict("discard", "need 2 ≤ K ≤ N")
    if math.comb(N, K) > ENUM_MAX:
        return Verdict("discard", "too many supports to enumerate")
    eps, pair = _coherence(Dt)
    if not (K - 1) * eps < 1 - HYP_MARGIN:
        return Verdict("discard", "(K − 1)ε ≥ 1")
    delta, supp = exact_delta_k(Dt, K)
    bound = (K - 1) * eps
    detail = {"D": D, "S": S, "K": K, "eps": eps, "pair": pair, "delta_K": delta,
              "witness_support": supp, "bound": bound, "family": ex.get("family")}
    ratio = delta / bound if bound > 1e-9 else None
    if delta <= bound * (1 + 1e-9) + 1e-12:
        return Verdict("pass", detail=detail, stats={"max_delta_over_bound": ratio})
    return Verdict("fail", f"δ_K = {delta:.6g} > (K − 1)ε = {bound:.6g}", detail,
                   _size(D, K))


RIP = Theorem(
    name="rip_from_coherence",
    statement="If the AIP-normalised atoms satisfy |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε (i ≠ j) and (K − 1)ε < 1, "
              "then D has the RIP of order K with δ_K ≤ (K − 1)ε: "
              "(1 − δ_K)‖δ‖² ≤ ‖Dδ‖²_S ≤ (1 + δ_K)‖δ‖² for every K-sparse δ over AIP-unit atoms "
              "(δ_K = max_{|S|=K} max(λmax(G_S) − 1, 1 − λmin(G_S)), by enumeration).",
    hypotheses=("AIP-normalised atoms", "ε = max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩|", "(K − 1)ε < 1"),
    source="paper-digest §4.2 (Gershgorin); DESIGN.md RIP",
    draw=_draw_rip, check=_check_rip)


# ============================================================================== 2. uniqueness
def max_certified_k(mu: float, cap: int) -> int:
    """The largest K ≤ cap with (2K − 1)μ < 1 (0 if none), by direct tests; bounded work for
    every μ ≥ 0 (μ that certify more than ``cap`` return ``cap``)."""
    if (2 * cap - 1) * mu < 1:
        return int(cap)
    k = int(0.5 * (1.0 / mu + 1.0))  # here 1/μ ≤ 2·cap − 1: no overflow, no long loop
    while k > 0 and (2 * k - 1) * mu >= 1:
        k -= 1
    while k < cap and (2 * k + 1) * mu < 1:
        k += 1
    return k


def _draw_sparse(rng: np.random.Generator, i: int, *, signs: str | None = None,
                 k_max: int | None = None) -> dict:
    Dt, fam = draw_unit_dictionary(rng)
    D, S, how = observe(rng, Dt)
    mu = _coherence(aip_unit_atoms(D, S))[0]
    kc = max_certified_k(mu, min(Dt.shape[1], k_max or Dt.shape[1]))
    # mostly the largest K the hypothesis allows (the boundary), sometimes one more (discarded)
    K = max(1, kc + int(rng.choice([0, 0, 0, -1, 1])))
    K = min(K, Dt.shape[1])
    sg = signs or str(rng.choice(["signed", "nonneg"]))
    code = sparse_code_matrix(rng, 1, Dt.shape[1], int(rng.integers(1, K + 1)),
                              magnitude=(0.2, 2.0), signs=sg)[0]
    return {"D": D, "S": S, "K": K, "code": code, "signs": sg, "family": fam, "metric": how}


def _check_uniqueness(ex: dict) -> Verdict:
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    code = np.asarray(ex["code"], float)
    Dt = aip_unit_atoms(D, S)
    H, N = Dt.shape
    supp = np.flatnonzero(code)
    if K < 1 or supp.size == 0 or supp.size > K:
        return Verdict("discard", "need 1 ≤ ‖δ‖₀ ≤ K")
    eps, _ = _coherence(Dt)
    if not uniqueness_holds(eps, K) or (2 * K - 1) * eps >= 1 - HYP_MARGIN:
        return Verdict("discard", "μ ≥ 1/(2K − 1)")
    t = min(2 * K, N)
    k = min(K, N)
    if math.comb(N, t) > ENUM_MAX or math.comb(N, k) > ENUM_MAX:
        return Verdict("discard", "too many subsets to enumerate")
    # (a) spark > 2K: every set of min(2K, N) atoms is independent (batched Gram spectra)
    T_all = _combos(N, t)
    w = np.linalg.eigvalsh(np.einsum("hbi,hbj->bij", Dt[:, T_all], Dt[:, T_all]))
    b = int(np.argmin(w[:, 0] / w[:, -1]))
    lam_min = float(w[b, 0])
    rel = math.sqrt(max(lam_min, 0.0) / float(w[b, -1]))
    detail = {"D": D, "S": S, "K": K, "code": code, "eps": eps, "min_lambda_2K": lam_min,
              "min_rel_sigma_2K": rel, "subset": T_all[b]}
    if rel <= INDEP_RTOL:
        return Verdict("fail", f"atoms {T_all[b].tolist()} are (numerically) dependent: "
                       "spark ≤ 2K", detail, _size(D, K))
    # (b) no other support of size ≤ K represents y = D̃ δ
    y = Dt @ code
    C = _combos(N, k)
    Gs = np.einsum("hbi,hbj->bij", Dt[:, C], Dt[:, C])
    rhs = np.einsum("hbi,h->bi", Dt[:, C], y)
    coef = np.linalg.solve(Gs, rhs[..., None])[..., 0]
    resid = np.linalg.norm(y[:, None] - np.einsum("hbi,bi->hb", Dt[:, C], coef), axis=0)
    ny = np.linalg.norm(y)
    for b in np.flatnonzero(resid <= 1e-9 * ny):
        other = np.zeros(N)
        other[C[b]] = coef[b]
        if np.max(np.abs(other - code)) > 1e-7 * np.max(np.abs(code)):
            detail["other_code"] = other
            return Verdict("fail", "another code with ≤ K non-zeros represents y", detail,
                           _size(D, K))
    # Gershgorin: λmin(G_T) ≥ 1 − (|T| − 1)μ; the ratio shows how tight that is (≤ 1)
    lam_all = float(w[:, 0].min())
    return Verdict("pass", detail=detail, stats={
        "max_gershgorin_over_lambda_min": (1.0 - (t - 1) * eps) / lam_all})


UNIQUENESS = Theorem(
    name="uniqueness_from_coherence",
    statement="If μ < 1/(2K − 1) then spark(D) > 2K, and every code δ with ‖δ‖₀ ≤ K is the "
              "unique representation of y = D̃δ with at most K non-zeros (checked by "
              "enumerating every set of 2K atoms and every support of size K).",
    hypotheses=("AIP-normalised atoms", "μ < 1/(2K − 1)", "1 ≤ ‖δ‖₀ ≤ K"),
    source="paper-digest §4.3; Donoho–Elad 2003, Gribonval–Nielsen 2003",
    draw=_draw_sparse, check=_check_uniqueness)


# ============================================================================== 3. ℓ1 recovery
def basis_pursuit_lp(Dt: np.ndarray, y: np.ndarray, nonneg: bool) -> np.ndarray:
    """min ‖x‖₁ s.t. D̃x = y (signed, as u − v with u, v ≥ 0) or min 𝟙ᵀx s.t. D̃x = y, x ≥ 0,
    through scipy's HiGHS (an independent solver; the library's own is rip_atoms.recovery)."""
    from scipy.optimize import linprog

    H, N = Dt.shape
    if nonneg:
        res = linprog(np.ones(N), A_eq=Dt, b_eq=y, bounds=(0, None), method="highs")
        return res.x if res.status == 0 else np.full(N, np.nan)
    res = linprog(np.ones(2 * N), A_eq=np.hstack([Dt, -Dt]), b_eq=y, bounds=(0, None),
                  method="highs")
    return res.x[:N] - res.x[N:] if res.status == 0 else np.full(N, np.nan)


def erc(Dt: np.ndarray, supp: np.ndarray) -> float:
    """Tropp's exact recovery coefficient max_{l∉S} ‖D̃_S⁺ d̃ₗ‖₁ (0 when S is everything)."""
    rest = np.setdiff1d(np.arange(Dt.shape[1]), supp)
    if rest.size == 0:
        return 0.0
    P = np.linalg.lstsq(Dt[:, supp], Dt[:, rest], rcond=None)[0]
    return float(np.abs(P).sum(axis=0).max())


def _check_l1(ex: dict) -> Verdict:
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    code = np.asarray(ex["code"], float)
    nonneg = ex.get("signs") == "nonneg"
    if nonneg and code.min() < 0:
        return Verdict("discard", "non-negative reading needs δ ≥ 0")
    Dt = aip_unit_atoms(D, S)
    supp = np.flatnonzero(code)
    if K < 1 or supp.size == 0 or supp.size > K:
        return Verdict("discard", "need 1 ≤ ‖δ‖₀ ≤ K")
    eps, _ = _coherence(Dt)
    if not uniqueness_holds(eps, K) or (2 * K - 1) * eps >= 1 - HYP_MARGIN:
        return Verdict("discard", "μ ≥ 1/(2K − 1)")
    e = erc(Dt, supp)
    x = basis_pursuit_lp(Dt, Dt @ code, nonneg)
    err = float(np.max(np.abs(x - code)) / np.max(np.abs(code)))
    detail = {"D": D, "S": S, "K": K, "code": code, "nonneg": nonneg, "eps": eps, "erc": e,
              "bp_solution": x, "relative_error": err}
    if not e < 1:
        return Verdict("fail", f"ERC = {e:.6g} ≥ 1 although (2K − 1)μ < 1", detail,
                       _size(D, K))
    if not err <= 1e-6:
        return Verdict("fail", f"basis pursuit returned a different x (error {err:.3g})",
                       detail, _size(D, K))
    return Verdict("pass", detail=detail, stats={"max_erc": e, "max_relative_error": err})


L1 = Theorem(
    name="l1_recovery_from_coherence",
    statement="If μ < 1/(2K − 1), basis pursuit over the AIP-normalised atoms recovers every "
              "code with ‖δ‖₀ ≤ K exactly (signed: min ‖x‖₁ s.t. D̃x = D̃δ; non-negative codes: "
              "min 𝟙ᵀx s.t. D̃x = D̃δ, x ≥ 0), because Tropp's ERC "
              "max_{l∉S} ‖D̃_S⁺ d̃ₗ‖₁ ≤ Kμ/(1 − (K − 1)μ) < 1.",
    hypotheses=("AIP-normalised atoms", "μ < 1/(2K − 1)", "1 ≤ ‖δ‖₀ ≤ K"),
    source="paper-digest §4.4; Donoho–Elad 2003, Tropp 2004",
    draw=_draw_sparse, check=_check_l1)


# ============================================================================== 4-5. TSAE
def _draw_tsae(rng: np.random.Generator, i: int) -> dict:
    # sizes grow with the draw index, so the smallest counterexamples come first
    H = 2 + (i // 8) % 7
    K = int(rng.integers(1, 4)) if i >= 8 else int(rng.integers(1, 3))
    dmin = float(rng.uniform(0.5, 1.5))
    dmax = dmin * float(rng.choice([1.0, rng.uniform(1.0, 2.0)]))
    if rng.random() < 0.7 or H < 3:
        K = min(K, H)
        N = int(rng.integers(max(2, K), H + 1))
        cap = dmin / ((2 * K - 1) * dmax)  # ε below it makes the window feasible
        mu = float(rng.uniform(0.0, 1.1 * cap if K > 1 else 0.9))
        Dt, _ = paired_atoms(rng, H, N, min(mu, 0.95), int(rng.integers(1, N // 2 + 1))
                             if N >= 2 else 0)
    else:
        m = int(rng.integers(2 * K, 2 * K + 4))
        Dt, _ = etf_block_atoms(rng, [m] * max(1, H // m) if H >= m else [m])
        dmax = dmin * float(rng.uniform(1.0, (m / (2 * K - 1)) * 0.99))
    D, S, how = observe(rng, Dt, str(rng.choice(["planted", "raw"])))
    N = Dt.shape[1]
    K = min(K, N)
    n = 12
    codes = sparse_code_matrix(rng, n, N, K, magnitude=(dmin, dmax), signs="nonneg",
                               hit_ends=True)
    eps = _coherence(aip_unit_atoms(D, S))[0]
    frac = float(rng.uniform(0.02, 0.98))
    lo, hi = eps * K * dmax, dmin - eps * (K - 1) * dmax
    tau = lo + frac * (hi - lo)
    return {"D": D, "S": S, "K": K, "codes": codes, "delta_min": dmin, "delta_max": dmax,
            "tau": tau, "metric": how}


def _tsae_setup(ex: dict):
    D, S, K = np.asarray(ex["D"], float), ex.get("S"), int(ex["K"])
    codes = np.atleast_2d(np.asarray(ex["codes"], float))
    dmin, dmax, tau = float(ex["delta_min"]), float(ex["delta_max"]), float(ex["tau"])
    Dt = aip_unit_atoms(D, S)
    eps, pair = _coherence(Dt)
    nz = codes[codes != 0]
    if codes.min() < 0:
        return None, Verdict("discard", "codes must be non-negative")
    if K < 1 or (np.count_nonzero(codes, axis=1) > K).any() or nz.size == 0:
        return None, Verdict("discard", "codes must be non-empty and K-sparse")
    if nz.min() < dmin * (1 - 1e-12) or nz.max() > dmax * (1 + 1e-12):
        return None, Verdict("discard", "a non-zero lies outside [δ_min, δ_max]")
    w = tsae_window(min(eps, 1.0), K, dmin, dmax)
    room = HYP_MARGIN * dmax
    if not w.margin > room or not w.lower + room < tau < w.upper - room:
        return None, Verdict("discard", "τ is not in a feasible window")
    Sm = np.eye(D.shape[0]) if S is None else np.asarray(S, float)
    n_s = np.sqrt(np.einsum("hj,hk,kj->j", D, Sm, D))  # AIP norms ‖dⱼ‖_S
    Dhat = D / n_s  # AIP-normalised atoms in observed coordinates
    X = codes @ Dhat.T  # x = Σ δⱼ d̂ⱼ
    Z = X @ (Dhat.T @ Sm).T  # z = W_enc x, W_enc = D̂ᵀ S̃
    C = np.where(Z > tau, Z, 0.0)  # σ_τ
    Xhat = C @ Dhat.T  # W_dec = D̂
    return (D, S, Sm, K, codes, eps, pair, w, Dhat, X, Z, C, Xhat), None


def _check_tsae_support(ex: dict) -> Verdict:
    setup, v = _tsae_setup(ex)
    if v is not None:
        return v
    D, S, Sm, K, codes, eps, pair, w, Dhat, X, Z, C, Xhat = setup
    detail = {"D": D, "S": S, "K": K, "eps": eps, "window": w.to_dict(), "tau": ex["tau"]}
    supp_ok = (C != 0) == (codes != 0)
    if not supp_ok.all():
        i = int(np.flatnonzero(~supp_ok.all(axis=1))[0])
        detail.update(code=codes[i], z=Z[i])
        return Verdict("fail", "the thresholded encoder missed or added an atom", detail,
                       _size(D, K))
    coef_err = float(np.max(np.abs(C - codes)))
    coef_bound = (K - 1) * eps * w.delta_max
    # least-squares refit on the recovered support is exact
    refit = 0.0
    Dw = aip_unit_atoms(D, S)
    for i in range(codes.shape[0]):
        T = np.flatnonzero(C[i])
        y = Dw @ codes[i]
        c = np.linalg.lstsq(Dw[:, T], y, rcond=None)[0]
        refit = max(refit, float(np.max(np.abs(c - codes[i, T]))))
    E = X - Xhat
    err_s = float(np.sqrt(np.max(np.einsum("ih,hk,ik->i", E, Sm, E))))
    err_bound = math.sqrt(1 + (K - 1) * eps) * math.sqrt(K) * coef_bound
    detail.update(coefficient_error=coef_err, coefficient_bound=coef_bound,
                  refit_error=refit, reconstruction_error_aip=err_s,
                  reconstruction_bound=err_bound)
    scale = max(1.0, w.delta_max)
    if coef_err > coef_bound * (1 + 1e-9) + 1e-12 * scale:
        return Verdict("fail", "a coefficient error exceeds (K − 1)εδ_max", detail, _size(D, K))
    if refit > 1e-8 * scale:
        return Verdict("fail", "least squares on the recovered support is not exact", detail,
                       _size(D, K))
    if err_s > err_bound * (1 + 1e-9) + 1e-12 * scale:
        return Verdict("fail", "the reconstruction error exceeds its bound", detail,
                       _size(D, K))
    return Verdict("pass", detail=detail, stats={
        "max_coefficient_error_over_bound": coef_err / coef_bound if coef_bound > 0 else 0.0})


def _check_tsae_exact(ex: dict) -> Verdict:
    setup, v = _tsae_setup(ex)
    if v is not None:
        return v
    D, S, Sm, K, codes, eps, pair, w, Dhat, X, Z, C, Xhat = setup
    E = X - Xhat
    rel = np.sqrt(np.einsum("ih,hk,ik->i", E, Sm, E) / np.einsum("ih,hk,ik->i", X, Sm, X))
    i = int(np.argmax(rel))
    if rel[i] <= 1e-9:
        return Verdict("pass", stats={"max_relative_error": float(rel[i])})
    k = int(np.count_nonzero(codes[i]))
    detail = {"D": D, "S": S, "K": K, "eps": eps, "pair": pair, "delta_min": w.delta_min,
              "delta_max": w.delta_max, "window": w.to_dict(), "tau": ex["tau"],
              "code": codes[i], "x": X[i], "z": Z[i], "tsae_code": C[i], "x_hat": Xhat[i],
              "relative_error_aip": float(rel[i]), "code_support_size": k}
    return Verdict("fail", "W_dec σ_τ(W_enc x) ≠ x: the support is right but the coefficients "
                   "carry the cross-talk (Gδ)_S − δ_S", detail, (k, *_size(D)),
                   stats={"max_relative_error": float(rel[i])})


_TSAE_HYP = ("AIP-normalised atoms with |⟨d̃ᵢ, d̃ⱼ⟩| ≤ ε", "codes ≥ 0 with ‖δ‖₀ ≤ K and every "
             "non-zero in [δ_min, δ_max]", "δ_min > ε(2K − 1)δ_max and "
             "εKδ_max < τ < δ_min − ε(K − 1)δ_max")

TSAE_SUPPORT = Theorem(
    name="tsae_support_recovery",
    statement="Under the TSAE hypotheses, with W_enc = D̂ᵀS̃ (D̂: AIP-normalised atoms), "
              "W_dec = D̂ and σ_τ(z) = z·1[z > τ]: the TSAE recovers every support exactly, "
              "every coefficient to within (K − 1)εδ_max (|ĉⱼ − δⱼ| ≤ (K − 1)εδ_max on S), "
              "least squares on the recovered support returns δ exactly, and "
              "‖x − x̂‖_S ≤ sqrt(1 + (K − 1)ε)·sqrt(K)·(K − 1)εδ_max.",
    hypotheses=_TSAE_HYP,
    source="paper-digest §4.5 (proof sketch and caveat)",
    draw=_draw_tsae, check=_check_tsae_support)

TSAE_EXACT = Theorem(
    name="tsae_exact_reconstruction",
    statement="(As reconstructed from the notes.) Under the TSAE hypotheses, with "
              "W_enc = D̂ᵀS̃ and W_dec = D̂, W_dec σ_τ(W_enc x) = x for every activation "
              "x = D̂δ.",
    hypotheses=_TSAE_HYP,
    source="paper-digest §4.5 (conclusion as summarised by the notes)",
    draw=_draw_tsae, check=_check_tsae_exact,
    expected="fails",
    corrected_statement="Thresholds in the window recover every support exactly; the TSAE "
                        "output is exact only when (Gδ)_S = δ_S, e.g. when atoms that co-occur "
                        "are exactly AIP-orthogonal. In general each coefficient is off by at "
                        "most (K − 1)εδ_max and ‖x − x̂‖_S ≤ sqrt(1 + (K − 1)ε)·sqrt(K)·"
                        "(K − 1)εδ_max; a least-squares refit on the recovered support is "
                        "exact. K = 1 is always exact (z_S = δ_S), so the smallest possible "
                        "counterexample has K = N = H = 2.",
    corrected_by="tsae_support_recovery")


# ============================================================================== 6-7. invariance
def _draw_invariance(rng: np.random.Generator, i: int) -> dict:
    H = int(rng.integers(1, 7)) if i >= 8 else int(rng.integers(1, 3))
    N = int(rng.integers(H, H + 4)) if i >= 8 else H + int(rng.integers(0, 2))
    n = int(rng.integers(H + 2, 4 * H + 8))
    X = activations_with_moment(rng, n, second_moment_matrix(
        rng, H, offset=float(rng.uniform(0, 4)), decay=float(rng.uniform(0, 2))))
    X = X + 0.01 * rng.standard_normal(X.shape)  # not exactly the planted moment: any X works
    A = random_invertible(rng, H, float(rng.uniform(1.0, 100.0)))
    return {"X": X, "A": A, "D": rng.standard_normal((H, N)) * rng.uniform(0.2, 5.0, size=N),
            "u": rng.standard_normal(H), "v": rng.standard_normal(H)}


def _cos(metric: AIPMetric, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return metric.cosine(a, b)


def _pair_cosines(metric: AIPMetric, D: np.ndarray) -> np.ndarray:
    Dt = metric.W @ D
    Dt = Dt / np.linalg.norm(Dt, axis=0)
    return Dt.T @ Dt


def _invariance_setup(ex: dict):
    X, A, D = np.asarray(ex["X"], float), np.asarray(ex["A"], float), np.asarray(ex["D"], float)
    H = X.shape[1]
    if _rel_sigma_min(A) < 1e-6:
        return Verdict("discard", "A is not (numerically) invertible")
    if X.shape[0] < H or _rel_sigma_min(X) < 1e-6:
        return Verdict("discard", "the second moment of X is (numerically) singular")
    for M in (D, A @ D):
        if M.shape[1] < H or min(_rel_sigma_min(M.T),
                                 _rel_sigma_min((M / np.linalg.norm(M, axis=0)).T)) < 1e-5:
            return Verdict("discard", "D (or A D) does not have full row rank")
    return None


def _check_invariance(ex: dict) -> Verdict:
    v = _invariance_setup(ex)
    if v is not None:
        return v
    X, A, D = np.asarray(ex["X"], float), np.asarray(ex["A"], float), np.asarray(ex["D"], float)
    u, w = np.asarray(ex["u"], float), np.asarray(ex["v"], float)
    m1 = fit_metric(X)
    m2 = fit_metric(X @ A.T)
    d_fit = float(abs(_cos(m2, A @ u, A @ w) - _cos(m1, u, w)))
    # the fitted metric transforms as S̃' = A⁻ᵀ S̃ A⁻¹
    Ainv = np.linalg.inv(A)
    d_cov = float(np.max(np.abs(m2.S - Ainv.T @ m1.S @ Ainv)) / np.max(np.abs(m2.S)))
    s1 = AIPMetric.from_dictionary(D, atoms="raw")
    s2 = AIPMetric.from_dictionary(A @ D, atoms="raw")
    d_self = float(np.max(np.abs(_pair_cosines(s2, A @ D) - _pair_cosines(s1, D))))
    worst = max(d_fit, d_self)
    # rounding: the eigendecompositions lose ~ u·cond of the inverted matrices
    tol = 1e-13 * max(m2.condition_number, s2.condition_number, m1.condition_number,
                      s1.condition_number, 1.0)
    detail = {"X_shape": list(X.shape), "A": A, "D": D, "u": u, "v": w,
              "fit_difference": d_fit, "self_raw_difference": d_self,
              "metric_transform_difference": d_cov, "tolerance": tol}
    if worst <= tol and d_cov <= tol:
        return Verdict("pass", stats={"max_difference": worst, "max_difference_over_tolerance":
                                      max(worst, d_cov) / tol})
    return Verdict("fail", "an AIP cosine changed under x ↦ A x", detail, _size(D))


def _check_invariance_unit(ex: dict) -> Verdict:
    v = _invariance_setup(ex)
    if v is not None:
        return v
    A, D = np.asarray(ex["A"], float), np.asarray(ex["D"], float)
    s1 = AIPMetric.from_dictionary(D, atoms="unit")  # Euclidean-unit columns
    s2 = AIPMetric.from_dictionary(A @ D, atoms="unit")
    diff = np.abs(_pair_cosines(s2, A @ D) - _pair_cosines(s1, D))
    i, j = np.unravel_index(int(np.argmax(diff)), diff.shape)
    tol = 1e-13 * max(s1.condition_number, s2.condition_number, 1.0)
    if diff[i, j] <= max(tol, 1e-12):
        return Verdict("pass", stats={"max_difference": float(diff[i, j])})
    detail = {"A": A, "D": D, "atoms": [int(i), int(j)],
              "cos_before": float(_pair_cosines(s1, D)[i, j]),
              "cos_after": float(_pair_cosines(s2, A @ D)[i, j]),
              "euclidean_norms_before": np.linalg.norm(D, axis=0),
              "euclidean_norms_after": np.linalg.norm(A @ D, axis=0)}
    return Verdict("fail", "the unit-column self metric changed an AIP cosine", detail,
                   _size(D))


_INV_HYP = ("A invertible", "the second moment of X invertible (ridge 0)",
            "D of full row rank (for the self metric)")

INVARIANCE = Theorem(
    name="aip_invariance",
    statement="For invertible A: the metric fitted on X Aᵀ is S̃' = A⁻ᵀS̃A⁻¹ and "
              "⟨Au, Av⟩_{S̃'} = ⟨u, v⟩_{S̃} (S̃ fitted on X, ridge 0); likewise for the self "
              "metric on the raw atoms, S̃ = (D Dᵀ)⁻¹ vs S̃' = (A D Dᵀ Aᵀ)⁻¹, every AIP cosine "
              "between atoms is unchanged.",
    hypotheses=_INV_HYP,
    source="DESIGN.md AIP metric; paper-digest §3.3 (invariance)",
    draw=_draw_invariance, check=_check_invariance)

INVARIANCE_UNIT = Theorem(
    name="aip_invariance_unit_columns",
    statement="For invertible A, the self metric built from Euclidean-unit columns, "
              "S̃ = (D_u D_uᵀ)⁻¹ with D_u = D diag(1/‖dⱼ‖₂) "
              "(AIPMetric.from_dictionary(D, atoms='unit')), gives the same AIP cosines between "
              "the atoms of A D as between those of D.",
    hypotheses=_INV_HYP,
    source="rip_atoms.metric.AIPMetric.from_dictionary(atoms='unit')",
    draw=_draw_invariance, check=_check_invariance_unit,
    expected="fails",
    corrected_statement="Invariance holds for the self metric on the raw atoms "
                        "(from_dictionary(D, atoms='raw')) and for the activation-fitted metric; "
                        "the unit-column self metric is invariant only under maps that scale "
                        "every atom's Euclidean norm by the same factor (e.g. scaled orthogonal "
                        "A), or when N = H (then every atom pair is AIP-orthogonal). The "
                        "smallest counterexample has H = 2, N = 3.",
    corrected_by="aip_invariance")


# ============================================================================== 8. Parseval
def _draw_parseval(rng: np.random.Generator, i: int) -> dict:
    H = int(rng.integers(1, 9))
    N = int(rng.integers(max(1, H - 1), H + 8))
    D = rng.standard_normal((H, N)) * rng.uniform(0.1, 10.0, size=N)
    if rng.random() < 0.3:
        D = random_invertible(rng, H, float(rng.uniform(1, 1e3))) @ D
    return {"D": D}


def _check_parseval(ex: dict) -> Verdict:
    D = np.asarray(ex["D"], float)
    H, N = D.shape
    if N < H or min(_rel_sigma_min(D.T),
                    _rel_sigma_min((D / np.linalg.norm(D, axis=0)).T)) < 1e-5:
        return Verdict("discard", "D does not have full row rank")
    out = {}
    for atoms, M in (("raw", D), ("unit", D / np.linalg.norm(D, axis=0))):
        m = AIPMetric.from_dictionary(D, atoms=atoms)
        F = m.W @ M
        cond = m.condition_number
        P = M.T @ m.S @ M
        out[atoms] = {
            "parseval_error": float(np.linalg.norm(F @ F.T - np.eye(H), 2)),
            "projector_error": float(np.linalg.norm(P @ P - P, 2)),
            "trace_error": float(abs(np.trace(P) - H)),
            "tolerance": 1e-12 * H * max(cond, 1.0),
        }
    bad = [k for k, r in out.items()
           if max(r["parseval_error"], r["projector_error"], r["trace_error"]) > r["tolerance"]]
    if bad:
        return Verdict("fail", f"W D is not a Parseval frame ({bad[0]} atoms)",
                       {"D": D, "errors": out}, _size(D))
    return Verdict("pass", stats={"max_parseval_error": max(r["parseval_error"]
                                                            for r in out.values())})


PARSEVAL = Theorem(
    name="whitening_parseval",
    statement="If D has full row rank and S̃ = (D Dᵀ)⁻¹, W = S̃^{1/2}, then W D is a Parseval "
              "frame, (W D)(W D)ᵀ = I_H, and Dᵀ S̃ D is the orthogonal projector onto the row "
              "space of D (trace H); the same holds for the unit-column self metric applied to "
              "the unit columns. (The AIP-normalised atoms W dⱼ/‖W dⱼ‖ are not a Parseval "
              "frame in general.)",
    hypotheses=("D of full row rank",),
    source="paper-digest §3.3 (tight frame)",
    draw=_draw_parseval, check=_check_parseval)


# ============================================================================== 9. spark
def _draw_spark(rng: np.random.Generator, i: int) -> dict:
    H = int(rng.integers(1, 6))
    N = int(rng.integers(max(2, H - 1), H + 4))
    D = rng.standard_normal((H, N))
    t = int(rng.integers(2, min(N, H + 1) + 1)) if rng.random() < 0.8 and N >= 2 else 0
    if t:
        idx = rng.permutation(N)[:t]
        coef = rng.choice([-1.0, 1.0], t - 1) * rng.uniform(0.5, 2.0, t - 1)
        D[:, idx[-1]] = D[:, idx[:-1]] @ coef
    D = D * rng.uniform(0.2, 5.0, size=N)
    W = (_whitening(np.linalg.inv(second_moment_matrix(rng, H, offset=float(rng.uniform(0, 3)))))
         if rng.random() < 0.5 else random_invertible(rng, H, float(rng.uniform(1, 100))))
    return {"D": D, "W": W, "planted_circuit": t}


def _check_spark(ex: dict) -> Verdict:
    D, W = np.asarray(ex["D"], float), np.asarray(ex["W"], float)
    if _rel_sigma_min(W) < 1e-6:
        return Verdict("discard", "W is not (numerically) invertible")
    s1, T1, a1 = enumerate_spark(D)
    s2, T2, a2 = enumerate_spark(W @ D)
    if a1 or a2:
        return Verdict("discard", "a subset is numerically ambiguous")
    detail = {"D": D, "W": W, "spark": s1, "spark_whitened": s2, "circuit": T1,
              "circuit_whitened": T2}
    if s1 != s2:
        return Verdict("fail", "spark(W D) ≠ spark(D)", detail, _size(D))
    return Verdict("pass", detail=detail)


SPARK = Theorem(
    name="spark_whitening_invariance",
    statement="spark(W D) = spark(D) for every invertible W (in particular the AIP whitening "
              "S̃^{1/2}); column scaling does not change it either, so the spark of the "
              "AIP-normalised atoms is the spark of D (by enumeration of all subsets).",
    hypotheses=("W invertible",),
    source="paper-digest §4.3; DESIGN.md spark",
    draw=_draw_spark, check=_check_spark)


# ============================================================================== registry
THEOREMS: tuple[Theorem, ...] = (RIP, UNIQUENESS, L1, TSAE_SUPPORT, TSAE_EXACT, INVARIANCE,
                                 INVARIANCE_UNIT, PARSEVAL, SPARK)


def get_theorem(name: str) -> Theorem:
    """The theorem of that name (ParameterError listing the names otherwise)."""
    for t in THEOREMS:
        if t.name == name:
            return t
    raise ParameterError(f"unknown theorem {name!r}; known: {', '.join(t.name for t in THEOREMS)}")


@dataclass(frozen=True)
class TheoremSuiteResult:
    """Every theorem's result; ``all_as_documented`` is True when each passed or, for the
    documented false claims, produced its counterexample."""

    results: tuple[TheoremResult, ...]
    max_examples: int
    seed: int
    seconds: float

    @property
    def all_as_documented(self) -> bool:
        return all(r.as_documented for r in self.results)

    def to_dict(self) -> dict:
        return {"theorems": [r.to_dict() for r in self.results],
                "max_examples": self.max_examples, "seed": self.seed,
                "all_as_documented": self.all_as_documented, "seconds": self.seconds}


def run_theorems(max_examples: int = 200, seed: int = 0,
                 names: Iterable[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> TheoremSuiteResult:
    """Run the suite (or the named theorems) with ``max_examples`` examples each."""
    t0 = time.perf_counter()
    chosen = THEOREMS if names is None else tuple(get_theorem(n) for n in names)
    out = []
    for t in chosen:
        r = t.run(max_examples=max_examples, seed=seed)
        if progress is not None:
            verdict = "passed" if r.passed else "counterexample found"
            doc = "as documented" if r.as_documented else "NOT as documented"
            progress(f"{t.name}: {r.examples} examples, {r.discarded} discarded, {verdict}, "
                     f"{doc} ({r.seconds:.1f} s)")
        out.append(r)
    return TheoremSuiteResult(tuple(out), int(max_examples), int(seed),
                              time.perf_counter() - t0)
