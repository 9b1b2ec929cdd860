"""Atom cards, pair analysis and the monosemanticity proxy on planted codes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from rip_atoms.criteria.atom_cards import (
    TokenProvenance,
    atom_card,
    atom_cards,
    monosemanticity_proxy,
    pair_analysis,
)
from rip_atoms.errors import ShapeMismatchError

CTX, N_CTX = 50, 40  # 40 contexts of 50 tokens


def _provenance(rng) -> TokenProvenance:
    n = CTX * N_CTX
    ids = rng.integers(0, 30, size=n)
    return TokenProvenance(ids, np.repeat(np.arange(N_CTX), CTX), np.tile(np.arange(CTX), N_CTX),
                           strings={t: f"w{t}" for t in range(30)}, tokenizer="planted")


def _planted():
    """Units 0, 1: identical supports, independent magnitudes (one concept learned twice);
    units 2, 3: nearly parallel atoms (cos 0.99) firing on disjoint token sets; unit 4 fires
    exactly on token id 7; unit 5 never fires."""
    rng = np.random.default_rng(0)
    prov = _provenance(rng)
    n = len(prov)
    A = np.zeros((n, 6))
    sup = rng.choice(n, size=200, replace=False)
    A[sup, 0] = rng.uniform(1, 2, size=sup.size)
    A[sup, 1] = rng.uniform(1, 2, size=sup.size)
    rest = np.setdiff1d(np.arange(n), sup)
    two = rng.choice(rest, size=300, replace=False)
    A[two[:150], 2] = rng.uniform(1, 2, size=150)
    A[two[150:], 3] = rng.uniform(1, 2, size=150)
    sevens = np.flatnonzero(prov.token_ids == 7)
    A[sevens, 4] = rng.uniform(1, 2, size=sevens.size)
    return sp.csr_matrix(A), prov


def test_identical_supports_are_duplicates_and_disjoint_ones_are_not():
    C, _ = _planted()
    dup = pair_analysis(C, 0, 1)
    assert dup["reading"] == "fires on the same tokens" and dup["duplicate"]
    assert dup["support_jaccard"] == 1.0
    par = pair_analysis(C, 2, 3, cosine=0.99)
    assert par["reading"] == "different contexts" and not par["duplicate"]
    assert par["shared_top"] == 0 and par["support_jaccard"] == 0.0
    assert par["activation_correlation"] < 0 and par["cosine"] == 0.99


def test_card_contexts_modal_token_and_density():
    C, prov = _planted()
    card = atom_card(C, prov, 4)
    assert card["modal_token"] == "w7" and card["modal_token_share"] == 1.0
    assert card["firing_entropy_bits"] == 0.0
    assert card["density"] == pytest.approx(np.mean(prov.token_ids == 7))
    assert len(card["top"]) == 20
    acts = [t["activation"] for t in card["top"]]
    assert acts == sorted(acts, reverse=True)
    for t in card["top"]:
        r, pos = t["row"], t["position"]
        assert t["token"] == "w7"
        # the window is the same context, ±8 positions, None past its ends
        assert len(t["left"]) == 8 and len(t["right"]) == 8
        for off, tok in zip(range(-8, 0), t["left"], strict=True):
            want = f"w{prov.token_ids[r + off]}" if pos + off >= 0 else None
            assert tok == want
        for off, tok in zip(range(1, 9), t["right"], strict=True):
            want = f"w{prov.token_ids[r + off]}" if pos + off < CTX else None
            assert tok == want


def test_cards_selection_and_json_shape():
    C, prov = _planted()
    out = atom_cards(C, prov, pairs=[[2, 3, 0.99], [0, 1, 0.5]], named=[4], n_random=3)
    sel = out["selection"]
    assert sel["never_active"] == 1 and 5 not in sel["random"]
    assert set(out["cards"]) >= {"0", "1", "2", "3", "4"}
    assert [p["reading"] for p in out["pairs"]] == ["different contexts",
                                                    "fires on the same tokens"]
    assert sel["most_active"] in (0, 1) and sel["least_active"] == 4  # ~n/30 sevens
    with pytest.raises(ShapeMismatchError):
        atom_cards(C[:10], prov)


def test_proxy_separates_a_token_detector_from_random_firing():
    C, prov = _planted()
    det = monosemanticity_proxy(C[:, [4]], prov.token_ids)
    assert det["modal_share_mean"] == 1.0 and det["entropy_bits_mean"] == 0.0
    rnd = monosemanticity_proxy(C[:, [0, 1, 2, 3]], prov.token_ids)
    assert rnd["modal_share_mean"] < 0.4 and rnd["entropy_bits_mean"] > 3.0
    assert rnd["chance_modal_share"] < 0.4
    assert det["max_entropy_bits"] == pytest.approx(math.log2(20))
    none = monosemanticity_proxy(C[:, [5]], prov.token_ids)
    assert none["n_units"] == 0 and none["n_units_too_few"] == 1
    # dense signed codes (neurons): the top are the largest positive values
    X = np.zeros((len(prov), 1))
    X[prov.token_ids == 3, 0] = 5.0
    X[prov.token_ids != 3, 0] = -1.0
    assert monosemanticity_proxy(X, prov.token_ids)["modal_share_mean"] == 1.0


def test_a_pair_with_a_silent_unit_is_not_called_different_contexts():
    C, _ = _planted()
    p = pair_analysis(C, 2, 5)  # unit 5 never fires
    assert p["reading"] == "one of them never fires" and not p["duplicate"]
    assert math.isnan(p["activation_correlation"])
