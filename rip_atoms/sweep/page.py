"""``sweep.html``: a self-contained page (figures as embedded PNGs) of a sweep's table.

For each (layer, architecture) of the training cells: heatmaps over (N, |M|) of held-out R² AIP,
train R² AIP, their difference (train − held-out: memorisation shows as a large gap), q*
(quantile reading, held-out), the dead-atom fraction and seed stability (means over seeds);
and R² AIP against N/|M| (train dashed, held-out solid, one line per |M|). SAE cells (``--sae``)
are listed in the table only. Figures are drawn without pyplot (matplotlib's Agg backend).
"""

from __future__ import annotations

import base64
import io
import math
from collections import defaultdict

import numpy as np

from rip_atoms.report.markup import SWEEP_CSS
from rip_atoms.report.markup import escape as _e

__all__ = ["heatmap_figure", "r2_ratio_figure", "render_sweep_html", "summary_png"]

HEATMAPS = (
    ("held_out", "r2_aip", "held-out R² AIP"),
    ("train", "r2_aip", "train R² AIP"),
    ("gap", "r2_aip", "train − held-out R² AIP"),
    ("held_out", "q_star_quantile", "held-out q* (quantile reading)"),
    ("held_out", "dead_fraction", "dead-atom fraction"),
    ("held_out", "seed_stability", "seed stability (|AIP cos| ≥ 0.9)"),
)


def _grid(rows: list[dict], split: str, column: str):
    widths = sorted({r["n_atoms"] for r in rows})
    tokens = sorted({r["tokens"] for r in rows})
    acc: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["status"] != "ok":
            continue
        if split == "gap":
            continue
        if r["split"] != split:
            continue
        if column == "dead_fraction":
            v = None if r["dead"] is None else r["dead"] / max(1, r["n_atoms"])
        else:
            v = r.get(column)
        if v is not None and math.isfinite(v):
            acc[r["n_atoms"], r["tokens"]].append(float(v))
    M = np.full((len(widths), len(tokens)), np.nan)
    for (n, t), vals in acc.items():
        M[widths.index(n), tokens.index(t)] = float(np.mean(vals))
    return widths, tokens, M


