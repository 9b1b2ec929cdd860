"""Harvesting residual-stream activations from a causal LM into shards with a manifest.

The settings named below (``n_tokens``, ``context_size``, ``batch_contexts``, ``skip_first``,
``prepend_bos``, ``shard_tokens``) are the fields of a :class:`HarvestConfig`
(:mod:`rip_atoms.sae.harvest_config`), checked when it is made; the text functions are in
:mod:`rip_atoms.sae.harvest_text`.

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
the shards on disk, and :class:`~rip_atoms.sae.sae_errors.HarvestInterrupted` (a
:class:`~rip_atoms.errors.Interrupted`) says how many tokens are saved; a rerun resumes. Stale
temporary files of a killed run are removed when the folder is next harvested into.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rip_atoms.criteria.units import token_split
from rip_atoms.errors import (
    FileFormatError,
    Interrupted,
    ParameterError,
    ParameterTypeError,
    ShapeMismatchError,
)
from rip_atoms.matrix_files import load_npy
from rip_atoms.sae.formats._io import atomic_path, read_json, write_json_atomic
from rip_atoms.sae.harvest_config import HarvestConfig
from rip_atoms.sae.harvest_text import load_texts, token_contexts, tokenizer_adds_bos
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
from rip_atoms.sae.sae_errors import (
    CheckpointError,
    CorruptShardError,
    HarvestInterrupted,
    IncompleteHarvestError,
)

__all__ = [
    "FORMAT", "MANIFEST", "ActivationStore", "HarvestConfig", "HarvestResult", "harvest",
    "load_texts", "remove_stale_temporaries", "token_contexts", "tokenizer_adds_bos",
    "validate_manifest",
]

MANIFEST = "manifest.json"
FORMAT = "rip_atoms.activations/1"


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
    config: HarvestConfig | None = None,
    *,
    texts: str | Path | list | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after_shards: int | None = None,
    **settings: Any,
) -> HarvestResult:
    """Harvest ``config.n_tokens`` residual-stream activations per layer (see the module
    docstring) from ``texts`` (:func:`load_texts`).

    ``layers`` are decoder-block indices (0-based; block L's output is
    ``blocks.L.hook_resid_post``). ``config`` (:class:`HarvestConfig`) says how; its fields
    may also be given as keywords (``harvest(lm, [15], out, n_tokens=1000, context_size=128)``,
    the form before the config existed), which then override those of ``config``. Returns a
    :class:`HarvestResult`; the manifest in ``out_dir`` says everything needed to read the
    shards back (:class:`ActivationStore`). ``resume`` continues a harvest already in
    ``out_dir``; ``stop_after_shards`` ends this call after writing that many new shards (for
    tests).

    Ctrl-C raises :class:`~rip_atoms.sae.sae_errors.HarvestInterrupted` ("N tokens saved in DIR,
    rerun to resume") after removing temporary files; the shards in the manifest stay valid.
    """
    out = Path(out_dir)
    layers = _check_layers(model, layers)
    cfg = _harvest_config(config, settings)
    try:
        return _harvest(model, layers, out, cfg, texts=texts, resume=resume,
                        progress=progress, stop_after_shards=stop_after_shards)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        _remove_harvest_temporaries(out)
        saved = _saved_tokens(out)
        what = (f"{saved} tokens per layer saved in {out}, rerun to resume" if saved
                else f"no tokens saved yet in {out}")
        raise HarvestInterrupted(f"harvest: {what}", out_dir=str(out), tokens=saved,
                                 target=cfg.n_tokens) from None


def _harvest_config(config: HarvestConfig | None, settings: dict) -> HarvestConfig:
    """``config`` with the keyword ``settings`` (HarvestConfig fields) put in."""
    names = {f.name for f in dataclasses.fields(HarvestConfig)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"harvest() got an unexpected keyword argument {unknown[0]!r}")
    if config is None:
        return HarvestConfig(**settings)
    if not isinstance(config, HarvestConfig):
        raise ParameterTypeError(f"config must be a HarvestConfig, got "
                                 f"{type(config).__name__}")
    return dataclasses.replace(config, **settings) if settings else config


def _check_layers(model: LoadedModel, layers: Iterable[int]) -> tuple[int, ...]:
    """The requested blocks, sorted and unique; each must be one of the model's."""
    layers = tuple(sorted({int(layer) for layer in layers}))
    if not layers:
        raise ParameterError("give at least one layer")
    bad = [layer for layer in layers if not 0 <= layer < model.n_layers]
    if bad:
        raise ParameterError(
            f"{model.source}: layer(s) {bad} out of range (the model has {model.n_layers} "
            f"blocks, 0..{model.n_layers - 1})"
        )
    return layers


def _harvest(model: LoadedModel, layers: tuple[int, ...], out: Path, cfg: HarvestConfig, *,
             texts, resume: bool, progress: bool,
             stop_after_shards: int | None) -> HarvestResult:
    t0 = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"{out}: exists and is not a folder (harvest output)")
    label, docs = load_texts(texts)
    contexts, bos = token_contexts(model.tokenizer, docs, cfg.context_size,
                                   prepend_bos=cfg.prepend_bos)
    spec = _manifest_spec(model, layers, cfg, contexts, bos, label)
    shards = _resumed_shards(out, spec, model, cfg, resume)
    resumed_tokens = sum(s["n_tokens"] for s in shards)
    next_ctx = shards[-1]["contexts"][1] if shards else 0
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{out}: cannot create the output folder ({exc.strerror})"
                              ) from exc
    _remove_harvest_temporaries(out)  # left by a killed run
    writer = _ShardWriter(out, spec, contexts, shards, cfg, next_ctx)
    writer.strings_entry = write_token_strings(out, model.tokenizer, contexts,
                                               spec["tokenizer"])
    for sh in shards:  # shards of a folder harvested before provenance was recorded
        if "provenance" not in sh:
            sh["provenance"] = write_provenance(out, sh["index"], shard_provenance(
                contexts, *sh["contexts"], cfg.skip_first, sh["n_tokens"]))
    done_tokens, exhausted = _run_contexts(model, layers, contexts, cfg, writer,
                                           resumed_tokens, next_ctx, progress,
                                           stop_after_shards)
    complete = done_tokens >= cfg.n_tokens or exhausted
    man = writer.write_manifest(complete, exhausted)
    seconds = time.perf_counter() - t0
    new_tokens = done_tokens - resumed_tokens
    return HarvestResult(
        out_dir=str(out), layers=layers, d_model=model.d_model, n_tokens=done_tokens,
        n_shards=len(shards), complete=complete, text_exhausted=exhausted, seconds=seconds,
        tokens_per_second=new_tokens / seconds if seconds > 0 else 0.0,
        resumed_tokens=resumed_tokens, manifest=man,
    )


