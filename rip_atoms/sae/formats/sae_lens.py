"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors``.

Reading accepts the v6 schema (``architecture``, string ``normalize_activations``, a
``metadata`` object) and the legacy flat layout (< 6.0: ``hook_point``/``hook_name``,
``activation_fn_str``/``activation_fn`` with ``activation_fn_kwargs.k`` for TopK, a boolean
``normalize_activations``, ``finetuning_scaling_factor``). Which schema a file uses is decided
like SAELens does, from ``sae_lens_version`` (top level or under ``metadata``): absent or < 6 is
legacy. The architecture is read from the config, never inferred from the tensors; unknown names
raise :class:`UnknownArchitectureError`.

Writing produces the v6 layout that ``sae_lens.SAE.load_from_disk`` reads unchanged, with our
provenance under ``metadata.rip_atoms``. A constant input scale is folded into the weights first.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from rip_atoms.errors import FileFormatError, ShapeMismatchError
from rip_atoms.sae.canonical import ARCHITECTURES, SparseAutoencoder
from rip_atoms.sae.formats._io import (
    config_bool,
    config_float,
    config_int,
    read_json,
    read_safetensors,
    take,
    write_json_atomic,
    write_safetensors_atomic,
)
from rip_atoms.sae.sae_errors import UnknownArchitectureError

CFG = "cfg.json"
WEIGHTS = "sae_weights.safetensors"
SPARSITY = "sparsity.safetensors"
SCALER = "activation_scaler.json"
SCHEMA_VERSION = "6.0.0"  # the SAELens config schema we write (≥ 6.0 ⇒ not migrated on load)

_LEGACY_RENAMES = {
    "hook_point": "hook_name",
    "hook_point_layer": "hook_layer",
    "hook_point_head_index": "hook_head_index",
    "activation_fn_str": "activation_fn",
}
_TOP_LEVEL = {
    "d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations",
    "reshape_activations", "architecture", "metadata", "k", "rescale_acts_by_decoder_norm",
}


def _major(version: str | None) -> int | None:
    m = re.match(r"\s*v?(\d+)", str(version)) if version else None
    return int(m.group(1)) if m else None


def is_legacy(cfg: dict) -> bool:
    """True for pre-6.0 configs (SAELens's ``handle_config_defaulting`` rule)."""
    version = cfg.get("sae_lens_version")
    if not version and isinstance(cfg.get("metadata"), dict):
        version = cfg["metadata"].get("sae_lens_version")
    major = _major(version)
    return major is None or major < 6


