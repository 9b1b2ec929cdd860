"""The terminal summary of a report: the verdict, the key numbers, where the files are."""

from __future__ import annotations


def render_summary(report: dict, paths: dict | None = None) -> str:
    d = report["dictionary"]
    t = report["target"]
    c = report["coherence"]
    lines = [f"rip-atoms verify — {t['description']}",
             f"  H = {d['dim']}, N = {d['n_atoms']}, dead atoms "
             f"{len(d.get('dead_atoms', []))}; metric: {report['metric']['reading']}"]
    if report.get("answer"):
        from rip_atoms.report.answer import render_answer_text

        lines += render_answer_text(report["answer"])
    s = report["representation_shift"]
    if s.get("computed"):
        lines.append(f"  representation shift: raw mean angle {s['raw']['mean_angle_deg']:.1f}°"
                     f", AIP {s['aip']['mean_angle_deg']:.1f}° ({s['n_vectors']} activations)")
    lines.append(f"  coherence: raw μ = {c['raw']['mu']:.4f}, AIP μ = {c['aip']['mu']:.4f} "
                 f"(pair {c['aip']['pair'][0]}–{c['aip']['pair'][1]}), Welch "
                 f"{report['reference']['welch_bound']:.4f}")
    m = report.get("recovery", {}).get("margins")
    if m and m.get("computed") and m.get("margin_quantiles"):
        q, b = m["margin_quantiles"], m.get("certificate_bound_quantiles", {})
        lines.append(f"  uniqueness margin (≥ t*, rigorous) of {m['tightened']} codes: median "
                     f"{q['0.5']:.3f}, range [{q['0.0']:.3f}, {q['1.0']:.3f}]; the classifier's "
                     f"bound: median {b.get('0.5', float('nan')):.3f}")
    cards = report.get("cards") or {}
    for p in cards.get("pairs", [])[:3] if cards.get("computed") else []:
        lines.append(f"  pair {p['units'][0]}–{p['units'][1]} (AIP cos {p.get('cosine', 0):.3f}): "
                     f"{p['reading']} ({p['shared_top']}/{p['top']} top tokens shared, "
                     f"activation corr. {p['activation_correlation']:.2f})")
    crit = report["criteria"]
    if crit.get("computed") and crit.get("rendered"):
        lines.append("")
        lines += ["  " + x for x in crit["rendered"].splitlines()[: 2 + len(crit["rows"])]]
        lines.append("")
    lines.append("verdict")
    lines += [f"  {v}" for v in report["verdict"]]
    nc = report["not_computed"]
    if nc:
        lines.append("not computed: " + "; ".join(f"{n['section']} ({n['why']})" for n in nc))
    if report.get("reproducibility"):
        from rip_atoms.report.reproducibility import reproducibility_lines

        lines += reproducibility_lines(report["reproducibility"])
    if paths:
        lines.append("report: " + ", ".join(str(p) for p in paths.values()))
    secs = report["seconds"]
    lines.append(f"done in {secs.get('wall', secs['total']):.1f} s")
    return "\n".join(lines)
