"""Ctrl-C during training: SIGINT deferred to the end of the current step (a second one stops at
once), and the one-line note :class:`~rip_atoms.sae.sae_errors.TrainingInterrupted` carries (what
was saved, how to continue)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from rip_atoms.sae.checkpoint import CHECKPOINT


class SigintDeferral:
    """While active (main thread, Python's default SIGINT handler in place), the first SIGINT
    only sets ``requested``; the loop checks it between steps. A second SIGINT raises
    KeyboardInterrupt at once. Elsewhere (other threads, a custom handler) SIGINT raises
    KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def _handler(self, _signum, _frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> SigintDeferral:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def interrupt_note(out: Path | None, saved_step: int | None, step: int, steps: int,
                    finished: bool) -> str:
    if out is None:
        return f"training stopped at step {step} of {steps}; nothing saved (no output folder)"
    if finished:
        return f"training finished (step {steps} of {steps}); the SAE is saved in {out}"
    if saved_step is not None:
        return (f"step {saved_step} of {steps} saved in {out / CHECKPOINT}, rerun with --resume "
                "to continue")
    if (out / CHECKPOINT).is_file():
        return f"{out / CHECKPOINT} is unchanged, rerun with --resume to continue"
    return f"no training step saved yet in {out}"
