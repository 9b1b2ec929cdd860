"""Atom cards: what each unit fires on, pairs compared by what they fire on, and an offline
monosemanticity proxy. Torch-free: codes and token ids in, JSON-ready dicts out.

Notation: evaluated tokens i = 1..n with token ids tᵢ and codes δᵢ ∈ R^N (rows of an n×N code
matrix, dense or scipy sparse); the activation of unit j on token i is aᵢⱼ = δᵢⱼ (the code in the
units the encoder gives). A unit is *active* on token i when aᵢⱼ > 0.

* **Card** of unit j (:func:`atom_card`): the top-T activations (T = 20; the largest aᵢⱼ > 0,
  ties broken by token order), each shown in its context (±``radius`` tokens of the same context,
  the firing token marked) with its value; the density ρⱼ = |{i : aᵢⱼ > 0}| / n; and the firing
  tokens of the top-T: the modal-token share m_j = max_t |{i ∈ top : tᵢ = t}| / |top| and the
  entropy h_j = −Σ_t p_t log₂ p_t of the token distribution p over the top-T (bits; 0 = always
  the same token, log₂ T = all different).
* **Pair** (i, j) (:func:`pair_analysis`): how many of the top-T activating tokens the two
  share, the Jaccard overlap of their supports J = |A_i ∩ A_j| / |A_i ∪ A_j| (A = the tokens where
  the unit is active), and the Pearson correlation r of the activation columns a_·i, a_·j over
  all n evaluated tokens. The reading: **"fires on the same tokens"** (a duplicate: one concept
  learned twice) when J ≥ 0.5 or r ≥ 0.7; **"different contexts"** (the geometry, not the
  semantics, is shared) when J < 0.1 and r < 0.3; **"overlapping"** otherwise; **"one of them
  never fires"** (or "never fires") when a unit has no activation on the evaluated tokens (the
  decoder directions may be shared, but there is nothing to compare).
* **Proxy** (:func:`monosemanticity_proxy`), per unit set: the mean over units with at least
  ``min_active`` activations of m_j and h_j, beside the same statistics of T tokens drawn at
  random from the evaluated ones (the chance level the token frequencies alone give). It
  measures *lexical* specificity — how concentrated a unit's strongest firings are on one token
  — and is a proxy only: a unit that fires on one concept expressed by many different tokens
  (numbers, negations, code keywords) scores as polysemantic here, and a unit that fires on one
  frequent token in unrelated senses scores as monosemantic. The paper's claim was judged by an
  LLM and by people; this proxy needs neither and is labelled as what it is.

Neurons (dense, signed codes δ = x): "active" means aᵢⱼ > 0 and the top-T are the largest
positive values, so a neuron's density is the share of tokens where it is positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rip_atoms.errors import ParameterError, ShapeMismatchError

TOP = 20
RADIUS = 8
SAME_JACCARD = 0.5
SAME_CORR = 0.7
DIFFERENT_JACCARD = 0.1
DIFFERENT_CORR = 0.3
PROXY_LABEL = ("proxy (lexical specificity of the top activations; not an LLM or human "
               "judgement of monosemanticity)")

__all__ = ["PROXY_LABEL", "TokenProvenance", "atom_card", "atom_cards", "choose_card_atoms",
           "monosemanticity_proxy", "pair_analysis"]


@dataclass(frozen=True)
class TokenProvenance:
    """Where each evaluated token comes from: its token id, the index of its context and its
    position in it (one entry per row of the codes), plus optionally the text of each token id
    and the tokenizer's name."""

    token_ids: np.ndarray
    context: np.ndarray
    position: np.ndarray
    strings: dict[int, str] | None = field(default=None, repr=False)
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        n = len(self.token_ids)
        if len(self.context) != n or len(self.position) != n:
            raise ShapeMismatchError(f"token provenance: {n} token ids but {len(self.context)} "
                                     f"contexts and {len(self.position)} positions")
        for name in ("token_ids", "context", "position"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.token_ids)

    def subset(self, rows: np.ndarray) -> TokenProvenance:
        """The provenance of ``rows`` (indices or a boolean mask), in that order."""
        return TokenProvenance(self.token_ids[rows], self.context[rows], self.position[rows],
                               self.strings, self.tokenizer)

    def text(self, token_id: int) -> str:
        """The text of one token id (``<id>`` when the strings were not recorded)."""
        if self.strings is not None and int(token_id) in self.strings:
            return self.strings[int(token_id)]
        return f"<{int(token_id)}>"

    def to_dict(self) -> dict:
        return {"n_tokens": len(self), "tokenizer": self.tokenizer,
                "has_strings": self.strings is not None,
                "n_contexts": int(np.unique(self.context).size) if len(self) else 0}


