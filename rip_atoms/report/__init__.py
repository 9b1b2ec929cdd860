"""Verification reports: every number of ``rip-atoms verify`` with its method, reading and
witness (``report.json``), a self-contained ``report.html`` with plots, and a terminal summary::

    from rip_atoms.report import VerifyTarget, build_report, write_report
    report = build_report(VerifyTarget(dictionary, "my SAE", activations=X_eval))
    write_report(report, "out/")          # out/report.json, out/report.html
"""

from rip_atoms.report.build import SCHEMA, VerifyTarget, babel_certified_k, build_report
from rip_atoms.report.files import read_report, write_report
from rip_atoms.report.html import render_html
from rip_atoms.report.sections import SECTIONS
from rip_atoms.report.summary import render_summary

__all__ = ["SCHEMA", "SECTIONS", "VerifyTarget", "babel_certified_k", "build_report",
           "read_report", "render_html", "render_summary", "write_report"]
