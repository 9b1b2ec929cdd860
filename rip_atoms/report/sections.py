"""The registry of a report's sections, in report order: :data:`REPORT_SECTIONS`.

Its order is the order of the sections in ``report.json`` (those that compute something) and on
the HTML page (those with a renderer); the exact parts are built in that order, the budgeted
ones searched after them in that order (those marked ``last`` at the end), their budget parts
granted in the order of :data:`rip_atoms.report.budget.BUDGET_SHARES`. Adding a section is one
module with its ``build`` (or ``search``) and ``html`` functions and one :class:`Section` line
here.
"""

from __future__ import annotations

from rip_atoms.report import dictionary_sections as dictionary
from rip_atoms.report import l1_section as l1
from rip_atoms.report import page_sections as page
from rip_atoms.report import units_sections as units
from rip_atoms.report.budget import BUDGET_SHARES
from rip_atoms.report.context import Section, anchor

REPORT_SECTIONS: tuple[Section, ...] = (
    Section("answer", "The answer: are these units atoms?", html=page.answer_html,
            text=page.answer_text),
    Section("summary", "Summary", html=page.summary_html, text=page.verdict_text),
    Section("target", "Target and metric", html=page.target_html, text=page.target_text),
    Section("metric", build=dictionary.metric_section),
    Section("representation_shift", "Representation shift", build=dictionary.shift_section,
            html=dictionary.shift_html, text=dictionary.shift_text, timed=False),
    Section("coherence", "Coherence", build=dictionary.coherence_sections,
            html=dictionary.coherence_html, text=dictionary.coherence_text),
    Section("reference", search=dictionary.reference_section, budget=("reference",),
            last=True),
    Section("babel", "Babel function", html=dictionary.babel_html),
    Section("rip", "Restricted isometry (RIP) brackets", search=dictionary.rip_section,
            html=dictionary.rip_html, budget=("rip",)),
    Section("spark", "Spark and uniqueness", search=dictionary.spark_section,
            html=dictionary.spark_html, budget=("spark",)),
    Section("uniqueness", search=dictionary.uniqueness_section, timed_with="spark"),
    Section("recovery", "Exact ℓ1 recovery", build=l1.recovery_section,
            search=l1.recovery_search, html=l1.recovery_html, text=l1.recovery_text,
            budget=("margins", "probe")),
    Section("criteria", "Neurons / features / atoms", build=units.criteria_section,
            html=units.criteria_html, text=units.criteria_text),
    Section("cards", "Atom cards: what the units fire on", build=units.cards_with_proxy,
            html=units.cards_html, text=units.cards_text,
            noted=lambda ctx: ctx.target.kind != "planted"),
    Section("tsae_window", "TSAE threshold window", build=units.tsae_section,
            html=units.tsae_html),
    Section("not_computed", "Not computed, and why", html=page.not_computed_html,
            text=page.not_computed_text),
    Section("provenance", "How this report was made", html=page.provenance_html,
            text=page.provenance_text),
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
