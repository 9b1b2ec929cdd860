"""The report's plots, drawn from the report dict alone (so a saved ``report.json`` redraws them).

Each function takes the report and returns a matplotlib Figure (or None when its section was not
computed); :func:`render_figures` returns them as base64-encoded PNGs for embedding in HTML.
Figures are built without pyplot (``matplotlib.figure.Figure``, rendered by Agg): no display, no
global state, nothing changed in a notebook's backend.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

#: figure key → (the key of the section it is drawn in, caption)
FIGURES = {
    "shift": ("representation_shift",
              "Pairwise cosines of activations, raw (Euclidean) and under the AIP metric"),
    "pair_cosines": ("coherence",
                     "|cos| over all pairs of atoms, raw and under the AIP metric"),
    "per_atom": ("coherence",
                 "Per-atom coherence μⱼ = maxᵢ≠ⱼ |⟨d̃ᵢ, d̃ⱼ⟩| with the Welch bound and the "
                 "Gaussian reference"),
    "babel": ("babel", "Babel function μ₁(k) with its bound lines"),
    "rip": ("rip", "RIP brackets of δ_k against k"),
    "recovery": ("recovery",
                 "Exact ℓ1 recovery outcome against code L0, with the Donoho–Tanner line"),
}

_RAW = "#888888"
_AIP = "#1f77b4"
_GAUSS = "#d62728"


def _axes():
    """A Figure of its own (no pyplot: no global state, no backend switch in a notebook)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6))
    return fig, fig.subplots()


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, legend_size: float | None = None):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=legend_size)
    fig.tight_layout()
    return fig


def _stairs(ax, hist: dict, label: str, color: str, density: bool = True, **kw) -> None:
    counts = np.asarray(hist["counts"], dtype=np.float64)
    edges = np.asarray(hist["edges"], dtype=np.float64)
    if density and counts.sum() > 0:
        counts = counts / (counts.sum() * np.diff(edges))
    ax.stairs(counts, edges, label=label, color=color, **kw)


def fig_shift(report: dict):
    s = report.get("representation_shift", {})
    if not s.get("computed"):
        return None
    fig, ax = _axes()
    _stairs(ax, s["raw"]["histogram"], f"raw (mean angle {s['raw']['mean_angle_deg']:.1f}°)",
            _RAW, fill=True, alpha=0.5)
    _stairs(ax, s["aip"]["histogram"], f"AIP (mean angle {s['aip']['mean_angle_deg']:.1f}°)",
            _AIP, linewidth=2)
    ax.axvline(0.0, color="k", linewidth=0.8, linestyle=":")
    return _finish(fig, ax, "cos(xᵢ, xⱼ)", "density",
                   f"representation shift ({s['n_vectors']} activations)")


def fig_pair_cosines(report: dict):
    c = report["coherence"]
    fig, ax = _axes()
    _stairs(ax, c["raw"]["histogram"], f"raw (μ = {c['raw']['mu']:.3f})", _RAW, fill=True,
            alpha=0.5)
    if not c.get("aip_is_raw"):
        _stairs(ax, c["aip"]["histogram"], f"AIP (μ = {c['aip']['mu']:.3f})", _AIP,
                linewidth=2)
    ax.set_yscale("log")
    return _finish(fig, ax, "|⟨d̃ᵢ, d̃ⱼ⟩|, i < j", "density (log)", "pairwise cosines of the atoms")


def fig_per_atom(report: dict):
    c = report["coherence"]
    ref = report["reference"]
    fig, ax = _axes()
    _stairs(ax, c["raw"]["per_atom_histogram"], "raw", _RAW, fill=True, alpha=0.4)
    if not c.get("aip_is_raw"):
        _stairs(ax, c["aip"]["per_atom_histogram"], "AIP", _AIP, linewidth=2)
    g = ref.get("gaussian_dictionary", {})
    if g.get("computed"):
        _stairs(ax, g["per_atom_histogram"], "Gaussian dictionary, same shape", _GAUSS,
                linewidth=1.5, linestyle="--")
    ax.axvline(ref["welch_bound"], color="k", linestyle=":",
               label=f"Welch bound {ref['welch_bound']:.3f}")
    cf = ref.get("gaussian_closed_form")
    if cf:
        ax.axvline(cf["mean"], color=_GAUSS, linestyle=":",
                   label=f"Gaussian μ (Cai–Jiang) {cf['mean']:.3f}")
    return _finish(fig, ax, "μⱼ", "density", "per-atom coherence", legend_size=8)


