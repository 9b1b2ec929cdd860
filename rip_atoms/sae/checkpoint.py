"""Training checkpoints: the complete state of a run (parameters, Adam state, data order and
generator state, dead-latent counters, controller state, history), written atomically to
``checkpoint.pt`` and read back with ``weights_only=True`` after checking that it was written by
the same configuration on the same activations, so a resumed run continues exactly. Every tensor
is saved on the CPU and read with ``map_location="cpu"``, then moved to the training device, so
a run checkpointed on a GPU resumes on a CPU and vice versa (``device`` and ``sparse_density``
are not compared: they change where and how the gradients are computed, not what they are)."""

from __future__ import annotations

from pathlib import Path

import torch

from rip_atoms.sae.formats._io import atomic_path
from rip_atoms.sae.sae_errors import CheckpointError

#: the checkpoint's file name in a run's output folder
CHECKPOINT = "checkpoint.pt"

#: configuration fields a resumed run may change (length, logging, and where / how the same
#: gradients are computed)
_RESUMABLE_CHANGES = ("steps", "checkpoint_every", "log_every", "device", "sparse_density")


def _on_cpu(obj):
    """``obj`` (tensors in dicts / lists / tuples) with every tensor on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_on_cpu(v) for v in obj)
    return obj


class TrainerCheckpoints:
    """The checkpoint methods of :class:`rip_atoms.sae.trainer.Trainer` (which holds every
    attribute they read and write, and ``init_state``)."""

    def state(self) -> dict:
        return {
            "format": "rip_atoms.sae.train/1",
            "config": self.cfg.to_dict(),
            "fingerprint": self.fingerprint,
            "step": self.step,
            "pos": self.pos,
            "perm": self.perm,
            "gen_state": self.gen.get_state(),
            "params": {k: v.detach().cpu().clone() for k, v in self.p.tensors().items()},
            "optimizer": _on_cpu(self.opt.state_dict()),
            "since_fired": self.since_fired.cpu(),
            "fired_count": self.fired_count.cpu(),
            "l1": self.l1,
            "initial_threshold_median": self.initial_threshold_median,
            "resampled": self.resampled,
            "history": self.history,
            "window": self.window,
        }

    def save_checkpoint(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def load_checkpoint(self, path: Path) -> None:
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            msg = " ".join(str(exc).split())
            if "weights_only" in msg or "Unsupported global" in msg:
                raise CheckpointError(
                    f"{path}: refused: the file holds Python objects other than tensors (a "
                    "training checkpoint never does; it is read with weights_only=True)"
                ) from None
            raise CheckpointError(
                f"{path}: unreadable checkpoint ({type(exc).__name__}: {msg[:160]})"
            ) from exc
        if not isinstance(st, dict) or st.get("format") != "rip_atoms.sae.train/1":
            raise CheckpointError(f"{path}: not a rip_atoms training checkpoint")
        try:
            self._restore(st, path)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError,
                IndexError) as exc:
            raise CheckpointError(
                f"{path}: malformed training checkpoint ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]})"
            ) from exc

    def _restore(self, st: dict, path: Path) -> None:
        mine = self.cfg.to_dict()
        theirs = st["config"]
        diff = [k for k in mine if k not in _RESUMABLE_CHANGES and mine[k] != theirs.get(k)]
        if diff:
            raise CheckpointError(
                f"{path}: checkpoint was written with a different configuration "
                f"({', '.join(f'{k}: {theirs.get(k)!r} ≠ {mine[k]!r}' for k in diff[:4])})"
            )
        if st["fingerprint"] != self.fingerprint:
            raise CheckpointError(f"{path}: checkpoint was trained on different activations")
        self.init_state()
        for k, v in st["params"].items():
            getattr(self.p, k).copy_(v)
        self.opt.load_state_dict(st["optimizer"])  # moves the moments to the parameters' device
        self.step = int(st["step"])
        self.pos = int(st["pos"])
        self.perm = st["perm"]
        self.source.set_order(self.perm)
        self.gen.set_state(st["gen_state"])
        self.since_fired = st["since_fired"].to(self.device)
        self.fired_count = st["fired_count"].to(self.device)
        self.l1 = float(st["l1"])
        self.initial_threshold_median = st["initial_threshold_median"]
        self.resampled = int(st["resampled"])
        self.history = list(st["history"])
        self.window = dict(st["window"])