# ------------------------------------------------------------------------------- helpers
def _columns(codes, n_units: int | None = None):
    """CSC of sparse codes, or the dense float array."""
    if sp.issparse(codes):
        return sp.csc_matrix(codes)
    arr = np.asarray(codes, dtype=np.float64)
    if arr.ndim != 2:
        raise ShapeMismatchError(f"codes: expected an n×N matrix, got shape {arr.shape}")
    return arr


def _column(C, j: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, values) of the positive activations of unit j."""
    if sp.issparse(C):
        a, b = C.indptr[j], C.indptr[j + 1]
        rows, vals = C.indices[a:b], np.asarray(C.data[a:b], dtype=np.float64)
    else:
        vals = C[:, j]
        rows = np.arange(C.shape[0])
    keep = vals > 0
    return rows[keep], vals[keep]


def _top(rows: np.ndarray, vals: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` largest values, descending; ties by row order."""
    order = np.lexsort((rows, -vals))[:top]
    return rows[order], vals[order]


def _token_stats(ids: np.ndarray) -> tuple[float, float, int | None]:
    """(modal share, entropy in bits, modal token id) of a list of token ids."""
    if ids.size == 0:
        return math.nan, math.nan, None
    uniq, counts = np.unique(ids, return_counts=True)
    p = counts / counts.sum()
    k = int(np.argmax(counts))
    return float(counts[k] / ids.size), float(-(p * np.log2(p)).sum()), int(uniq[k])


def _dense_col(C, j: int, n: int) -> np.ndarray:
    if sp.issparse(C):
        out = np.zeros(n)
        a, b = C.indptr[j], C.indptr[j + 1]
        out[C.indices[a:b]] = C.data[a:b]
        return out
    return np.asarray(C[:, j], dtype=np.float64)


class _Contexts:
    """Look up a token by (context, position) among the evaluated tokens."""

    def __init__(self, prov: TokenProvenance):
        self.prov = prov
        self.width = int(prov.position.max()) + 1 if len(prov) else 1
        keys = prov.context * self.width + prov.position
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def window(self, row: int, radius: int) -> dict:
        p = self.prov
        c, pos = int(p.context[row]), int(p.position[row])
        where = np.arange(pos - radius, pos + radius + 1)
        want = c * self.width + where
        at = np.minimum(np.searchsorted(self.keys, want), len(self.keys) - 1)
        found = (self.keys[at] == want) & (where >= 0) & (where < self.width)
        toks = [p.text(p.token_ids[self.order[a]]) if f else None
                for a, f in zip(at, found, strict=True)]
        return {"left": toks[:radius], "token": toks[radius], "right": toks[radius + 1:]}


# ------------------------------------------------------------------------------- cards
def atom_card(codes, provenance: TokenProvenance, unit: int, *, top: int = TOP,
              radius: int = RADIUS, _C=None, _ctx: _Contexts | None = None) -> dict:
    """The card of one unit (see the module docstring): density, top activations in context,
    modal-token share and firing-token entropy over the top ``top``."""
    C = _columns(codes) if _C is None else _C
    n = C.shape[0]
    if len(provenance) != n:
        raise ShapeMismatchError(f"atom cards: {n} rows of codes but {len(provenance)} tokens "
                                 "of provenance")
    if not 0 <= unit < C.shape[1]:
        raise ParameterError(f"atom cards: unit {unit} out of range (N = {C.shape[1]})")
    ctx = _ctx or _Contexts(provenance)
    rows, vals = _column(C, unit)
    trows, tvals = _top(rows, vals, top)
    ids = provenance.token_ids[trows]
    share, ent, modal = _token_stats(ids)
    firing = np.unique(ids, return_counts=True)
    common = sorted(zip(firing[1].tolist(), firing[0].tolist(), strict=True),
                    key=lambda t: (-t[0], t[1]))[:5]
    return {
        "unit": int(unit), "n_tokens": int(n), "n_active": int(rows.size),
        "density": float(rows.size / n) if n else math.nan,
        "max_activation": float(vals.max()) if vals.size else 0.0,
        "mean_active_activation": float(vals.mean()) if vals.size else 0.0,
        "modal_token": None if modal is None else provenance.text(modal),
        "modal_token_id": modal, "modal_token_share": share, "firing_entropy_bits": ent,
        "top_tokens": [{"token": provenance.text(t), "count": int(c)} for c, t in common],
        "top": [{"row": int(r), "context": int(provenance.context[r]),
                 "position": int(provenance.position[r]), "activation": float(v),
                 **ctx.window(int(r), radius)} for r, v in zip(trows, tvals, strict=True)],
    }


