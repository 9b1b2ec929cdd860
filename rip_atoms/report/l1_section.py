"""The ℓ1 section of the verification report: the certification of the target's codes (exact,
run first) and the budgeted searches around it (the uniqueness margins of some certified codes,
the probe of random supports around the Donoho–Tanner weak threshold k_W), its HTML body and
its summary line (the ``recovery`` entry of :data:`rip_atoms.report.sections.REPORT_SECTIONS`)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rip_atoms import theory
from rip_atoms.deadline import Deadline
from rip_atoms.report.context import ReportContext
from rip_atoms.report.markup import figure as _figure
from rip_atoms.report.markup import method as _method
from rip_atoms.report.markup import missing as _missing
from rip_atoms.report.markup import table as _table

#: the probe of ℓ1 recovery: sparsities as fractions of the Donoho–Tanner k_W, codes per k
PROBE_FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
PROBE_CODES = 8
#: the uniqueness margins (certificates driven to the LP optimum): at most this many of the
#: sampled codes
MARGIN_CODES = 32


def codes_section(ctx: ReportContext) -> tuple[dict, object]:
    """The exact part of the ℓ1 section: the Donoho–Tanner reference and the certification of
    (a sample of) the target's codes (``ctx.codes``, under ``ctx.geometry``). Returns
    (section, the certification or None)."""
    from rip_atoms.criteria import l1_certified_fraction

    d, codes, nonneg, live, l1_max_tokens = (ctx.dictionary, ctx.codes, ctx.nonneg, ctx.live,
                                             ctx.l1_max_tokens)
    H = d.dim
    delta = H / live
    out: dict = {"nonneg": nonneg}
    if delta < 1:
        out["rho_weak"] = theory.rho_weak(delta, nonneg=nonneg)
        out["k_weak"] = theory.k_weak(H, live, nonneg=nonneg)
    else:
        out["rho_weak"] = None
        out["k_weak"] = None
    out["reading"] = ("each code is certified (an exact dual certificate proves it is the "
                      "unique basis-pursuit solution), failed (a feasible x with ‖x‖₁ ≤ ‖δ‖₁, "
                      "x ≠ δ: the witness) or undetermined; k_weak = ρ_W(H/N)·H is the "
                      "Donoho–Tanner weak threshold for Gaussian dictionaries of this shape "
                      f"({'non-negative' if nonneg else 'signed'} codes), a reference line")
    cert = None
    if codes is not None:
        ctx.say(f"ℓ1 recovery of the target's codes (at most {l1_max_tokens} tokens)")
        cert = l1_certified_fraction(ctx.geometry, codes, nonneg=nonneg,
                                     max_tokens=l1_max_tokens, seed=ctx.seed,
                                     progress=ctx.progress, client=ctx.client,
                                     keep_certificates=None)  # y* of all: report.self_check
        code_l0 = ctx.l0[cert.tokens]
        out["codes"] = {"computed": True, **cert.to_dict(),
                        "l0": code_l0.tolist(), "status": cert.status.tolist()}
    else:
        out["codes"] = {"computed": False,
                        "why": "needs activations and an encoder or codes for the target"}
    return out, cert


def recovery_searches(out: dict, ctx: ReportContext) -> None:
    """The budgeted part of the ℓ1 section, added to ``out``: the uniqueness margins of some
    of the certified codes (the part ``"margins"`` of the budget), and the probe of random
    supports around the Donoho–Tanner k_W (the part ``"probe"``)."""
    cert = ctx.codes_cert
    if cert is not None:
        from rip_atoms.recovery.margins import certificate_margins

        ctx.say(f"uniqueness margins: the exact certificate LP on {MARGIN_CODES} of those codes")
        with ctx.budget.part("margins") as deadline:
            lp_limit = {"lp_time_limit": None} if deadline.deterministic else {}
            mres = certificate_margins(ctx.geometry, ctx.codes, nonneg=ctx.nonneg, seed=ctx.seed,
                                       tokens=np.asarray(cert.tokens)[:MARGIN_CODES],
                                       **deadline.search_arguments(), **lp_limit)
            deadline.count(mres.budget)
        out["margins"] = {"computed": True, **mres.to_dict()}
    else:
        ctx.budget.skip("margins")
    with ctx.budget.part("probe") as deadline:
        out["probe"] = _probe(ctx, out["k_weak"], deadline)


def _probe_sparsities(ctx: ReportContext, k_weak) -> list[int]:
    """The probe's sparsities: fractions of k_W (else of min(H, N_live)/4) and the median
    L0 of the target's codes."""
    live, l0 = ctx.live, ctx.l0
    k_ref = k_weak if k_weak else min(ctx.dictionary.dim, live) / 4
    ks = sorted({max(1, min(live, int(round(f * k_ref)))) for f in PROBE_FRACTIONS})
    if ctx.codes is not None and l0.size:
        ks = sorted(set(ks) | {int(max(1, min(live, np.median(l0[l0 > 0]) if
                                              (l0 > 0).any() else 1)))})
    return ks