def _manifest_spec(model: LoadedModel, layers: tuple[int, ...], cfg: HarvestConfig,
                   contexts: np.ndarray, bos: int | None, label: str) -> dict:
    """What the manifest says about the harvest besides its shards (a resumed harvest must
    agree with it); the text's fingerprint is the first 16 hex digits of the SHA-256 of the
    contexts' token ids."""
    return {
        "format": FORMAT,
        "model": model.to_dict(),
        "layers": list(layers),
        "hook_names": {str(layer): model.hook_name(layer) for layer in layers},
        "modules": {str(layer): model.module_name(layer) for layer in layers},
        "d_model": model.d_model,
        "dtype": "float32",
        "context_size": cfg.context_size,
        "prepend_bos": bos is not None,
        "bos_token_id": bos,
        "skip_first": cfg.skip_first,
        "tokens_per_context": cfg.tokens_per_context,
        "text": label,
        "text_fingerprint": hashlib.sha256(contexts.tobytes()).hexdigest()[:16],
        "contexts_available": int(contexts.shape[0]),
        "tokenizer": tokenizer_name(model.tokenizer, model.name),
    }


def _resumed_shards(out: Path, spec: dict, model: LoadedModel, cfg: HarvestConfig,
                    resume: bool) -> list[dict]:
    """The shards of a harvest already in ``out`` to continue from: those whose files match
    the manifest, up to the first that does not (none without a manifest). A manifest of
    other settings is a CheckpointError; without ``resume``, any manifest is refused."""
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
    if shards and sum(s["n_tokens"] for s in shards) < cfg.n_tokens and shards[-1][
            "n_tokens"] < (shards[-1]["contexts"][1] - shards[-1]["contexts"][0]) * (
            cfg.tokens_per_context):
        shards.pop()  # cut short at an earlier, smaller target: redo it whole
    return shards