def parse_config(cfg: dict, path: Path) -> dict:
    """Normalise a v6 or legacy cfg.json into {architecture, k, rescale, apply_b_dec_to_input,
    normalize_activations, d_in, d_sae, metadata, legacy, finetuning_scaling_factor}."""
    legacy = is_legacy(cfg)
    if legacy:
        cfg = {_LEGACY_RENAMES.get(k, k): v for k, v in cfg.items()}
        arch = cfg.get("architecture") or "standard"
        act = cfg.get("activation_fn") or "relu"
        kwargs = cfg.get("activation_fn_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise FileFormatError(
                f"{path}: activation_fn_kwargs must be an object, got {kwargs!r}")
        if act == "topk":
            if kwargs.get("k") is None:
                raise FileFormatError(
                    f"{path}: activation_fn 'topk' without activation_fn_kwargs.k"
                )
            arch = "topk"
            cfg["k"] = kwargs["k"]
        elif act != "relu":
            raise UnknownArchitectureError(
                f"{path}: unknown activation function {act!r} (known: relu, topk)"
            )
        norm = cfg.get("normalize_activations")
        if isinstance(norm, bool):
            norm = "expected_average_only_in" if norm else "none"
        metadata = {k: v for k, v in cfg.items() if k not in _TOP_LEVEL}
    else:
        arch = cfg.get("architecture")
        if arch is None:
            raise FileFormatError(f"{path}: a v6 cfg.json without 'architecture'")
        norm = cfg.get("normalize_activations")
        if not isinstance(cfg.get("metadata") or {}, dict):
            raise FileFormatError(f"{path}: metadata must be an object, got "
                                  f"{type(cfg['metadata']).__name__}")
        metadata = dict(cfg.get("metadata") or {})
    if arch not in ARCHITECTURES:
        raise UnknownArchitectureError(
            f"{path}: unknown SAE architecture {arch!r} (known: {', '.join(ARCHITECTURES)})"
        )
    norm = norm or "none"
    if norm == "covariance_whitening":
        raise UnknownArchitectureError(
            f"{path}: normalize_activations 'covariance_whitening' is a training-time setting "
            "(SAELens folds it when training ends); this file was saved before folding"
        )
    if not isinstance(norm, str):
        raise FileFormatError(f"{path}: normalize_activations must be a string, got {norm!r}")
    if cfg.get("reshape_activations", "none") not in ("none", None):
        metadata["reshape_activations"] = cfg["reshape_activations"]
    key_k = "activation_fn_kwargs.k" if legacy and arch == "topk" else "k"
    return {
        "architecture": arch,
        "k": None if cfg.get("k") is None else config_int(cfg["k"], key_k, path, minimum=1),
        "rescale_acts_by_decoder_norm": config_bool(
            cfg.get("rescale_acts_by_decoder_norm"), "rescale_acts_by_decoder_norm", path),
        "apply_b_dec_to_input": config_bool(
            cfg.get("apply_b_dec_to_input"), "apply_b_dec_to_input", path, default=True),
        "normalize_activations": norm,
        "d_in": None if cfg.get("d_in") is None else config_int(cfg["d_in"], "d_in", path,
                                                                minimum=1),
        "d_sae": None if cfg.get("d_sae") is None else config_int(cfg["d_sae"], "d_sae", path,
                                                                  minimum=1),
        "metadata": metadata,
        "legacy": legacy,
        "finetuning_scaling_factor": config_bool(
            cfg.get("finetuning_scaling_factor"), "finetuning_scaling_factor", path),
    }


SAE_LENS_TENSOR_NAMES = {
    "standard": {"W_enc": ("W_enc",), "b_enc": ("b_enc",), "W_dec": ("W_dec",),
                 "b_dec": ("b_dec",)},
    "topk": {"W_enc": ("W_enc",), "b_enc": ("b_enc",), "W_dec": ("W_dec",),
             "b_dec": ("b_dec",)},
    "jumprelu": {"W_enc": ("W_enc",), "b_enc": ("b_enc",), "W_dec": ("W_dec",),
                 "b_dec": ("b_dec",), "threshold": ("threshold", "log_threshold")},
    "gated": {"W_enc": ("W_enc",), "b_gate": ("b_gate",), "r_mag": ("r_mag",),
              "b_mag": ("b_mag",), "W_dec": ("W_dec",), "b_dec": ("b_dec",)},
}


