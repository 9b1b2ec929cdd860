"""D̃ computed once and memory-mapped by the workers of one machine (distributed ℓ1 certification).

Without this, every worker of :func:`rip_atoms.recovery.distributed.classify_distributed` gets D
by a broadcast scatter and whitens it itself: on a 2304×16384 dictionary that is 1–2 s of
scatter and 0.5–1 s of D̃ per worker, before any code is decided, on a job of a few seconds.

:func:`publish_atoms` (the driver) builds the recovery view of D once, writing its arrays straight
into ``.npy`` files of a private directory — in shared memory (``/dev/shm``) when the machine has
one with room, else in the temporary directory:

* ``rows64.npy``: D̃ᵀ in float64 (N×H, C order; :class:`CorrectedAtoms` writes it there through
  ``rows64_out``, so it is the same array bit for bit);
* ``rows32.npy``: the same rows rounded to float32 (the Fuchs stage's screen);
* ``scale.npy``, ``dead.npy``: ‖W dᵢ‖ and the dead mask;
* ``pairs.npy`` (m×3: atoms a, b and cos): the duplicate pairs;
* ``manifest.json``, written last and atomically: a random token, the shapes and the metric's
  description.

:func:`load_atoms` (a worker) maps the arrays read-only (no copy: the page cache holds one D̃ for
the machine) and rebuilds the view with :meth:`UnitAtoms.from_arrays`; a worker that cannot see
the files (another machine, or the directory gone) raises :class:`SharedAtomsUnavailable`, and the
driver falls back to the scatter. :func:`remove_atoms` deletes the directory. The driver holds
an exclusive ``flock`` on ``owner.lock`` in the directory while it lives; a driver killed before
it could remove the directory leaves it behind, and the next :func:`publish_atoms` on the machine
removes every directory whose lock nobody holds (:func:`remove_stale`; the name holds the host,
so a temporary directory shared between hosts is only cleaned by its own host).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import RipAtomsError
from rip_atoms.geometry import Geometry
from rip_atoms.kernels.parallel_copy import parallel_copyto
from rip_atoms.metric import AIPMetric
from rip_atoms.recovery.problem import UnitAtoms, recovery_view

__all__ = ["SharedAtoms", "SharedAtomsUnavailable", "can_load", "load_atoms", "publish_atoms",
           "remove_atoms", "remove_stale", "shared_directory"]

#: where the files go when there is room (tmpfs: never written to a disk)
SHARED_MEMORY = "/dev/shm"
_MANIFEST = "manifest.json"
#: the private directories are named rip-atoms-l1-HOST-PID-…, and a later call removes those of
#: a driver that died without cleaning up (:func:`remove_stale`)
_PREFIX = "rip-atoms-l1-"
_ARRAYS = ("rows64", "rows32", "scale", "dead", "pairs")
_LOCK = "owner.lock"
#: directory → the open descriptor holding its lock, for the directories this process made
_OWNED: dict[str, int] = {}


class SharedAtomsUnavailable(RipAtomsError):
    """A worker cannot read the driver's D̃ files (another machine, or they were removed)."""


@dataclass(frozen=True)
class SharedAtoms:
    """What a task needs to find the driver's D̃: its directory and token (small; pickled with
    every task)."""

    directory: str
    token: str
    n_atoms: int
    dim: int


def shared_directory(nbytes: int) -> str:
    """``/dev/shm`` when it exists, is writable and has room for ``nbytes`` (with 10% spare),
    else the temporary directory."""
    try:
        if (os.path.isdir(SHARED_MEMORY) and os.access(SHARED_MEMORY, os.W_OK)
                and shutil.disk_usage(SHARED_MEMORY).free > 1.1 * nbytes):
            return SHARED_MEMORY
    except OSError:
        pass
    return tempfile.gettempdir()


def _bases() -> list[str]:
    return [SHARED_MEMORY, tempfile.gettempdir()]