def fig_babel(report: dict):
    c = report["coherence"]
    ref = report["reference"]
    fig, ax = _axes()
    aip = c["aip"]
    k = np.arange(1, len(aip["babel"]) + 1)
    ax.plot(k, aip["babel"], color=_AIP, marker=".", label="AIP μ₁(k) (attained)")
    ax.plot(k, aip["babel_upper"], color=_AIP, linestyle="--", linewidth=1,
            label="AIP μ₁(k) certified upper")
    if not c.get("aip_is_raw"):
        ax.plot(k, c["raw"]["babel"], color=_RAW, marker=".", label="raw μ₁(k)")
    g = ref.get("gaussian_dictionary", {})
    if g.get("computed"):
        ax.plot(k, g["babel"][:len(k)], color=_GAUSS, linestyle="--",
                label="Gaussian dictionary μ₁(k)")
    ax.plot(k, k * aip["mu"], color="k", linestyle=":", linewidth=1, label="k·μ (upper)")
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.axhline(0.5, color="k", linewidth=0.8, linestyle="-.",
               label="½ (μ₁(K−1) + μ₁(K) < 1 region)")
    ax.set_ylim(0, min(3.0, max(1.2, 1.05 * float(np.nanmax(aip["babel_upper"])))))
    ax.set_xscale("log", base=2)
    return _finish(fig, ax, "k", "μ₁(k)",
                   f"Babel function (certified K = {aip['babel_certified_K']})", legend_size=8)


def fig_rip(report: dict):
    r = report.get("rip", {})
    if not r.get("computed"):
        return None
    fig, ax = _axes()
    b = r["brackets"]
    k = np.array([x["k"] for x in b], dtype=np.float64)
    lo = np.array([x["delta_lower"] for x in b], dtype=np.float64)
    up = np.array([x["delta_upper"] for x in b], dtype=np.float64)
    up_plot = np.minimum(up, max(2.0, float(np.nanmax(lo)) * 1.5))
    ax.fill_between(k, lo, up_plot, color=_AIP, alpha=0.2, label="δ_k bracket")
    ax.plot(k, lo, color=_AIP, marker="o", label="δ_k lower (witness support)")
    ax.plot(k, up_plot, color=_AIP, marker="v", linestyle="--", label="δ_k upper (certified)")
    ax.axhline(math.sqrt(2) - 1, color="k", linestyle=":", label="√2 − 1 (δ_2k condition)")
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xscale("log", base=2)
    return _finish(fig, ax, "k", "δ_k", "restricted isometry constants", legend_size=8)


def fig_recovery(report: dict):
    rec = report["recovery"]
    fig, ax = _axes()
    rows = [r for r in rec["probe"]["rows"] if r.get("run")]
    if rows:
        k = np.array([r["k"] for r in rows], dtype=np.float64)
        tot = np.array([r["certified"] + r["failed"] + r["undetermined"] for r in rows],
                       dtype=np.float64)
        cert = np.array([r["certified"] for r in rows]) / np.maximum(tot, 1)
        fail = np.array([r["failed"] for r in rows]) / np.maximum(tot, 1)
        ax.plot(k, cert, color=_AIP, marker="o", label="random codes: certified")
        ax.plot(k, fail, color=_GAUSS, marker="x", label="random codes: failed (witness)")
    codes = rec.get("codes", {})
    if codes.get("computed") and codes.get("l0"):
        l0 = np.asarray(codes["l0"])
        st = np.asarray(codes["status"])
        uniq = np.unique(l0)
        if uniq.size > 12:
            edges = np.unique(np.quantile(l0, np.linspace(0, 1, 9)).round())
            bins = np.digitize(l0, edges[1:-1])
            centers = [float(np.mean(l0[bins == b])) for b in np.unique(bins)]
            groups = [bins == b for b in np.unique(bins)]
        else:
            centers = [float(u) for u in uniq]
            groups = [l0 == u for u in uniq]
        frac = [float(np.mean(st[g] == "certified")) for g in groups]
        sizes = [20 + 60 * float(np.mean(g)) for g in groups]
        ax.scatter(centers, frac, s=sizes, color="#2ca02c", zorder=3,
                   label=f"target's codes: certified ({codes['n_tokens']} sampled)")
    if rec.get("k_weak"):
        ax.axvline(rec["k_weak"], color="k", linestyle=":",
                   label=f"Donoho–Tanner k_W = {rec['k_weak']:.1f}")
    ax.set_ylim(-0.05, 1.05)
    title = "exact ℓ1 recovery" + (" (non-negative BP)" if rec["nonneg"] else "")
    return _finish(fig, ax, "code L0 (k)", "fraction", title, legend_size=8)


_DRAW = {"shift": fig_shift, "pair_cosines": fig_pair_cosines, "per_atom": fig_per_atom,
         "babel": fig_babel, "rip": fig_rip, "recovery": fig_recovery}


def render_figures(report: dict, dpi: int = 110) -> dict[str, str]:
    """key → base64 PNG of every figure whose section was computed."""
    out: dict[str, str] = {}
    for key, draw in _DRAW.items():
        fig = draw(report)
        if fig is None:
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        out[key] = base64.b64encode(buf.getvalue()).decode("ascii")
    return out
