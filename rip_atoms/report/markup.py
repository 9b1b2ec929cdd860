"""The HTML building blocks and styles of every page rip_atoms writes (``report.html``,
``cards.html``, ``sweep.html``): one escape function, the number formats, tables, and the CSS."""

from __future__ import annotations

import html
import math

from rip_atoms.report.figures import FIGURES

#: the report page's style (also the cards page's)
REPORT_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;
margin:2em auto;padding:0 1em;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em} .sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.verdict{background:#f3f7fb;border-left:4px solid #1f77b4;padding:.6em 1em}
.method{color:#555;font-size:.88em} figure{margin:1em 0} figcaption{color:#555;font-size:.9em}
img{max-width:100%} code,pre{background:#f6f6f6;font-size:.88em} pre{padding:.6em;overflow:auto}
.missing{color:#8a6d3b} table.kv th{text-align:left;font-weight:600}
table.kv td.v{text-align:left}
"""

#: the answer block's and the atom cards' style (on the report page and the cards page)
CARDS_CSS = """
.answer{background:#fbf7ef;border-left:4px solid #b07d1b;padding:.6em 1em}
.pass{color:#1a7f37;font-weight:600} .fail{color:#b42318;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:.8em} .card{border:1px solid #ddd;border-radius:6px;
padding:.5em .7em;flex:1 1 440px;min-width:0;font-size:.86em;background:#fff}
.card h4{margin:.1em 0 .3em 0} .pair{border:1px solid #cfd8e3;border-radius:8px;padding:.5em;
margin:.8em 0;background:#f7f9fc} .ctx{font-family:ui-monospace,Menlo,Consolas,monospace;
white-space:pre-wrap;overflow-wrap:anywhere;margin:.1em 0;font-size:.92em}
.ctx mark{background:#ffd34d;padding:0 .1em;border-radius:2px} .ctx .a{color:#555;
display:inline-block;min-width:4.5em} .ctx .gap{color:#aaa}
table.pairs td:last-child,table.pairs th:last-child{text-align:left}
.dup{color:#b42318;font-weight:600} .diff{color:#1a7f37;font-weight:600}
"""

#: the sweep page's style
SWEEP_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}th{background:#eee}.failed{color:#b00}"
             "img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:8px}")


def escape(x) -> str:
    """``x`` as HTML text: ``html.escape(str(x))`` (None is the empty text)."""
    return html.escape("" if x is None else str(x))


def number(v, digits: int = 4) -> str:
    """A report value as text: — for None, yes/no, integers as they are, ±∞, and floats with
    ``digits`` decimals (3 significant digits below 10⁻ᵈⁱᵍⁱᵗˢ)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return "∞" if v > 0 else ("−∞" if v < 0 else "NaN")
        if v.is_integer() and abs(v) < 1e12:
            return str(int(v))
        return f"{v:.{digits}f}" if abs(v) >= 10 ** (-digits) else f"{v:.3g}"
    return escape(v)


def fixed(v, digits: int = 3) -> str:
    """A float with ``digits`` decimals, — for None or a non-finite value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}f}"


def cell(v) -> str:
    """A table cell: text escaped, numbers by :func:`number`."""
    return escape(v) if isinstance(v, str) else number(v)


def table(header: list[str], rows: list[list]) -> str:
    """A table with a header row."""
    h = "".join(f"<th>{escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def key_values(rows: list[list]) -> str:
    """A two-column key/value table (no header, values left-aligned)."""
    body = "".join(f"<tr><th>{escape(k)}</th><td class='v'>{cell(v)}</td></tr>"
                   for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def missing(why: str) -> str:
    """Why a section or part was not computed."""
    return f'<p class="missing">Not computed: {escape(why)}</p>'


def method(text: str | None) -> str:
    """A method or reading paragraph (nothing for no text)."""
    return f'<p class="method">{escape(text)}</p>' if text else ""


def figure(figs: dict[str, str], key: str) -> str:
    """Figure ``key`` of :data:`rip_atoms.report.figures.FIGURES` as an embedded PNG with its
    caption (nothing when it was not drawn)."""
    if key not in figs:
        return ""
    cap = FIGURES[key][1]
    return (f'<figure id="fig-{key}"><img alt="{escape(cap)}" '
            f'src="data:image/png;base64,{figs[key]}"><figcaption>{escape(cap)}</figcaption>'
            "</figure>")


__all__ = ["CARDS_CSS", "REPORT_CSS", "SWEEP_CSS", "cell", "escape", "figure", "fixed",
           "key_values", "method", "missing", "number", "table"]