def publish_atoms(D: Dictionary | np.ndarray, metric: AIPMetric | str | None,
                  directory: str | None = None, corrected: Geometry | None = None
                  ) -> tuple[UnitAtoms, SharedAtoms]:
    """Build the recovery view of D under ``metric`` with its arrays in files (module docstring).

    Returns the view (the driver's own) and the :class:`SharedAtoms` the tasks carry.
    ``directory``: where the private directory is made (default :func:`shared_directory`).
    ``corrected``: the :class:`~rip_atoms.geometry.Geometry` of D under ``metric`` whose float64
    rows are built (e.g. a report's; checked by :meth:`Geometry.check`): its recovery view's
    rows are copied, not recomputed. Raises what :class:`CorrectedAtoms` raises on bad input, and
    ``OSError`` when the files cannot be written (the caller then scatters D instead).
    """
    d = as_dictionary(D)
    if corrected is not None:
        corrected.check(d, metric)
    n, h = d.n_atoms, d.dim
    for stale_base in [directory] if directory else _bases():
        remove_stale(stale_base)  # before measuring the room: leftovers of dead drivers go first
    base = directory or shared_directory(12 * n * h)
    path = tempfile.mkdtemp(prefix=_prefix(os.getpid()), dir=base)
    try:
        _own(path)
        rows64 = _allocated_memmap(os.path.join(path, "rows64.npy"), np.float64, (n, h))
        if corrected is not None:  # the caller's view (and its duplicate pairs, if found)
            atoms = recovery_view(corrected)
            parallel_copyto(rows64, atoms.rows64)
        else:  # D̃ written straight into the file
            atoms = UnitAtoms(d, metric, CorrectedAtoms(
                d, metric, rows=False, rows64=True, min_live=0, rows64_out=rows64))
        rows32 = _allocated_memmap(os.path.join(path, "rows32.npy"), np.float32, (n, h))
        parallel_copyto(rows32, rows64)  # the values of UnitAtoms.cols32: the same rounding
        if corrected is None:
            atoms._cols32 = np.asarray(rows32).T
        a, b, cos = atoms.duplicate_pairs()
        np.save(os.path.join(path, "scale.npy"), np.asarray(atoms.scale, dtype=np.float64))
        np.save(os.path.join(path, "dead.npy"), np.asarray(atoms.dead, dtype=bool))
        np.save(os.path.join(path, "pairs.npy"),
                np.column_stack([a, b, cos]).astype(np.float64).reshape(-1, 3))
        rows64.flush()
        rows32.flush()
        token = uuid.uuid4().hex
        manifest = {"format": "rip-atoms shared atoms", "version": 1, "token": token,
                    "n_atoms": n, "dim": h, "metric": atoms.metric_info(),
                    "precision": None if atoms.precision is None else list(atoms.precision)}
        tmp = os.path.join(path, _MANIFEST + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(manifest, fh)
        os.replace(tmp, os.path.join(path, _MANIFEST))
    except BaseException:
        _release(path)
        raise
    return atoms, SharedAtoms(directory=path, token=token, n_atoms=n, dim=h)


def _allocated_memmap(path: str, dtype, shape: tuple[int, int]) -> np.ndarray:
    """A new ``.npy`` file mapped for writing, its blocks reserved first: a full tmpfs then
    fails here with ``OSError`` (ENOSPC), not later with SIGBUS while the rows are written."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as fh:
            try:
                os.posix_fallocate(fh.fileno(), 0, os.path.getsize(path))
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
    return mm


def _manifest(shared: SharedAtoms) -> dict:
    try:
        with open(os.path.join(shared.directory, _MANIFEST)) as fh:
            manifest = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SharedAtomsUnavailable(
            f"{shared.directory}: cannot read the shared atoms' manifest ({exc})") from None
    if (not isinstance(manifest, dict) or manifest.get("token") != shared.token
            or manifest.get("n_atoms") != shared.n_atoms or manifest.get("dim") != shared.dim):
        raise SharedAtomsUnavailable(f"{shared.directory}: the manifest is not this call's")
    return manifest


def can_load(shared: SharedAtoms) -> bool:
    """Whether this process sees the driver's files (run on every worker before the tasks)."""
    try:
        _manifest(shared)
    except SharedAtomsUnavailable:
        return False
    return True


def load_atoms(shared: SharedAtoms) -> UnitAtoms:
    """The driver's view, memory-mapped read-only (module docstring); raises
    :class:`SharedAtomsUnavailable` when the files are missing, foreign or of other shapes."""
    manifest = _manifest(shared)
    n, h = shared.n_atoms, shared.dim
    arrays = {}
    for name in _ARRAYS:
        path = os.path.join(shared.directory, name + ".npy")
        try:
            arrays[name] = np.asarray(np.load(
                path, mmap_mode="r" if name in ("rows64", "rows32") else None,
                allow_pickle=False))
        except (OSError, ValueError) as exc:  # missing, truncated or not an .npy file
            raise SharedAtomsUnavailable(f"{path}: {exc}") from None
    expected = {"rows64": ((n, h), np.float64), "rows32": ((n, h), np.float32),
                "scale": ((n,), np.float64), "dead": ((n,), np.bool_)}
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            raise SharedAtomsUnavailable(
                f"{shared.directory}: {name}.npy has shape {arrays[name].shape} and dtype "
                f"{arrays[name].dtype}, expected {shape} {np.dtype(dtype)}")
    try:
        pairs = arrays["pairs"].reshape(-1, 3)
        return UnitAtoms.from_arrays(
            arrays["rows64"], arrays["scale"], arrays["dead"], arrays["rows32"],
            (pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64), pairs[:, 2].copy()),
            manifest["metric"], manifest.get("precision"))
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # malformed pairs or manifest
        raise SharedAtomsUnavailable(f"{shared.directory}: {exc}") from None


def _prefix(pid: int) -> str:
    return f"{_PREFIX}{socket.gethostname()}-{pid}-"


def _own(path: str) -> None:
    """Take the exclusive lock that marks ``path`` as in use (held until :func:`remove_atoms`,
    or released by the kernel when this process dies)."""
    if fcntl is None:  # pragma: no cover - not POSIX: the pid in the name is all there is
        return
    fd = os.open(os.path.join(path, _LOCK), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    _OWNED[path] = fd


def remove_stale(base: str) -> list[str]:
    """Remove the directories under ``base`` that a process of this host made and that outlived
    it (a driver killed before its ``finally``): those whose ``owner.lock`` nobody holds (a
    directory without one, from a driver that died while creating it, when its pid is gone).
    Returns their paths."""
    host = f"{_PREFIX}{socket.gethostname()}-"
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(host):
            continue
        # PID-XXXXXXXX (mkdtemp's suffix has no hyphen): not a host whose name extends ours
        match = re.fullmatch(r"(\d+)-[a-z0-9_]+", name[len(host):])
        if match is None:
            continue
        path = os.path.join(base, name)
        if _unowned(path, int(match.group(1))):
            removed.append(path)
    return removed


def _unowned(path: str, pid: int) -> bool:
    """Remove ``path`` if its owner is gone (module docstring); True if it was removed."""
    lock = os.path.join(path, _LOCK)
    if fcntl is None or not os.path.exists(lock):
        if _alive(pid):
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: its driver is alive
        os.close(fd)
        return False
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def remove_atoms(shared: SharedAtoms) -> None:
    """Delete the files (processes that still map them keep their pages until they unmap) and
    release the directory's lock."""
    _release(shared.directory)


def _release(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    fd = _OWNED.pop(path, None)
    if fd is not None:
        os.close(fd)
