"""SAE file formats → one canonical :class:`~rip_atoms.sae.canonical.SparseAutoencoder`.

=====================================  =================================================
what is on disk                        reader
=====================================  =================================================
``cfg.json`` + ``sae_weights.safetensors``  SAELens v6 or legacy (:mod:`.sae_lens`)
``cfg.json`` + ``sae.safetensors``          EleutherAI sparsify (:mod:`.sparsify`)
``ae.pt`` (+ ``config.json``)               dictionary_learning (:mod:`.dictionary_learning`)
``params.npz`` / any ``.npz``               Gemma Scope (:mod:`.gemma_scope`)
a ``.safetensors``/``.npz``/``.pt`` state dict + ``architecture=``  plain tensors
=====================================  =================================================

:func:`load_sae` detects the format from the file layout (never from tensor shapes);
:func:`save_sae` writes the SAELens v6 layout.
"""

from __future__ import annotations

from pathlib import Path

from rip_atoms.dictionary import register_sae_reader
from rip_atoms.errors import FileFormatError
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.formats.dictionary_learning import load_dictionary_learning
from rip_atoms.sae.formats.gemma_scope import load_gemma_scope
from rip_atoms.sae.formats.sae_lens import load_sae_lens, save_sae_lens
from rip_atoms.sae.formats.sparsify import load_sparsify
from rip_atoms.sae.formats.tensors import load_tensors

FORMATS = ("sae_lens", "sparsify", "dictionary_learning", "gemma_scope", "tensors")

__all__ = [
    "FORMATS", "detect_format", "load_dictionary_learning", "load_gemma_scope", "load_sae",
    "load_sae_lens", "load_sparsify", "load_tensors", "save_sae", "save_sae_lens",
]


def detect_format(spec: str | Path) -> tuple[str, Path]:
    """(format, path) for a file or folder, from its layout."""
    path = Path(spec)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file or folder")
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        if "cfg.json" in names and "sae_weights.safetensors" in names:
            return "sae_lens", path
        if "cfg.json" in names and "sae.safetensors" in names:
            return "sparsify", path
        if "ae.pt" in names:
            return "dictionary_learning", path / "ae.pt"
        if "params.npz" in names:
            return "gemma_scope", path / "params.npz"
        raise FileFormatError(
            f"{path}: not an SAE folder (expected cfg.json + sae_weights.safetensors "
            "(SAELens), cfg.json + sae.safetensors (sparsify), ae.pt (dictionary_learning) or "
            "params.npz (Gemma Scope))"
        )
    name, suffix = path.name, path.suffix.lower()
    if name in ("cfg.json", "sae_weights.safetensors", "sae.safetensors") and (
            path.parent / "cfg.json").is_file():
        return detect_format(path.parent)
    if name == "ae.pt":
        return "dictionary_learning", path
    if suffix == ".npz":
        return "gemma_scope", path
    if suffix in (".safetensors", ".pt", ".pth", ".bin"):
        return "tensors", path
    raise FileFormatError(f"{path}: not a known SAE file (.safetensors, .npz, .pt, a folder)")


def load_sae(spec: str | Path, *, format: str | None = None, architecture: str | None = None,
             k: int | None = None, input_scale: float | None = None,
             apply_b_dec_to_input: bool = True) -> SparseAutoencoder:
    """Load any supported SAE file or folder into the canonical object.

    ``format`` overrides detection (one of :data:`FORMATS`); ``architecture``/``k``/
    ``apply_b_dec_to_input`` are needed only for plain tensors; ``input_scale`` supplies the
    ``expected_average_only_in`` factor when the file lacks it.
    """
    fmt, path = detect_format(spec) if format is None else (format, Path(spec))
    if fmt == "sae_lens":
        sae = load_sae_lens(path, input_scale=input_scale)
    elif fmt == "sparsify":
        sae = load_sparsify(path)
    elif fmt == "dictionary_learning":
        sae = load_dictionary_learning(path)
    elif fmt == "gemma_scope":
        sae = load_gemma_scope(path)
    elif fmt == "tensors":
        return load_tensors(path, architecture=architecture, k=k,
                            apply_b_dec_to_input=apply_b_dec_to_input, input_scale=input_scale)
    else:
        raise FileFormatError(f"{spec}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if input_scale is not None and sae.input_scale is None and (
            sae.normalize_activations == "expected_average_only_in"):
        sae = sae.with_input_scale(input_scale)
    return sae


def save_sae(sae: SparseAutoencoder, folder: str | Path, *, metadata: dict | None = None,
             **kw) -> Path:
    """Save in the SAELens v6 layout (see :func:`.sae_lens.save_sae_lens`)."""
    return save_sae_lens(sae, folder, metadata=metadata, **kw)


def _read_sae_dictionary(path: Path):
    """D = W_decᵀ of the SAE at ``path`` (the reader :meth:`Dictionary.load` uses)."""
    return load_sae(path).dictionary()


register_sae_reader(_read_sae_dictionary)
