"""Reading matrices from `.npy` and `.safetensors` files, with errors that name the file.

`.npy` files are opened with ``allow_pickle=False`` (optionally memory-mapped, so activation files
larger than memory can be streamed). `.safetensors` headers are parsed and checked against the file
size before any data is read, so a truncated or foreign file is reported as such rather than as an
obscure decoding error; bfloat16 tensors (common in released SAEs, and absent from numpy) are
widened to float32 exactly.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from rip_atoms.errors import FileFormatError, TensorNotFoundError

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,  # widened to float32 below
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def load_npy(path: str | os.PathLike, *, mmap: bool = False) -> np.ndarray:
    """Load a `.npy` array without pickle; ``mmap=True`` memory-maps it read-only."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise FileFormatError(f"{path}: not a .npy file (no NUMPY header)"
                              if len(magic) == 6 else f"{path}: truncated .npy file")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "python objects" in str(exc).lower():
            raise FileFormatError(
                f"{path}: holds Python objects (pickle), not a numeric array"
            ) from exc
        raise FileFormatError(f"{path}: truncated or not a .npy file ({exc})") from exc
    except (EOFError, OSError) as exc:
        raise FileFormatError(f"{path}: truncated or not a .npy file ({exc})") from exc
    if isinstance(arr, np.lib.npyio.NpzFile):  # pragma: no cover - np.load on .npz
        arr.close()
        raise FileFormatError(f"{path}: is an .npz archive, not a single .npy array")
    return arr


def safetensors_header(path: str | os.PathLike) -> dict[str, dict]:
    """Parse and validate a `.safetensors` header: ``{name: {"dtype", "shape", "data_offsets"}}``.

    Checks the 8-byte header length, the JSON, and that every tensor's byte range lies inside the
    file and matches its dtype and shape.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise FileFormatError(f"{path}: truncated or not a .safetensors file (under 8 bytes)")
        (n_header,) = struct.unpack("<Q", raw)
        if n_header == 0 or 8 + n_header > size:
            raise FileFormatError(
                f"{path}: truncated or not a .safetensors file (header of {n_header} bytes "
                f"in a file of {size})"
            )
        try:
            header = json.loads(fh.read(n_header))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"{path}: not a .safetensors file (bad header JSON)") from exc
    if not isinstance(header, dict):
        raise FileFormatError(f"{path}: not a .safetensors file (header is not an object)")
    data_len = size - 8 - n_header
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = info["dtype"]
            shape = [int(s) for s in info["shape"]]
            start, stop = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{path}: malformed header entry for tensor {name!r}") from exc
        if any(s < 0 for s in shape) or not 0 <= start <= stop:
            raise FileFormatError(f"{path}: malformed header entry for tensor {name!r} "
                                  f"(shape {shape}, offsets {start}..{stop})")
        if dtype not in _SAFETENSORS_DTYPES:
            raise FileFormatError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        itemsize = np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        if stop > data_len:
            raise FileFormatError(
                f"{path}: truncated (tensor {name!r} needs bytes {start}..{stop} of the data "
                f"section, which has {data_len})"
            )
        if stop - start != itemsize * int(np.prod(shape, dtype=np.int64)):
            raise FileFormatError(f"{path}: tensor {name!r} byte range does not match its shape")
        tensors[name] = {"dtype": dtype, "shape": shape, "data_offsets": (start, stop)}
    return tensors


def load_safetensors(path: str | os.PathLike, tensor: str | None = None) -> np.ndarray:
    """Load one tensor from a `.safetensors` file as a numpy array.

    ``tensor=None`` is allowed only when the file holds exactly one tensor. BF16 is widened to
    float32 (exactly: a bfloat16 is the top half of a float32).
    """
    path = Path(path)
    header = safetensors_header(path)
    names = sorted(header)
    if tensor is None:
        if len(names) != 1:
            raise TensorNotFoundError(
                f"{path}: holds {len(names)} tensors ({', '.join(names) or 'none'}); name one "
                f"with --tensor"
            )
        tensor = names[0]
    if tensor not in header:
        raise TensorNotFoundError(
            f"{path}: no tensor named {tensor!r} (it holds: {', '.join(names) or 'none'})"
        )
    info = header[tensor]
    start, stop = info["data_offsets"]
    with open(path, "rb") as fh:
        (n_header,) = struct.unpack("<Q", fh.read(8))
        fh.seek(8 + n_header + start)
        buf = fh.read(stop - start)
    arr = np.frombuffer(buf, dtype=np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<"))
    arr = arr.reshape(info["shape"])
    if info["dtype"] == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(arr.dtype.newbyteorder("="), copy=True)


def load_matrix(
    path: str | os.PathLike, tensor: str | None = None, *, mmap: bool = False
) -> np.ndarray:
    """Load a 2-D numeric matrix from `.npy` or `.safetensors`, checking rank and dtype."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if tensor is not None:
            raise FileFormatError(f"{path}: a .npy file holds one array; --tensor does not apply")
        arr = load_npy(path, mmap=mmap)
    elif suffix == ".safetensors":
        arr = load_safetensors(path, tensor)
    else:
        raise FileFormatError(f"{path}: unknown matrix format {suffix or '(no suffix)'}; "
                              "expected .npy or .safetensors")
    if arr.ndim != 2:
        raise FileFormatError(f"{path}: expected a 2-D matrix, found shape {tuple(arr.shape)}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise FileFormatError(f"{path}: expected a real numeric matrix, found dtype {arr.dtype}")
    return arr
