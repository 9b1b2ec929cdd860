"""File helpers shared by the format readers and writers: validated tensor reading (through
the core's safetensors checks, bf16 widened exactly), safe pickle/npz loading, JSON configs with
errors that name the file, and atomic writes (temporary file + ``os.replace``)."""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import tempfile
import warnings
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


def config_int(value, key: str, path: Path, *, minimum: int | None = None) -> int:
    """An integer config value (``d_in``, ``k`` …): a JSON integer, or an integral float or
    string; anything else is a :class:`FileFormatError` naming the file and the key."""
    v = None
    if isinstance(value, int) and not isinstance(value, bool):
        v = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        v = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        v = int(value)
    if v is None:
        raise FileFormatError(f"{path}: {key} must be an integer, got {value!r}")
    if minimum is not None and v < minimum:
        raise FileFormatError(f"{path}: {key} must be ≥ {minimum}, got {v}")
    return v


def config_float(value, key: str, path: Path, *, positive: bool = False) -> float:
    """A finite real config value (a JSON number or a numeric string); FileFormatError naming
    the file and the key otherwise."""
    v = None
    if not isinstance(value, bool):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = None
    if v is None:
        raise FileFormatError(f"{path}: {key} must be a number, got {value!r}")
    if not math.isfinite(v) or (positive and v <= 0):
        raise FileFormatError(
            f"{path}: {key} must be a {'positive ' if positive else ''}finite number, got "
            f"{value!r}")
    return v


def config_bool(value, key: str, path: Path, default: bool = False) -> bool:
    """A boolean config value (JSON true/false, or 0/1; null or absent is ``default``);
    FileFormatError naming the file and the key otherwise."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FileFormatError(f"{path}: {key} must be true or false, got {value!r}")


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


_REFUSED_GLOBAL = re.compile(r"GLOBAL\s+([\w.]+)")
_REFUSED_OTHER = re.compile(r"(Unsupported operand \d+|Unsupported class [\w.]+|"
                            r"Unsupported global: [\w. ]+)")


def _first_sentence(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception message, without any advice about weights_only."""
    text = " ".join(str(exc).split())
    sentences = [t for t in re.split(r"(?<=[.!?])\s+", text) if "weights_only" not in t]
    out = sentences[0] if sentences else type(exc).__name__
    return out if len(out) <= limit else out[: limit - 1] + "…"


def read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``d state dict, loaded with ``weights_only=True`` (no arbitrary pickle).

    A file whose pickle names code or other non-tensor objects (``os.system``, a class) is
    refused for safety with a :class:`FileFormatError` that says so, and nothing in it runs;
    the message never suggests loading it with ``weights_only=False``.
    """
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = " ".join(str(exc).split())
        m = _REFUSED_GLOBAL.search(text)
        what = (f"it references {m.group(1)}" if m else
                (f"{m2.group(1)}" if (m2 := _REFUSED_OTHER.search(text)) else
                 "it uses pickle instructions a weights-only load does not allow"))
        raise FileFormatError(
            f"{path}: refused for safety: the file holds code objects or other non-tensor "
            f"Python objects ({what}), which the weights-only loader never loads or runs; an "
            "SAE file must hold only tensors (a state dict saved with torch.save)"
        ) from exc
    except Exception as exc:  # torch raises many types for truncated or foreign zips
        raise FileFormatError(
            f"{path}: truncated, corrupt or not a torch.save file ({type(exc).__name__}: "
            f"{_first_sentence(exc)})"
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
