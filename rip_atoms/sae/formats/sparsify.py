"""EleutherAI sparsify folders: ``cfg.json`` + ``sae.safetensors``.

Tensors: ``encoder.weight`` [d_sae, d_in], ``encoder.bias`` [d_sae], ``W_dec`` [d_sae, d_in]
(rows are atoms), ``b_dec`` [d_in]. sparsify's encode subtracts b_dec (for autoencoders), takes
relu(x W_encᵀ + b) and keeps the k largest (``activation="topk"``; ``"groupmax"``, the maximum of
each of k equal groups, is not a canonical architecture and is refused by name). The canonical
object is a ``topk`` SAE with W_enc = encoder.weightᵀ and apply_b_dec_to_input = True.
Transcoders, skip connections and n-gram lookups are not autoencoders of one site and are
refused by name.
"""

from __future__ import annotations

from pathlib import Path

from rip_atoms.errors import ShapeMismatchError
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.formats._io import config_int, read_json, read_safetensors, take
from rip_atoms.sae.sae_errors import UnknownArchitectureError

CFG = "cfg.json"
WEIGHTS = "sae.safetensors"
_NAMES = {"W_enc": ("encoder.weight",), "b_enc": ("encoder.bias",), "W_dec": ("W_dec",),
          "b_dec": ("b_dec",)}


def load_sparsify(folder: str | Path) -> SparseAutoencoder:
    """Read a sparsify hookpoint folder into the canonical object (a ``topk`` SAE)."""
    folder = Path(folder)
    cfg_path, w_path = folder / CFG, folder / WEIGHTS
    cfg = read_json(cfg_path)
    activation = cfg.get("activation", "topk")
    if activation != "topk":
        raise UnknownArchitectureError(
            f"{cfg_path}: sparsify activation {activation!r} is not supported (known: topk)"
        )
    for flag in ("transcode", "skip_connection", "embed_skip", "gram_lookup"):
        if cfg.get(flag):
            raise UnknownArchitectureError(
                f"{cfg_path}: sparsify '{flag}' coders are not single-site autoencoders"
            )
    if "k" not in cfg:
        raise UnknownArchitectureError(f"{cfg_path}: sparsify config without 'k'")
    k = config_int(cfg["k"], "k", cfg_path, minimum=1)
    w = take(read_safetensors(w_path), _NAMES, w_path)
    w["W_enc"] = w["W_enc"].T.contiguous()
    d_in = cfg.get("d_in")
    if d_in is not None and config_int(d_in, "d_in", cfg_path, minimum=1) != w["W_enc"].shape[0]:
        raise ShapeMismatchError(
            f"{cfg_path}: d_in = {d_in} but {w_path.name} has encoder.weight of width "
            f"{w['W_enc'].shape[0]}"
        )
    meta = {"hook_name": folder.name,
            "sparsify_config": {k: v for k, v in cfg.items() if k != "d_in"}}
    return SparseAutoencoder(
        architecture="topk", k=k, apply_b_dec_to_input=True,
        normalize_activations="none", metadata=meta, source=str(folder), format="sparsify",
        **w,
    )
