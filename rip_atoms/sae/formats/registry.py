"""The registry of SAE file formats: each format registers how to recognise it on disk and how
to load it (:func:`register_sae_format`, after SAELens's ``register_sae_class``), and
:func:`rip_atoms.sae.formats.detect_format` / :func:`~rip_atoms.sae.formats.load_sae` pick
from it instead of an if/elif chain.

A format is recognised from the file layout only, never from tensor shapes: a folder by the
names of the files in it (``detect_folder``), a file by its own name (``detect_file``).
Detection tries the formats in the order they were registered (the built-in ones in
:mod:`rip_atoms.sae.formats`: SAELens, sparsify, dictionary_learning, Gemma Scope, plain
tensors) and takes the first that claims the path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rip_atoms.errors import ParameterError
from rip_atoms.sae.canonical import SparseAutoencoder

__all__ = ["SAEFormat", "register_sae_format", "registered_formats", "sae_format",
           "unregister_sae_format"]

#: a loader: (path, the options of load_sae as keywords) → the canonical SAE
Loader = Callable[..., SparseAutoencoder]


@dataclass(frozen=True)
class SAEFormat:
    """One registered format.

    ``load(path, *, architecture, k, input_scale, apply_b_dec_to_input)`` reads it (the
    options :func:`~rip_atoms.sae.formats.load_sae` takes; a format uses those it needs).
    ``detect_folder(folder, names)`` returns the path to load when a folder holding files
    ``names`` is in this format (the folder itself or a file in it), else None;
    ``folder_layout`` says that layout in words, for the error message of a folder no format
    claims (e.g. ``"ae.pt (dictionary_learning)"``); ``folder_files`` are the names of the
    files of that layout that, given alone beside a ``cfg.json``, mean the folder.
    ``detect_file(path)`` says whether a file is in this format by its name.
    ``fills_input_scale``: :func:`~rip_atoms.sae.formats.load_sae` supplies a missing
    ``expected_average_only_in`` scale from its ``input_scale`` after loading (the plain
    tensors take it when they are built instead).
    """

    name: str
    load: Loader
    detect_folder: Callable[[Path, set[str]], Path | None] | None = None
    folder_layout: str | None = None
    folder_files: tuple[str, ...] = ()
    detect_file: Callable[[Path], bool] | None = None
    fills_input_scale: bool = True


_FORMATS: dict[str, SAEFormat] = {}


def register_sae_format(name: str, load: Loader, *,
                        detect_folder: Callable[[Path, set[str]], Path | None] | None = None,
                        folder_layout: str | None = None, folder_files: tuple[str, ...] = (),
                        detect_file: Callable[[Path], bool] | None = None,
                        fills_input_scale: bool = True) -> SAEFormat:
    """Register the format ``name`` (see :class:`SAEFormat` for the fields); it is tried after
    those registered before it. Registering a name twice is a
    :class:`~rip_atoms.errors.ParameterError`."""
    if name in _FORMATS:
        raise ParameterError(f"SAE format {name!r} is already registered")
    if detect_folder is not None and not folder_layout:
        raise ParameterError(f"SAE format {name!r}: a folder format needs its folder_layout "
                             "in words")
    fmt = SAEFormat(name=name, load=load, detect_folder=detect_folder,
                    folder_layout=folder_layout, folder_files=tuple(folder_files),
                    detect_file=detect_file, fills_input_scale=fills_input_scale)
    _FORMATS[name] = fmt
    return fmt


def registered_formats() -> tuple[SAEFormat, ...]:
    """The registered formats, in detection order."""
    return tuple(_FORMATS.values())


def sae_format(name: str) -> SAEFormat | None:
    """The format registered as ``name`` (None when there is none)."""
    return _FORMATS.get(name)


def unregister_sae_format(name: str) -> None:
    """Remove the format registered as ``name`` (nothing when there is none)."""
    _FORMATS.pop(name, None)
