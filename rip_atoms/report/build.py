"""Compute every section of a verification report (the numbers; :mod:`.figures` draws them).

The report is a plain JSON-ready dict: each section says whether it was computed, the method of
every number, how to read it, and a witness a user can re-check (supports, pairs, circuits).
Where a section needs an input the target does not provide (activations, an encoder or codes,
thresholds), the section says so and why, instead of guessing.

Inputs (:class:`VerifyTarget`): a dictionary D ∈ R^{H×N} (columns are atoms) and optionally
held-out activations X (n×H, rows are tokens), the AIP metric S̃ (default: Σ⁻¹ fitted on X when
X is given, else the self metric (D Dᵀ)⁻¹, else raw), the target as a unit set (an encoder or
codes, for R², q*, the ℓ1-certified fraction and the code L0s), TSAE thresholds τ, and a
precomputed neurons / features / atoms table (:class:`rip_atoms.report.context.VerifyTarget`).

:func:`build_report` runs the sections of :data:`rip_atoms.report.sections.REPORT_SECTIONS`
over one :class:`rip_atoms.report.context.ReportContext`: their builds (the exact parts), then
their budgeted searches, then the verdict, the answer and the proof over the results.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable

from rip_atoms.errors import ParameterError, ShapeMismatchError
from rip_atoms.kernels.threads import with_fixed_thread_sums
from rip_atoms.report.budget import DEFAULT_BUDGET_S, SearchBudget
from rip_atoms.report.context import ReportContext, VerifyTarget
from rip_atoms.report.reproducibility import reproducibility_section
from rip_atoms.report.sections import REPORT_SECTIONS
from rip_atoms.report.self_check import attach_proof
from rip_atoms.theory import babel_certified_k

__all__ = ["RIP_KS", "SCHEMA", "VerifyTarget", "babel_certified_k", "build_report", "verdict"]

SCHEMA = "rip_atoms.report/1"
#: the sparsities at which the RIP constants are bracketed (those ≤ min(H, N_live))
RIP_KS = (2, 4, 8, 16, 32, 64)


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
    attach_proof(report, ctx.geometry.atoms(rows64=True, min_live=0), d, ctx.metric,
                 ctx.codes_cert)
    return report


# ------------------------------------------------------------------------ the sections' builds


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
