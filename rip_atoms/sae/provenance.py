"""Token provenance of a harvest: which token of which context every activation row comes from.

Beside each activation shard :func:`rip_atoms.sae.harvest.harvest` writes ::

    tokens/shard_{i:05d}.npy     int32, (tokens × 3): token id, context index, position
    tokens/strings.json          the tokenizer's name and the text of every token id used

so that any activation can be shown in its text (the atom cards of
:mod:`rip_atoms.criteria.atom_cards`) without loading a tokenizer. Row r of shard i describes row
r of every layer's ``layer_{L}/shard_{i:05d}.npy``: its token id, the index of its context in the
harvest's token stream (0-based, the contexts the harvest cut) and its position inside that
context (≥ ``skip_first``). The files are checksummed in the manifest like the shards (a shard
entry's ``provenance``, the manifest's ``token_strings``); a provenance array whose size,
checksum or row count does not match its shard is a :class:`CorruptShardError` (a
``FileFormatError``). Folders written before provenance existed still load; the store then says
why there is none (:meth:`ActivationStore.provenance_missing`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from rip_atoms.criteria.atom_cards import TokenProvenance
from rip_atoms.errors import FileFormatError
from rip_atoms.sae.formats._io import atomic_path, write_json_atomic
from rip_atoms.sae.sae_errors import CorruptShardError

PROVENANCE_DIR = "tokens"
STRINGS = f"{PROVENANCE_DIR}/strings.json"
COLUMNS = ("token_id", "context", "position")


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shard_provenance(contexts: np.ndarray, ctx_start: int, ctx_stop: int, skip_first: int,
                     n_tokens: int) -> np.ndarray:
    """(n_tokens × 3) int32 rows (token id, context, position) of the activations a shard holds:
    contexts ``ctx_start:ctx_stop`` of the token stream, positions ≥ ``skip_first``, in the
    harvest's row order (context-major), cut at ``n_tokens`` rows."""
    ctx = np.arange(ctx_start, ctx_stop)
    pos = np.arange(skip_first, contexts.shape[1])
    C, P = np.meshgrid(ctx, pos, indexing="ij")
    ids = contexts[ctx_start:ctx_stop, skip_first:]
    arr = np.stack([ids.reshape(-1), C.reshape(-1), P.reshape(-1)], axis=1)[:n_tokens]
    if arr.shape[0] != n_tokens:
        raise FileFormatError(f"provenance: contexts {ctx_start}..{ctx_stop} hold "
                              f"{arr.shape[0]} tokens, the shard {n_tokens}")
    return np.ascontiguousarray(arr, dtype=np.int32)


def write_provenance(out: Path, index: int, arr: np.ndarray) -> dict:
    """Write shard ``index``'s provenance array atomically; its manifest entry."""
    rel = f"{PROVENANCE_DIR}/shard_{index:05d}.npy"
    path = out / rel
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr, dtype=np.int32))
            fh.flush()
            os.fsync(fh.fileno())
    return {"path": rel, "bytes": path.stat().st_size, "sha256": sha256_file(path),
            "rows": int(arr.shape[0]), "columns": list(COLUMNS)}


def check_file(root: Path, info: dict) -> str | None:
    """None when the file matches its manifest entry (size, SHA-256), else what is wrong."""
    path = root / info["path"]
    if not path.is_file():
        return "missing"
    if path.stat().st_size != info["bytes"]:
        return f"{path.stat().st_size} bytes, manifest says {info['bytes']}"
    if sha256_file(path) != info["sha256"]:
        return "checksum mismatch"
    return None


def write_token_strings(out: Path, tokenizer, contexts: np.ndarray, name: str) -> dict:
    """``tokens/strings.json``: the tokenizer's name and the text of every token id in
    ``contexts`` (each id decoded alone); its manifest entry."""
    ids = np.unique(contexts)
    strings = {}
    for t in ids.tolist():
        try:
            strings[str(t)] = tokenizer.decode([int(t)])
        except Exception:  # a tokenizer that cannot decode one id alone
            strings[str(t)] = f"<{t}>"
    path = out / STRINGS
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"tokenizer": name, "strings": strings})
    return {"path": STRINGS, "bytes": path.stat().st_size, "sha256": sha256_file(path),
            "tokenizer": name}


def tokenizer_name(tokenizer, model_name: str) -> str:
    """The tokenizer's name: its ``name_or_path`` (a folder or hub name), else the model's."""
    name = str(getattr(tokenizer, "name_or_path", "") or "")
    where = f", {name}" if name and name != model_name else ""
    return f"the tokenizer of {model_name} ({type(tokenizer).__name__}{where})"


def validate_entry(info, where: str, man_path: Path) -> None:
    """A provenance or strings entry needs path (inside the folder), bytes and sha256."""
    rel = info.get("path") if isinstance(info, dict) else None
    if not (isinstance(rel, str) and isinstance(info.get("bytes"), int)
            and isinstance(info.get("sha256"), str)):
        raise FileFormatError(f"{man_path}: malformed manifest ({where}: needs path, bytes and "
                              "sha256)")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts:
        raise FileFormatError(f"{man_path}: malformed manifest ({where}: path {rel!r} leaves "
                              "the folder)")


def read_shard_provenance(root: Path, sh: dict, verify: bool = True) -> np.ndarray:
    """The provenance array of one manifest shard, checked against its entry and its shard
    (rows = the shard's token count, 3 int columns): CorruptShardError otherwise."""
    from rip_atoms.matrix_files import load_npy

    info = sh["provenance"]
    path = root / info["path"]
    if verify:
        problem = check_file(root, info)
        if problem:
            raise CorruptShardError(f"{path}: corrupt provenance array ({problem})")
    try:
        arr = load_npy(path)
    except FileFormatError as exc:
        raise CorruptShardError(str(exc)) from exc
    if arr.ndim != 2 or arr.shape != (sh["n_tokens"], 3) or not np.issubdtype(arr.dtype,
                                                                               np.integer):
        raise CorruptShardError(
            f"{path}: the provenance array has shape {arr.shape} ({arr.dtype}) but its shard "
            f"holds {sh['n_tokens']} tokens: it must be ({sh['n_tokens']}, 3) integers")
    return arr


def store_provenance(root: Path, manifest: dict, verify: bool = True
                     ) -> tuple[TokenProvenance | None, str | None]:
    """(provenance of every token, None) of a harvest folder, or (None, why there is none)."""
    shards = manifest.get("shards", [])
    if not shards:
        return None, "the harvest holds no shards"
    missing = [i for i, sh in enumerate(shards) if "provenance" not in sh]
    if missing:
        return None, (f"{root}: a harvest written before token provenance was recorded (shard "
                      f"{missing[0]} has none); rerun `rip-atoms harvest` into the same folder "
                      "to add it (the activations are kept)")
    arr = np.concatenate([read_shard_provenance(root, sh, verify) for sh in shards], axis=0)
    strings, tok = None, manifest.get("tokenizer")
    info = manifest.get("token_strings")
    if info is not None:
        path = root / info["path"]
        if verify:
            problem = check_file(root, info)
            if problem:
                raise CorruptShardError(f"{path}: corrupt token strings ({problem})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            strings = {int(k): str(v) for k, v in data["strings"].items()}
            tok = data.get("tokenizer", tok)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptShardError(f"{path}: unreadable token strings ({exc})") from exc
    return TokenProvenance(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64),
                           arr[:, 2].astype(np.int64), strings=strings, tokenizer=tok), None
