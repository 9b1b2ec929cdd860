"""Text → token contexts for :func:`rip_atoms.sae.harvest.harvest` (which re-exports these
names): the documents of a text spec (:func:`load_texts`) tokenised without special tokens and
joined with the EOS token (when the tokenizer has one) into one stream, cut into contexts
(:func:`token_contexts`; the BOS rule is in :mod:`rip_atoms.sae.harvest`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rip_atoms.errors import FileFormatError, ParameterError
from rip_atoms.sae.sae_errors import MissingDependencyError

__all__ = ["load_texts", "token_contexts", "tokenizer_adds_bos"]


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
