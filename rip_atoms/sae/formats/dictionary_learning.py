"""saprmarks/dictionary_learning folders: ``ae.pt`` (a ``torch.save``d state dict, loaded with
``weights_only=True``) + ``config.json`` whose ``trainer.dict_class`` names the architecture
(docs/models.md). Mapping to the canonical (SAELens-oriented) object:

=========================  ==========  ==========================================================
dict_class                 canonical   tensors (W_enc = encoder.weightᵀ, W_dec = decoder.weightᵀ)
=========================  ==========  ==========================================================
AutoEncoder                standard    bias → b_dec (subtracted from the input), encoder.bias
AutoEncoderNew             standard    decoder.bias → b_dec (not subtracted), encoder.bias
GatedAutoEncoder           gated       decoder_bias → b_dec, gate_bias, mag_bias, r_mag
JumpReluAutoEncoder        jumprelu    W_enc, b_enc, W_dec, b_dec, threshold (b_dec not
                                       subtracted)
AutoEncoderTopK            topk        k from the config (or the ``k`` buffer), b_dec subtracted
BatchTopKSAE,              jumprelu    inference uses the tracked global threshold τ:
MatryoshkaBatchTopKSAE                 f = relu(h)·1[relu(h) > τ] = JumpReLU with θᵢ = τ ≥ 0;
                                       an untracked τ (< 0) falls back to a per-token top-k
                                       (noted)
=========================  ==========  ==========================================================

dictionary_learning reports codes multiplied by decoder norms for some classes and divides them
back before decoding; the canonical codes are the raw ones, with the same reconstructions.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rip_atoms.errors import FileFormatError
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.formats._io import config_int, read_json, read_torch_state_dict, take
from rip_atoms.sae.sae_errors import UnknownArchitectureError

WEIGHTS = "ae.pt"
CONFIG = "config.json"

_LINEAR = {"W_enc": ("encoder.weight", "W_enc"), "b_enc": ("encoder.bias", "b_enc"),
           "W_dec": ("decoder.weight", "W_dec"), "b_dec": ("b_dec", "bias", "decoder_bias")}
_TRANSPOSED = {"encoder.weight", "decoder.weight"}


def _find_config(path: Path) -> Path:
    for cand in (path.parent / CONFIG, path.parent.parent / CONFIG):
        if cand.is_file():
            return cand
    raise FileFormatError(
        f"{path}: no {CONFIG} beside it (dictionary_learning names the architecture in "
        "config.json trainer.dict_class; it is never guessed from the tensors)"
    )


def _pick(sd: dict[str, torch.Tensor], names: dict, path: Path, **kw) -> dict:
    out = take(sd, names, path, **kw)
    for canon, aliases in names.items():
        hit = next((a for a in aliases if a in sd), None)
        if hit in _TRANSPOSED and canon in out:
            out[canon] = out[canon].T.contiguous()
    return out


def load_dictionary_learning(path: str | Path) -> SparseAutoencoder:
    """Read ``ae.pt`` (a file, or the folder holding it) with its ``config.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    sd = read_torch_state_dict(path)
    cfg_path = _find_config(path)
    cfg = read_json(cfg_path)
    trainer = cfg.get("trainer") if isinstance(cfg.get("trainer"), dict) else {}
    dict_class = trainer.get("dict_class")
    if dict_class is None:
        raise FileFormatError(f"{cfg_path}: no trainer.dict_class")
    meta = {"dictionary_learning_config": cfg, "dict_class": dict_class}
    if trainer.get("layer") is not None:
        meta["hook_layer"] = trainer["layer"]
    if trainer.get("lm_name"):
        meta["model_name"] = trainer["lm_name"]
    common = {"metadata": meta, "source": str(path), "format": "dictionary_learning",
              "normalize_activations": "none"}
    notes: list[str] = []
    if dict_class == "AutoEncoder":
        w = _pick(sd, {**_LINEAR, "b_dec": ("bias",)}, path)
        return SparseAutoencoder(architecture="standard", apply_b_dec_to_input=True, **w,
                                 **common)
    if dict_class == "AutoEncoderNew":
        w = _pick(sd, {**_LINEAR, "b_dec": ("decoder.bias",)}, path)
        return SparseAutoencoder(architecture="standard", apply_b_dec_to_input=False, **w,
                                 **common)
    if dict_class == "GatedAutoEncoder":
        w = _pick(sd, {"W_enc": ("encoder.weight",), "W_dec": ("decoder.weight",),
                       "b_dec": ("decoder_bias",), "b_gate": ("gate_bias",),
                       "b_mag": ("mag_bias",), "r_mag": ("r_mag",)}, path)
        return SparseAutoencoder(architecture="gated", apply_b_dec_to_input=True, **w, **common)
    if dict_class == "JumpReluAutoEncoder":
        w = _pick(sd, {**_LINEAR, "threshold": ("threshold",)}, path)
        return SparseAutoencoder(architecture="jumprelu", apply_b_dec_to_input=False, **w,
                                 **common)
    if dict_class in ("AutoEncoderTopK", "BatchTopKSAE", "MatryoshkaBatchTopKSAE"):
        w = _pick(sd, _LINEAR, path)
        k = trainer.get("k")
        if k is not None:
            k = config_int(k, "trainer.k", cfg_path, minimum=1)
        elif "k" in sd:
            if sd["k"].numel() != 1 or sd["k"].is_floating_point() or sd["k"].is_complex():
                raise FileFormatError(f"{path}: the k buffer must be one integer, got "
                                      f"{sd['k'].dtype} of shape {tuple(sd['k'].shape)}")
            k = config_int(int(sd["k"].item()), "the k buffer", path, minimum=1)
        if k is None:
            raise FileFormatError(f"{cfg_path}: {dict_class} without k (config or buffer)")
        if "threshold" in sd and sd["threshold"].numel() == 0:
            raise FileFormatError(f"{path}: the threshold buffer is empty")
        tau = float(sd["threshold"].reshape(-1)[0]) if "threshold" in sd else -1.0
        if dict_class != "AutoEncoderTopK" and tau >= 0:
            notes.append(f"{dict_class} read as JumpReLU with its global threshold {tau:g}")
            theta = torch.full((w["W_enc"].shape[1],), tau)
            return SparseAutoencoder(architecture="jumprelu", threshold=theta,
                                     apply_b_dec_to_input=True, notes=tuple(notes), **w,
                                     **common)
        if dict_class != "AutoEncoderTopK":
            notes.append(f"{dict_class} has no tracked threshold: per-token top-{k} used "
                         "instead of the batch top-k")
        return SparseAutoencoder(architecture="topk", k=int(k), apply_b_dec_to_input=True,
                                 notes=tuple(notes), **w, **common)
    raise UnknownArchitectureError(
        f"{cfg_path}: unknown dictionary_learning dict_class {dict_class!r} (known: "
        "AutoEncoder, AutoEncoderNew, GatedAutoEncoder, JumpReluAutoEncoder, AutoEncoderTopK, "
        "BatchTopKSAE, MatryoshkaBatchTopKSAE)"
    )
