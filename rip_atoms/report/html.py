"""One self-contained ``report.html``: inline CSS, figures as base64 PNG data URIs, no scripts,
no network. Each section of :data:`rip_atoms.report.sections.REPORT_SECTIONS` with a renderer
is one ``<section id=...>`` element (the id: :func:`rip_atoms.report.context.anchor` of its
key), in registry order (:data:`rip_atoms.report.sections.SECTIONS`: the ids and titles)."""

from __future__ import annotations

from rip_atoms.report.context import anchor
from rip_atoms.report.markup import CARDS_CSS, REPORT_CSS, escape
from rip_atoms.report.sections import REPORT_SECTIONS


def render_html(report: dict, figures: dict[str, str]) -> str:
    """The HTML page of a report dict and its rendered figures."""
    d = report["dictionary"]
    t = report["target"]
    parts = [f"<h1>rip-atoms verification report</h1><p class='sub'>{escape(t['description'])}"
             f"<br>H = {d['dim']}, N = {d['n_atoms']}, created {escape(report['created'])}"
             f", rip_atoms {escape(report['version'])}</p>"]
    for section in REPORT_SECTIONS:
        if section.html is not None:
            parts.append(f'<section id="{anchor(section.key)}"><h2>{escape(section.title)}</h2>'
                         f"{section.html(report, figures)}</section>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape('rip-atoms report — ' + t['description'])}</title>"
            f"<style>{REPORT_CSS}{CARDS_CSS}</style></head><body>"
            + "".join(parts) + "</body></html>\n")
