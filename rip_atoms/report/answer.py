"""The plain answer at the top of a report: for each unit set, does it meet the paper's criteria?

For every row of the neurons / features / atoms table (``report["criteria"]``) and each of the
paper's two criteria, the value, the ideal, pass or fail, and one sentence, taken from the data,
of what would change the outcome. The thresholds are the paper's headline (its abstract and results:
the identified atoms reach R² = 99.9 % and q* = 99.8 %):

* faithfulness: R² ≥ 0.999, read as the AIP-norm R² on held-out tokens (the norm of the paper's
  metric; the Euclidean R² is in the table beside it);
* stability: q* ≥ 0.998, read as ``q_star_quantile`` (the paper's formula q* = sup{q : μ_q <
  1/(2K_q − 1)}, μ_q and K_q quantiles of per-atom AIP coherence and per-token L0).

The paper prints both rounded to one decimal of a percent, so the pass marks are those printed
values; a unit set passing both is "atoms" in the paper's sense. Everything else (the ℓ1-certified
fraction, the q* support reading) stays in the table, one click away.
"""

from __future__ import annotations

import math

from rip_atoms.report.markup import escape, fixed
from rip_atoms.theory import coherence_certified_k

R2_IDEAL = 0.999
Q_STAR_IDEAL = 0.998
THRESHOLDS_WHY = ("the paper's headline (its abstract and results): the identified atoms reach "
                  "R² = 99.9 % and q* = 99.8 % across layers; R² is read in the AIP norm on "
                  "held-out tokens, q* as the paper's quantile formula (q_star_quantile)")


