"""Gemma Scope ``params.npz``.

Keys ``W_enc`` [d_model, d_sae], ``W_dec`` [d_sae, d_model], ``b_enc``, ``b_dec``, ``threshold``
(the lowercase ``w_*`` spellings are accepted too); plain or ``savez_compressed``. Every Gemma
Scope SAE is a JumpReLU with **no** b_dec subtraction on the input and no input normalisation
(the unit-mean-square scaling used in training is folded into the released weights):
f = relu(h)·1[h > θ], h = x W_enc + b_enc. Layer, width and L0 are read from the path
(``layer_{L}/width_{W}/average_l0_{K}/params.npz``) into the metadata when present.
"""

from __future__ import annotations

import re
from pathlib import Path

from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.formats._io import read_npz, take

_NAMES = {
    "W_enc": ("W_enc", "w_enc"), "b_enc": ("b_enc",), "W_dec": ("W_dec", "w_dec"),
    "b_dec": ("b_dec",), "threshold": ("threshold",),
}


def path_metadata(path: Path) -> dict:
    """Layer / width / average L0 / site from a Gemma Scope path, when it follows the layout."""
    text = str(path)
    meta: dict = {}
    if m := re.search(r"layer_(\d+)", text):
        meta["hook_layer"] = int(m.group(1))
        site = "res"
        for s in ("mlp", "att", "res"):
            if re.search(rf"-{s}\b|_{s}\b|/{s}\b|-{s}-|{s}/", text):
                site = s
                break
        hook = {"res": "hook_resid_post", "mlp": "hook_mlp_out", "att": "attn.hook_z"}[site]
        meta["hook_name"] = f"blocks.{meta['hook_layer']}.{hook}"
    if m := re.search(r"width_(\d+)([km]?)", text):
        meta["width_label"] = m.group(0)
    if m := re.search(r"average_l0_(\d+)", text):
        meta["average_l0"] = int(m.group(1))
    return meta


def load_gemma_scope(path: str | Path) -> SparseAutoencoder:
    """Read a Gemma Scope ``params.npz`` (a JumpReLU SAE) into the canonical object."""
    path = Path(path)
    w = take(read_npz(path), _NAMES, path)
    return SparseAutoencoder(
        architecture="jumprelu",
        apply_b_dec_to_input=False,
        normalize_activations="none",
        metadata=path_metadata(path),
        source=str(path),
        format="gemma_scope",
        **w,
    )
