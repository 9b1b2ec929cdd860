"""Compute every section of a verification report (the numbers; :mod:`.figures` draws them).

The report is a plain JSON-ready dict: each section says whether it was computed, the method of
every number, how to read it, and a witness a user can re-check (supports, pairs, circuits).
Where a section needs an input the target does not provide (activations, an encoder or codes,
thresholds), the section says so and why, instead of guessing.

Inputs (:class:`VerifyTarget`): a dictionary D ∈ R^{H×N} (columns are atoms) and optionally
held-out activations X (n×H, rows are tokens), the AIP metric S̃ (default: Σ⁻¹ fitted on X when
X is given, else the self metric (D Dᵀ)⁻¹, else raw), the target as a unit set (an encoder or
codes, for R², q*, the ℓ1-certified fraction and the code L0s), TSAE thresholds τ, and a
precomputed neurons / features / atoms table.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rip_atoms import theory
from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.criteria import UnitComparison, UnitSet
from rip_atoms.deadline import UNIT_S, Deadline
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import ParameterError, ShapeMismatchError, SingularMetricError
from rip_atoms.kernels.threads import with_fixed_thread_sums
from rip_atoms.metric import AIPMetric, fit_metric, representation_shift
from rip_atoms.recovery.codes import PROJECTOR_SECONDS_PER_FLOP
from rip_atoms.report.budget import DEFAULT_BUDGET_S, SearchBudget
from rip_atoms.report.context import ReportContext
from rip_atoms.report.l1_section import codes_section, recovery_searches
from rip_atoms.report.reproducibility import reproducibility_section
from rip_atoms.report.self_check import attach_proof
from rip_atoms.theory import babel_certified_k

SCHEMA = "rip_atoms.report/1"
#: the sparsities at which the RIP constants are bracketed (those ≤ min(H, N_live))
RIP_KS = (2, 4, 8, 16, 32, 64)
#: per-atom coherence histogram: bins over [0, 1]
PER_ATOM_BINS = 50
#: the sampled Gaussian reference is skipped above this many entries H·N
GAUSSIAN_MAX_ENTRIES = 2304 * 32768
@dataclass
class VerifyTarget:
    """What to verify: a dictionary and whatever else is known about it.

    ``activations`` should be tokens the units were not trained on (the CLI holds some out);
    ``unit`` is the target as a :class:`rip_atoms.criteria.UnitSet` (encoder or codes aligned with
    ``activations``); ``thresholds`` are a TSAE's τⱼ in the units of the unit's codes;
    ``table`` a precomputed :class:`rip_atoms.criteria.UnitComparison` (else one is computed from
    ``unit`` and ``extra_units`` beside the neuron basis); ``nonneg`` whether codes are
    non-negative (SAE codes; default: inferred from the codes, else True).

    For the atom cards and the monosemanticity proxy: ``provenance`` (a
    :class:`rip_atoms.criteria.atom_cards.TokenProvenance` aligned with ``activations``; else
    ``provenance_why`` says why there is none), ``card_atoms`` (units the user names) and
    ``proxy_units`` (other unit sets of the table whose proxy to compute). ``split_description``
    says in words which tokens were held out (it replaces the table's own wording).
    """

    dictionary: Dictionary
    description: str
    kind: str = "dictionary"
    activations: np.ndarray | None = field(default=None, repr=False)
    activations_source: str | None = None
    metric: AIPMetric | None = field(default=None, repr=False)
    unit: UnitSet | None = field(default=None, repr=False)
    extra_units: dict[str, UnitSet] = field(default_factory=dict, repr=False)
    thresholds: np.ndarray | None = field(default=None, repr=False)
    table: UnitComparison | None = field(default=None, repr=False)
    nonneg: bool | None = None
    context: dict = field(default_factory=dict)
    provenance: object | None = field(default=None, repr=False)
    provenance_why: str | None = None
    card_atoms: list[int] | None = None
    proxy_units: dict[str, UnitSet] = field(default_factory=dict, repr=False)
    split_description: str | None = None


def _histogram(values: np.ndarray, bins: int, lo: float, hi: float) -> dict:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    return {"counts": counts.tolist(), "edges": edges.tolist()}


def _coherence_section(res: CoherenceResult, top: int = 20, babel_p: int = 64) -> dict:
    out = res.to_dict()
    out["top_pairs"] = out["top_pairs"][:top]
    for key in ("babel", "babel_rows", "babel_upper"):  # the pass may go deeper (for spark)
        out[key] = out[key][:babel_p]
    out["per_atom_histogram"] = _histogram(res.per_atom, PER_ATOM_BINS, 0.0, 1.0)
    # every guarantee from the certified upper bound on μ, never the float value itself
    out["certified_K"] = res.certified_k
    out["unique_below_K"] = theory.coherence_uniqueness_k(res.mu_upper)
    out["spark_lower"] = theory.spark_lower_from_coherence(res.mu_upper)
    out["babel_certified_K"] = babel_certified_k(res.babel_upper[:babel_p])
    out["method"] = ("blocked float32 Gram sweep (never N×N), extremes recomputed in float64; "
                     "Babel lower values exact on the rows found, upper values certified with "
                     "the float32 error bound")
    out["reading"] = ("μ = max |⟨d̃ᵢ, d̃ⱼ⟩|; μ < 1/(2K−1) certifies that every K-sparse code is "
                      "unique and recovered by ℓ1 (certified_K); μ₁(K−1) + μ₁(K) < 1 (Tropp) "
                      "certifies the same from the Babel function (babel_certified_K)")
    return out


def _metric_choice(t: VerifyTarget, notes: list) -> tuple[AIPMetric | None, str, str]:
    """(metric, key, reading) of the analysis metric."""
    if t.metric is not None:
        return t.metric, "activations", "AIP S̃ = Σ⁻¹, Σ = E[xxᵀ] fitted on activations"
    if t.activations is not None:
        m = fit_metric(t.activations, source=t.activations_source or "activations")
        return m, "activations", "AIP S̃ = Σ⁻¹, Σ = E[xxᵀ] fitted on the activations given"
    try:
        m = AIPMetric.from_dictionary(t.dictionary)
        return m, "self", ("AIP self metric S̃ = (D Dᵀ)⁻¹ (no activations given: the metric "
                           "the dictionary itself induces)")
    except SingularMetricError as exc:
        notes.append({"section": "metric", "why": f"self metric unavailable: {exc}; raw "
                      "Euclidean geometry used"})
        return None, "raw", "raw Euclidean cosines (D Dᵀ is singular)"


@with_fixed_thread_sums
def build_report(
    target: VerifyTarget,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    effort: int | None = None,
    seed: int = 0,
    rip_ks: tuple[int, ...] = RIP_KS,
    l1_max_tokens: int = 256,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    client=None,
    started: float | None = None,
) -> dict:
    """Every section of the report for ``target`` (see the module docstring), in the order of
    :data:`rip_atoms.report.sections.REPORT_SECTIONS`.

    The exact parts (coherence and Babel, the certification of the target's codes, the
    criteria, the cards) run first and to completion; the budgeted parts (RIP witnesses, spark
    null vectors, the uniqueness margins, the ℓ1 probe, the sampled Gaussian reference) share
    the budget B (:class:`SearchBudget`), each returning the best certified bracket found
    within its share. With ``effort``, B is that many units of search work (no clock: the same
    target, seed and options give the same report on any machine) and ``budget_s`` is a
    wall-clock cap over the whole report; without it, ``budget_s`` is B, the report's wall
    time (default :data:`rip_atoms.report.budget.DEFAULT_BUDGET_S`). ``started``: a
    ``time.perf_counter()`` value from which B counts instead of this call's start (the CLI
    passes the moment it began loading the target and fitting the metric, so B is the report's
    whole time; harvesting and training are not counted). ``seed`` fixes
    every random choice. ``client``: a
    ``distributed.Client`` (:func:`rip_atoms.cluster.dask_client`) that runs the Gram tiles of
    the coherence passes and the token chunks of the ℓ1 certification of the target's codes
    (identical results to the single-process run; the budgeted ℓ1 probe stays local). The
    report runs on one BLAS thread but for its GEMMs (:mod:`rip_atoms.kernels.threads`), so
    its floats do not depend on the thread count.
    """
    from rip_atoms import __version__
    from rip_atoms.report.sections import REPORT_SECTIONS

    if not budget_s > 0:
        raise ParameterError(f"budget_s must be > 0, got {budget_s}")
    t_all = time.perf_counter()
    d = target.dictionary
    X = target.activations
    if X is not None and X.shape[1] != d.dim:
        raise ShapeMismatchError(f"{target.activations_source or 'activations'}: width "
                                 f"{X.shape[1]} but the dictionary has H = {d.dim}")
    # B counts from ``started`` (the caller's preparation of the target: loading, fitting the
    # metric) when given, else from this call
    budget = SearchBudget(budget_s, effort,
                          started=t_all if started is None else min(started, t_all))
    ctx = ReportContext(target=target, budget=budget, seed=seed, rip_ks=rip_ks,
                        l1_max_tokens=l1_max_tokens, progress=progress,
                        say=log or (lambda _m: None), client=client)
    ctx.report.update({
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "target": {"description": target.description, "kind": target.kind,
                   "context": target.context},
        "dictionary": d.to_dict(), "budget_s": budget_s, "effort": effort, "seed": seed,
        "version": __version__,
    })
    for section in REPORT_SECTIONS:  # the exact parts, to completion
        if section.build is not None:
            ctx.run(section, section.build)
    budget.charge_exact_parts()  # the budgeted parts share what is left of B
    for section in sorted((s for s in REPORT_SECTIONS if s.search is not None),
                          key=lambda s: s.last):
        ctx.run(section, section.search)
    report = ctx.report
    head = ("schema", "created", "target", "dictionary", "budget_s", "seed", "version")
    report = {**{k: report[k] for k in head}, **{s.key: report[s.key] for s in REPORT_SECTIONS
                                                if s.computes and s.key in report}, **report}
    report["not_computed"] = ctx.notes
    ctx.seconds["total"] = time.perf_counter() - t_all
    report["search_budget"] = budget.to_dict()
    made_here = target.kind == "experiment"  # the default run: harvested and trained here
    report["reproducibility"] = reproducibility_section(report, trained_here=made_here,
                                                        harvested_here=made_here)
    report["seconds"] = ctx.seconds
    report["verdict"] = verdict(report)
    from rip_atoms.report.answer import answer_block

    report["answer"] = answer_block(report)
    # report.proof; checks itself
    attach_proof(report, ctx.whitened, d, ctx.metric, ctx.codes_cert)
    return report


# ------------------------------------------------------------------------ the sections' builds
def metric_section(ctx: ReportContext) -> dict:
    """The analysis metric (:func:`_metric_choice`)."""
    ctx.metric, ctx.metric_key, reading = _metric_choice(ctx.target, ctx.notes)
    return {"key": ctx.metric_key, "reading": reading,
            "detail": None if ctx.metric is None else ctx.metric.to_dict()}


def shift_section(ctx: ReportContext) -> dict:
    """The representation shift: all pairwise cosines of sampled activations, Euclidean and
    of W x (W = S̃^½), when the metric was fitted on activations."""
    X, metric, seed = ctx.activations, ctx.metric, ctx.seed
    if X is None or metric is None or ctx.metric_key != "activations":
        return {"computed": False,
                "why": "needs activations (--acts, or a model to harvest from): the shift is a "
                       "property of the activations, not of the dictionary"}
    ctx.say("representation shift: pairwise cosines of activations, raw and AIP")
    shift = representation_shift(X, metric, seed=seed)
    return {
        "computed": True, **shift.to_dict(),
        "method": f"all pairwise cosines of {shift.n_vectors} sampled activations "
                  f"(seed {seed}), Euclidean and of W x (W = S̃^½)",
        "reading": "raw cosines centred away from 0 (angles away from 90°) are the "
                   "representation shift; the AIP cosines show what the metric makes of it",
        "aip_angle_note": _aip_angle_note(shift, ctx.dictionary.dim, ctx.target),
    }


def coherence_sections(ctx: ReportContext) -> dict:
    """Coherence and Babel, raw and under the AIP: one pass per geometry."""
    d, metric, H = ctx.dictionary, ctx.metric, ctx.dictionary.dim
    live = ctx.live = len(d.live_atoms)
    if live < 2:
        raise ParameterError(f"{d.provenance.source}: fewer than two live atoms ({live})")
    babel_p = ctx.babel_p = int(min(max(ctx.rip_ks), live - 1))
    # one pass per geometry: the AIP pass also serves rip_bounds (Babel to max k − 1, its top
    # pairs) and spark_bounds (Babel as deep as the spark bound can use, up to H + 1 ≤ 256,
    # for dictionaries of at most DEEP_PASS_MAX_ATOMS atoms)
    from rip_atoms.rip import DEEP_PASS_MAX_ATOMS

    deep = live <= DEEP_PASS_MAX_ATOMS
    babel_aip = int(min(max(babel_p, min(H + 1, 256) if deep else 0), live - 1))
    top_aip = 256 if deep else 64
    ctx.say("coherence and Babel, raw and under the AIP")
    # D̃ under the analysis metric, whitened once for the whole report: float64 rows for the
    # certificates (codes, margins, probe) and those rows rounded to float32 for the blocked
    # AIP pass, RIP and spark (with one spectral-norm bound); built after the raw pass (whose
    # own rows are freed by then) unless it is the raw geometry itself
    whitened = CorrectedAtoms(d, None, rows=True, rows64=True, min_live=0) if metric is None \
        else None
    t_raw = time.perf_counter()
    coh_raw = coherence(d, None, babel_p=babel_p if metric is not None else babel_aip,
                        top=64 if metric is not None else top_aip, progress=ctx.progress,
                        client=ctx.client, corrected_atoms=whitened)
    ctx.raw_pass_s = time.perf_counter() - t_raw  # what a Gram pass of this shape costs here
    if whitened is None:
        whitened = CorrectedAtoms(d, metric, rows=True, rows64=True, min_live=0)
    coh_aip = coherence(d, metric, babel_p=babel_aip, top=top_aip, progress=ctx.progress,
                        client=ctx.client, corrected_atoms=whitened) \
        if metric is not None else coh_raw
    ctx.whitened, ctx.coh_raw, ctx.coh_aip = whitened, coh_raw, coh_aip
    return {"raw": _coherence_section(coh_raw, babel_p=babel_p),
            "aip": _coherence_section(coh_aip, babel_p=babel_p),
            "aip_is_raw": metric is None}


def recovery_section(ctx: ReportContext) -> dict:
    """The exact part of the ℓ1 section: the target's codes on the activations and their
    certification (:func:`rip_atoms.report.l1_section.codes_section`)."""
    X, target = ctx.activations, ctx.target
    if X is not None and target.unit is not None:
        ctx.say("codes of the target on the activations")
        ctx.codes = target.unit.codes_for(X, np.arange(X.shape[0]))
        ctx.l0 = np.diff(ctx.codes.indptr)
    codes = ctx.codes
    ctx.nonneg = target.nonneg if target.nonneg is not None else bool(
        codes is None or codes.nnz == 0 or codes.data.min() >= 0)
    out, ctx.codes_cert = codes_section(ctx)
    return out


def criteria_section(ctx: ReportContext) -> dict:
    """The neurons / features / atoms table (:func:`_criteria_section`)."""
    return _criteria_section(ctx.target, ctx.metric, ctx.seed, ctx.l1_max_tokens, ctx.say,
                             ctx.coh_aip, ctx.codes_cert)


def cards_with_proxy(ctx: ReportContext) -> dict:
    """The atom cards, and the monosemanticity proxy column of the criteria table."""
    from rip_atoms.report.cards import cards_section, proxy_section

    out = cards_section(ctx.target, ctx.codes, ctx.report, ctx.seed, ctx.say)
    if ctx.report["criteria"]["computed"]:
        ctx.report["criteria"]["proxy"] = proxy_section(ctx.target, ctx.activations, ctx.codes)
    return out


def tsae_section(ctx: ReportContext) -> dict:
    """The TSAE threshold window (:func:`_tsae_section`)."""
    return _tsae_section(ctx.target, ctx.metric, ctx.say)


def rip_section(ctx: ReportContext) -> dict:
    """RIP brackets at the sparsities of ``rip_ks`` up to min(H/2, N_live), within the part
    ``"rip"`` of the budget (the search's set-up included: it counts from its call)."""
    from rip_atoms.rip import rip_bounds

    d, H, live = ctx.dictionary, ctx.dictionary.dim, ctx.live
    kmax = min(H // 2, live)  # beyond H/2 the brackets say little and the search is slow
    ks = sorted({k for k in ctx.rip_ks if 2 <= k <= kmax})
    with ctx.budget.part("rip") as deadline:
        if not ks:
            return {"computed": False, "why": f"min(H/2, N_live) = {kmax} < 2"}
        ctx.say(f"RIP brackets for k = {ks} ({_budget_words(deadline)} of search)")
        rip = rip_bounds(d, ks, ctx.metric_arg, **deadline.search_arguments(),
                         seed=ctx.seed, drop_dead=True, progress=ctx.progress,
                         coherence_result=ctx.coh_aip, corrected_atoms=ctx.whitened)
        deadline.count(rip.budget)
    return {
        "computed": True, **rip.to_dict(),
        "method": "lower sides: float64 eigenvalues of witness supports found by greedy "
                  "growth and swap search (re-check with rip-atoms witness); upper sides: "
                  "Babel, spectral norm, monotonicity, SDP or enumeration (see methods)",
        "reading": "δ_k ∈ [delta_lower, delta_upper]: (1 − δ_k)‖x‖² ≤ ‖D̃x‖² ≤ "
                   "(1 + δ_k)‖x‖² for all k-sparse x. δ_2k < √2 − 1 would certify ℓ1 "
                   "recovery of every k-sparse code; a lower side above it rules that "
                   "route out",
    }


def spark_section(ctx: ReportContext) -> dict:
    """Spark bounds within the part ``"spark"`` of the budget."""
    from rip_atoms.spark import spark_bounds

    ctx.say("spark bounds")
    with ctx.budget.part("spark") as deadline:
        spark = spark_bounds(ctx.dictionary, ctx.metric_arg, **deadline.search_arguments(),
                             seed=ctx.seed, drop_dead=True, progress=ctx.progress,
                             coherence_result=ctx.coh_aip, corrected_atoms=ctx.whitened)
        deadline.count(spark.budget)
    ctx.spark = spark
    return {
        "computed": True, **spark.to_dict(),
        "reading": "spark = size of the smallest linearly dependent set of atoms; every code "
                   "with fewer than spark/2 non-zeros is the unique sparsest representation. "
                   "[lower, upper] is proven: the upper witness's null vector re-checks in "
                   "float64 (residual ≤ proof_rtol); upper_within_precision is a set dependent "
                   "only within the precision the atoms arrived in (σ_min/σ_max ≤ rank_rtol), "
                   "which proves nothing",
    }


def uniqueness_section(ctx: ReportContext) -> dict:
    """What the spark bracket and the coherence certify of the target's codes."""
    spark, l0 = ctx.spark, ctx.l0
    k_mu = ctx.report["coherence"]["aip"]["certified_K"]
    uniq: dict = {"unique_up_to": spark.unique_up_to, "statement": spark.statement,
                  "certified_K_coherence": k_mu}
    if l0 is not None and l0.size:
        uniq["codes_within_uniqueness"] = float(np.mean(l0 <= spark.unique_up_to))
        uniq["codes_within_coherence_guarantee"] = float(np.mean(l0 <= k_mu))
        uniq["code_l0_quantiles"] = {str(q): float(v) for q, v in
                                    zip((0.5, 0.9, 0.99, 1.0),
                                        np.quantile(l0, (0.5, 0.9, 0.99, 1.0)), strict=True)}
        uniq["reading"] = ("codes_within_uniqueness: fraction of the target's codes on the "
                           "activations whose L0 is below spark/2 (unique by the spark bound)")
    return uniq


def recovery_search(ctx: ReportContext) -> None:
    """The budgeted part of the ℓ1 section (:func:`rip_atoms.report.l1_section.
    recovery_searches`), added to ``report["recovery"]`` with the section's seconds."""
    out = ctx.report["recovery"]
    recovery_searches(out, ctx)
    out["seconds"] = ctx.seconds["recovery"] + ctx.section_seconds()


def reference_section(ctx: ReportContext) -> dict:
    """The Gaussian reference (:func:`_reference_section`), last: it gets what is left."""
    return _reference_section(ctx)


def _aip_angle_note(shift, H: int, target: VerifyTarget) -> dict:
    """(b) What whitening guarantees about the AIP angles and what it does not.

    With W = S̃^½, S̃ = Σ⁻¹, Σ = E[xxᵀ] = C + m mᵀ on the fitting tokens, E[(Wx)(Wx)ᵀ] = I, so for
    independent x, x' E⟨Wx, Wx'⟩ = ‖Wm‖² = mᵀΣ⁻¹m < 1 while E‖Wx‖² = H: the mean AIP cosine is
    about mᵀΣ⁻¹m / H < 1/H, an angle within arccos(1/H) of 90° by construction. Not guaranteed:
    the spread (isotropic random vectors have cosine std ≈ 1/√H) and the angles on tokens the
    metric was not fitted on."""
    aip = shift.to_dict()["aip"]
    iso = 1.0 / math.sqrt(H)
    held_out = target.metric is not None  # the metric came with the target: fitted elsewhere
    return {
        "guaranteed": (f"mean AIP angle ≈ 90° is close to guaranteed: whitening by the inverse "
                       f"second moment makes E[(Wx)(Wx)ᵀ] = I, so the mean cosine of independent "
                       f"fitting tokens is mᵀΣ⁻¹m/H < 1/H (angle within "
                       f"{90 - math.degrees(math.acos(1 / H)):.3f}° of 90°)"),
        "aip_std": aip["std"], "isotropic_std": iso, "std_ratio": aip["std"] / iso,
        "evaluated_on_held_out": held_out,
        "not_guaranteed": (f"the spread: AIP cosine std {aip['std']:.4f} vs {iso:.4f} for "
                           f"isotropic random vectors in R^{H} (ratio {aip['std'] / iso:.2f}); "
                           + ("and these are held-out tokens the metric was not fitted on "
                              f"(mean AIP angle {aip['mean_angle_deg']:.2f}°)" if held_out else
                              "the metric was fitted on these same tokens")),
    }


def _reference_section(ctx: ReportContext) -> dict:
    """The Gaussian reference: the Welch bound, the Cai–Jiang law of μ (closed forms, always)
    and one sampled Gaussian dictionary of the same shape — a Gram-sized pass, so it is
    budgeted (the part ``"reference"``): it runs only when its estimated cost (the report's own
    raw pass, plus sampling) fits its grant, and below :data:`GAUSSIAN_MAX_ENTRIES` entries."""
    H, live = ctx.dictionary.dim, ctx.live
    ref: dict = {"welch_bound": theory.welch_bound(H, live)}
    ref["gaussian_closed_form"] = theory.gaussian_coherence(H, live).to_dict() if live >= 3 \
        else None
    ref["gaussian_closed_form_reading"] = (
        "Cai–Jiang limiting law of μ for N iid Gaussian atoms in R^H (the 5 %, 50 %, 95 % "
        "quantiles): what 'as incoherent as random' means at this shape")
    with ctx.budget.part("reference") as deadline:
        ref["gaussian_dictionary"] = _gaussian_reference(ctx, deadline)
    return ref


def _gaussian_reference(ctx: ReportContext, deadline: Deadline) -> dict:
    """One sampled Gaussian dictionary of the report's shape, when it fits ``deadline``."""
    H, live = ctx.dictionary.dim, ctx.live
    if deadline.deterministic:  # the pass's operation count at the nominal rate, in units
        units = max(1, math.ceil(H * live * live * PROJECTOR_SECONDS_PER_FLOP / UNIT_S))
        fits, cost = units <= deadline.effort, f"{units} units of effort"
        left = f"{deadline.effort} units left of --effort"
    else:
        estimate = 1.2 * ctx.raw_pass_s
        fits = estimate <= deadline.budget_s
        cost = f"≈ {estimate:.1f} s, from this report's raw pass"
        left = f"{deadline.budget_s:.1f} s left of --budget-s"
    if H * live > GAUSSIAN_MAX_ENTRIES:
        return {"computed": False, "why": f"H·N = {H * live} > {GAUSSIAN_MAX_ENTRIES}: "
                                          "the closed form stands in"}
    if not fits:
        return {"computed": False,
                "why": f"budget: one more Gram pass ({cost}) does not fit the {left}; the closed "
                       "form stands in"}
    from rip_atoms.synthetic import gaussian_dictionary

    ctx.say(f"Gaussian reference dictionary {H}×{live}")
    g = gaussian_dictionary(H, live, seed=ctx.seed)
    gres = coherence(g, None, babel_p=ctx.babel_p, top=1, progress=ctx.progress)
    out = {
        "computed": True, "seed": ctx.seed, "shape": [H, live], "mu": gres.mu,
        "babel": gres.babel.tolist(), "babel_upper": gres.babel_upper.tolist(),
        "per_atom_quantiles": {str(q): v for q, v in gres.per_atom_quantiles.items()},
        "per_atom_histogram": _histogram(gres.per_atom, PER_ATOM_BINS, 0.0, 1.0),
        "method": "one sampled dictionary with iid N(0, 1) entries and unit columns, raw "
                  "cosines (a Gaussian dictionary is isotropic: its AIP and raw "
                  "geometries agree up to sampling)",
    }
    if deadline.deterministic:
        out["budget"] = {"kind": "effort", "used": units}
        deadline.count(out["budget"])
    return out


def _budget_words(deadline: Deadline) -> str:
    """A part's grant (:meth:`SearchBudget.part`) in words, for the progress log."""
    if deadline.deterministic:
        return f"{deadline.effort} units"
    return f"{deadline.budget_s:.1f} s"


def _criteria_section(target: VerifyTarget, metric, seed, l1_max_tokens, say,
                      coh_aip: CoherenceResult | None = None, codes_cert=None) -> dict:
    from rip_atoms.criteria import compare_units, token_split

    if target.table is not None:
        tab = target.table
        out = {"computed": True, "source": "the experiment's table",
               **tab.to_dict(detail=False), "rendered": tab.render()}
        if target.split_description:  # the table's own split wording describes its layout
            old = out["split"].get("description", "")
            out["split"] = {**out["split"], "description": target.split_description}
            if old:
                out["rendered"] = out["rendered"].replace(old, target.split_description)
        return out
    X = target.activations
    if X is None or target.unit is None:
        why = ("needs activations (--acts) and the target's codes (an SAE with an encoder, or "
               "codes): R², q* and the ℓ1-certified fraction are properties of units on data")
        if X is not None:
            why = ("the target has no encoder or codes (a plain matrix): R², q* and the "
                   "ℓ1-certified fraction need codes; pass an SAE")
        return {"computed": False, "why": why}
    if metric is None:
        return {"computed": False, "why": "no AIP metric (singular second moment)"}
    say("criteria table: neurons and the target on the activations")
    n = X.shape[0]
    split = token_split(n, mode="all")
    units = {target.unit.name: target.unit, **target.extra_units}
    # the target's per-atom μⱼ come from the report's AIP pass when it covers them (same atoms
    # and metric): the Gram is computed once per report; and its ℓ1 test is the ℓ1 section's
    # certification of the same sampled codes under the same metric (reused when the sampled
    # tokens and the sign constraint match)
    tab = compare_units(X, units, metric=metric, split=split, l1_max_tokens=l1_max_tokens,
                        seed=seed, log=say, coherence_results={target.unit.name: coh_aip},
                        l1_results={target.unit.name: codes_cert} if codes_cert is not None
                        and _same_atoms(target.unit.decoder, target.dictionary) else None)
    out = {"computed": True, "source": "computed on the activations given",
           **tab.to_dict(detail=False), "rendered": tab.render()}
    if target.metric is not None:  # the metric came with the target, fitted on other tokens
        desc = (f"{n} evaluated tokens ({target.activations_source or 'activations'}); the "
                f"metric was fitted on other tokens ({metric.source})")
        out["split"] = {**out["split"], "description": desc}
        out["rendered"] = out["rendered"].replace(split.describe(), desc)
    return out


def _same_atoms(a: Dictionary, b: Dictionary) -> bool:
    """Are two dictionaries the same atoms (the same object, or equal arrays)?"""
    return a is b or (a.atoms.shape == b.atoms.shape and np.array_equal(a.atoms, b.atoms))


def _tsae_section(target: VerifyTarget, metric, say) -> dict:
    if target.thresholds is None:
        return {"computed": False, "why": "the target has no thresholds (not a TSAE / "
                "JumpReLU SAE)"}
    if target.activations is None or target.unit is None:
        return {"computed": False, "why": "the window needs the code magnitudes: give "
                "activations (--acts)"}
    from rip_atoms.corrected_atoms import CorrectedAtoms
    from rip_atoms.criteria import atom_set_check, check_thresholds

    say("TSAE threshold window")
    X = target.activations
    rows = np.arange(min(X.shape[0], 4096))
    chk = atom_set_check(X, target.unit, metric=metric, rows=rows)
    out: dict = {"computed": True, "atom_set": chk.to_dict()}
    if chk.window is None:
        out["check"] = None
        out["why_no_window"] = "no non-zero codes on the tokens checked"
        return out
    norms = CorrectedAtoms(target.unit.decoder, metric, rows=False).norms
    res = check_thresholds(target.thresholds, chk.window, atom_norms=norms)
    out["check"] = res.to_dict()
    out["reading"] = ("window εKδ_max < τ < δ_min − ε(K−1)δ_max at ε = μ (AIP), K = max L0 "
                      "and [δ_min, δ_max] the range of AIP-normalised code magnitudes on the "
                      "tokens checked; thresholds τⱼ·‖dⱼ‖_S inside it make the TSAE encoder "
                      "identify the support exactly (the paper's TSAE identifiability theorem)")
    return out


def verdict(report: dict) -> list[str]:
    """A few plain sentences: what the numbers say."""
    lines: list[str] = []
    c = report["coherence"]["aip"]
    ref = report["reference"]
    g = ref.get("gaussian_closed_form")
    where = (f"; a Gaussian dictionary of this shape has μ ≈ {g['mean']:.3f}" if g else "")
    if c["certified_K"] == 0 and c["babel_certified_K"] == 0:
        says = ("coherence and Babel certify nothing (the certified upper bound on μ is "
                f"{c.get('mu_upper', c['mu']):.6g}: not even 1-sparse codes are certified)")
    else:
        says = (f"coherence certifies K ≤ {c['certified_K']}, Babel K ≤ "
                f"{c['babel_certified_K']}")
    lines.append(f"AIP coherence μ = {c['mu']:.4f} (Welch bound {ref['welch_bound']:.4f}"
                 f"{where}); {says}.")
    d = report["dictionary"]
    if d["dead_atoms"]:
        lines.append(f"{len(d['dead_atoms'])} dead (zero) atom(s), e.g. {d['dead_atoms'][0]}: "
                     "left out of RIP, spark and recovery (alone, a zero atom has spark 1).")
    dup = report["coherence"]["aip"]["duplicate_pairs"]
    if dup:
        lines.append(f"{len(dup)} duplicate pair(s) (|cos| ≥ 1 − 1e-6), e.g. atoms {dup[0][0]} "
                     f"and {dup[0][1]}: counted as parallel by the coherence and spark lower "
                     "bounds (no K certified from μ); codes using them are decided by exact "
                     "certificates and float64 witnesses only.")
    lines.append(_spark_verdict(report["spark"]))
    rip = report.get("rip", {})
    if rip.get("computed"):
        thr = math.sqrt(2) - 1
        good = [b["k"] // 2 for b in rip["brackets"] if b["delta_upper"] < thr]
        bad = [b for b in rip["brackets"] if b["delta_lower"] >= thr]
        msg = (f"RIP: δ_2k < √2 − 1 certifies every k-sparse code for k ≤ {max(good)}"
               if good else "RIP: no δ_2k is certified below √2 − 1")
        if bad:
            msg += (f"; a witness support shows δ_{bad[0]['k']} ≥ {bad[0]['delta_lower']:.3f}"
                    f", so the RIP route fails from k = {bad[0]['k'] // 2} on")
        lines.append(msg + ".")
    rec = report["recovery"]
    if rec["codes"].get("computed"):
        cc = rec["codes"]
        lines.append(f"ℓ1: {cc['certified']} of {cc['n_tokens']} sampled codes certified "
                     f"uniquely recovered, {cc['failed']} failed, {cc['undetermined']} "
                     "undetermined.")
    crit = report["criteria"]
    if crit.get("computed"):
        for r in crit["rows"]:
            lines.append(f"{r['name']}: R² AIP {r['r2_aip']:.3f}, q*_quantile "
                         f"{r['q_star_quantile']:.3f}, mean L0 {r['mean_l0']:.1f}.")
    return lines


def _spark_verdict(sp_: dict) -> str:
    """The spark sentence: the proven bracket, what it certifies, and a side dependent only
    within the input's precision said as such (never as "uniqueness fails")."""
    u = _num(sp_["unique_up_to"])
    if sp_["lower"] is None or (isinstance(sp_["lower"], float) and math.isinf(sp_["lower"])):
        return ("the live atoms are linearly independent (spark = ∞): every code is the "
                "unique representation of its signal.")
    head = f"spark ∈ [{_num(sp_['lower'])}, {_num(sp_['upper'])}]"
    if u == "0":
        says = "the spark certifies uniqueness for no code"
        if sp_["upper"] == 2:
            says += " (a pair of atoms is dependent in float64)"
    else:
        says = f"codes with at most {u} non-zero{'' if u == '1' else 's'} are unique"
    within = sp_.get("upper_within_precision")
    if within is not None and within < sp_["upper"]:
        says += (f"; {_num(within)} atoms are dependent within the input's precision "
                 f"({sp_.get('precision', 'input')}) but not in float64")
    return f"{head}: {says}."


def _num(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "∞"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)
