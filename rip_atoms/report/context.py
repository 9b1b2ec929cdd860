"""What a report's sections share: the :class:`VerifyTarget` (what to verify), the
:class:`ReportContext` they are built over, and the :class:`Section` entry that names one
section (its key, title, how it is built and drawn).

The registry of sections, in report order, is :data:`rip_atoms.report.sections.REPORT_SECTIONS`;
:func:`rip_atoms.report.build_report` and :func:`rip_atoms.report.render_html` loop over it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rip_atoms.criteria import UnitComparison, UnitSet
from rip_atoms.dictionary import Dictionary
from rip_atoms.metric import AIPMetric

if TYPE_CHECKING:
    from rip_atoms.report.budget import SearchBudget


@dataclass
class VerifyTarget:
    """What to verify: a dictionary and whatever else is known about it.

    ``activations`` should be tokens the units were not trained on (the CLI holds some out);
    ``unit`` is the target as a :class:`rip_atoms.criteria.UnitSet` (encoder or codes aligned with
    ``activations``); ``thresholds`` are a TSAE's τⱼ in the units of the unit's codes;
    ``table`` a precomputed :class:`rip_atoms.criteria.UnitComparison` (else one is computed from
    ``unit`` and ``extra_units`` beside the neuron basis); ``nonneg`` whether codes are
    non-negative (SAE codes; default: inferred from the codes, else True).

    For the atom cards and the monosemanticity proxy: ``provenance`` (a
    :class:`rip_atoms.criteria.atom_cards.TokenProvenance` aligned with ``activations``; else
    ``provenance_why`` says why there is none), ``card_atoms`` (units the user names) and
    ``proxy_units`` (other unit sets of the table whose proxy to compute). ``split_description``
    says in words which tokens were held out (it replaces the table's own wording).
    """

    dictionary: Dictionary
    description: str
    kind: str = "dictionary"
    activations: np.ndarray | None = field(default=None, repr=False)
    activations_source: str | None = None
    metric: AIPMetric | None = field(default=None, repr=False)
    unit: UnitSet | None = field(default=None, repr=False)
    extra_units: dict[str, UnitSet] = field(default_factory=dict, repr=False)
    thresholds: np.ndarray | None = field(default=None, repr=False)
    table: UnitComparison | None = field(default=None, repr=False)
    nonneg: bool | None = None
    context: dict = field(default_factory=dict)
    provenance: object | None = field(default=None, repr=False)
    provenance_why: str | None = None
    card_atoms: list[int] | None = None
    proxy_units: dict[str, UnitSet] = field(default_factory=dict, repr=False)
    split_description: str | None = None


def anchor(key: str) -> str:
    """The HTML id of a section: its key with ``-`` for ``_`` (``tsae_window`` →
    ``tsae-window``)."""
    return key.replace("_", "-")


@dataclass(frozen=True)
class Section:
    """One section of the report.

    ``key`` is its one name: the ``report.json`` key of what it computes and, through
    :func:`anchor`, its HTML id. ``build(context)`` computes it among the exact parts (run
    first, in registry order, to completion); ``search(context)`` among the budgeted ones (run
    after them, in registry order, those marked ``last`` at the end: they get what the others
    leave), each returning the section's JSON value (or None when it added to one already
    there). ``budget`` names the parts of :class:`rip_atoms.report.budget.SearchBudget` its
    search spends (their shares: :data:`rip_atoms.report.budget.BUDGET_SHARES`).
    ``html(report, figures)`` draws its body on the page under ``title``; a section without
    it is drawn inside another one; ``text(report)`` gives its lines of the terminal summary
    (:data:`rip_atoms.report.sections.SUMMARY_ORDER`). Its time goes to
    ``report["seconds"][key]`` (or to that of the section ``timed_with`` names; nowhere unless
    ``timed``); ``noted(context)`` says whether a value ``{"computed": False}`` is listed in
    ``not_computed``.
    """

    key: str
    title: str | None = None
    build: Callable[[ReportContext], dict | None] | None = None
    search: Callable[[ReportContext], dict | None] | None = None
    html: Callable[[dict, dict], str] | None = None
    text: Callable[[dict], list[str]] | None = None
    budget: tuple[str, ...] = ()
    last: bool = False
    timed: bool = True
    timed_with: str | None = None
    noted: Callable[[ReportContext], bool] = lambda _ctx: True

    @property
    def computes(self) -> bool:
        """Whether the section is a key of ``report.json`` (it is built or searched)."""
        return self.build is not None or self.search is not None

    @property
    def seconds_key(self) -> str | None:
        """The key of ``report["seconds"]`` its time goes to (None: not timed)."""
        return (self.timed_with or self.key) if self.timed else None


@dataclass
class ReportContext:
    """Everything a section's ``build`` or ``search`` reads: the target and the call's options,
    the report's budget, the results so far (``report``, the JSON-ready dict, and the objects
    behind it), the notes of what was not computed and the seconds per section."""

    target: VerifyTarget
    budget: SearchBudget
    seed: int
    rip_ks: tuple[int, ...]
    l1_max_tokens: int
    progress: bool
    say: Callable[[str], None]
    client: Any = None
    report: dict = field(default_factory=dict)
    notes: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    #: set by the sections as they run (the metric, coherence and recovery sections)
    metric: Any = None
    metric_key: str = "raw"
    geometry: Any = None  #: the report's Geometry (rip_atoms.geometry): one whitening
    coh_raw: Any = None
    coh_aip: Any = None
    raw_pass_s: float = 0.0
    live: int = 0
    babel_p: int = 1
    codes: Any = None
    l0: Any = None
    nonneg: bool = True
    codes_cert: Any = None
    spark: Any = None
    _section_start: float = 0.0

    @property
    def dictionary(self):
        return self.target.dictionary

    @property
    def activations(self):
        return self.target.activations

    def section_seconds(self) -> float:
        """Seconds since the running section (stage) started."""
        return time.perf_counter() - self._section_start

    def run(self, section: Section, stage: Callable[[ReportContext], dict | None]) -> None:
        """Run one stage of ``section``: its value into ``report``, its time into
        ``seconds``, and a note when it was not computed."""
        self._section_start = time.perf_counter()
        value = stage(self)
        if value is not None:
            self.report[section.key] = value
            if value.get("computed") is False and section.noted(self):
                self.notes.append({"section": section.key, "why": value["why"]})
        key = section.seconds_key
        if key is not None:
            self.seconds[key] = self.seconds.get(key, 0.0) + self.section_seconds()
