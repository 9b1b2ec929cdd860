"""Reading matrices from `.npy` and `.safetensors` files, with errors that name the file.

`.npy` files are opened with ``allow_pickle=False`` (optionally memory-mapped, so activation files
larger than memory can be streamed). The headers of both formats are parsed and checked against the
file size before any data is read, so a truncated or foreign file is reported as such (with the
bytes the header promises and the bytes the file holds) rather than as an obscure decoding error or
a 74.5 GiB allocation; bfloat16 tensors (common in released SAEs, and absent from numpy) are widened
to float32 exactly.

Memory. Reading a matrix into memory first checks that it fits (:func:`check_memory`: the bytes
needed against the memory available, see :func:`available_memory`) and raises
:class:`~rip_atoms.errors.InsufficientMemoryError` saying how much would be needed. A memory-mapped
`.npy` (``mmap=True``) is not checked: its data stays on disk and is paged in as it is read, which
is how activation files larger than memory are streamed; a caller that copies a whole memory map
(e.g. to float64) calls :func:`check_memory` for that copy itself.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from pathlib import Path

import numpy as np

from rip_atoms.errors import (
    FileFormatError,
    InsufficientMemoryError,
    ParameterError,
    TensorNotFoundError,
)

MEMORY_LIMIT_ENV = "RIP_ATOMS_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

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


def format_bytes(n: float) -> str:
    """A byte count for messages: ``80000000000`` → ``"74.5 GiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _parse_bytes(text: str) -> int | None:
    """``$RIP_ATOMS_MEMORY_LIMIT``: bytes, optionally with a K/M/G/T suffix (binary units,
    ``8G``, ``8GiB`` and ``8GB`` alike), or ``off`` (None: no check)."""
    t = text.strip()
    if t.lower() in ("off", "none", "unlimited"):
        return None
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGTkmgt]?)(?:i?[Bb])?", t)
    value = float(m.group(1)) if m else 0.0
    if not 0 < value < float("inf"):
        raise ParameterError(
            f"{MEMORY_LIMIT_ENV}={text!r}: expected a positive number of bytes (suffix K, M, G "
            "or T allowed, e.g. 8G) or 'off'"
        )
    return int(value * _UNITS[m.group(2).upper()])


def _cgroup_headroom() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, then v1), if it has one."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:
            return None
        return max(int(limit) - usage, 0)
    return None


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate, or None when unknown (no check).

    ``$RIP_ATOMS_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix; ``off`` disables the check)
    overrides the detection. Otherwise: the memory the OS reports available (psutil if installed,
    else ``MemAvailable`` of /proc/meminfo, else ``sysconf(SC_AVPHYS_PAGES)``), capped by the
    headroom under a cgroup (container) memory limit.
    """
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env is not None and env.strip():
        return _parse_bytes(env)
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:  # not installed, or no /proc: fall back below
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            pass
        if avail is None:
            try:
                avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (AttributeError, ValueError, OSError):
                avail = None
    cg = _cgroup_headroom()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def check_memory(nbytes: int, what: str, *, hint: str = "") -> None:
    """Raise :class:`InsufficientMemoryError` when ``nbytes`` exceed :func:`available_memory`.

    ``what`` names the input and the allocation (``"x.npy: a 100000×100000 float64 matrix"``);
    the message adds how much would be needed and how much is available, then ``hint``.
    """
    avail = available_memory()
    if avail is None or nbytes <= avail:
        return
    limit = (f"the limit set by ${MEMORY_LIMIT_ENV} is {format_bytes(avail)}"
             if os.environ.get(MEMORY_LIMIT_ENV, "").strip()
             else f"only {format_bytes(avail)} is available")
    raise InsufficientMemoryError(
        f"{what} needs {format_bytes(nbytes)} of memory but {limit}"
        + (f"; {hint}" if hint else "")
    )


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape) if shape else "scalar"


def npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data_offset)`` of a `.npy` file, with the data size checked against the
    file size: a file shorter than its header promises is a :class:`FileFormatError` naming the
    file and the bytes expected and found; an object (pickle) array is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        magic = fh.read(6)
        if magic != b"\x93NUMPY":
            raise FileFormatError(f"{path}: not a .npy file (no NUMPY header)"
                                  if len(magic) == 6 else f"{path}: truncated .npy file")
        fh.seek(0)
        try:
            major, _minor = np.lib.format.read_magic(fh)
            if major == 1:
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
            raise FileFormatError(f"{path}: truncated or not a .npy file (bad header: "
                                  f"{' '.join(str(exc).split())})") from exc
        offset = fh.tell()
    if dtype.hasobject:
        raise FileFormatError(f"{path}: holds Python objects (pickle), not a numeric array")
    shape = tuple(int(s) for s in shape)
    n_bytes = math.prod(shape) * dtype.itemsize
    if size - offset < n_bytes:
        raise FileFormatError(
            f"{path}: truncated .npy file: its header claims a {_shape_text(shape)} {dtype} "
            f"array, {n_bytes} bytes of data, but the file holds {max(size - offset, 0)} "
            "bytes after the header"
        )
    return shape, dtype, offset


def load_npy(path: str | os.PathLike, *, mmap: bool = False) -> np.ndarray:
    """Load a `.npy` array without pickle; ``mmap=True`` memory-maps it read-only.

    The header is checked against the file size first (:func:`npy_header`). Without ``mmap`` the
    array must fit in the available memory (:func:`check_memory`), else
    :class:`~rip_atoms.errors.InsufficientMemoryError`; a memory map is not checked (its data is
    paged in from disk as it is read).
    """
    path = Path(path)
    shape, dtype, _ = npy_header(path)
    if not mmap:
        check_memory(math.prod(shape) * dtype.itemsize,
                     f"{path}: loading a {_shape_text(shape)} {dtype} array",
                     hint="free memory, or use a smaller file")
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
    except MemoryError as exc:  # the check above passed, but the allocation still failed
        n = math.prod(shape) * dtype.itemsize
        raise InsufficientMemoryError(
            f"{path}: loading a {_shape_text(shape)} {dtype} array needs {format_bytes(n)} of "
            "memory and the allocation failed; free memory, or use a smaller file"
        ) from exc
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
    out_bytes = math.prod(info["shape"]) * (4 if info["dtype"] == "BF16" else (
        np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).itemsize))
    check_memory((stop - start) + 2 * out_bytes,
                 f"{path}: loading tensor {tensor!r} ({_shape_text(tuple(info['shape']))} "
                 f"{info['dtype']})", hint="free memory, or use a smaller file")
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
