"""Errors of the torch adapter. The bad-input ones are :class:`~rip_atoms.errors.RipAtomsError`
subclasses, so the CLI turns each into exit status 2 with one line naming the file and the
problem; :class:`HarvestInterrupted` and :class:`TrainingInterrupted` are
:class:`~rip_atoms.errors.Interrupted` (Ctrl-C, exit 130) with what was saved."""

from __future__ import annotations

from rip_atoms.errors import FileFormatError, Interrupted, RipAtomsError


class UnknownArchitectureError(FileFormatError):
    """A config names an SAE architecture (or activation function) this library does not know;
    it is never replaced by a guess from the tensor shapes."""


class CorruptShardError(FileFormatError):
    """An activation shard is missing, truncated or does not match its manifest entry."""


class CheckpointError(FileFormatError):
    """A training checkpoint is unreadable or belongs to a different run configuration."""


class MissingDependencyError(RipAtomsError):
    """An optional dependency (transformers, gguf, sae-lens, …) is needed and not installed, or
    a download that the command needs is not possible (offline)."""


class DegenerateActivationsError(RipAtomsError):
    """Activations an SAE cannot be trained on: all zero, or numerically constant (the message
    names the source)."""


class IncompleteHarvestError(FileFormatError):
    """A harvest folder whose manifest says ``complete: false`` (an interrupted or killed
    harvest), used where a finished one is expected; the message says how many tokens it holds.
    Finish it by rerunning the harvest, or accept it (``--allow-incomplete``)."""


class OutputExistsError(FileFormatError):
    """An output folder already holds the results of an earlier run (a trained SAE, a
    checkpoint) and the caller asked neither to resume nor to overwrite."""


class HarvestInterrupted(Interrupted):
    """Ctrl-C during :func:`rip_atoms.sae.harvest.harvest`: ``tokens`` per layer are saved (in
    the manifest) in ``out_dir``; a rerun resumes from them."""

    def __init__(self, note: str = "", *, out_dir: str | None = None, tokens: int = 0,
                 target: int = 0):
        super().__init__(note)
        self.out_dir = out_dir
        self.tokens = tokens
        self.target = target


class TrainingInterrupted(Interrupted):
    """Ctrl-C during :func:`rip_atoms.sae.train.train_sae`: ``step`` of ``steps`` is the step of
    the checkpoint saved (``None`` when nothing was saved); ``resume=True`` continues from it."""

    def __init__(self, note: str = "", *, step: int | None = None, steps: int = 0,
                 checkpoint: str | None = None):
        super().__init__(note)
        self.step = step
        self.steps = steps
        self.checkpoint = checkpoint
