"""The atom cards alone as a page: ``cards.html`` and ``cards.json`` (``rip-atoms cards``)."""

from __future__ import annotations

from rip_atoms.report.cards_section import render_cards_html
from rip_atoms.report.markup import CARDS_CSS, REPORT_CSS
from rip_atoms.report.markup import escape as _e


def render_cards_page(section: dict, title: str) -> str:
    """A self-contained page holding the cards alone (``rip-atoms cards``)."""
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{REPORT_CSS}{CARDS_CSS}</style></head><body>"
            f"<h1>Atom cards</h1><p class='sub'>{_e(title)}</p>"
            f"<section id='cards'>{render_cards_html(section)}</section></body></html>\n")


def write_cards(section: dict, out_dir, title: str) -> dict:
    """Write ``cards.json`` and ``cards.html`` into ``out_dir``, each atomically (temporary
    file + ``os.replace``). Returns the paths."""
    import os
    import tempfile
    from pathlib import Path

    from rip_atoms import strict_json
    from rip_atoms.errors import FileFormatError
    from rip_atoms.report.files import prepare_report_folder

    folder = prepare_report_folder(out_dir, what="cards folder")
    texts = {"cards.html": render_cards_page(section, title),
             "cards.json": strict_json.dumps(section, indent=1, ensure_ascii=False) + "\n"}
    paths = {}
    for name, text in texts.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, Path(folder) / name)
        except OSError as exc:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise FileFormatError(f"{folder}: cannot write {name} ({exc.strerror})") from exc
        paths[name.split(".")[1]] = Path(folder) / name
    return paths
