"""Support search for the RIP brackets: supports S with extreme λmax(G_S) or λmin(G_S).

A population of supports is searched together (:class:`SupportSearch`): correlation screening
ranks every atom against each support's extreme direction D̃_S v with one GEMM, only the best few
candidates get an exact eigensolve (greedy growth :meth:`SupportSearch.grow`, best-improvement
swaps :meth:`SupportSearch.swap`), truncated power iterations z ← top_k(G z) give restarts. Every
step checks a :class:`rip_atoms.deadline.Deadline` between units of work of about 50 ms, so a
search never overruns its budget by more than one such unit. Under a work budget (``effort``)
each step charges its operation count at the nominal rates :data:`SEARCH_SECONDS_PER_FLOP` and
:func:`eigensolve_seconds` instead of the clock, so the search does the same steps anywhere.
Scores are float32 (the search only proposes); :func:`search_k` recomputes the witness
eigenvalue in float64 from the atoms as given.
Used by :func:`rip_atoms.rip.rip_bounds` (both sides) and :func:`rip_atoms.spark.spark_bounds`
(λmin ≈ 0: dependent sets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rip_atoms.coherence import CoherenceResult
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.deadline import Deadline

#: nominal cost of the search's float32 products (one thread, measured at 2304 atoms × 576 on
#: the reference machine: 2.5e-11 s per flop for the screening GEMM, 3.1e-11 for a GEMV)
SEARCH_SECONDS_PER_FLOP = 3e-11


def eigensolve_seconds(k: int) -> float:
    """Nominal seconds of one k×k symmetric eigensolve (numpy's eigvalsh in a batch; measured
    1.2e-6 s at k = 4, 1.1e-5 at 16, 1.5e-4 at 64)."""
    return 1e-6 + 2e-8 * k * k + 5e-10 * k**3


@dataclass(frozen=True)
class SearchSettings:
    """Knobs of the witness search shared by every k (see :func:`rip_bounds`)."""

    enumerate_max: int = 1_000_000
    sdp_max_atoms: int = 40
    screen: int = 16
    population: int = 8
    patience: int = 200


def _gram_rows(A: np.ndarray, S: np.ndarray) -> np.ndarray:
    """G_S from the float32 rows (search only; witnesses are recomputed in float64)."""
    X = A[S]
    G = (X @ X.T).astype(np.float64)
    np.fill_diagonal(G, 1.0)
    return 0.5 * (G + G.T)


def _extreme(G: np.ndarray, upper: bool) -> tuple[float, np.ndarray]:
    """Score (λmax, or −λmin) and its eigenvector."""
    w, V = np.linalg.eigh(G)
    return (float(w[-1]), V[:, -1]) if upper else (float(-w[0]), V[:, 0])


def _batch_scores(G: np.ndarray, upper: bool, deadline: Deadline | None = None) -> np.ndarray:
    """Scores of a batch of Gram matrices, in chunks of about 50 ms of eigensolves; once the
    deadline has passed the rest stay −inf (the first chunk is always evaluated)."""
    k = G.shape[-1]
    chunk = max(1, int(0.05 / (3e-10 * k**3 + 1e-6)))
    out = np.full(G.shape[0], -np.inf)
    for s in range(0, G.shape[0], chunk):
        if s and deadline is not None and deadline.expired(0.0):  # the work is charged
            break
        w = np.linalg.eigvalsh(G[s: s + chunk])
        out[s: s + chunk] = w[:, -1] if upper else -w[:, 0]
    return out


class SearchSupport:
    """One support under local search: local row indices, its score and extreme eigenvector."""

    __slots__ = ("S", "G", "score", "v", "stuck")

    def __init__(self, A: np.ndarray | None, S: np.ndarray, upper: bool,
                 G: np.ndarray | None = None) -> None:
        self.S = np.asarray(S, dtype=np.int64)
        self.G = _gram_rows(A, self.S) if G is None else G
        self.score, self.v = _extreme(self.G, upper)
        self.stuck = False

    def replace(self, S: np.ndarray, G: np.ndarray, upper: bool) -> None:
        self.S, self.G = S, G
        self.score, self.v = _extreme(G, upper)


class SupportSearch:
    """Population search for supports with extreme λmax (upper=True) or λmin (upper=False)."""

    def __init__(self, atoms: CorrectedAtoms, upper: bool, rng: np.random.Generator,
                 spectral_sq: float, screen: int, deadline: Deadline | None = None) -> None:
        self.A = atoms.rows
        self.n = self.A.shape[0]
        self.upper = upper
        self.rng = rng
        self.c = spectral_sq  # shift for the λmin power iteration
        self.screen = screen
        self.deadline = deadline

    def expired(self) -> bool:
        """Whether to stop; under a work budget the check itself is free, since every step
        charges its work (:meth:`charge_flops`, :meth:`charge_eigensolves`)."""
        return self.deadline is not None and self.deadline.expired(0.0)

    def charge_flops(self, flops: float) -> None:
        if self.deadline is not None:
            self.deadline.charge(flops * SEARCH_SECONDS_PER_FLOP)

    def charge_eigensolves(self, count: int, k: int) -> None:
        if self.deadline is not None:
            self.deadline.charge(count * eigensolve_seconds(k))

    # ---- correlation screening: one GEMM for the whole population
    def directions(self, chains: Sequence[SearchSupport]) -> np.ndarray:
        """|⟨d̃ₗ, D̃_S v⟩| for every atom l and chain (one GEMM for the population)."""
        X = np.stack([self.A[ch.S].T @ ch.v.astype(np.float32) for ch in chains], axis=1)
        self.charge_flops(2.0 * self.A.shape[1] * (self.n * len(chains)
                                                   + sum(len(ch.S) for ch in chains)))
        return np.abs(self.A @ X)  # (n, R)

    def _cross(self, cand: np.ndarray, S: np.ndarray) -> np.ndarray:
        return (self.A[cand] @ self.A[S].T).astype(np.float64)

    def _top_candidates(self, scores: np.ndarray, S: np.ndarray, m: int) -> np.ndarray:
        s = scores.copy()
        s[S] = -1.0
        m = min(m, self.n - len(S))
        if m <= 0:
            return np.empty(0, dtype=np.int64)
        idx = np.argpartition(-s, m - 1)[:m] if m < self.n else np.arange(self.n)
        return idx[np.argsort(-s[idx], kind="stable")][:m]

    def grow(self, chains: list[SearchSupport], corr: np.ndarray) -> None:
        """Add to each chain the screened atom that most improves its score (chains left once
        the deadline has passed are not grown: :meth:`grow_to` completes them)."""
        for r, ch in enumerate(chains):
            if self.expired():
                return
            cand = self._top_candidates(corr[:, r], ch.S, self.screen)
            if cand.size == 0:
                continue
            k = len(ch.S)
            cross = self._cross(cand, ch.S)
            self.charge_flops(2.0 * len(cand) * k * self.A.shape[1])
            self.charge_eigensolves(len(cand), k + 1)
            G = np.zeros((len(cand), k + 1, k + 1))
            G[:, :k, :k] = ch.G
            G[:, k, :k] = cross
            G[:, :k, k] = cross
            G[:, k, k] = 1.0
            best = int(np.argmax(_batch_scores(G, self.upper, self.deadline)))
            ch.replace(np.append(ch.S, cand[best]), G[best], self.upper)

    def grow_to(self, chains: list[SearchSupport], k: int) -> None:
        """Grow every chain to k atoms: greedy steps while the deadline allows, then the
        best-screened atoms without eigensolves (one GEMM per step), then one eigensolve."""
        while any(len(ch.S) < k for ch in chains):
            short = [ch for ch in chains if len(ch.S) < k]
            corr = self.directions(short)
            if self.expired():  # fill in bulk from the current directions, one eigensolve each
                for r, ch in enumerate(short):
                    S = np.append(ch.S, self._top_candidates(corr[:, r], ch.S, k - len(ch.S)))
                    ch.replace(S, _gram_rows(self.A, S), self.upper)
                break
            self.grow(short, corr)

    def swap(self, chains: list[SearchSupport], corr: np.ndarray, n_remove: int) -> bool:
        """One best-improvement swap per chain over (weakest members) × (screened atoms)."""
        improved = False
        for r, ch in enumerate(chains):
            if ch.stuck:
                continue
            if self.expired():
                break
            k = len(ch.S)
            if k >= self.n:
                ch.stuck = True
                continue
            cand = self._top_candidates(corr[:, r], ch.S, self.screen)
            rem = np.argsort(np.abs(ch.v), kind="stable")[: min(n_remove, k)]
            cross = self._cross(cand, ch.S)
            self.charge_flops(2.0 * len(cand) * k * self.A.shape[1])
            rr = np.repeat(rem, len(cand))
            cc = np.tile(np.arange(len(cand)), len(rem))
            chunk = max(1, int(0.05 / (3e-10 * k**3 + 1e-6)))
            best_sc, best_G, best_j = -np.inf, None, -1
            for s0 in range(0, len(rr), chunk):  # build and score the swapped Grams per chunk
                if s0 and self.expired():
                    break
                r_, c_ = rr[s0: s0 + chunk], cc[s0: s0 + chunk]
                b = np.arange(len(r_))
                G = np.repeat(ch.G[None], len(r_), axis=0)
                G[b, r_, :] = cross[c_]
                G[b, :, r_] = cross[c_]
                G[b, r_, r_] = 1.0
                self.charge_eigensolves(len(r_), k)
                sc = _batch_scores(G, self.upper)
                j = int(np.argmax(sc))
                if sc[j] > best_sc:
                    best_sc, best_G, best_j = float(sc[j]), G[j].copy(), s0 + j
            if best_sc > ch.score + 1e-12:
                newS = ch.S.copy()
                newS[rr[best_j]] = cand[cc[best_j]]
                ch.replace(newS, best_G, self.upper)
                improved = True
                continue
            ch.stuck = True
        return improved

    def power_start(
        self, k: int, start: np.ndarray | None = None, iters: int = 30
    ) -> SearchSupport:
        """Truncated power iteration z ← top_k(M z)/‖·‖ with M = G (λmax) or c·I − G (λmin),
        where G z = A (Aᵀ z) costs one GEMV pair."""
        if start is None:
            start = self.rng.choice(self.n, size=k, replace=False)
        S = np.asarray(start, dtype=np.int64)
        z = self.rng.standard_normal(len(S))
        z /= np.linalg.norm(z)
        self.charge_eigensolves(1, k)
        for _ in range(iters):
            self.charge_flops(2.0 * (k + self.n) * self.A.shape[1])
            y = self.A[S].T.astype(np.float64) @ z
            g = (self.A @ y.astype(np.float32)).astype(np.float64)
            if not self.upper:
                full = np.zeros(self.n)
                full[S] = z
                g = self.c * full - g
            newS = np.argpartition(-np.abs(g), k - 1)[:k]
            z = g[newS]
            nz = np.linalg.norm(z)
            if nz == 0:
                break
            z /= nz
            if set(newS.tolist()) == set(S.tolist()):
                S = newS
                break
            S = newS
        return SearchSupport(self.A, np.sort(S), self.upper)


def _support_extend(A: np.ndarray, row: int, k: int) -> np.ndarray:
    """Row ``row`` and its k − 1 most coherent partners (the Babel witness support of that row)."""
    c = np.abs(A @ A[row])
    c[row] = np.inf
    return np.argpartition(-c, k - 1)[:k]


def search_k(atoms: CorrectedAtoms, k: int, upper: bool, grown: list[SearchSupport],
              coh: CoherenceResult | None, rng: np.random.Generator, spectral: float,
              screen: int, settings: SearchSettings, deadline: Deadline
              ) -> tuple[tuple[int, ...], float, str, str]:
    """Local search for one k and one side until the deadline or ``patience`` restarts without
    improvement; returns (witness atoms, bound, method, state). At least one support is always
    built (a Babel-row or power-iteration support: one GEMV pass and one eigensolve)."""
    A = atoms.rows
    live = atoms.live
    n = A.shape[0]
    population = settings.population
    search = SupportSearch(atoms, upper, rng, spectral, screen, deadline=deadline)
    pos = {int(a): r for r, a in enumerate(live)}
    origin: dict[int, str] = {}
    pool: list[SearchSupport] = []

    def add(ch: SearchSupport, how: str) -> None:
        origin[id(ch)] = how
        pool.append(ch)

    for ch in grown:
        add(ch, "greedy growth from coherent pairs")
    if coh is not None:
        rows = [pos[int(a)] for a in coh.babel_rows[max(0, k - 2): k - 1]]
        rows += [pos[int(a)] for a, _, _ in coh.top_pairs[:population]]
        for r in list(dict.fromkeys(rows))[:population]:
            if pool and search.expired():
                break
            search.charge_flops(2.0 * n * A.shape[1])
            search.charge_eigensolves(1, k)
            add(SearchSupport(A, _support_extend(A, r, k), upper), "Babel-row support")
    while len(pool) < population and not (pool and search.expired()):
        add(search.power_start(k), "truncated power iteration")
    n_remove = k if n <= 256 else min(k, 4)
    pairs = [(pos[int(a)], pos[int(b)]) for a, b, _ in coh.top_pairs] if coh is not None else []
    next_pair = iter(pairs[population:])
    n_restarts = [0]

    def restart() -> tuple[SearchSupport, str]:
        """Rotate restarts: greedy growth from the next most coherent pair, a perturbation of
        the best support so far, a truncated power iteration from a random support."""
        n_restarts[0] += 1
        kind = n_restarts[0] % 3
        if kind == 0 and k >= 3:
            pair = next(next_pair, None)
            if pair is not None:
                ch = SearchSupport(A, np.array(pair), upper)
                search.grow_to([ch], k)
                return ch, "greedy growth from coherent pairs"
        if kind == 1 and k < n:
            S = best_S.copy()
            m = max(1, k // 4)
            out = rng.choice(k, size=m, replace=False)
            rest = np.setdiff1d(np.arange(n), S)
            S[out] = rng.choice(rest, size=m, replace=False)
            return SearchSupport(A, S, upper), "perturbed best support"
        return search.power_start(k), "truncated power iteration"

    best = max(pool, key=lambda c: c.score)
    best_S, best_score, best_how = best.S.copy(), best.score, origin[id(best)]
    state = "converged"
    stale = 0
    active = pool
    while True:
        if search.expired():
            state = "budget"
            break
        corr = search.directions(active)
        search.swap(active, corr, n_remove)
        for ch in active:
            if ch.score > best_score + 1e-12:
                best_S, best_score = ch.S.copy(), ch.score
                best_how = origin.get(id(ch), "restart") + " + swap search"
                stale = 0
        if search.expired():
            state = "budget"
            break
        done = [ch for ch in active if ch.stuck]
        if done:
            stale += len(done)
            if stale >= settings.patience:
                break
            active = [ch for ch in active if not ch.stuck]
            for _ in done:
                if search.expired():
                    break
                ch, how = restart()
                origin[id(ch)] = how
                active.append(ch)
            if not active:
                state = "budget"
                break
    S_atoms = tuple(sorted(int(live[i]) for i in best_S))
    w = np.linalg.eigvalsh(atoms.gram(list(S_atoms)))
    bound = float(w[-1] - 1.0) if upper else float(1.0 - w[0])
    return S_atoms, bound, best_how + " (float64 witness)", state
