"""The comparison table of unit sets — neurons, features, atoms — that is the paper's headline:
per unit set R² (AIP, Euclidean), q* (both readings), the ℓ1-certified fraction, μ, mean L0,
dead and never-active atoms, all on the same held-out tokens under one AIP metric (docs/design.md,
"The paper's criteria"). Built from the functions of :mod:`rip_atoms.criteria`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from rip_atoms.coherence import EXACT_MAX_ATOMS, per_atom_coherence
from rip_atoms.criteria.faithfulness import (
    DEFAULT_CHUNK_SIZE,
    FaithfulnessResult,
    check_activations,
    data_metric,
    eval_mean,
    faithfulness_result,
    resolve_split,
    stream_tokens,
)
from rip_atoms.criteria.stability import (
    QStarQuantile,
    QStarSupport,
    StabilityResult,
    l1_certified_fraction,
    q_star_quantile,
    q_star_support,
    sample_tokens,
)
from rip_atoms.criteria.units import TokenSplit, UnitSet, as_unit_set
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import ParameterError, ShapeMismatchError
from rip_atoms.geometry import Geometry
from rip_atoms.metric import AIPMetric, metric_description

__all__ = ["READINGS", "UnitComparison", "UnitRow", "compare_units"]

#: how to read each column of the table
READINGS = {
    "r2": FaithfulnessResult.reading,
    "q_star_quantile": QStarQuantile.reading,
    "q_star_support": QStarSupport.reading,
    "l1_certified_fraction": "fraction of a seeded sample of held-out tokens whose code is "
                             "certified the unique basis-pursuit solution over the "
                             "AIP-normalised atoms (non-negative BP where codes are ≥ 0)",
    "mu": "AIP coherence max_{i≠j} |⟨d̃ᵢ, d̃ⱼ⟩| over live atoms (float64)",
    "dead_atoms": "zero decoder columns",
    "never_active": "live atoms with no non-zero code on the evaluated tokens",
}


@dataclass(frozen=True)
class UnitRow:
    """One row of the comparison table (see :func:`compare_units`)."""

    name: str
    kind: str
    n_atoms: int
    n_live: int
    r2_aip: float
    r2_euclidean: float
    q_star_quantile: float
    q_star_support: float
    l1_certified_fraction: float | None
    l1_sampled: int
    mu: float
    mean_l0: float
    dead_atoms: int
    never_active: int
    nonneg_codes: bool
    faithfulness: FaithfulnessResult = field(repr=False)
    stability: StabilityResult = field(repr=False)
    unit: dict = field(default_factory=dict, repr=False)

    def to_dict(self, detail: bool = True) -> dict:
        out = {
            "name": self.name,
            "kind": self.kind,
            "n_atoms": self.n_atoms,
            "n_live": self.n_live,
            "r2_aip": self.r2_aip,
            "r2_euclidean": self.r2_euclidean,
            "q_star_quantile": self.q_star_quantile,
            "q_star_support": self.q_star_support,
            "l1_certified_fraction": self.l1_certified_fraction,
            "l1_sampled": self.l1_sampled,
            "mu": self.mu,
            "mean_l0": self.mean_l0,
            "dead_atoms": self.dead_atoms,
            "never_active": self.never_active,
            "nonneg_codes": self.nonneg_codes,
        }
        if detail:
            out["unit"] = self.unit
            out["faithfulness"] = self.faithfulness.to_dict()
            out["stability"] = self.stability.to_dict()
        return out


@dataclass(frozen=True)
class UnitComparison:
    """The comparison table: one :class:`UnitRow` per unit set, evaluated on the same held-out
    tokens under the same AIP metric."""

    rows: tuple[UnitRow, ...]
    split: dict
    metric: dict
    readings: dict
    seconds: float = 0.0

    def __getitem__(self, name: str) -> UnitRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self, detail: bool = True) -> dict:
        return {
            "rows": [r.to_dict(detail) for r in self.rows],
            "split": self.split,
            "metric": self.metric,
            "readings": self.readings,
            "seconds": self.seconds,
        }

    def render(self) -> str:
        """The table as fixed-width text."""
        head = (f"{'unit set':<14s} {'kind':<10s} {'N':>7s} {'R² AIP':>8s} {'R² Euc':>8s} "
                f"{'q*quant':>8s} {'q*supp':>8s} {'ℓ1-cert':>8s} {'μ':>7s} {'mean L0':>8s} "
                f"{'dead':>5s} {'inactive':>8s}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            l1 = "—" if r.l1_certified_fraction is None else f"{r.l1_certified_fraction:.4f}"
            lines.append(
                f"{r.name[:14]:<14s} {r.kind[:10]:<10s} {r.n_atoms:>7d} {r.r2_aip:>8.4f} "
                f"{r.r2_euclidean:>8.4f} {r.q_star_quantile:>8.4f} {r.q_star_support:>8.4f} "
                f"{l1:>8s} {r.mu:>7.4f} {r.mean_l0:>8.2f} {r.dead_atoms:>5d} "
                f"{r.never_active:>8d}")
        lines.append("")
        lines.append(f"tokens: {self.split['description']}")
        lines.append(f"metric: AIP, {self.metric.get('kind')} "
                     f"(condition number {self.metric.get('condition_number', float('nan')):.3g})")
        lines.append("q*quant: " + self.readings["q_star_quantile"])
        lines.append("q*supp:  " + self.readings["q_star_support"])
        lines.append("ℓ1-cert: " + self.readings["l1_certified_fraction"])
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def compare_units(
    activations: np.ndarray,
    units: Mapping[str, UnitSet | Dictionary | np.ndarray] | Sequence[UnitSet] = (),
    *,
    neurons: bool = True,
    metric: AIPMetric | str | None = "fit",
    split: TokenSplit | None = None,
    ridge: float = 0.0,
    center: bool = False,
    l1: bool = True,
    l1_max_tokens: int | None = 256,
    seed: int = 0,
    exact_max_atoms: int = EXACT_MAX_ATOMS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    log: Callable[[str], None] | None = None,
    source: str = "activations",
    geometries: Mapping[str, Geometry] | None = None,
    l1_results: Mapping | None = None,
) -> UnitComparison:
    """The paper's headline table: for each unit set, R² (AIP, Euclidean), q*_quantile,
    q*_support, ℓ1-certified fraction, μ, mean L0, dead and never-active atoms.

    Built from :func:`~rip_atoms.coherence.per_atom_coherence`, one streaming pass per unit set
    (:func:`~rip_atoms.criteria.faithfulness.stream_tokens`), :func:`q_star_quantile`,
    :func:`q_star_support` and :func:`l1_certified_fraction`.

    Parameters
    ----------
    activations : array_like
        X, n×H (a memory map is read ``chunk_size`` rows at a time).
    units : mapping or sequence
        name → :class:`UnitSet` (or a plain dictionary, coded by NNLS), or a sequence of unit
        sets.
    neurons : bool
        Prepend the neuron basis (D = I, δ = x) unless a unit set of kind "neurons" is given.
    metric : "fit", AIPMetric, "raw" or None
        The AIP metric shared by every row: ``"fit"`` (default) Σ⁻¹ fitted on the split's
        ``fit`` tokens (``ridge``, ``center``); an :class:`AIPMetric`; None or ``"raw"``
        Euclidean. One metric for all rows keeps the rows comparable; the self metric (D Dᵀ)⁻¹
        would make the neuron basis orthonormal (μ = 0), so it is not offered here.
    split : TokenSplit, optional
        Which tokens fit the metric and which are evaluated (default: :func:`token_split`, a
        seeded random half held out). Every criterion is computed on ``split.eval``.
    ridge, center :
        Passed to :func:`rip_atoms.metric.fit_metric` for ``metric="fit"``.
    l1, l1_max_tokens, seed :
        The ℓ1 test on a seeded sample of at most ``l1_max_tokens`` evaluated tokens (it
        solves an LP per code: sample accordingly).
    exact_max_atoms : int
        Per-atom coherences in float64 for all pairs up to this many live atoms.
    chunk_size : int
        Tokens encoded at a time.
    log : callable, optional
        Receives one line per step (e.g. a logger).
    source : str
        Names the activations in error messages (e.g. their file).
    geometries : mapping, optional
        Unit-set name → the :class:`~rip_atoms.geometry.Geometry` of its decoder under this
        table's metric (the report's, ``"fit"`` resolved to the AIPMetric first): its corrected
        atoms and the coherence pass it keeps are reused for the per-atom μⱼ, so the Gram is
        not computed again (same values). A geometry of other atoms or another metric is a
        :class:`~rip_atoms.errors.ParameterError` (:meth:`Geometry.check`).
    l1_results : mapping, optional
        Unit-set name → an :class:`~rip_atoms.criteria.stability.L1Certified` already computed
        for its codes under this metric (the report's ℓ1 section): reused when it covers the
        same sampled tokens (indices into ``activations``) with the same sign constraint, so
        the codes are not certified twice. The caller vouches for the metric.

    Returns
    -------
    UnitComparison

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((60, 3))
    >>> table = compare_units(X, l1=False)
    >>> row = table["neurons"]
    >>> row.r2_aip, row.q_star_support, row.mean_l0
    (1.0, 0.0, 3.0)
    """
    t0 = time.perf_counter()
    if isinstance(units, Mapping):
        unit_list = [as_unit_set(str(k), v) for k, v in units.items()]
    else:
        unit_list = [as_unit_set(getattr(u, "name", str(i)), u) for i, u in enumerate(units)]
    if not unit_list and not neurons:
        raise ParameterError("compare_units: no unit sets to compare")
    X = check_activations(activations, None)
    H = X.shape[1]
    for u in unit_list:
        if u.decoder.dim != H:
            raise ShapeMismatchError(f"unit set {u.name!r}: decoder has H = {u.decoder.dim} but "
                                     f"the activations have width {H}")
    if neurons and not any(u.kind == "neurons" for u in unit_list):
        unit_list.insert(0, UnitSet.neurons(H))
    names = [u.name for u in unit_list]
    if len(set(names)) != len(names):
        raise ParameterError(f"compare_units: unit-set names repeat: {names}")
    sp_ = resolve_split(X.shape[0], split)
    say = log or (lambda _msg: None)
    m = data_metric(X, sp_, metric, ridge, center, source=source)
    say(f"metric: {'raw' if m is None else m.kind}, condition number "
        f"{1.0 if m is None else m.condition_number:.3g}; {sp_.describe()}")
    mean = eval_mean(X, sp_.eval, chunk_size)
    n_eval = len(sp_.eval)
    sample = sample_tokens(n_eval, l1_max_tokens, seed) if l1 else None
    rows = []
    for u in unit_list:
        say(f"{u.name}: per-atom coherence of {u.decoder.n_atoms} atoms")
        geom = (geometries or {}).get(u.name)
        if geom is None:
            geom = Geometry.of(u.decoder, m)
        else:
            geom.check(u.decoder, m)
        pac = per_atom_coherence(geom, exact_max_atoms=exact_max_atoms)
        say(f"{u.name}: encoding {n_eval} tokens")
        st = stream_tokens(u, X, sp_.eval, metric=m, mean=mean, atom_mu=pac.for_supports(),
                           atom_norms=None, sample=sample, chunk_size=chunk_size)
        l0 = np.concatenate(st.l0).astype(np.int64)
        smu = np.concatenate(st.support_mu)
        faith = faithfulness_result(st, sp_, m)
        cert = None
        if l1:
            tokens = sp_.eval[sample]
            given = (l1_results or {}).get(u.name)
            if (given is not None and given.nonneg == st.nonneg
                    and np.array_equal(np.asarray(given.tokens), tokens)):
                say(f"{u.name}: exact ℓ1 test on {len(sample)} sampled tokens (reused)")
                cert = replace(given, tokens=tokens, sampled_from=n_eval, seed=seed)
            else:
                say(f"{u.name}: exact ℓ1 test on {len(sample)} sampled tokens")
                codes = sp.vstack(st.sample_codes, format="csr") if st.sample_codes else (
                    sp.csr_matrix((0, u.decoder.n_atoms)))
                cert = l1_certified_fraction(u.decoder, codes, metric=m, nonneg=st.nonneg,
                                             max_tokens=None, seed=None)
                cert = replace(cert, tokens=tokens, sampled_from=n_eval, seed=seed)
        stab = StabilityResult(q_star_quantile=q_star_quantile(pac, l0),
                               q_star_support=q_star_support(smu, l0), l1=cert, per_atom=pac,
                               l0=l0, support_mu=smu, nonneg=st.nonneg)
        live_mask = np.zeros(u.decoder.n_atoms, dtype=bool)
        live_mask[u.decoder.live_atoms] = True
        rows.append(UnitRow(
            name=u.name, kind=u.kind, n_atoms=u.decoder.n_atoms, n_live=pac.n_live,
            r2_aip=faith.r2_aip, r2_euclidean=faith.r2_euclidean,
            q_star_quantile=stab.q_star_quantile.value, q_star_support=stab.q_star_support.value,
            l1_certified_fraction=None if cert is None else cert.value,
            l1_sampled=0 if cert is None else cert.n_tokens, mu=pac.mu,
            mean_l0=float(l0.mean()), dead_atoms=int(len(u.decoder.dead_atoms)),
            never_active=int(np.sum(live_mask & ~st.active)), nonneg_codes=st.nonneg,
            faithfulness=faith, stability=stab, unit=u.to_dict()))
    return UnitComparison(rows=tuple(rows), split=sp_.to_dict(), metric=metric_description(m),
                          readings=dict(READINGS), seconds=time.perf_counter() - t0)
