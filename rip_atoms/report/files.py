"""Writing and reading reports. Both files are written to temporary names in the output folder
first and renamed into place only when both are complete, so an interrupted or failed run never
leaves a half-written report (a previous report stays as it was)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rip_atoms import strict_json
from rip_atoms.errors import FileFormatError


def report_json(report: dict) -> str:
    """The report as strict JSON text."""
    return strict_json.dumps(report, indent=1, ensure_ascii=False) + "\n"


def _stage(folder: Path, name: str, text: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_report(report: dict, out_dir: str | os.PathLike, *, html: bool = True
                 ) -> dict[str, Path]:
    """Write ``report.json`` (and ``report.html`` with the figures) into ``out_dir``
    atomically. Returns the paths written."""
    from rip_atoms.report.figures import render_figures
    from rip_atoms.report.html import render_html

    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{folder}: cannot create the report folder ({exc})") from exc
    texts = {"report.json": report_json(report)}
    if html:
        texts["report.html"] = render_html(report, render_figures(report))
    staged: dict[str, str] = {}
    try:
        for name, text in texts.items():
            staged[name] = _stage(folder, name, text)
        for name, tmp in staged.items():
            os.replace(tmp, folder / name)
    except OSError as exc:
        for tmp in staged.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise FileFormatError(f"{folder}: cannot write the report ({exc})") from exc
    return {name.split(".")[1]: folder / name for name in texts}


def read_report(path: str | os.PathLike) -> dict:
    """Load a ``report.json`` (or the folder holding one)."""
    from rip_atoms.report.build import SCHEMA

    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{p}: not a readable report ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise FileFormatError(f"{p}: not a rip_atoms report (schema {SCHEMA!r} expected)")
    return obj