def pair_analysis(codes, i: int, j: int, *, top: int = TOP, cosine: float | None = None,
                  _C=None) -> dict:
    """Compare units i and j by what they fire on (module docstring): shared top-``top``
    tokens, support Jaccard J, activation correlation r over all evaluated tokens, and the
    reading ("fires on the same tokens" / "different contexts" / "overlapping")."""
    C = _columns(codes) if _C is None else _C
    n = C.shape[0]
    ri, vi = _column(C, i)
    rj, vj = _column(C, j)
    ti, _ = _top(ri, vi, top)
    tj, _ = _top(rj, vj, top)
    shared = int(np.intersect1d(ti, tj).size)
    union = np.union1d(ri, rj).size
    jac = float(np.intersect1d(ri, rj).size / union) if union else math.nan
    ai, aj = _dense_col(C, i, n), _dense_col(C, j, n)
    si, sj = ai.std(), aj.std()
    corr = float(np.mean((ai - ai.mean()) * (aj - aj.mean())) / (si * sj)) if si > 0 and \
        sj > 0 else math.nan
    c = -1.0 if math.isnan(corr) else corr
    jj = 0.0 if math.isnan(jac) else jac
    if ri.size == 0 or rj.size == 0:
        reading = "never fires" if ri.size == rj.size == 0 else "one of them never fires"
    elif jj >= SAME_JACCARD or c >= SAME_CORR:
        reading = "fires on the same tokens"
    elif jj < DIFFERENT_JACCARD and c < DIFFERENT_CORR:
        reading = "different contexts"
    else:
        reading = "overlapping"
    out = {"units": [int(i), int(j)], "shared_top": shared, "top": int(top),
           "support_jaccard": jac, "activation_correlation": corr,
           "n_active": [int(ri.size), int(rj.size)], "reading": reading,
           "duplicate": reading == "fires on the same tokens"}
    if cosine is not None:
        out["cosine"] = float(cosine)
    return out


def choose_card_atoms(codes, *, pairs: list | None = None, named: list[int] | None = None,
                      n_pairs: int = 10, n_random: int = 10, seed: int = 0,
                      live: np.ndarray | None = None) -> dict:
    """Which units get a card: the ``n_pairs`` most coherent pairs (given, most coherent
    first), ``n_random`` random units among the live ones active at least once (seeded), the
    most and the least frequently active (among those active at least once), and every unit in
    ``named``. Returns {"pairs": [[i, j, cos], …], "random": […], "most_active": j,
    "least_active": j, "named": […], "never_active": count}."""
    C = _columns(codes)
    N = C.shape[1]
    counts = np.asarray((C > 0).sum(axis=0)).ravel()
    ok = np.zeros(N, dtype=bool)
    ok[np.asarray(live if live is not None else np.arange(N), dtype=np.int64)] = True
    active = np.flatnonzero(ok & (counts > 0))
    bad = [u for u in (named or []) if not 0 <= int(u) < N]
    if bad:
        raise ParameterError(f"atom cards: unit(s) {bad} out of range (N = {N})")
    rng = np.random.default_rng(seed)
    rand = sorted(rng.choice(active, size=min(n_random, active.size), replace=False).tolist()) \
        if active.size else []
    out = {"pairs": [[int(a), int(b), float(v)] for a, b, v in (pairs or [])[:n_pairs]],
           "random": [int(u) for u in rand], "named": [int(u) for u in (named or [])],
           "never_active": int(np.sum(ok & (counts == 0)))}
    if active.size:
        out["most_active"] = int(active[np.argmax(counts[active])])
        out["least_active"] = int(active[np.argmin(counts[active])])
    return out


