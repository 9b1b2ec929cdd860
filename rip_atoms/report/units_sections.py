"""The report's sections about the target as units on data: the neurons / features / atoms
table (the criteria), the atom cards and the TSAE threshold window — each one's build, HTML
body and summary lines (registered in :data:`rip_atoms.report.sections.REPORT_SECTIONS`)."""

from __future__ import annotations

import numpy as np

from rip_atoms.geometry import Geometry
from rip_atoms.report.cards_section import render_cards_html
from rip_atoms.report.context import ReportContext, VerifyTarget
from rip_atoms.report.markup import key_values as _kv
from rip_atoms.report.markup import method as _method
from rip_atoms.report.markup import missing as _missing
from rip_atoms.report.markup import number as _fmt
from rip_atoms.report.markup import table as _table


# ------------------------------------------------------------------------------- builds
def criteria_section(ctx: ReportContext) -> dict:
    """The neurons / features / atoms table (:func:`_criteria_section`)."""
    return _criteria_section(ctx.target, ctx.metric, ctx.seed, ctx.l1_max_tokens, ctx.say,
                             ctx.geometry, ctx.codes_cert)


def _criteria_section(target: VerifyTarget, metric, seed, l1_max_tokens, say,
                      geom: Geometry | None = None, codes_cert=None) -> dict:
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
    # the target's per-atom μⱼ come from the report's geometry (its whitening and AIP pass)
    # when it is of the same atoms: the Gram is computed once per report; and its ℓ1 test is
    # the ℓ1 section's certification of the same sampled codes under the same metric (reused
    # when the sampled tokens and the sign constraint match)
    same = geom is not None and geom.is_of(target.unit.decoder)
    tab = compare_units(X, units, metric=metric, split=split, l1_max_tokens=l1_max_tokens,
                        seed=seed, log=say,
                        geometries={target.unit.name: geom} if same else None,
                        l1_results={target.unit.name: codes_cert} if codes_cert is not None
                        and same else None)
    out = {"computed": True, "source": "computed on the activations given",
           **tab.to_dict(detail=False), "rendered": tab.render()}
    if target.metric is not None:  # the metric came with the target, fitted on other tokens
        desc = (f"{n} evaluated tokens ({target.activations_source or 'activations'}); the "
                f"metric was fitted on other tokens ({metric.source})")
        out["split"] = {**out["split"], "description": desc}
        out["rendered"] = out["rendered"].replace(split.describe(), desc)
    return out


def cards_with_proxy(ctx: ReportContext) -> dict:
    """The atom cards, and the monosemanticity proxy column of the criteria table."""
    from rip_atoms.report.cards_section import cards_section, proxy_section

    out = cards_section(ctx.target, ctx.codes, ctx.report, ctx.seed, ctx.say)
    if ctx.report["criteria"]["computed"]:
        ctx.report["criteria"]["proxy"] = proxy_section(ctx.target, ctx.activations, ctx.codes)
    return out


def tsae_section(ctx: ReportContext) -> dict:
    """The TSAE threshold window (:func:`_tsae_section`)."""
    return _tsae_section(ctx.target, ctx.metric, ctx.say)


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


# ------------------------------------------------------------------------- HTML and text
def criteria_html(report: dict, figures: dict[str, str]) -> str:
    cr = report["criteria"]
    if not cr.get("computed"):
        return _missing(cr["why"])
    px = (cr.get("proxy") or {}).get("units", {})

    def proxy(name):
        p = px.get(name)
        if not p or p.get("modal_share_mean") is None:
            return "—"
        return f"{p['modal_share_mean']:.3f} / {p['entropy_bits_mean']:.2f}"

    rows = [[r["name"], r["kind"], r["n_atoms"], r["r2_aip"], r["r2_euclidean"],
             r["q_star_quantile"], r["q_star_support"], r["l1_certified_fraction"],
             r["mu"], r["mean_l0"], r["dead_atoms"], proxy(r["name"])] for r in cr["rows"]]
    body = _table(["unit set", "kind", "N", "R² AIP", "R² Euclidean", "q* quantile",
                   "q* support", "ℓ1-certified", "μ", "mean L0", "dead",
                   "proxy: modal share / entropy (bits)"], rows)
    body += _method(cr.get("split", {}).get("description"))
    if px:
        first = next(iter(px.values()))
        body += _method(f"Monosemanticity {first['label']}: mean over units with at least "
                        f"{first['min_active']} activations of the modal-token share and the "
                        f"entropy of the firing tokens of their top {first['top']} "
                        f"activations; chance (random tokens): "
                        f"{_fmt(first['chance_modal_share'], 3)} / "
                        f"{_fmt(first['chance_entropy_bits'], 2)} bits. "
                        + first["reading"] + ".")
    for key, text in cr.get("readings", {}).items():
        body += _method(f"{key}: {text}")
    return body


def cards_html(report: dict, figures: dict[str, str]) -> str:
    return render_cards_html(report.get("cards") or {
        "computed": False, "why": "this report.json predates the atom cards"})


def tsae_html(report: dict, figures: dict[str, str]) -> str:
    tw = report["tsae_window"]
    if not tw.get("computed"):
        return _missing(tw["why"])
    if not tw.get("check"):
        return _missing(tw.get("why_no_window", ""))
    ch = tw["check"]
    w = ch["window"]
    return _kv([
        ["ε (AIP μ)", w["eps"]], ["K (max L0)", w["K"]], ["δ_min", w["delta_min"]],
        ["δ_max", w["delta_max"]], ["window", f"({_fmt(w['lower'])}, {_fmt(w['upper'])})"],
        ["feasible", w["feasible"]], ["thresholds inside", ch["n_inside"]],
        ["below", ch["n_below"]], ["above", ch["n_above"]],
        ["below and above (infeasible window)", ch.get("n_both", 0)],
        ["τ range (AIP units)", f"[{_fmt(ch['tau_min'])}, {_fmt(ch['tau_max'])}]"],
    ]) + _method(tw.get("reading"))


def criteria_text(report: dict) -> list[str]:
    crit = report["criteria"]
    if not (crit.get("computed") and crit.get("rendered")):
        return []
    return ["", *("  " + x for x in crit["rendered"].splitlines()[: 2 + len(crit["rows"])]),
            ""]


def cards_text(report: dict) -> list[str]:
    cards = report.get("cards") or {}
    return [f"  pair {p['units'][0]}–{p['units'][1]} (AIP cos {p.get('cosine', 0):.3f}): "
            f"{p['reading']} ({p['shared_top']}/{p['top']} top tokens shared, "
            f"activation corr. {p['activation_correlation']:.2f})"
            for p in (cards.get("pairs", [])[:3] if cards.get("computed") else [])]
