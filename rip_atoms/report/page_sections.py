"""The report page's own sections: the answer, the summary (the verdict), the target and its
metric, what was not computed, and how the report was made — drawn from a report's results
(registered in :data:`rip_atoms.report.sections.REPORT_SECTIONS`; nothing to build)."""

from __future__ import annotations

from rip_atoms.report.answer import render_answer_html
from rip_atoms.report.markup import escape as _e
from rip_atoms.report.markup import key_values as _kv
from rip_atoms.report.markup import missing as _missing
from rip_atoms.report.markup import number as _fmt
from rip_atoms.report.markup import table as _table


# ------------------------------------------------------------------------------- HTML
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


# ------------------------------------------------------------------------------- text
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