def atom_cards(codes, provenance: TokenProvenance, *, pairs: list | None = None,
               named: list[int] | None = None, n_pairs: int = 10, n_random: int = 10,
               top: int = TOP, radius: int = RADIUS, seed: int = 0,
               live: np.ndarray | None = None) -> dict:
    """Cards for the units :func:`choose_card_atoms` picks, and the pair analysis of every
    pair; JSON-ready: {"selection", "cards": {unit: card}, "pairs": [analysis, …], "method",
    "reading"}."""
    C = _columns(codes)
    if len(provenance) != C.shape[0]:
        raise ShapeMismatchError(f"atom cards: {C.shape[0]} rows of codes but "
                                 f"{len(provenance)} tokens of provenance")
    sel = choose_card_atoms(C, pairs=pairs, named=named, n_pairs=n_pairs, n_random=n_random,
                            seed=seed, live=live)
    units: list[int] = []
    for a, b, _ in sel["pairs"]:
        units += [a, b]
    units += sel["random"] + sel["named"]
    units += [sel[k] for k in ("most_active", "least_active") if k in sel]
    ctx = _Contexts(provenance)
    cards = {}
    for u in dict.fromkeys(units):
        cards[str(u)] = atom_card(C, provenance, u, top=top, radius=radius, _C=C, _ctx=ctx)
    analyses = [pair_analysis(C, a, b, top=top, cosine=v, _C=C) for a, b, v in sel["pairs"]]
    return {
        "selection": sel, "cards": cards, "pairs": analyses, "top": top, "radius": radius,
        "provenance": provenance.to_dict(),
        "method": (f"top {top} activations of each unit over the {C.shape[0]} evaluated tokens, "
                   f"each shown with ±{radius} tokens of its context; density = share of tokens "
                   "where the unit is active; modal-token share and entropy over the top "
                   f"{top}; pairs: shared top-{top} tokens, support Jaccard J and activation "
                   "correlation r over every evaluated token"),
        "reading": (f"'fires on the same tokens' (J ≥ {SAME_JACCARD} or r ≥ {SAME_CORR}): one "
                    "concept learned twice (a duplicate); 'different contexts' (J < "
                    f"{DIFFERENT_JACCARD} and r < {DIFFERENT_CORR}): the geometry, not the "
                    "semantics, is shared; 'overlapping' otherwise; 'one of them never fires' "
                    "when a unit has no activation on these tokens"),
    }


def monosemanticity_proxy(codes, token_ids: np.ndarray, *, top: int = TOP,
                          min_active: int = 5, seed: int = 0, n_chance: int = 200) -> dict:
    """The offline monosemanticity proxy of one unit set (module docstring): mean and median
    modal-token share and firing-token entropy over the top ``top`` activations of every unit
    with at least ``min_active`` activations, and the chance level (the same statistics of
    ``top`` tokens drawn uniformly from the evaluated ones, mean of ``n_chance`` draws)."""
    C = _columns(codes)
    token_ids = np.asarray(token_ids, dtype=np.int64)
    if C.shape[0] != token_ids.size:
        raise ShapeMismatchError(f"proxy: {C.shape[0]} rows of codes but {token_ids.size} "
                                 "token ids")
    shares, ents = [], []
    too_few = 0
    for j in range(C.shape[1]):
        rows, vals = _column(C, j)
        if rows.size < min_active:
            too_few += 1
            continue
        trows, _ = _top(rows, vals, top)
        s, h, _ = _token_stats(token_ids[trows])
        shares.append(s)
        ents.append(h)
    rng = np.random.default_rng(seed)
    k = min(top, token_ids.size)
    chance = [_token_stats(token_ids[rng.choice(token_ids.size, size=k, replace=False)])[:2]
              for _ in range(n_chance)] if k else []
    sh, en = np.asarray(shares), np.asarray(ents)
    return {
        "label": PROXY_LABEL, "top": top, "min_active": min_active,
        "n_units": int(sh.size), "n_units_too_few": int(too_few),
        "modal_share_mean": float(sh.mean()) if sh.size else None,
        "modal_share_median": float(np.median(sh)) if sh.size else None,
        "entropy_bits_mean": float(en.mean()) if en.size else None,
        "entropy_bits_median": float(np.median(en)) if en.size else None,
        "chance_modal_share": float(np.mean([c[0] for c in chance])) if chance else None,
        "chance_entropy_bits": float(np.mean([c[1] for c in chance])) if chance else None,
        "max_entropy_bits": math.log2(top),
        "reading": ("modal share 1 / entropy 0: a unit's strongest firings are all on one "
                    f"token; entropy log₂ {top} = {math.log2(top):.2f} bits: all different. "
                    "Compare with the chance level (random tokens) and across unit sets"),
    }
