"""The report's sections about the dictionary itself: the metric, the representation shift,
coherence and Babel with the Gaussian reference, the RIP brackets, spark and uniqueness — each
one's build (or budgeted search), HTML body and summary lines (registered in
:data:`rip_atoms.report.sections.REPORT_SECTIONS`)."""

from __future__ import annotations

import json
import math
import time

import numpy as np

from rip_atoms import theory
from rip_atoms.coherence import CoherenceResult, coherence
from rip_atoms.deadline import UNIT_S, Deadline
from rip_atoms.errors import ParameterError, SingularMetricError
from rip_atoms.geometry import Geometry
from rip_atoms.metric import AIPMetric, fit_metric, representation_shift
from rip_atoms.recovery.problem import PROJECTOR_SECONDS_PER_FLOP
from rip_atoms.report.context import ReportContext, VerifyTarget
from rip_atoms.report.markup import escape as _e
from rip_atoms.report.markup import figure as _figure
from rip_atoms.report.markup import key_values as _kv
from rip_atoms.report.markup import method as _method
from rip_atoms.report.markup import missing as _missing
from rip_atoms.report.markup import table as _table
from rip_atoms.theory import babel_certified_k

#: per-atom coherence histogram: bins over [0, 1]
PER_ATOM_BINS = 50
#: the sampled Gaussian reference is skipped above this many entries H·N
GAUSSIAN_MAX_ENTRIES = 2304 * 32768


# ------------------------------------------------------------------------------- builds
def metric_section(ctx: ReportContext) -> dict:
    """The analysis metric (:func:`_metric_choice`)."""
    ctx.metric, ctx.metric_key, reading = _metric_choice(ctx.target, ctx.notes)
    return {"key": ctx.metric_key, "reading": reading,
            "detail": None if ctx.metric is None else ctx.metric.to_dict()}


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
    geom = Geometry(d, metric, shared_rows=True)  # whitened on first use
    t_raw = time.perf_counter()
    coh_raw = coherence(geom if metric is None else Geometry(d, "raw"),
                        babel_p=babel_p if metric is not None else babel_aip,
                        top=64 if metric is not None else top_aip, progress=ctx.progress,
                        client=ctx.client)
    ctx.raw_pass_s = time.perf_counter() - t_raw  # what a Gram pass of this shape costs here
    coh_aip = coherence(geom, babel_p=babel_aip, top=top_aip, progress=ctx.progress,
                        client=ctx.client) if metric is not None else coh_raw
    ctx.geometry, ctx.coh_raw, ctx.coh_aip = geom, coh_raw, coh_aip
    return {"raw": _coherence_section(coh_raw, babel_p=babel_p),
            "aip": _coherence_section(coh_aip, babel_p=babel_p),
            "aip_is_raw": metric is None}


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


def _histogram(values: np.ndarray, bins: int, lo: float, hi: float) -> dict:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(np.clip(v, lo, hi), bins=bins, range=(lo, hi))
    return {"counts": counts.tolist(), "edges": edges.tolist()}


