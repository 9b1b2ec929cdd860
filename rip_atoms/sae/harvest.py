"""Harvesting residual-stream activations from a causal LM into shards with a manifest.

Text → tokens: documents are tokenised without special tokens and joined with the EOS token (when
the tokenizer has one) into one stream, cut into contexts of ``context_size`` tokens; with
``prepend_bos`` each context starts with the BOS token (then holds context_size − 1 text
tokens). By default (``prepend_bos=None``) the BOS is prepended exactly when the tokenizer itself
adds one (Gemma, Llama); SmolLM2's tokenizer does not, and prepending its ``<|im_start|>`` turns
the first text token into a second attention sink (norm ~40× the median).

Each batch of contexts runs through the model with a forward hook on every requested decoder
block (the output of block L = ``blocks.{L}.hook_resid_post``); the hook on the deepest requested
block raises, so the blocks above it are never computed. Positions < ``skip_first`` (default 1:
position 0, the BOS or first token, an attention sink whose norm is ~100× the rest) are dropped.

On disk (``out_dir``)::

    manifest.json                     what, from where, and every shard with its checksum
    layer_{L}/shard_{i:05d}.npy       float32, (tokens × d_model), one file per layer per shard
    tokens/shard_{i:05d}.npy          int32, (tokens × 3): token id, context, position of each row
    tokens/strings.json               the tokenizer's name and the text of every token id used

The token provenance (:mod:`rip_atoms.sae.provenance`) lets any activation be shown in its text;
it is checksummed in the manifest like the shards, and a folder harvested before it existed gets
it on its next (resumed) harvest.

Every file is written atomically (temporary file + ``os.replace``) and a shard enters the manifest
only after its files are on disk, so a killed harvest loses nothing already written: with
``resume`` (the default) it verifies the existing shards (size and SHA-256), drops any that are
missing or corrupt together with those after them, and continues from the first context not yet
written — producing the same files an uninterrupted run would.

:class:`ActivationStore` reads a harvest (or a plain ``.npy`` matrix), verifying each shard
against the manifest; held-out tokens are whole contexts (every k-th context), never seen in
training. A harvest cut short (``complete: false``) is refused where a finished one is expected
(:meth:`ActivationStore.require_complete`) unless the caller accepts it.

Ctrl-C (SIGINT) stops a harvest cleanly: no temporary file is left, the manifest lists exactly
the shards on disk, and :class:`~rip_atoms.sae.errors.HarvestInterrupted` (a
:class:`~rip_atoms.errors.Interrupted`) says how many tokens are saved; a rerun resumes. Stale
temporary files of a killed run are removed when the folder is next harvested into.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rip_atoms.criteria.units import token_split
from rip_atoms.errors import FileFormatError, Interrupted, ParameterError, ShapeMismatchError
from rip_atoms.matrix_files import load_npy
from rip_atoms.sae.errors import (
    CheckpointError,
    CorruptShardError,
    HarvestInterrupted,
    IncompleteHarvestError,
    MissingDependencyError,
)
from rip_atoms.sae.formats._io import atomic_path, read_json, write_json_atomic
from rip_atoms.sae.model import LoadedModel
from rip_atoms.sae.provenance import (
    check_file,
    sha256_file,
    shard_provenance,
    tokenizer_name,
    validate_entry,
    write_provenance,
    write_token_strings,
)

MANIFEST = "manifest.json"
FORMAT = "rip_atoms.activations/1"


# ---------------------------------------------------------------------- text
def load_texts(spec: str | Path | Iterable[str | Path] | None = None) -> tuple[str, list[str]]:
    """(label, documents) for a text spec.

    ``None`` or ``"pydoc"``: the Python standard library's ``pydoc_data.topics`` (offline; about
    110k SmolLM2 tokens), one document per topic in sorted order. A ``.txt``/``.md`` file: one
    document. A ``.jsonl`` file: the ``"text"`` field of each line. A folder: its ``.txt``/``.md``
    files in sorted order. ``"hf:NAME[:SPLIT]"``: a Hugging Face dataset's ``text`` column (needs
    ``datasets`` and the hub). A list: the union of its items.
    """
    if spec is None or spec == "pydoc":
        from pydoc_data import topics

        keys = sorted(topics.topics)
        return "pydoc_data.topics", [topics.topics[k] for k in keys]
    if isinstance(spec, list | tuple):
        labels, docs = [], []
        for item in spec:
            lab, d = load_texts(item)
            labels.append(lab)
            docs.extend(d)
        return " + ".join(labels), docs
    text = str(spec)
    if text.startswith("hf:"):
        parts = text[3:].split(":")
        try:
            import datasets
        except ImportError as exc:
            raise MissingDependencyError(f"{text}: needs the datasets package") from exc
        try:
            ds = datasets.load_dataset(parts[0], split=parts[1] if len(parts) > 1 else "train")
        except Exception as exc:  # hub unreachable, unknown name, …
            raise MissingDependencyError(
                f"{text}: cannot load the dataset ({' '.join(str(exc).split())[:200]})"
            ) from exc
        return text, [str(t) for t in ds["text"]]
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md"))
        if not files:
            raise FileFormatError(f"{path}: no .txt or .md files")
        return str(path), [p.read_text(encoding="utf-8", errors="replace") for p in files]
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file (text source)")
    if path.suffix == ".jsonl":
        docs = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                docs.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise FileFormatError(f"{path}: line {i + 1} is not a JSON object with 'text'"
                                      ) from exc
        return str(path), docs
    return str(path), [path.read_text(encoding="utf-8", errors="replace")]


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether the tokenizer itself starts an encoding with its BOS token (Gemma, Llama: yes;
    SmolLM2, whose "BOS" is the chat marker ``<|im_start|>``: no)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and int(ids[0]) == int(bos)


def token_contexts(tokenizer, docs: list[str], context_size: int, *,
                   prepend_bos: bool | None = None) -> tuple[np.ndarray, int | None]:
    """Contexts (n_contexts × context_size int64) from the documents, and the BOS id used.
    ``prepend_bos=None`` prepends it exactly when the tokenizer would (the model's training
    convention, :func:`tokenizer_adds_bos`)."""
    if prepend_bos is None:
        prepend_bos = tokenizer_adds_bos(tokenizer)
    bos = getattr(tokenizer, "bos_token_id", None) if prepend_bos else None
    eos = getattr(tokenizer, "eos_token_id", None)
    stream: list[int] = []
    for doc in docs:
        ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
        stream.extend(int(t) for t in ids)
        if eos is not None:
            stream.append(int(eos))
    body = context_size - (1 if bos is not None else 0)
    if body < 1:
        raise ParameterError(f"context_size {context_size} leaves no room for text")
    n_ctx = len(stream) // body
    arr = np.asarray(stream[: n_ctx * body], dtype=np.int64).reshape(n_ctx, body)
    if bos is not None:
        arr = np.concatenate([np.full((n_ctx, 1), bos, dtype=np.int64), arr], axis=1)
    return arr, bos


# ---------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class HarvestResult:
    """A finished (or interrupted) harvest: where, what, how many tokens, how fast."""

    out_dir: str
    layers: tuple[int, ...]
    d_model: int
    n_tokens: int
    n_shards: int
    complete: bool
    text_exhausted: bool
    seconds: float
    tokens_per_second: float
    resumed_tokens: int
    manifest: dict = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "layers": list(self.layers), "d_model": self.d_model,
                "n_tokens": self.n_tokens, "n_shards": self.n_shards, "complete": self.complete,
                "text_exhausted": self.text_exhausted, "seconds": self.seconds,
                "tokens_per_second": self.tokens_per_second,
                "resumed_tokens": self.resumed_tokens,
                "model": self.manifest.get("model"), "text": self.manifest.get("text")}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_manifest(man: dict, man_path: Path) -> None:
    """Check a harvest manifest's structure (the fields :class:`ActivationStore` and a resumed
    :func:`harvest` read): FileFormatError naming the file and the first bad field. Shard paths
    must be relative and inside the folder."""
    def bad(what: str) -> FileFormatError:
        return FileFormatError(f"{man_path}: malformed manifest ({what})")

    layers = man.get("layers")
    if not isinstance(layers, list) or not layers or not all(_is_int(x) for x in layers):
        raise bad(f"layers must be a non-empty list of integers, got {layers!r}")
    for key, least in (("d_model", 1), ("n_tokens", 0), ("tokens_per_context", 1)):
        if not _is_int(man.get(key)) or man[key] < least:
            raise bad(f"{key} must be an integer ≥ {least}, got {man.get(key)!r}")
    shards = man.get("shards")
    if not isinstance(shards, list):
        raise bad(f"shards must be a list, got {type(shards).__name__}")
    for i, sh in enumerate(shards):
        if not isinstance(sh, dict) or not _is_int(sh.get("n_tokens")) or sh["n_tokens"] < 0:
            raise bad(f"shard {i} has no token count")
        ctx = sh.get("contexts")
        if not (isinstance(ctx, list) and len(ctx) == 2 and all(_is_int(c) for c in ctx)):
            raise bad(f"shard {i}: contexts must be [start, stop]")
        files = sh.get("files")
        if not isinstance(files, dict) or set(files) != {str(x) for x in layers}:
            raise bad(f"shard {i}: files must name every layer {layers}")
        for layer, info in files.items():
            rel = info.get("path") if isinstance(info, dict) else None
            if not (isinstance(rel, str) and _is_int(info.get("bytes"))
                    and isinstance(info.get("sha256"), str)):
                raise bad(f"shard {i}, layer {layer}: needs path, bytes and sha256")
            parts = Path(rel).parts
            if Path(rel).is_absolute() or ".." in parts or not parts:
                raise bad(f"shard {i}, layer {layer}: path {rel!r} leaves the folder")
        if "provenance" in sh:
            validate_entry(sh["provenance"], f"shard {i}, provenance", man_path)
    if "token_strings" in man:
        validate_entry(man["token_strings"], "token_strings", man_path)


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _write_shard(path: Path, arr: np.ndarray) -> dict:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr, dtype=np.float32))
            fh.flush()
            os.fsync(fh.fileno())
    return {"bytes": path.stat().st_size, "sha256": _sha256(path), "rows": int(arr.shape[0])}


def _check_shard(root: Path, info: dict, d_model: int) -> str | None:
    """None when the shard file matches its manifest entry, else what is wrong."""
    path = root / info["path"]
    if not path.is_file():
        return "missing"
    if path.stat().st_size != info["bytes"]:
        return f"{path.stat().st_size} bytes, manifest says {info['bytes']}"
    if _sha256(path) != info["sha256"]:
        return "checksum mismatch"
    return None


def remove_stale_temporaries(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporary files that an atomic write of ``folder/NAME`` (for each of
    ``names``, which may contain ``*`` patterns) leaves behind when its process is killed:
    ``.NAME.*.tmp`` (the pattern of ``atomic_path``). Returns what was removed. Only files of
    that exact pattern are touched, so a folder's other contents are safe."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except FileNotFoundError:
                pass
    return removed


def _remove_harvest_temporaries(out: Path) -> None:
    remove_stale_temporaries(out, [MANIFEST])
    if out.is_dir():
        for sub in [*out.glob("layer_*"), out / "tokens"]:
            remove_stale_temporaries(sub, ["shard_*.npy", "strings.json"])


def _saved_tokens(out: Path) -> int:
    """Tokens per layer that the manifest on disk lists (0 when there is none)."""
    try:
        return int(read_json(out / MANIFEST).get("n_tokens", 0))
    except (FileFormatError, OSError, TypeError, ValueError):
        return 0


class _StopForward(Exception):
    pass


def harvest(
    model: LoadedModel,
    layers: Iterable[int],
    out_dir: str | Path,
    *,
    n_tokens: int,
    texts: str | Path | list | None = None,
    context_size: int = 256,
    batch_contexts: int = 4,
    skip_first: int = 1,
    prepend_bos: bool | None = None,
    shard_tokens: int = 16384,
    resume: bool = True,
    progress: bool = True,
    stop_after_shards: int | None = None,
) -> HarvestResult:
    """Harvest ``n_tokens`` residual-stream activations per layer (see the module docstring).

    ``layers`` are decoder-block indices (0-based; block L's output is
    ``blocks.L.hook_resid_post``). Returns a :class:`HarvestResult`; the manifest in
    ``out_dir`` says everything needed to read the shards back (:class:`ActivationStore`).
    ``stop_after_shards`` ends this call after writing that many new shards (for tests).

    Ctrl-C raises :class:`~rip_atoms.sae.errors.HarvestInterrupted` ("N tokens saved in DIR,
    rerun to resume") after removing temporary files; the shards in the manifest stay valid.
    """
    out = Path(out_dir)
    try:
        return _harvest(model, layers, out, n_tokens=n_tokens, texts=texts,
                        context_size=context_size, batch_contexts=batch_contexts,
                        skip_first=skip_first, prepend_bos=prepend_bos,
                        shard_tokens=shard_tokens, resume=resume, progress=progress,
                        stop_after_shards=stop_after_shards)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        _remove_harvest_temporaries(out)
        saved = _saved_tokens(out)
        what = (f"{saved} tokens per layer saved in {out}, rerun to resume" if saved
                else f"no tokens saved yet in {out}")
        raise HarvestInterrupted(f"harvest: {what}", out_dir=str(out), tokens=saved,
                                 target=n_tokens) from None


def _harvest(model: LoadedModel, layers: Iterable[int], out: Path, *, n_tokens: int,
             texts, context_size: int, batch_contexts: int, skip_first: int,
             prepend_bos: bool | None, shard_tokens: int, resume: bool, progress: bool,
             stop_after_shards: int | None) -> HarvestResult:
    t0 = time.perf_counter()
    layers = tuple(sorted({int(layer) for layer in layers}))
    if not layers:
        raise ParameterError("give at least one layer")
    bad = [layer for layer in layers if not 0 <= layer < model.n_layers]
    if bad:
        raise ParameterError(
            f"{model.source}: layer(s) {bad} out of range (the model has {model.n_layers} "
            f"blocks, 0..{model.n_layers - 1})"
        )
    if n_tokens < 1 or context_size < 2 or batch_contexts < 1 or shard_tokens < 1:
        raise ParameterError("n_tokens, batch_contexts, shard_tokens ≥ 1 and context_size ≥ 2")
    if not 0 <= skip_first < context_size:
        raise ParameterError(f"skip_first must be in [0, context_size), got {skip_first}")
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"{out}: exists and is not a folder (harvest output)")
    label, docs = load_texts(texts)
    contexts, bos = token_contexts(model.tokenizer, docs, context_size, prepend_bos=prepend_bos)
    text_fp = hashlib.sha256(contexts.tobytes()).hexdigest()[:16]
    per_ctx = context_size - skip_first
    spec = {
        "format": FORMAT,
        "model": model.to_dict(),
        "layers": list(layers),
        "hook_names": {str(layer): model.hook_name(layer) for layer in layers},
        "modules": {str(layer): model.module_name(layer) for layer in layers},
        "d_model": model.d_model,
        "dtype": "float32",
        "context_size": context_size,
        "prepend_bos": bos is not None,
        "bos_token_id": bos,
        "skip_first": skip_first,
        "tokens_per_context": per_ctx,
        "text": label,
        "text_fingerprint": text_fp,
        "contexts_available": int(contexts.shape[0]),
        "tokenizer": tokenizer_name(model.tokenizer, model.name),
    }
    shards: list[dict] = []
    man_path = out / MANIFEST
    if man_path.is_file():
        if not resume:
            raise FileFormatError(f"{out}: already holds a harvest (manifest.json); resume or "
                                  "choose another folder")
        old = read_json(man_path)
        if old.get("format") == FORMAT:
            validate_manifest(old, man_path)
        keys = ("format", "layers", "d_model", "context_size", "prepend_bos", "skip_first",
                "text_fingerprint")
        diff = [k for k in keys if old.get(k) != spec[k]]
        old_model = old.get("model")
        if not isinstance(old_model, dict) or old_model.get("source") != spec["model"]["source"]:
            diff.append("model")
        if diff:
            raise CheckpointError(
                f"{man_path}: an existing harvest with different settings ({', '.join(diff)}); "
                "use another folder"
            )
        for sh in old.get("shards", []):
            problems = [_check_shard(out, f, model.d_model) for f in sh["files"].values()]
            if "provenance" in sh:  # else written before provenance existed: added below
                problems.append(check_file(out, sh["provenance"]))
            if any(problems):
                break
            shards.append(sh)
    if shards and sum(s["n_tokens"] for s in shards) < n_tokens and shards[-1]["n_tokens"] < (
            shards[-1]["contexts"][1] - shards[-1]["contexts"][0]) * per_ctx:
        shards.pop()  # cut short at an earlier, smaller target: redo it whole
    resumed_tokens = sum(s["n_tokens"] for s in shards)
    done_tokens = resumed_tokens
    next_ctx = shards[-1]["contexts"][1] if shards else 0

    def write_manifest(complete: bool, exhausted: bool) -> dict:
        man = dict(spec)
        man["token_strings"] = strings_entry
        man["shards"] = shards
        man["n_tokens"] = sum(s["n_tokens"] for s in shards)
        man["n_tokens_target"] = n_tokens
        man["complete"] = complete
        man["text_exhausted"] = exhausted
        write_json_atomic(man_path, man)
        return man

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{out}: cannot create the output folder ({exc.strerror})"
                              ) from exc
    _remove_harvest_temporaries(out)  # left by a killed run
    strings_entry = write_token_strings(out, model.tokenizer, contexts, spec["tokenizer"])
    for sh in shards:  # shards of a folder harvested before provenance was recorded
        if "provenance" not in sh:
            sh["provenance"] = write_provenance(out, sh["index"], shard_provenance(
                contexts, *sh["contexts"], skip_first, sh["n_tokens"]))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_tokens, initial=min(done_tokens, n_tokens), unit="tok",
                   file=sys.stderr, desc=f"harvest layers {','.join(map(str, layers))}",
                   dynamic_ncols=True)
    deepest = layers[-1]
    device = next(model.model.parameters()).device
    captured: dict[int, torch.Tensor] = {}

    def make_hook(layer: int):
        def hook(_module, _inputs, output):
            hs = output[0] if isinstance(output, tuple) else output
            captured[layer] = hs.detach()
            if layer == deepest:
                raise _StopForward
        return hook

    handles = [model.blocks[layer].register_forward_hook(make_hook(layer)) for layer in layers]
    buffers: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    buf_tokens = 0
    shard_ctx_start = next_ctx
    new_shards = 0
    exhausted = False
    man = None

    def flush(ctx_stop: int) -> None:
        nonlocal buf_tokens, shard_ctx_start, new_shards
        index = len(shards)
        files = {}
        for layer in layers:
            arr = np.concatenate(buffers[layer], axis=0)
            rel = f"layer_{layer:02d}/shard_{index:05d}.npy"
            files[str(layer)] = {"path": rel, **_write_shard(out / rel, arr)}
            buffers[layer] = []
        prov = write_provenance(out, index, shard_provenance(contexts, shard_ctx_start, ctx_stop,
                                                             skip_first, buf_tokens))
        shards.append({"index": index, "contexts": [shard_ctx_start, ctx_stop],
                       "n_tokens": buf_tokens, "files": files, "provenance": prov})
        write_manifest(False, False)
        buf_tokens = 0
        shard_ctx_start = ctx_stop
        new_shards += 1

    try:
        with torch.no_grad():
            ctx = next_ctx
            while done_tokens < n_tokens:
                if ctx >= contexts.shape[0]:
                    exhausted = True
                    break
                stop = min(ctx + batch_contexts, contexts.shape[0])
                ids = torch.from_numpy(contexts[ctx:stop]).to(device)
                captured.clear()
                try:
                    model.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                use_cache=False)
                except _StopForward:
                    pass
                take = min((stop - ctx) * per_ctx, n_tokens - done_tokens)
                for layer in layers:
                    hs = captured[layer]
                    if hs.shape[-1] != model.d_model:
                        raise ShapeMismatchError(
                            f"{model.source}: block {layer} output has width {hs.shape[-1]}, "
                            f"expected d_model = {model.d_model}"
                        )
                    acts = hs[:, skip_first:, :].reshape(-1, hs.shape[-1])[:take]
                    buffers[layer].append(acts.to(torch.float32).cpu().numpy())
                buf_tokens += take
                done_tokens += take
                ctx = stop
                if bar is not None:
                    bar.update(take)
                if buf_tokens >= shard_tokens or done_tokens >= n_tokens:
                    flush(ctx)
                    if stop_after_shards is not None and new_shards >= stop_after_shards:
                        break
            if buf_tokens > 0:
                flush(ctx)
    finally:
        for hnd in handles:
            hnd.remove()
        if bar is not None:
            bar.close()
    complete = done_tokens >= n_tokens or exhausted
    man = write_manifest(complete, exhausted)
    seconds = time.perf_counter() - t0
    new_tokens = done_tokens - resumed_tokens
    return HarvestResult(
        out_dir=str(out), layers=layers, d_model=model.d_model, n_tokens=done_tokens,
        n_shards=len(shards), complete=complete, text_exhausted=exhausted, seconds=seconds,
        tokens_per_second=new_tokens / seconds if seconds > 0 else 0.0,
        resumed_tokens=resumed_tokens, manifest=man,
    )


# ---------------------------------------------------------------------- reading
class ActivationStore:
    """Activations saved by :func:`harvest` (a folder with ``manifest.json``) or a plain n×d
    ``.npy`` matrix (one pseudo-layer, ``None``).

    Every shard is checked against the manifest (size and SHA-256) when read; a mismatch raises
    :class:`CorruptShardError` naming the file.
    """

    def __init__(self, spec: str | Path, *, verify: bool = True):
        self.path = Path(spec)
        self.verify = verify
        if self.path.is_dir():
            man_path = self.path / MANIFEST
            self.manifest = read_json(man_path)
            if self.manifest.get("format") != FORMAT:
                raise FileFormatError(f"{man_path}: not a rip_atoms activations manifest")
            validate_manifest(self.manifest, man_path)
            self.layers = tuple(int(x) for x in self.manifest["layers"])
            self.d_model = int(self.manifest["d_model"])
            self.n_tokens = int(self.manifest["n_tokens"])
            self.tokens_per_context = int(self.manifest["tokens_per_context"])
        elif self.path.suffix == ".npy":
            arr = load_npy(self.path, mmap=True)
            if arr.ndim != 2:
                raise ShapeMismatchError(f"{self.path}: expected an n×d matrix, got {arr.shape}")
            self.manifest = {"format": "npy", "layers": [None]}
            self.layers = (None,)
            self.d_model = int(arr.shape[1])
            self.n_tokens = int(arr.shape[0])
            self.tokens_per_context = 1
        else:
            raise FileFormatError(
                f"{self.path}: not a harvest folder (manifest.json) or an .npy matrix"
            )

    @property
    def complete(self) -> bool:
        """False for a harvest cut short (its manifest says ``complete: false``); a plain
        ``.npy`` matrix is complete."""
        return bool(self.manifest.get("complete", True))

    def require_complete(self, allow_incomplete: bool = False) -> ActivationStore:
        """Refuse an interrupted harvest: raises :class:`IncompleteHarvestError` (one line
        naming the folder, the tokens it holds and the target) unless ``allow_incomplete``.
        Returns ``self``, so ``ActivationStore(p).require_complete(flag).array(layer)``."""
        if self.complete or allow_incomplete:
            return self
        target = self.manifest.get("n_tokens_target")
        of = f" of the {target} asked for" if target is not None else ""
        raise IncompleteHarvestError(
            f"{self.path}: an interrupted harvest (manifest.json says complete: false) holding "
            f"{self.n_tokens} tokens per layer{of}; rerun the harvest to finish it, or pass "
            "--allow-incomplete to use the tokens it has"
        )

    def _layer(self, layer: int | None) -> int | None:
        if layer is None and len(self.layers) == 1:
            return self.layers[0]
        if layer is None:
            raise ParameterError(f"{self.path}: holds layers {list(self.layers)}; choose one "
                                 "(--layer)")
        if layer not in self.layers:
            raise ParameterError(
                f"{self.path}: no layer {layer} (it holds layers {list(self.layers)})"
            )
        return layer

    def array(self, layer: int | None = None) -> np.ndarray:
        """All tokens of ``layer`` as one n×d float32 array (shards concatenated in order)."""
        layer = self._layer(layer)
        if layer is None:
            X = load_npy(self.path, mmap=True)
            if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
                raise FileFormatError(f"{self.path}: activations must be real numbers, got "
                                      f"dtype {X.dtype}")
            return np.asarray(X, dtype=np.float32)
        parts = []
        for sh in self.manifest["shards"]:
            info = sh["files"][str(layer)]
            path = self.path / info["path"]
            if self.verify:
                problem = _check_shard(self.path, info, self.d_model)
                if problem:
                    raise CorruptShardError(f"{path}: corrupt shard ({problem})")
            try:
                arr = load_npy(path)
            except FileFormatError as exc:
                raise CorruptShardError(str(exc)) from exc
            if arr.ndim != 2 or arr.shape != (sh["n_tokens"], self.d_model):
                raise CorruptShardError(
                    f"{path}: shape {arr.shape}, manifest says ({sh['n_tokens']}, {self.d_model})"
                )
            parts.append(arr)
        if not parts:
            raise CorruptShardError(f"{self.path}: the harvest holds no shards")
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)

    def provenance(self):
        """The :class:`~rip_atoms.criteria.atom_cards.TokenProvenance` of every token (token id,
        context, position; the token strings and the tokenizer's name when recorded), aligned
        with :meth:`array`'s rows; None for a folder harvested before provenance was recorded
        or a plain ``.npy`` (:meth:`provenance_missing` says why). A provenance array that does
        not match its shard raises :class:`CorruptShardError` (a ``FileFormatError``)."""
        from rip_atoms.sae.provenance import store_provenance

        if self.layers == (None,):
            return None
        return store_provenance(self.path, self.manifest, self.verify)[0]

    def provenance_missing(self) -> str | None:
        """Why :meth:`provenance` is None (None when it is there)."""
        if self.layers == (None,):
            return (f"{self.path}: a plain .npy matrix of activations carries no token "
                    "provenance (harvest with `rip-atoms harvest` to keep it)")
        from rip_atoms.sae.provenance import store_provenance

        return store_provenance(self.path, self.manifest, False)[1]

    def held_out_mask(self, n: int, held_out: float) -> np.ndarray:
        """Boolean mask of held-out tokens: whole contexts, every k-th with k = round(1/f)
        (:func:`rip_atoms.criteria.token_split` with ``mode="contexts"``)."""
        return token_split(n, held_out, mode="contexts",
                           tokens_per_context=self.tokens_per_context).mask()

    def split(self, layer: int | None = None, *, held_out: float = 0.1
              ) -> tuple[np.ndarray, np.ndarray]:
        """(train, held-out) activations of ``layer``; held-out tokens are whole contexts."""
        X = self.array(layer)
        mask = self.held_out_mask(X.shape[0], held_out)
        return X[~mask], X[mask]

    def to_dict(self) -> dict:
        return {"path": str(self.path), "layers": list(self.layers), "d_model": self.d_model,
                "n_tokens": self.n_tokens, "complete": self.complete,
                "model": self.manifest.get("model"), "text": self.manifest.get("text")}
