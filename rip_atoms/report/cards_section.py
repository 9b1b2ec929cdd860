"""The atom-cards section of a report and the monosemanticity proxy column, and their HTML.

Numbers come from :mod:`rip_atoms.criteria.atom_cards` (what each unit fires on, pairs compared
by what they fire on, the offline proxy); this module picks the units (the most coherent AIP
pairs of the report, random live atoms, the most and least active, the user's ``--cards``) and
renders the cards. Both need the token provenance of the evaluated activations (a harvest
folder written with it); without it the section says why.
"""

from __future__ import annotations

import numpy as np

from rip_atoms.criteria.atom_cards import atom_cards, monosemanticity_proxy
from rip_atoms.report.markup import escape as _e
from rip_atoms.report.markup import fixed as _f

N_PAIRS = 10
N_RANDOM = 10


def cards_section(target, codes, report: dict, seed: int, say) -> dict:
    """The cards of the target's units on the evaluated tokens (module docstring)."""
    prov = getattr(target, "provenance", None)
    if prov is None:
        why = getattr(target, "provenance_why", None) or (
            "the activations carry no token provenance (a plain matrix, or a harvest folder "
            "written before provenance was recorded): there are no tokens to show")
        return {"computed": False, "why": why}
    if codes is None:
        return {"computed": False, "why": "needs the target's codes on the activations (an "
                                          "SAE with an encoder, or codes)"}
    if len(prov) != codes.shape[0]:
        return {"computed": False, "why": f"{len(prov)} tokens of provenance for "
                                          f"{codes.shape[0]} evaluated activations"}
    say("atom cards: top activations in context, pairs compared by what they fire on")
    pairs = [p for p in report["coherence"]["aip"]["top_pairs"]][:N_PAIRS]
    out = atom_cards(codes, prov, pairs=pairs, named=getattr(target, "card_atoms", None) or [],
                     n_pairs=N_PAIRS, n_random=N_RANDOM, seed=seed,
                     live=target.dictionary.live_atoms)
    return {"computed": True, **out}


def proxy_section(target, X, codes) -> dict:
    """The proxy per unit set of the criteria table (neurons from the activations, the target
    from its codes, the other unit sets from their encoders)."""
    prov = getattr(target, "provenance", None)
    if prov is None or X is None:
        return {"computed": False, "why": "needs the token ids of the evaluated activations "
                                          "(token provenance)"}
    ids = prov.token_ids
    out = {"neurons": monosemanticity_proxy(np.asarray(X, dtype=np.float64), ids)}
    rows = np.arange(X.shape[0])
    if target.unit is not None and codes is not None:
        out[target.unit.name] = monosemanticity_proxy(codes, ids)
    for name, unit in (getattr(target, "proxy_units", None) or {}).items():
        if name not in out:
            out[name] = monosemanticity_proxy(unit.codes_for(X, rows), ids)
    return {"computed": True, "units": out, "label": next(iter(out.values()))["label"]}


# ------------------------------------------------------------------------------- HTML
def _show(tok) -> str:
    if tok is None:
        return "<span class='gap'>·</span>"
    return _e(str(tok).replace("\n", "⏎").replace("\t", "⇥"))


def render_card(card: dict, title: str = "") -> str:
    """One card: the header numbers and the top contexts, the firing token marked."""
    head = (f"<h4>{_e(title)}atom {card['unit']}</h4><p>density {100 * card['density']:.2f} % "
            f"({card['n_active']} of {card['n_tokens']} tokens), max activation "
            f"{_f(card['max_activation'])}; modal token <code>{_show(card['modal_token'])}"
            f"</code> ({_f(card['modal_token_share'], 2)} of the top {len(card['top'])}), "
            f"firing-token entropy {_f(card['firing_entropy_bits'], 2)} bits</p>")
    if card["top_tokens"]:
        head += "<p>fires most on: " + ", ".join(
            f"<code>{_show(t['token'])}</code>×{t['count']}" for t in card["top_tokens"]) + "</p>"
    lines = "".join(
        f"<div class='ctx'><span class='a'>{t['activation']:.3f}</span>"
        + "".join(_show(x) for x in t["left"]) + f"<mark>{_show(t['token'])}</mark>"
        + "".join(_show(x) for x in t["right"]) + "</div>" for t in card["top"])
    if not card["top"]:
        lines = "<p class='missing'>never active on the evaluated tokens</p>"
    return f"<div class='card' id='card-{card['unit']}'>{head}{lines}</div>"


def render_cards_html(sec: dict) -> str:
    """The cards section's body."""
    if not sec.get("computed"):
        return f"<p class='missing'>Not computed: {_e(sec.get('why', ''))}</p>"
    cards, sel = sec["cards"], sec["selection"]
    parts = [f"<p class='method'>{_e(sec['method'])}</p><p class='method'>{_e(sec['reading'])}"
             "</p>"]
    if sec["pairs"]:
        parts.append(f"<h3>The {len(sec['pairs'])} most coherent AIP pairs, side by side</h3>")
        rows = "".join(
            f"<tr><td>{p['units'][0]}–{p['units'][1]}</td><td>{_f(p.get('cosine'), 4)}</td>"
            f"<td>{p['shared_top']} / {p['top']}</td><td>{_f(p['support_jaccard'])}</td>"
            f"<td>{_f(p['activation_correlation'])}</td><td class='"
            f"{'dup' if p['duplicate'] else 'diff' if p['reading'] == 'different contexts' else ''}"
            f"'>{_e(p['reading'])}</td></tr>" for p in sec["pairs"])
        parts.append("<table class='pairs'><tr><th>pair</th><th>AIP cos</th><th>shared top</th>"
                     "<th>support Jaccard</th><th>activation corr.</th><th>reading</th></tr>"
                     f"{rows}</table>")
        for p in sec["pairs"]:
            a, b = p["units"]
            parts.append(f"<div class='pair' id='pair-{a}-{b}'><b>atoms {a} and {b}</b>: AIP "
                         f"cos {_f(p.get('cosine'), 4)}, {p['shared_top']} of the top {p['top']}"
                         f" shared, activation correlation {_f(p['activation_correlation'])}"
                         f" → <b>{_e(p['reading'])}</b><div class='cards'>"
                         + render_card(cards[str(a)]) + render_card(cards[str(b)])
                         + "</div></div>")
    groups = [("Atoms you named (--cards)", sel.get("named", [])),
              ("The most and the least frequently active",
               [sel[k] for k in ("most_active", "least_active") if k in sel]),
              (f"{len(sel.get('random', []))} random live atoms (active at least once)",
               sel.get("random", []))]
    for title, units in groups:
        if units:
            parts.append(f"<h3>{_e(title)}</h3><div class='cards'>"
                         + "".join(render_card(cards[str(u)]) for u in units) + "</div>")
    if sel.get("never_active"):
        parts.append(f"<p class='method'>{sel['never_active']} live atoms never fire on the "
                     "evaluated tokens (no card).</p>")
    return "".join(parts)