def _fmt(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def _tokens(report: dict) -> int | None:
    ctx = report.get("target", {}).get("context", {})
    exp = ctx.get("experiment") or {}
    if isinstance(exp, dict) and exp.get("tokens"):
        return int(exp["tokens"])
    return None


def _duplicate_pair(report: dict) -> dict | None:
    cards = report.get("cards") or {}
    for p in cards.get("pairs", []) if cards.get("computed") else []:
        if p.get("duplicate"):
            return p
    return None


def _why(row: dict, report: dict, r2_ok: bool, q_ok: bool) -> str:
    """One sentence from the data: what would change this row's outcome."""
    kind = row.get("kind", "")
    mu = row.get("mu")
    l0 = row.get("mean_l0") or 0.0
    k_cert = coherence_certified_k(mu) if mu is not None and math.isfinite(mu) and mu > 0 \
        else math.inf
    k_txt = "∞" if k_cert == math.inf else str(int(k_cert))
    if kind == "neurons":
        return (f"neurons are dense (mean L0 {l0:.0f} ≫ the K = {k_txt} that their coherence μ = "
                f"{_fmt(mu)} certifies): no sparse reading of the basis can pass q*; this is the "
                "paper's baseline and is expected to fail")
    if r2_ok and q_ok:
        return "both criteria are met; a larger held-out sample would tighten the estimates"
    parts = []
    if not q_ok:
        far = "far above" if k_cert != math.inf and l0 > 4 * max(k_cert, 1) else "above"
        s = (f"q* needs μ_q < 1/(2K_q − 1): mean L0 {l0:.1f} is {far} the K = {k_txt} "
             f"that μ = {_fmt(mu)} certifies (fewer active atoms per token or less coherent "
             "atoms would raise it)")
        dup = _duplicate_pair(report) if kind == "atoms" else None
        if dup:
            a, b = dup["units"]
            s += (f", and the most coherent pairs include duplicates (atoms {a} and {b} fire on "
                  "the same tokens)")
        parts.append(s)
    if not r2_ok:
        dead = int(row.get("dead_atoms", 0)) + int(row.get("never_active", 0))
        s = f"R² {_fmt(row.get('r2_aip'))} < {R2_IDEAL}"
        if dead:
            s += f" with {dead} of {row.get('n_atoms')} atoms dead or never active"
        n_tok = _tokens(report)
        if n_tok:
            s += (f"; the paper reaches R² ≈ 1 only once capacity matches the data scale (here "
                  f"N = {row.get('n_atoms')} atoms on {n_tok} tokens): run `rip-atoms sweep` "
                  "over capacity × tokens to find the matching pair")
        else:
            s += ("; the paper reaches R² ≈ 1 only once capacity matches the data scale: run "
                  "`rip-atoms sweep` over capacity × tokens")
        parts.append(s)
    return "; ".join(parts)


def answer_block(report: dict) -> dict:
    """The answer (module docstring) as a JSON-ready dict: ``computed``, ``thresholds``,
    ``rows`` (one per unit set: criteria with value / ideal / pass, ``atoms``: both pass, and
    ``what_would_change``)."""
    crit = report.get("criteria") or {}
    if not crit.get("computed"):
        return {"computed": False,
                "why": crit.get("why", "the criteria table was not computed"),
                "thresholds": {"r2_aip": R2_IDEAL, "q_star_quantile": Q_STAR_IDEAL}}
    rows = []
    for r in crit["rows"]:
        r2, q = r.get("r2_aip"), r.get("q_star_quantile")
        r2_ok = r2 is not None and r2 >= R2_IDEAL
        q_ok = q is not None and q >= Q_STAR_IDEAL
        rows.append({
            "unit_set": r["name"], "kind": r.get("kind"),
            "criteria": [
                {"criterion": "faithfulness R² (AIP, held out)", "key": "r2_aip", "value": r2,
                 "ideal": f"≥ {R2_IDEAL}", "pass": r2_ok},
                {"criterion": "stability q* (quantile reading)", "key": "q_star_quantile",
                 "value": q, "ideal": f"≥ {Q_STAR_IDEAL}", "pass": q_ok},
            ],
            "atoms": r2_ok and q_ok,
            "what_would_change": _why(r, report, r2_ok, q_ok),
        })
    return {"computed": True, "thresholds": {"r2_aip": R2_IDEAL, "q_star_quantile": Q_STAR_IDEAL},
            "thresholds_why": THRESHOLDS_WHY, "rows": rows}


def render_answer_text(ans: dict) -> list[str]:
    """The answer as terminal lines."""
    if not ans.get("computed"):
        return [f"answer: not computed ({ans.get('why')})"]
    lines = [f"answer (paper's ideal: R² ≥ {R2_IDEAL}, q* ≥ {Q_STAR_IDEAL})"]
    for r in ans["rows"]:
        crit = ", ".join(f"{c['key']} {_fmt(c['value'])} {'pass' if c['pass'] else 'FAIL'}"
                         for c in r["criteria"])
        lines.append(f"  {r['unit_set']}: {'atoms' if r['atoms'] else 'not atoms'} ({crit})")
        lines.append(f"    → {r['what_would_change']}")
    return lines


def render_answer_html(ans: dict) -> str:
    """The answer block's body."""
    if not ans.get("computed"):
        return f"<p class='missing'>Not computed: {escape(ans.get('why', ''))}</p>"
    rows = []
    for r in ans["rows"]:
        cells = "".join(
            f"<td>{fixed(c['value'], 4)} <span class='{'pass' if c['pass'] else 'fail'}'>"
            f"{'pass' if c['pass'] else 'fail'}</span></td>" for c in r["criteria"])
        verdict = "atoms" if r["atoms"] else "not atoms"
        rows.append(f"<tr><td>{escape(r['unit_set'])}</td>{cells}<td><span class='"
                    f"{'pass' if r['atoms'] else 'fail'}'>{verdict}</span></td>"
                    f"<td style='text-align:left'>{escape(r['what_would_change'])}</td></tr>")
    th = ans["thresholds"]
    return (f"<div class='answer'><table><tr><th>unit set</th><th>R² AIP (ideal ≥ "
            f"{th['r2_aip']})</th><th>q* (ideal ≥ {th['q_star_quantile']})</th><th>answer</th>"
            f"<th style='text-align:left'>what would change it</th></tr>{''.join(rows)}</table>"
            f"<p class='method'>Thresholds: {escape(ans['thresholds_why'])}. Every number's "
            "method and witness: the sections below and report.json.</p></div>")