def load_sae_lens(folder: str | Path, *, input_scale: float | None = None) -> SparseAutoencoder:
    """Read a SAELens folder into the canonical :class:`SparseAutoencoder`."""
    folder = Path(folder)
    cfg_path, w_path = folder / CFG, folder / WEIGHTS
    cfg = read_json(cfg_path)
    p = parse_config(cfg, cfg_path)
    tensors = read_safetensors(w_path)
    arch = p["architecture"]
    w = take(tensors, SAE_LENS_TENSOR_NAMES[arch], w_path)
    notes: list[str] = []
    if arch == "jumprelu" and "threshold" not in tensors and "log_threshold" in tensors:
        w["threshold"] = torch.exp(tensors["log_threshold"].to(torch.float32))
        notes.append("threshold = exp(log_threshold)")
    if "scaling_factor" in tensors:
        sf = tensors["scaling_factor"].to(torch.float32)
        if p["finetuning_scaling_factor"] or not torch.allclose(sf, torch.ones_like(sf)):
            w["W_dec"] = w["W_dec"] * sf[:, None]  # legacy decode was (f ⊙ sf) W_dec
            notes.append("legacy finetuning scaling_factor folded into W_dec")
    d_in, d_sae = w["W_enc"].shape
    for key, val in (("d_in", d_in), ("d_sae", d_sae)):
        if p[key] is not None and p[key] != val:
            raise ShapeMismatchError(
                f"{cfg_path}: {key} = {p[key]} but {w_path.name} has W_enc of shape "
                f"{(d_in, d_sae)}"
            )
    meta = p["metadata"]
    scale = input_scale
    if p["normalize_activations"] == "expected_average_only_in" and scale is None:
        ours = meta.get("rip_atoms") if isinstance(meta.get("rip_atoms"), dict) else {}
        for key, cand in (("metadata.rip_atoms.input_scale", ours.get("input_scale")),
                          ("metadata.norm_scaling_factor", meta.get("norm_scaling_factor"))):
            if cand is not None:
                scale = config_float(cand, key, cfg_path, positive=True)
                break
        scaler = folder / SCALER
        if scale is None and scaler.is_file():
            s = read_json(scaler).get("scaling_factor")
            scale = config_float(s, "scaling_factor", scaler, positive=True) if (
                s is not None) else None
        if scale is None:
            notes.append("expected_average_only_in without a known scaling factor: "
                         "inputs must be scaled by the caller (input_scale)")
    return SparseAutoencoder(
        architecture=arch,
        k=p["k"],
        rescale_acts_by_decoder_norm=p["rescale_acts_by_decoder_norm"],
        apply_b_dec_to_input=p["apply_b_dec_to_input"],
        normalize_activations=p["normalize_activations"],
        input_scale=scale,
        metadata=meta,
        source=str(folder),
        format="sae_lens_legacy" if p["legacy"] else "sae_lens",
        notes=tuple(notes),
        **w,
    )


def sae_lens_config(sae: SparseAutoencoder, metadata: dict | None = None) -> dict:
    """The v6 cfg.json for ``sae`` (after folding a constant input scale)."""
    meta = {k: v for k, v in sae.metadata.items() if _jsonable(v)}
    meta.update(metadata or {})
    meta["sae_lens_version"] = meta.get("sae_lens_version") or SCHEMA_VERSION
    if (_major(meta["sae_lens_version"]) or 0) < 6:
        meta["sae_lens_version"] = SCHEMA_VERSION
    meta.setdefault("sae_lens_training_version", None)
    cfg = {
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": bool(sae.apply_b_dec_to_input),
        "normalize_activations": sae.normalize_activations,
        "reshape_activations": "none",
        "architecture": sae.architecture,
        "metadata": meta,
    }
    if sae.architecture == "topk":
        cfg["k"] = int(sae.k)
        cfg["rescale_acts_by_decoder_norm"] = bool(sae.rescale_acts_by_decoder_norm)
    return cfg


def _jsonable(v) -> bool:
    if v is None or isinstance(v, str | bool | int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list | tuple):
        return all(_jsonable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonable(x) for k, x in v.items())
    return False


def save_sae_lens(sae: SparseAutoencoder, folder: str | Path, *, metadata: dict | None = None,
                  log_sparsity: torch.Tensor | None = None) -> Path:
    """Write ``sae`` as a SAELens v6 folder (each file atomically); returns the folder.

    ``metadata`` is merged into cfg.json's ``metadata`` (put our provenance under
    ``metadata["rip_atoms"]``). ``log_sparsity`` (log10 firing frequency per latent) is written to
    ``sparsity.safetensors`` like SAELens does.
    """
    folder = Path(folder)
    if sae.normalize_activations == "expected_average_only_in":
        sae = sae.folded()
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors_atomic(folder / WEIGHTS, sae.state_dict())
    if log_sparsity is not None:
        write_safetensors_atomic(folder / SPARSITY, {"sparsity": log_sparsity.float()})
    write_json_atomic(folder / CFG, sae_lens_config(sae, metadata))
    return folder