class _ShardWriter:
    """The shards of a harvest being written: per-layer buffers of activations, flushed into a
    shard (its files on disk first, then the manifest that lists it)."""

    def __init__(self, out: Path, spec: dict, contexts: np.ndarray, shards: list[dict],
                 cfg: HarvestConfig, next_ctx: int) -> None:
        self.out, self.spec, self.contexts, self.shards, self.cfg = out, spec, contexts, \
            shards, cfg
        self.strings_entry: dict | None = None
        self.buffers: dict[int, list[np.ndarray]] = {layer: [] for layer in spec["layers"]}
        self.buf_tokens = 0
        self.shard_ctx_start = next_ctx
        self.new_shards = 0

    def write_manifest(self, complete: bool, exhausted: bool) -> dict:
        man = dict(self.spec)
        man["token_strings"] = self.strings_entry
        man["shards"] = self.shards
        man["n_tokens"] = sum(s["n_tokens"] for s in self.shards)
        man["n_tokens_target"] = self.cfg.n_tokens
        man["complete"] = complete
        man["text_exhausted"] = exhausted
        write_json_atomic(self.out / MANIFEST, man)
        return man

    def flush(self, ctx_stop: int) -> None:
        """Write the buffered tokens (contexts [shard start, ctx_stop)) as the next shard."""
        index = len(self.shards)
        files = {}
        for layer in self.spec["layers"]:
            arr = np.concatenate(self.buffers[layer], axis=0)
            rel = f"layer_{layer:02d}/shard_{index:05d}.npy"
            files[str(layer)] = {"path": rel, **_write_shard(self.out / rel, arr)}
            self.buffers[layer] = []
        prov = write_provenance(self.out, index, shard_provenance(
            self.contexts, self.shard_ctx_start, ctx_stop, self.cfg.skip_first,
            self.buf_tokens))
        self.shards.append({"index": index, "contexts": [self.shard_ctx_start, ctx_stop],
                            "n_tokens": self.buf_tokens, "files": files, "provenance": prov})
        self.write_manifest(False, False)
        self.buf_tokens = 0
        self.shard_ctx_start = ctx_stop
        self.new_shards += 1


def _run_contexts(model: LoadedModel, layers: tuple[int, ...], contexts: np.ndarray,
                  cfg: HarvestConfig, writer: _ShardWriter, done_tokens: int, next_ctx: int,
                  progress: bool, stop_after_shards: int | None) -> tuple[int, bool]:
    """Run the contexts from ``next_ctx`` on through the model, batch by batch, hooks on the
    requested blocks, until ``cfg.n_tokens`` tokens are done (or the text runs out, or
    ``stop_after_shards`` new shards are written); (tokens done, text exhausted)."""
    n_tokens, per_ctx = cfg.n_tokens, cfg.tokens_per_context
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
    exhausted = False
    try:
        with torch.no_grad():
            ctx = next_ctx
            while done_tokens < n_tokens:
                if ctx >= contexts.shape[0]:
                    exhausted = True
                    break
                stop = min(ctx + cfg.batch_contexts, contexts.shape[0])
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
                    acts = hs[:, cfg.skip_first:, :].reshape(-1, hs.shape[-1])[:take]
                    writer.buffers[layer].append(acts.to(torch.float32).cpu().numpy())
                writer.buf_tokens += take
                done_tokens += take
                ctx = stop
                if bar is not None:
                    bar.update(take)
                if writer.buf_tokens >= cfg.shard_tokens or done_tokens >= n_tokens:
                    writer.flush(ctx)
                    if stop_after_shards is not None and writer.new_shards >= stop_after_shards:
                        break
            if writer.buf_tokens > 0:
                writer.flush(ctx)
    finally:
        for hnd in handles:
            hnd.remove()
        if bar is not None:
            bar.close()
    return done_tokens, exhausted


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
