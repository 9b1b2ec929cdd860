"""The registry of a report's sections, in report order: :data:`REPORT_SECTIONS`.

Its order is the order of the sections in ``report.json`` (those that compute something) and on
the HTML page (those with a renderer); the exact parts are built in that order, the budgeted
ones searched after them in that order (those marked ``last`` at the end), their budget parts
granted in the order of :data:`rip_atoms.report.budget.BUDGET_SHARES`. Adding a section is one
module with its ``build`` (or ``search``) and ``html`` functions and one :class:`Section` line
here.
"""

from __future__ import annotations

from rip_atoms.report import build, html, summary
from rip_atoms.report.budget import BUDGET_SHARES
from rip_atoms.report.context import Section, anchor

REPORT_SECTIONS: tuple[Section, ...] = (
    Section("answer", "The answer: are these units atoms?", html=html.answer_html,
            text=summary.answer_text),
    Section("summary", "Summary", html=html.summary_html, text=summary.verdict_text),
    Section("target", "Target and metric", html=html.target_html, text=summary.target_text),
    Section("metric", build=build.metric_section),
    Section("representation_shift", "Representation shift", build=build.shift_section,
            html=html.shift_html, text=summary.shift_text, timed=False),
    Section("coherence", "Coherence", build=build.coherence_sections,
            html=html.coherence_html, text=summary.coherence_text),
    Section("reference", search=build.reference_section, budget=("reference",), last=True),
    Section("babel", "Babel function", html=html.babel_html),
    Section("rip", "Restricted isometry (RIP) brackets", search=build.rip_section,
            html=html.rip_html, budget=("rip",)),
    Section("spark", "Spark and uniqueness", search=build.spark_section, html=html.spark_html,
            budget=("spark",)),
    Section("uniqueness", search=build.uniqueness_section, timed_with="spark"),
    Section("recovery", "Exact ℓ1 recovery", build=build.recovery_section,
            search=build.recovery_search, html=html.recovery_html, text=summary.recovery_text,
            budget=("margins", "probe")),
    Section("criteria", "Neurons / features / atoms", build=build.criteria_section,
            html=html.criteria_html, text=summary.criteria_text),
    Section("cards", "Atom cards: what the units fire on", build=build.cards_with_proxy,
            html=html.cards_html, text=summary.cards_text,
            noted=lambda ctx: ctx.target.kind != "planted"),
    Section("tsae_window", "TSAE threshold window", build=build.tsae_section,
            html=html.tsae_html),
    Section("not_computed", "Not computed, and why", html=html.not_computed_html,
            text=summary.not_computed_text),
    Section("provenance", "How this report was made", html=html.provenance_html,
            text=summary.provenance_text),
)

#: the terminal summary's order of the sections with a ``text`` renderer
#: (:func:`rip_atoms.report.render_summary`): the numbers first, the verdict at the end
SUMMARY_ORDER = ("target", "answer", "representation_shift", "coherence", "recovery", "cards",
                 "criteria", "summary", "not_computed", "provenance")

#: HTML section id → title, in page order
SECTIONS = {anchor(s.key): s.title for s in REPORT_SECTIONS if s.html is not None}


def _check_budget_order() -> None:
    """The budget parts, in the order the sections search, are those of BUDGET_SHARES."""
    searching = sorted((s for s in REPORT_SECTIONS if s.search is not None), key=lambda s: s.last)
    parts = [p for s in searching for p in s.budget]
    if parts != list(BUDGET_SHARES):
        raise AssertionError(f"budget parts {parts} ≠ BUDGET_SHARES {list(BUDGET_SHARES)}")


_check_budget_order()
if {s.key for s in REPORT_SECTIONS if s.text is not None} != set(SUMMARY_ORDER):
    raise AssertionError("SUMMARY_ORDER must name every section with a text renderer")

__all__ = ["REPORT_SECTIONS", "SECTIONS", "SUMMARY_ORDER"]
