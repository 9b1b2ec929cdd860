"""The terminal summary of a report: the verdict, the key numbers, where the files are.

Each section's lines come from its ``text`` renderer (:data:`rip_atoms.report.sections.
REPORT_SECTIONS`), in the summary's own order (:data:`rip_atoms.report.sections.SUMMARY_ORDER`:
the numbers first, the verdict and what was not computed at the end)."""

from __future__ import annotations

from rip_atoms.report.sections import REPORT_SECTIONS, SUMMARY_ORDER


def render_summary(report: dict, paths: dict | None = None) -> str:
    """The summary's lines: every section's text in summary order, the files, the time."""
    by_key = {s.key: s for s in REPORT_SECTIONS}
    lines: list[str] = []
    for key in SUMMARY_ORDER:
        lines += by_key[key].text(report)
    if paths:
        lines.append("report: " + ", ".join(str(p) for p in paths.values()))
    secs = report["seconds"]
    lines.append(f"done in {secs.get('wall', secs['total']):.1f} s")
    return "\n".join(lines)
