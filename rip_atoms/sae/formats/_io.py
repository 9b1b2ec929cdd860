"""File helpers shared by the format readers and writers: validated tensor reading (through
the core's safetensors checks, bf16 widened exactly), safe pickle/npz loading, JSON configs with
errors that name the file, and atomic writes (temporary file + ``os.replace``)."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save as safetensors_save_bytes

from rip_atoms.errors import FileFormatError, TensorNotFoundError
from rip_atoms.matrix_files import load_safetensors, safetensors_header


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; FileFormatError naming the file otherwise."""
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise FileFormatError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a `.safetensors` file as float32/int torch tensors (header validated
    against the file size first, so truncation is reported as such)."""
    header = safetensors_header(path)
    out = {}
    for name in header:
        arr = load_safetensors(path, name)
        out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def read_npz(path: Path) -> dict[str, torch.Tensor]:
    """Every array of an `.npz` archive (plain or ``savez_compressed``) without pickle."""
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise FileFormatError(f"{path}: not an .npz archive")
            out = {k: torch.from_numpy(np.ascontiguousarray(z[k])) for k in z.files}
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise FileFormatError(f"{path}: truncated or not an .npz archive ({exc})") from exc
    return out


def read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``d state dict, loaded with ``weights_only=True`` (no arbitrary pickle)."""
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles / zips
        msg = " ".join(str(exc).split())[:200]
        raise FileFormatError(
            f"{path}: not a weights-only torch state dict ({type(exc).__name__}: {msg})"
        ) from exc
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FileFormatError(f"{path}: expected a dict of tensors (a state dict)")
    return {k: v.detach().cpu() for k, v in obj.items()}


def take(tensors: dict[str, torch.Tensor], names: dict[str, tuple[str, ...]], path: Path,
         *, optional: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Pick canonical tensors by their accepted file names; missing required ones raise
    TensorNotFoundError listing what is missing and what the file holds."""
    out, missing = {}, []
    for canon, aliases in names.items():
        hit = next((a for a in aliases if a in tensors), None)
        if hit is None:
            if canon not in optional:
                missing.append(" or ".join(aliases))
            continue
        out[canon] = tensors[hit].to(torch.float32)
    if missing:
        raise TensorNotFoundError(
            f"{path}: missing tensor(s) {', '.join(missing)} (it holds: "
            f"{', '.join(sorted(tensors)) or 'none'})"
        )
    return out


# ---------------------------------------------------------------------- atomic writes
@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_json_atomic(path: Path, obj: dict) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_safetensors_atomic(path: Path, tensors: dict[str, torch.Tensor],
                             metadata: dict[str, str] | None = None) -> None:
    arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in tensors.items()}
    write_bytes_atomic(path, safetensors_save_bytes(arrays, metadata=metadata))
