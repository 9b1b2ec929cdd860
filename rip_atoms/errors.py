"""Exceptions raised for bad input.

Every error the library raises on bad input is a subclass of :class:`RipAtomsError` (itself a
``ValueError``), so a caller can catch them all at once; the CLI turns each into exit status 2
with a one-line message naming the file and the problem.
"""

from __future__ import annotations


class RipAtomsError(ValueError):
    """Base class of all input errors raised by rip_atoms."""


class NonFiniteError(RipAtomsError):
    """An array that must be finite holds NaN or ±Inf (the message says where)."""


class FileFormatError(RipAtomsError):
    """A file is missing, truncated, foreign, or does not hold what was asked for."""


class TensorNotFoundError(FileFormatError):
    """A named tensor is not in the file (the message lists the tensors that are)."""


class ShapeMismatchError(RipAtomsError):
    """Two inputs disagree in shape, e.g. activations of width 512 for a dictionary of H = 576."""


class SingularMetricError(RipAtomsError):
    """The second moment (or D Dᵀ) is singular or too ill-conditioned to invert."""


class EmptyDictionaryError(RipAtomsError):
    """No usable atoms remain (all atoms are dead, or the dictionary has no columns)."""


class ParameterError(RipAtomsError):
    """An argument value is outside its domain (k < 1, k > N, a budget ≤ 0, …)."""


class DeadAtomsError(RipAtomsError):
    """The computation needs every atom to have a direction, and some atoms are zero."""


class InvalidCodeError(RipAtomsError):
    """A code cannot be used: wrong dtype, an empty support, negative entries where codes must
    be non-negative, or a support on dead atoms (batch functions report such codes by index
    instead of raising)."""


class ParameterTypeError(ParameterError, TypeError):
    """An argument has the wrong type (``k=2.5`` where an integer is needed, an ndarray where a
    metric is expected). Also a ``TypeError``, so code that catches ``TypeError`` keeps
    working."""


class InsufficientMemoryError(RipAtomsError):
    """An input would need more memory than this machine can give it (a `.npy` header that
    claims 100000×100000 float64, ``neurons:100000``); the message says how much would be needed
    and how much is available. Refused before allocating, instead of numpy's MemoryError or
    the kernel's OOM killer."""


class Interrupted(KeyboardInterrupt):
    """The user interrupted a long job (Ctrl-C / SIGINT). The message says what was saved, e.g.
    "12000 tokens saved, rerun to resume"; the CLI prints it on one line and exits 130.

    A job that catches ``KeyboardInterrupt`` cleans up its temporary files, then raises
    ``Interrupted(note) from None``; a bare ``KeyboardInterrupt`` is reported without a note.
    """

    @property
    def note(self) -> str:
        return str(self.args[0]) if self.args else ""