def rip_section(ctx: ReportContext) -> dict:
    """RIP brackets at the sparsities of ``rip_ks`` up to min(H/2, N_live), within the part
    ``"rip"`` of the budget (the search's set-up included: it counts from its call)."""
    from rip_atoms.rip import rip_bounds

    H, live = ctx.dictionary.dim, ctx.live
    kmax = min(H // 2, live)  # beyond H/2 the brackets say little and the search is slow
    ks = sorted({k for k in ctx.rip_ks if 2 <= k <= kmax})
    with ctx.budget.part("rip") as deadline:
        if not ks:
            return {"computed": False, "why": f"min(H/2, N_live) = {kmax} < 2"}
        ctx.say(f"RIP brackets for k = {ks} ({_budget_words(deadline)} of search)")
        rip = rip_bounds(ctx.geometry, ks, **deadline.search_arguments(),
                         seed=ctx.seed, drop_dead=True, progress=ctx.progress)
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


def _budget_words(deadline: Deadline) -> str:
    """A part's grant (:meth:`SearchBudget.part`) in words, for the progress log."""
    if deadline.deterministic:
        return f"{deadline.effort} units"
    return f"{deadline.budget_s:.1f} s"


def spark_section(ctx: ReportContext) -> dict:
    """Spark bounds within the part ``"spark"`` of the budget."""
    from rip_atoms.spark import spark_bounds

    ctx.say("spark bounds")
    with ctx.budget.part("spark") as deadline:
        spark = spark_bounds(ctx.geometry, **deadline.search_arguments(),
                             seed=ctx.seed, drop_dead=True, progress=ctx.progress)
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


def reference_section(ctx: ReportContext) -> dict:
    """The Gaussian reference (:func:`_reference_section`), last: it gets what is left."""
    return _reference_section(ctx)


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


# ------------------------------------------------------------------------- HTML and text
def shift_html(report: dict, figures: dict[str, str]) -> str:
    s = report["representation_shift"]
    if not s.get("computed"):
        return _missing(s["why"])
    body = _table(["", "mean cos", "std", "mean angle (°)"], [
        ["raw", s["raw"]["mean"], s["raw"]["std"], s["raw"]["mean_angle_deg"]],
        ["AIP", s["aip"]["mean"], s["aip"]["std"], s["aip"]["mean_angle_deg"]],
    ]) + _figure(figures, "shift") + _method(s["method"]) + _method(s["reading"])
    note = s.get("aip_angle_note")
    if note:
        body += (f"<p><b>What the metric guarantees:</b> {_e(note['guaranteed'])}. <b>What "
                 f"it does not:</b> {_e(note['not_guaranteed'])}.</p>")
    return body


def coherence_html(report: dict, figures: dict[str, str]) -> str:
    c = report["coherence"]
    ref = report["reference"]
    gd = ref.get("gaussian_dictionary", {})
    cf = ref.get("gaussian_closed_form") or {}
    top = c["aip"]["top_pairs"][:8]
    body = _table(["geometry", "μ", "μ certified ≤", "pair", "median μⱼ", "Welch",
                   "certified K (μ)",
                   "certified K (Babel)", "duplicates"], _coherence_rows(c))
    body += _table(["reference", "μ"], [
        ["Welch bound √((N−H)/(H(N−1)))", ref["welch_bound"]],
        ["Gaussian, Cai–Jiang closed form (mean)", cf.get("mean")],
        [f"Gaussian dictionary sampled (seed {gd.get('seed', '—')})", gd.get("mu")],
    ])
    body += "<p>Most coherent AIP pairs (witnesses: atom indices as given):</p>"
    body += _table(["i", "j", "|cos|"], [[int(i), int(j), v] for i, j, v in top])
    body += _figure(figures, "pair_cosines") + _figure(figures, "per_atom")
    return body + _method(c["aip"]["method"]) + _method(c["aip"]["reading"])


def _coherence_rows(c: dict) -> list[list]:
    rows = []
    for name, key in (("raw (Euclidean)", "raw"), ("AIP", "aip")):
        r = c[key]
        q = r["per_atom_quantiles"]
        rows.append([name, r["mu"], r.get("mu_upper"), f"{r['pair'][0]}–{r['pair'][1]}",
                     q.get("0.5"), r["welch_bound"], r["certified_K"], r["babel_certified_K"],
                     len(r["duplicate_pairs"])])
    return rows


def babel_html(report: dict, figures: dict[str, str]) -> str:
    aip = report["coherence"]["aip"]
    ks = [1, 2, 4, 8, 16, 32, 64]
    rows = [[k, aip["babel"][k - 1], aip["babel_upper"][k - 1], aip["babel_rows"][k - 1]]
            for k in ks if k <= len(aip["babel"])]
    body = _table(["k", "μ₁(k) attained", "μ₁(k) certified upper", "row attaining"], rows)
    body += _figure(figures, "babel")
    return body + _method("μ₁(k) = maxⱼ max_{|Λ|=k, j∉Λ} Σ_{i∈Λ} |⟨d̃ᵢ, d̃ⱼ⟩|; the attained "
                          "value is exact for the row named; the upper value is certified for "
                          "every row.")


def rip_html(report: dict, figures: dict[str, str]) -> str:
    r = report["rip"]
    if not r.get("computed"):
        return _missing(r["why"])
    rows = [[b["k"], b["delta_lower"], b["delta_upper"], b["U_lower"], b["U_upper"],
             b["L_lower"], b["L_upper"], b["search"],
             " ".join(str(i) for i in b["witness_U"][:12])
             + (" …" if len(b["witness_U"]) > 12 else "")] for b in r["brackets"]]
    body = _table(["k", "δ_k ≥", "δ_k ≤", "U_k ≥", "U_k ≤", "L_k ≥", "L_k ≤", "search",
                   "witness of U_k"], rows)
    body += _figure(figures, "rip") + _method(r["method"]) + _method(r["reading"])
    meth = {b["k"]: b["methods"] for b in r["brackets"]}
    return body + "<details><summary>methods per k</summary><pre>" + _e(
        json.dumps(meth, indent=1, ensure_ascii=False)) + "</pre></details>"


def spark_html(report: dict, figures: dict[str, str]) -> str:
    sp_ = report["spark"]
    u = report["uniqueness"]
    rows = [["spark lower", sp_["lower"]], ["spark upper", sp_["upper"]],
            ["exact", sp_["exact"]], ["unique up to K", sp_["unique_up_to"]],
            ["lower method", sp_["methods"].get("lower", "—")],
            ["upper method", sp_["methods"].get("upper", "—")],
            ["witness circuit", " ".join(str(i) for i in (sp_["witness"] or [])[:20]) or "—"],
            ["witness residual", sp_["residual"]]]
    if sp_.get("upper_within_precision", sp_["upper"]) < sp_["upper"]:
        rows += [[f"dependent within the input's precision ({sp_.get('precision')}), not "
                  "proven", sp_["upper_within_precision"]],
                 ["its method", sp_["methods"].get("upper_within_precision", "—")],
                 ["its circuit", " ".join(str(i) for i in
                                          (sp_["witness_within_precision"] or [])[:20])],
                 ["its residual", sp_["residual_within_precision"]]]
    if "codes_within_uniqueness" in u:
        rows.append(["codes with L0 ≤ unique-up-to", u["codes_within_uniqueness"]])
        rows.append(["codes with L0 ≤ certified K (μ)", u["codes_within_coherence_guarantee"]])
    return _kv(rows) + f"<p>{_e(sp_['statement'])}</p>" + _method(sp_["reading"])


def shift_text(report: dict) -> list[str]:
    s = report["representation_shift"]
    if not s.get("computed"):
        return []
    return [f"  representation shift: raw mean angle {s['raw']['mean_angle_deg']:.1f}°"
            f", AIP {s['aip']['mean_angle_deg']:.1f}° ({s['n_vectors']} activations)"]


def coherence_text(report: dict) -> list[str]:
    c = report["coherence"]
    return [f"  coherence: raw μ = {c['raw']['mu']:.4f}, AIP μ = {c['aip']['mu']:.4f} "
            f"(pair {c['aip']['pair'][0]}–{c['aip']['pair'][1]}), Welch "
            f"{report['reference']['welch_bound']:.4f}"]
