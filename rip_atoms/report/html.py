"""One self-contained ``report.html``: inline CSS, figures as base64 PNG data URIs, no scripts,
no network. Each section of :data:`rip_atoms.report.sections.REPORT_SECTIONS` with a renderer
is one ``<section id=...>`` element (the id: :func:`rip_atoms.report.context.anchor` of its
key), in registry order (:data:`rip_atoms.report.sections.SECTIONS`: the ids and titles)."""

from __future__ import annotations

import json

from rip_atoms.report.answer import render_answer_html
from rip_atoms.report.cards import render_cards_html
from rip_atoms.report.figures import FIGURES
from rip_atoms.report.markup import CARDS_CSS, REPORT_CSS
from rip_atoms.report.markup import escape as _e
from rip_atoms.report.markup import key_values as _kv
from rip_atoms.report.markup import method as _method
from rip_atoms.report.markup import missing as _missing
from rip_atoms.report.markup import number as _fmt
from rip_atoms.report.markup import table as _table


def _figure(figs: dict[str, str], key: str) -> str:
    if key not in figs:
        return ""
    cap = FIGURES[key][1]
    return (f'<figure id="fig-{key}"><img alt="{_e(cap)}" '
            f'src="data:image/png;base64,{figs[key]}"><figcaption>{_e(cap)}</figcaption>'
            "</figure>")


def _coherence_rows(c: dict) -> list[list]:
    rows = []
    for name, key in (("raw (Euclidean)", "raw"), ("AIP", "aip")):
        r = c[key]
        q = r["per_atom_quantiles"]
        rows.append([name, r["mu"], r.get("mu_upper"), f"{r['pair'][0]}–{r['pair'][1]}",
                     q.get("0.5"), r["welch_bound"], r["certified_K"], r["babel_certified_K"],
                     len(r["duplicate_pairs"])])
    return rows


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


def render_html(report: dict, figures: dict[str, str]) -> str:
    """The HTML page of a report dict and its rendered figures."""
    from rip_atoms.report.context import anchor
    from rip_atoms.report.sections import REPORT_SECTIONS

    d = report["dictionary"]
    t = report["target"]
    parts = [f"<h1>rip-atoms verification report</h1><p class='sub'>{_e(t['description'])}"
             f"<br>H = {d['dim']}, N = {d['n_atoms']}, created {_e(report['created'])}"
             f", rip_atoms {_e(report['version'])}</p>"]
    for section in REPORT_SECTIONS:
        if section.html is not None:
            parts.append(f'<section id="{anchor(section.key)}"><h2>{_e(section.title)}</h2>'
                         f"{section.html(report, figures)}</section>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e('rip-atoms report — ' + t['description'])}</title>"
            f"<style>{REPORT_CSS}{CARDS_CSS}</style></head><body>"
            + "".join(parts) + "</body></html>\n")


# ------------------------------------------------------------------- the sections' bodies
def answer_html(report: dict, figures: dict[str, str]) -> str:
    if "answer" in report:
        return render_answer_html(report["answer"])
    return _missing("this report.json predates the answer block")  # an older report.json


def summary_html(report: dict, figures: dict[str, str]) -> str:
    return "<div class='verdict'><ul>" + "".join(
        f"<li>{_e(line)}</li>" for line in report["verdict"]) + "</ul></div>"


def target_html(report: dict, figures: dict[str, str]) -> str:
    d, t, m = report["dictionary"], report["target"], report["metric"]
    det = m.get("detail") or {}
    return _kv([
        ["target", t["description"]], ["kind", t["kind"]],
        ["shape H × N", f"{d['dim']} × {d['n_atoms']}"],
        ["dead atoms", len(d.get("dead_atoms", []))],
        ["metric", m["reading"]],
        ["metric condition number", det.get("condition_number")],
        ["metric fitted on", det.get("source", "—")],
    ])


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


def not_computed_html(report: dict, figures: dict[str, str]) -> str:
    nc = report["not_computed"]
    if not nc:
        return "<p>Everything was computed.</p>"
    return "<ul>" + "".join(f"<li><b>{_e(n['section'])}</b>: {_e(n['why'])}</li>"
                            for n in nc) + "</ul>"


def provenance_html(report: dict, figures: dict[str, str]) -> str:
    body = (f"<p>Command: <code>{_e(report['command'])}</code></p>"
            if report.get("command") else "")
    body += _table(["step", "seconds"], [[k, v] for k, v in report["seconds"].items()])
    body += _budget_paragraph(report)
    if report.get("reproducibility"):
        from rip_atoms.report.reproducibility import reproducibility_lines

        body += "".join(f"<p>{_e(x)}</p>" for x in reproducibility_lines(
            report["reproducibility"]))
    return body


def _budget_paragraph(report: dict) -> str:
    """The search budget: units of effort (and the wall-clock cap) or seconds, and its use."""
    sb = report.get("search_budget") or {}
    if sb.get("kind") == "effort":
        used = ", ".join(f"{_e(k)} {v:g}" for k, v in sb.get("used", {}).items())
        what = (f"Search budget {sb['effort']} units of effort (used: {used}), under a "
                f"{_fmt(sb['cap_s'])} s wall-clock cap")
    else:
        used = ", ".join(f"{_e(k)} {v:.1f} s" for k, v in sb.get("used_s", {}).items())
        what = f"Search budget {_fmt(report['budget_s'])} s" + (f" (used: {used})" if used else "")
    return (f"<p>{what}, seed {report['seed']}. Every number, with its method and witness, is "
            "in <code>report.json</code> beside this file.</p>")