def heatmap_figure(rows: list[dict], split: str, column: str, title: str):
    """One heatmap (rows N, columns |M|) of the mean of ``column`` over seeds."""
    from matplotlib.figure import Figure

    if split == "gap":
        widths, tokens, tr = _grid(rows, "train", column)
        _, _, ho = _grid(rows, "held_out", column)
        M = tr - ho
    else:
        widths, tokens, M = _grid(rows, split, column)
    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.subplots()
    finite = M[np.isfinite(M)]
    if split == "gap" and finite.size:
        lim = max(1e-6, float(np.max(np.abs(finite))))
        im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower", aspect="auto")
    else:
        im = ax.imshow(M, cmap="viridis", origin="lower", aspect="auto")
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            if np.isfinite(M[i, j]):
                ax.text(j, i, f"{M[i, j]:.3f}", ha="center", va="center", fontsize=7,
                        color="white" if split != "gap" else "black")
    ax.set_xticks(range(len(tokens)), [f"{t:,}" for t in tokens], rotation=30, fontsize=7)
    ax.set_yticks(range(len(widths)), [str(n) for n in widths], fontsize=7)
    ax.set_xlabel("|M| (training tokens)")
    ax.set_ylabel("N (atoms)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def r2_ratio_figure(rows: list[dict]):
    """R² AIP against N/|M| (log axis): held-out solid, train dashed, one colour per |M|."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    tokens = sorted({r["tokens"] for r in rows})
    cmap = __import__("matplotlib").colormaps["plasma"]
    for i, t in enumerate(tokens):
        color = cmap(i / max(1, len(tokens) - 1) * 0.85)
        for split, style in (("held_out", "-"), ("train", "--")):
            pts = defaultdict(list)
            for r in rows:
                if r["tokens"] == t and r["split"] == split and r["status"] == "ok" and (
                        r["r2_aip"] is not None):
                    pts[r["n_atoms"] / t].append(r["r2_aip"])
            if pts:
                xs = sorted(pts)
                ax.plot(xs, [np.mean(pts[x]) for x in xs], style, marker="o", ms=3, color=color,
                        label=f"|M| = {t:,} ({'held-out' if split == 'held_out' else 'train'})")
    ax.axvline(1.0, color="#888888", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("N / |M| (atoms per training token)")
    ax.set_ylabel("R² AIP")
    ax.set_title("Faithfulness against capacity per data scale", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, frameon=False, ncol=2)
    fig.tight_layout()
    return fig


def summary_png(rows: list[dict], path) -> None:
    """Save the three R² AIP heatmaps (held-out, train, train − held-out) and the R² against
    N/|M| plot of one (layer, architecture) group side by side as one PNG (for docs)."""
    from matplotlib.figure import Figure

    figs = [heatmap_figure(rows, split, col, title) for split, col, title in HEATMAPS[:3]]
    figs.append(r2_ratio_figure(rows))
    bufs = []
    for f in figs:
        b = io.BytesIO()
        f.savefig(b, format="png", dpi=100)
        b.seek(0)
        bufs.append(b)
    import matplotlib.image as mpimg

    imgs = [mpimg.imread(b, format="png") for b in bufs]
    out = Figure(figsize=(sum(i.shape[1] for i in imgs) / 100, max(i.shape[0] for i in imgs) / 100))
    for k, img in enumerate(imgs):
        left = sum(i.shape[1] for i in imgs[:k]) / sum(i.shape[1] for i in imgs)
        ax = out.add_axes((left, 0, img.shape[1] / sum(i.shape[1] for i in imgs), 1))
        ax.imshow(img)
        ax.axis("off")
    out.savefig(path, dpi=100)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def _num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render_sweep_html(summary: dict) -> str:
    """The page for a ``sweep.json`` summary dict."""
    rows = summary["rows"]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>rip-atoms sweep</title>",
             f"<style>{SWEEP_CSS}</style></head><body>",
             "<h1>rip-atoms sweep</h1>",
             f"<p>{summary['cells']} cells ({summary['ran']} run now, {summary['skipped']} "
             f"reused), {summary['failed']} failed; {summary['seconds']:.0f} s. Held-out tail: "
             f"the last {summary['settings']['held_out']:,} tokens of each layer's stream; "
             f"training rule: {_e(summary['settings']['rule'])}.</p>"]
    groups = defaultdict(list)
    for r in rows:
        if r["sae_path"] is None:
            groups[(r["layer"], r["arch"])].append(r)
    for (layer, arch), grp in sorted(groups.items(), key=lambda kv: str(kv[0])):
        parts.append(f"<h2 id='layer-{_e(layer)}-{_e(arch)}'>Layer {_e(layer)}, {_e(arch)}</h2>")
        parts.append("<div class='grid'>")
        for split, column, title in HEATMAPS:
            if column == "seed_stability" and all(r["seed_stability"] is None for r in grp):
                parts.append("<p>Seed stability: needs ≥ 2 seeds (--seeds).</p>")
                continue
            fig = heatmap_figure(grp, split, column, title)
            parts.append(f"<img alt='{_e(title)}' src='data:image/png;base64,{_png(fig)}'>")
        parts.append("</div>")
        fig = r2_ratio_figure(grp)
        parts.append(f"<img alt='R2 against N/|M|' src='data:image/png;base64,{_png(fig)}'>")
    from rip_atoms.sweep.table import COLUMNS

    cols = [c for c in COLUMNS if c not in ("key", "sae_path")] + ["sae_path"]
    parts.append("<h2 id='table'>Table (one row per cell × split)</h2><table><tr>"
                 + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>")
    for r in rows:
        cls = " class='failed'" if r["status"] != "ok" else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{_e(_num(r.get(c)))}</td>" for c in cols)
                     + "</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
