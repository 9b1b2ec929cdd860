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

:func:`load_sae` detects the format from the file layout (never from tensor shapes), trying the
formats of the registry (:mod:`.registry`) in the order they are registered below; another
format joins with :func:`register_sae_format`. :func:`save_sae` writes the SAELens v6 layout.
"""

from __future__ import annotations

from pathlib import Path

from rip_atoms.dictionary import register_sae_reader
from rip_atoms.errors import FileFormatError
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.formats.dictionary_learning import load_dictionary_learning
from rip_atoms.sae.formats.gemma_scope import load_gemma_scope
from rip_atoms.sae.formats.registry import (
    SAEFormat,
    register_sae_format,
    registered_formats,
    sae_format,
)
from rip_atoms.sae.formats.sae_lens import load_sae_lens, save_sae_lens
from rip_atoms.sae.formats.sparsify import load_sparsify
from rip_atoms.sae.formats.tensors import load_tensors

__all__ = [
    "FORMATS", "SAEFormat", "detect_format", "load_dictionary_learning", "load_gemma_scope",
    "load_sae", "load_sae_lens", "load_sparsify", "load_tensors", "register_sae_format",
    "registered_formats", "save_sae", "save_sae_lens",
]

# ---------------------------------------------------------------------- the built-in formats
# in the order detection tries them (a folder holding both cfg.json + sae_weights.safetensors
# and ae.pt is SAELens; any other .npz is Gemma Scope; the plain tensors come last)
register_sae_format(
    "sae_lens", lambda path, *, input_scale, **_: load_sae_lens(path, input_scale=input_scale),
    detect_folder=lambda folder, names: folder if {"cfg.json", "sae_weights.safetensors"}
    <= names else None,
    folder_layout="cfg.json + sae_weights.safetensors (SAELens)",
    folder_files=("cfg.json", "sae_weights.safetensors"))
register_sae_format(
    "sparsify", lambda path, **_: load_sparsify(path),
    detect_folder=lambda folder, names: folder if {"cfg.json", "sae.safetensors"} <= names
    else None,
    folder_layout="cfg.json + sae.safetensors (sparsify)",
    folder_files=("cfg.json", "sae.safetensors"))
register_sae_format(
    "dictionary_learning", lambda path, **_: load_dictionary_learning(path),
    detect_folder=lambda folder, names: folder / "ae.pt" if "ae.pt" in names else None,
    folder_layout="ae.pt (dictionary_learning)",
    detect_file=lambda path: path.name == "ae.pt")
register_sae_format(
    "gemma_scope", lambda path, **_: load_gemma_scope(path),
    detect_folder=lambda folder, names: folder / "params.npz" if "params.npz" in names
    else None,
    folder_layout="params.npz (Gemma Scope)",
    detect_file=lambda path: path.suffix.lower() == ".npz")
register_sae_format(
    "tensors", lambda path, *, architecture, k, input_scale, apply_b_dec_to_input:
    load_tensors(path, architecture=architecture, k=k,
                 apply_b_dec_to_input=apply_b_dec_to_input, input_scale=input_scale),
    detect_file=lambda path: path.suffix.lower() in (".safetensors", ".pt", ".pth", ".bin"),
    fills_input_scale=False)

#: the names of the built-in formats (:func:`registered_formats` lists any added later too)
FORMATS = tuple(f.name for f in registered_formats())


def _in_words(items: list[str]) -> str:
    """"a", "a or b", "a, b or c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def detect_format(spec: str | Path) -> tuple[str, Path]:
    """(format, path) for a file or folder, from its layout: the first registered format
    (:func:`register_sae_format`) whose folder or file test claims it."""
    path = Path(spec)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file or folder")
    formats = registered_formats()
    if path.is_dir():
        names = {p.name for p in path.iterdir()}
        for fmt in formats:
            found = fmt.detect_folder(path, names) if fmt.detect_folder is not None else None
            if found is not None:
                return fmt.name, found
        layouts = [fmt.folder_layout for fmt in formats if fmt.detect_folder is not None]
        raise FileFormatError(f"{path}: not an SAE folder (expected {_in_words(layouts)})")
    members = {name for fmt in formats for name in fmt.folder_files}
    if path.name in members and (path.parent / "cfg.json").is_file():
        return detect_format(path.parent)
    for fmt in formats:
        if fmt.detect_file is not None and fmt.detect_file(path):
            return fmt.name, path
    raise FileFormatError(f"{path}: not a known SAE file (.safetensors, .npz, .pt, a folder)")


def load_sae(spec: str | Path, *, format: str | None = None, architecture: str | None = None,
             k: int | None = None, input_scale: float | None = None,
             apply_b_dec_to_input: bool = True) -> SparseAutoencoder:
    """Load any supported SAE file or folder into the canonical object, with the loader its
    registered format names (:func:`register_sae_format`).

    ``format`` overrides detection (one of :func:`registered_formats`, the built-in ones in
    :data:`FORMATS`); ``architecture``/``k``/``apply_b_dec_to_input`` are needed only for plain
    tensors; ``input_scale`` supplies the ``expected_average_only_in`` factor when the file
    lacks it.
    """
    name, path = detect_format(spec) if format is None else (format, Path(spec))
    fmt = sae_format(name)
    if fmt is None:
        known = ", ".join(f.name for f in registered_formats())
        raise FileFormatError(f"{spec}: unknown format {name!r} (known: {known})")
    sae = fmt.load(path, architecture=architecture, k=k, input_scale=input_scale,
                   apply_b_dec_to_input=apply_b_dec_to_input)
    if fmt.fills_input_scale and input_scale is not None and sae.input_scale is None and (
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