def _probe(ctx: ReportContext, k_weak, deadline: Deadline) -> dict:
    """Random supports at sparsities around the Donoho–Tanner threshold, classified within
    ``deadline``: a sparsity runs only while what is left of it exceeds what the previous one
    used (larger k cost more)."""
    from rip_atoms.recovery import STATUS_NAMES, classify_recovery

    d, nonneg = ctx.dictionary, ctx.nonneg
    ks = _probe_sparsities(ctx, k_weak)
    rng = np.random.default_rng(ctx.seed)
    live_idx = d.live_atoms
    rows: list[dict] = []
    words = (f"{deadline.effort} units" if deadline.deterministic
             else f"{deadline.budget_s:.1f} s")
    ctx.say(f"ℓ1 probe: {PROBE_CODES} random codes at k = {ks} ({words})")
    lp_limit = None if deadline.deterministic else max(1.0, deadline.budget_s / 10)
    bar = None
    if ctx.progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(ks), desc="ℓ1 probe", unit="k", file=sys.stderr, leave=False)
    last = 0.0  # what the previous sparsity used: units, or seconds
    for k in ks:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(k=k)
        left = deadline.left()
        if not (left > 0 and last <= left and not deadline.cap_hit):
            rows.append({"k": k, "run": False, "why": "budget exhausted"})
            continue
        C = sp.lil_matrix((PROBE_CODES, d.n_atoms))
        for i in range(PROBE_CODES):
            S = rng.choice(live_idx, size=k, replace=False)
            mags = rng.uniform(1.0, 2.0, size=k)
            if not nonneg:
                mags *= rng.choice([-1.0, 1.0], size=k)
            C[i, S] = mags
        res = classify_recovery(ctx.geometry, C.tocsr(), nonneg=nonneg,
                                **deadline.search_arguments(), lp_time_limit=lp_limit)
        deadline.count(res.budget)
        last = res.budget["used"] if deadline.deterministic else res.seconds
        counts = {name: int(np.sum(res.status == s)) for s, name in enumerate(STATUS_NAMES)}
        rows.append({"k": k, "run": True, **counts, "seconds": res.seconds})
    if bar is not None:
        bar.close()
    return {
        "rows": rows, "codes_per_k": PROBE_CODES, "seed": ctx.seed,
        "method": "codes with uniformly random supports of size k on the live atoms, "
                  "magnitudes uniform in [1, 2]" + ("" if nonneg else " with random signs")
                  + ", classified by classify_recovery under the report's metric",
    }


# ----------------------------------------------------------------- the section's entry
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


def recovery_search(ctx: ReportContext) -> None:
    """The budgeted part of the ℓ1 section (:func:`rip_atoms.report.l1_section.
    recovery_searches`), added to ``report["recovery"]`` with the section's seconds."""
    out = ctx.report["recovery"]
    recovery_searches(out, ctx)
    out["seconds"] = ctx.seconds["recovery"] + ctx.section_seconds()


def recovery_html(report: dict, figures: dict[str, str]) -> str:
    rec = report["recovery"]
    rows = [[p["k"], p.get("certified", "—"), p.get("failed", "—"),
             p.get("undetermined", "—"), "run" if p.get("run") else p.get("why", "")]
            for p in rec["probe"]["rows"]]
    body = ""
    cc = rec["codes"]
    if cc.get("computed"):
        body += _table(["target's codes", "sampled", "certified", "failed", "undetermined",
                        "invalid", "value"],
                       [["", cc["n_tokens"], cc["certified"], cc["failed"], cc["undetermined"],
                         cc["invalid"], cc["value"]]])
        body += _margins_html(rec.get("margins"))
    else:
        body += _missing(cc["why"])
    body += "<p>Probe with random codes (k = support size):</p>"
    body += _table(["k", "certified", "failed", "undetermined", ""], rows)
    body += _figure(figures, "recovery") + _method(rec["probe"]["method"])
    return body + _method(rec["reading"])


def _margins_html(m: dict | None) -> str:
    """The uniqueness margins of the sampled codes: the distribution beside the old bound."""
    if not m or not m.get("computed"):
        return ""
    q, b = m.get("margin_quantiles", {}), m.get("certificate_bound_quantiles", {})
    keys = ["0.0", "0.1", "0.5", "0.9", "1.0"]
    body = (f"<p><b>Uniqueness margins</b> of {m['tightened']} of the {m['n_codes']} codes "
            f"(t* &lt; 1 ⇔ unique; {m['below_one']} certified below 1, {m['below_half']} "
            "below 0.5):</p>")
    body += _table(["", "min", "10 %", "median", "90 %", "max"], [
        ["margin (≥ t*, rigorous)", *[q.get(k) for k in keys]],
        ["classifier's bound (rigorous)", *[b.get(k) for k in keys]]])
    body += "<details><summary>per code</summary>" + _table(
        ["token", "L0", "margin", "classifier's bound", "status"],
        [[t, k, mg, cb, st] for t, k, mg, cb, st in zip(
            m["tokens"], m["l0"], m["margin"], m["certificate_bound"], m["status"],
            strict=True)]) + "</details>"
    return body + _method(m["method"]) + _method(m["reading"])


def recovery_text(report: dict) -> list[str]:
    m = report.get("recovery", {}).get("margins")
    if not (m and m.get("computed") and m.get("margin_quantiles")):
        return []
    q, b = m["margin_quantiles"], m.get("certificate_bound_quantiles", {})
    return [f"  uniqueness margin (≥ t*, rigorous) of {m['tightened']} codes: median "
            f"{q['0.5']:.3f}, range [{q['0.0']:.3f}, {q['1.0']:.3f}]; the classifier's "
            f"bound: median {b.get('0.5', float('nan')):.3f}"]
