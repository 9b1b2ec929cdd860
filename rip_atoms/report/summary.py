"""The terminal summary of a report: the verdict, the key numbers, where the files are.

Each section's lines come from its ``text`` renderer (:data:`rip_atoms.report.sections.
REPORT_SECTIONS`), in the summary's own order (:data:`rip_atoms.report.sections.SUMMARY_ORDER`:
the numbers first, the verdict and what was not computed at the end)."""

from __future__ import annotations


def render_summary(report: dict, paths: dict | None = None) -> str:
    """The summary's lines: every section's text in summary order, the files, the time."""
    from rip_atoms.report.sections import REPORT_SECTIONS, SUMMARY_ORDER

    by_key = {s.key: s for s in REPORT_SECTIONS}
    lines: list[str] = []
    for key in SUMMARY_ORDER:
        lines += by_key[key].text(report)
    if paths:
        lines.append("report: " + ", ".join(str(p) for p in paths.values()))
    secs = report["seconds"]
    lines.append(f"done in {secs.get('wall', secs['total']):.1f} s")
    return "\n".join(lines)


# ------------------------------------------------------------------- the sections' lines
def target_text(report: dict) -> list[str]:
    d, t = report["dictionary"], report["target"]
    return [f"rip-atoms verify — {t['description']}",
            f"  H = {d['dim']}, N = {d['n_atoms']}, dead atoms "
            f"{len(d.get('dead_atoms', []))}; metric: {report['metric']['reading']}"]


def answer_text(report: dict) -> list[str]:
    if not report.get("answer"):
        return []
    from rip_atoms.report.answer import render_answer_text

    return render_answer_text(report["answer"])


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


def recovery_text(report: dict) -> list[str]:
    m = report.get("recovery", {}).get("margins")
    if not (m and m.get("computed") and m.get("margin_quantiles")):
        return []
    q, b = m["margin_quantiles"], m.get("certificate_bound_quantiles", {})
    return [f"  uniqueness margin (≥ t*, rigorous) of {m['tightened']} codes: median "
            f"{q['0.5']:.3f}, range [{q['0.0']:.3f}, {q['1.0']:.3f}]; the classifier's "
            f"bound: median {b.get('0.5', float('nan')):.3f}"]


def cards_text(report: dict) -> list[str]:
    cards = report.get("cards") or {}
    return [f"  pair {p['units'][0]}–{p['units'][1]} (AIP cos {p.get('cosine', 0):.3f}): "
            f"{p['reading']} ({p['shared_top']}/{p['top']} top tokens shared, "
            f"activation corr. {p['activation_correlation']:.2f})"
            for p in (cards.get("pairs", [])[:3] if cards.get("computed") else [])]


def criteria_text(report: dict) -> list[str]:
    crit = report["criteria"]
    if not (crit.get("computed") and crit.get("rendered")):
        return []
    return ["", *("  " + x for x in crit["rendered"].splitlines()[: 2 + len(crit["rows"])]),
            ""]


def verdict_text(report: dict) -> list[str]:
    return ["verdict", *(f"  {v}" for v in report["verdict"])]


def not_computed_text(report: dict) -> list[str]:
    nc = report["not_computed"]
    if not nc:
        return []
    return ["not computed: " + "; ".join(f"{n['section']} ({n['why']})" for n in nc)]


def provenance_text(report: dict) -> list[str]:
    if not report.get("reproducibility"):
        return []
    from rip_atoms.report.reproducibility import reproducibility_lines

    return list(reproducibility_lines(report["reproducibility"]))
