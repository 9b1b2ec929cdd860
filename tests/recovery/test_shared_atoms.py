"""Issue 13, distributed certification: D̃ published once in shared files and mapped by the
workers decides exactly as D̃ built in the process; bad or missing files are refused; a
distributed run cleans up after itself and falls back to the scatter when a worker cannot map
the files.

References: the process's own ``UnitAtoms(D, metric)`` (the single-process view) and
``classify_recovery`` without a client, compared array by array and code by code.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recovery_reference import random_codes, unit_gaussian

from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.errors import ParameterError
from rip_atoms.geometry import Geometry
from rip_atoms.kernels.parallel_copy import parallel_copyto
from rip_atoms.metric import fit_metric
from rip_atoms.recovery import classify_recovery, shared_atoms
from rip_atoms.recovery.classify import _classify_rows
from rip_atoms.recovery.options import ClassifyOptions
from rip_atoms.recovery.problem import UnitAtoms
from rip_atoms.recovery.shared_atoms import SharedAtoms, SharedAtomsUnavailable

_OPTS = ClassifyOptions(nonneg=False, margin=0.01, max_iter=800, witness_iters=100, lp=True,
                        lp_time_limit=60.0, lp_max_size=20_000_000, blas_threads=None,
                        engine="numpy", device=None, chunk_size=7)


def _dictionary_with_pairs(seed: int = 3) -> np.ndarray:
    """40×120 Gaussian atoms with a duplicate, an antiparallel pair at scale −2 and a dead
    atom, so the duplicate masks and partners are exercised."""
    D = unit_gaussian(40, 120, seed)
    D[:, 7] = D[:, 3]
    D[:, 11] = -2.0 * D[:, 5]
    D[:, 20] = 0.0
    return D


def _metric_for(h: int, seed: int = 4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((600, h)) @ np.diag(np.linspace(0.3, 3.0, h))
    return fit_metric(X)


def _metric(seed: int = 4):
    return _metric_for(40, seed)


@pytest.mark.parametrize("which", ["raw", "aip"])
@pytest.mark.parametrize("given", [False, True])
def test_published_atoms_equal_the_process_view(which, given, tmp_path):
    """Built into the files, or copied from corrected atoms the caller has (a report's)."""
    D = _dictionary_with_pairs()
    metric = None if which == "raw" else _metric()
    fresh = UnitAtoms(D, metric)
    corrected = Geometry(D, metric, shared_rows=True) if given else None
    driver, shared = shared_atoms.publish_atoms(D, metric, directory=str(tmp_path),
                                                corrected=corrected)
    worker = shared_atoms.load_atoms(shared)
    for view in (driver, worker):
        np.testing.assert_array_equal(view.rows64, fresh.rows64)
        np.testing.assert_array_equal(view.cols32(), fresh.cols32())
        np.testing.assert_array_equal(view.scale, fresh.scale)
        np.testing.assert_array_equal(view.dead, fresh.dead)
        for nonneg in (False, True):
            np.testing.assert_array_equal(view.duplicate_atoms(nonneg),
                                          fresh.duplicate_atoms(nonneg))
        assert view.duplicate_partners() == fresh.duplicate_partners()
        assert view.metric_info() == fresh.metric_info()
    assert not worker.rows64.flags.writeable  # mapped read-only: one copy for the machine
    assert worker.duplicate_atoms(False)[[3, 7, 5, 11]].all() and worker.dead[20]
    shared_atoms.remove_atoms(shared)
    assert not os.path.exists(shared.directory)


def test_mapped_atoms_decide_every_code_as_the_process_view(tmp_path):
    D = _dictionary_with_pairs(seed=8)
    C = random_codes(120, np.repeat(np.arange(2, 16, 2), 3), False, 9)
    C[0, :] = 0.0
    C[0, [3, 9]] = [1.0, -0.5]  # a code on a duplicate atom: never certified
    _, shared = shared_atoms.publish_atoms(D, None, directory=str(tmp_path))
    import scipy.sparse as sp

    M = sp.csr_matrix(C)
    a, _ = _classify_rows(UnitAtoms(D, None), "sparse", M, M.shape[0], _OPTS, None)
    b, _ = _classify_rows(shared_atoms.load_atoms(shared), "sparse", M, M.shape[0], _OPTS, None)
    for name in ("status", "method", "certificate", "support_size", "reason"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.witness.keys() == b.witness.keys()
    for i in a.witness:
        np.testing.assert_array_equal(a.witness[i][0], b.witness[i][0])
        np.testing.assert_array_equal(a.witness[i][1], b.witness[i][1])


def test_missing_foreign_or_truncated_files_are_refused(tmp_path):
    D = unit_gaussian(20, 50, 1)
    _, shared = shared_atoms.publish_atoms(D, None, directory=str(tmp_path))
    assert shared_atoms.can_load(shared)
    other = SharedAtoms(shared.directory, "0" * 32, shared.n_atoms, shared.dim)
    with pytest.raises(SharedAtomsUnavailable, match="not this call's"):
        shared_atoms.load_atoms(other)
    assert not shared_atoms.can_load(other)
    with pytest.raises(SharedAtomsUnavailable, match="not this call's"):
        shared_atoms.load_atoms(SharedAtoms(shared.directory, shared.token, 49, 20))
    rows = os.path.join(shared.directory, "rows64.npy")
    with open(rows, "r+b") as fh:
        fh.truncate(os.path.getsize(rows) // 2)
    with pytest.raises(SharedAtomsUnavailable, match="rows64"):
        shared_atoms.load_atoms(shared)
    np.save(rows, np.zeros((50, 21)))
    with pytest.raises(SharedAtomsUnavailable, match="rows64.npy has shape"):
        shared_atoms.load_atoms(shared)
    shared_atoms.remove_atoms(shared)
    with pytest.raises(SharedAtomsUnavailable, match="manifest"):
        shared_atoms.load_atoms(shared)
    assert not shared_atoms.can_load(shared)
    other_metric = Geometry(D, _metric_for(20))
    with pytest.raises(ParameterError):  # the geometry of another metric is refused
        shared_atoms.publish_atoms(D, None, directory=str(tmp_path), corrected=other_metric)
    assert os.listdir(tmp_path) == []  # and nothing is left behind


@pytest.mark.parametrize("which", ["raw", "aip"])
def test_rows64_out_receives_the_same_rows(which):
    D = _dictionary_with_pairs()
    metric = None if which == "raw" else _metric()
    plain = CorrectedAtoms(D, metric, rows=False, rows64=True, min_live=0)
    out = np.full((120, 40), np.nan)
    given_out = CorrectedAtoms(D, metric, rows=False, rows64=True, min_live=0, rows64_out=out)
    assert given_out.rows64 is out
    np.testing.assert_array_equal(out, plain.rows64)
    np.testing.assert_array_equal(given_out.norms, plain.norms)
    for bad in (np.zeros((120, 41)), np.zeros((120, 40), dtype=np.float32),
                np.zeros((40, 120)).T):
        with pytest.raises(ParameterError, match="rows64_out"):
            CorrectedAtoms(D, metric, rows=False, rows64=True, rows64_out=bad)
    frozen = np.zeros((120, 40))
    frozen.flags.writeable = False
    with pytest.raises(ParameterError, match="rows64_out"):
        CorrectedAtoms(D, metric, rows=False, rows64=True, rows64_out=frozen)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 700), m=st.integers(1, 300), transposed=st.booleans(),
       cast=st.booleans(), threads=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_parallel_copyto_equals_numpy_copyto(n, m, transposed, cast, threads, seed):
    rng = np.random.default_rng(seed)
    src = rng.standard_normal((m, n)).T if transposed else rng.standard_normal((n, m))
    out = np.empty((n, m), dtype=np.float32 if cast else np.float64)
    expected = np.empty_like(out)
    np.copyto(expected, src, casting="same_kind")
    from unittest import mock

    from rip_atoms.kernels import parallel_copy

    with mock.patch.object(parallel_copy, "_SERIAL_BELOW", 0):  # threads even on small copies
        parallel_copyto(out, src, threads=threads)
    np.testing.assert_array_equal(out, expected)


def test_parallel_copyto_runs_threads_on_a_large_copy():
    rng = np.random.default_rng(0)
    src = rng.standard_normal((1500, 1200)).T  # above the serial threshold, transposed
    out = np.empty((1200, 1500))
    parallel_copyto(out, src, threads=2)
    np.testing.assert_array_equal(out, src)
    with pytest.raises(ValueError, match="C-contiguous"):
        parallel_copyto(np.empty((1500, 1200)).T, src)


@pytest.mark.slow
def test_distributed_run_cleans_up_and_falls_back_to_the_scatter(monkeypatch):
    """LocalCluster of 2 workers. Shared files: the same record as one process, the files gone
    and the workers' D̃ dropped after the call. Then files the workers cannot read (removed
    after the driver checked them, as for a worker that joins from another machine): the tasks
    raise SharedAtomsUnavailable and the driver scatters D instead, with the same record."""
    pytest.importorskip("distributed")
    from rip_atoms.cluster import dask_client
    from rip_atoms.recovery import distributed

    D = _dictionary_with_pairs(seed=12)
    C = random_codes(120, np.repeat(np.arange(2, 14, 2), 4), True, 13)
    single = classify_recovery(D, C, nonneg=True, metric=None, chunk_size=5)
    published: list[SharedAtoms] = []
    share = distributed._share

    def recording(*args):
        atoms, shared = share(*args)
        published.append(shared)
        return atoms, shared

    def vanishing(*args):
        atoms, shared = share(*args)
        shared_atoms.remove_atoms(shared)
        return atoms, shared

    def same(r):
        np.testing.assert_array_equal(single.status, r.status)
        np.testing.assert_array_equal(single.method, r.method)
        np.testing.assert_array_equal(single.certificate, r.certificate)
        assert (single.witnesses != r.witnesses).nnz == 0
        np.testing.assert_array_equal(single.atom_scale, r.atom_scale)

    with dask_client(workers=2, quiet=True) as client:
        scatters = []
        scatter = client.scatter

        def counting(*args, **kwargs):
            scatters.append(1)
            return scatter(*args, **kwargs)

        monkeypatch.setattr(client, "scatter", counting)
        monkeypatch.setattr(distributed, "_share", recording)
        same(classify_recovery(D, C, nonneg=True, metric=None, chunk_size=5, client=client))
        assert scatters == []  # the tasks mapped the files: D was never sent
        assert published and published[0] is not None
        assert not os.path.exists(published[0].directory)
        caches = client.run(lambda: len(__import__(
            "rip_atoms.recovery.distributed", fromlist=["_ATOMS_CACHE"])._ATOMS_CACHE))
        assert set(caches.values()) == {0}
        monkeypatch.setattr(distributed, "_share", vanishing)
        same(classify_recovery(D, C, nonneg=True, metric=None, chunk_size=5, client=client))
        assert len(scatters) == 1  # one fallback: every open chunk resubmitted at once


def test_directories_of_dead_drivers_are_removed(tmp_path):
    """A driver killed before its cleanup leaves rip-atoms-l1-HOST-PID-…; the next publish on
    the machine removes it (its owner.lock is free, or without one its pid is gone), and never a
    live process's directory or another host's."""
    import socket
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    stale = tmp_path / f"rip-atoms-l1-{host}-{gone.pid}-abc"
    live = tmp_path / f"rip-atoms-l1-{host}-{os.getpid()}-def"
    foreign = tmp_path / f"rip-atoms-l1-{host}x-{gone.pid}-ghi"
    longer = tmp_path / f"rip-atoms-l1-{host}-1-{gone.pid}-jkl"  # host "HOST-1"
    # with an owner lock, the lock decides, not the pid: held (a live driver whose pid this
    # process cannot see, another pid namespace) is kept; free (the pid reused) is removed
    held = tmp_path / f"rip-atoms-l1-{host}-{gone.pid}-held"
    free = tmp_path / f"rip-atoms-l1-{host}-{os.getpid()}-free"
    for p in (stale, live, foreign, longer, held, free):
        p.mkdir()
        (p / "rows64.npy").write_bytes(b"x")
    import fcntl

    (free / "owner.lock").write_bytes(b"")
    fd = os.open(held / "owner.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        _, shared = shared_atoms.publish_atoms(unit_gaussian(10, 30, 2), None,
                                               directory=str(tmp_path))
        assert not stale.exists() and live.exists() and foreign.exists() and longer.exists()
        assert held.exists() and not free.exists()
        assert os.path.basename(shared.directory).startswith(
            f"rip-atoms-l1-{host}-{os.getpid()}-")
        assert shared_atoms.remove_stale(str(tmp_path)) == []  # the call's own is not stale
    finally:
        os.close(fd)
    assert shared_atoms.remove_stale(str(tmp_path)) == [str(held)]  # its owner let go
    shared_atoms.remove_atoms(shared)


def test_a_full_filesystem_means_the_scatter_not_a_crash(tmp_path, monkeypatch):
    """The files' blocks are reserved before the rows are written (a full tmpfs would otherwise
    kill the driver with SIGBUS mid-copy): ENOSPC is an OSError, the directory is removed, and
    the distributed run scatters D instead. /dev/shm without room is not chosen at all."""
    import errno
    import tempfile

    from rip_atoms.recovery import distributed

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shared_atoms.os, "posix_fallocate", full, raising=False)
    D = unit_gaussian(20, 50, 3)
    with pytest.raises(OSError, match="No space"):
        shared_atoms.publish_atoms(D, None, directory=str(tmp_path))
    assert os.listdir(tmp_path) == []
    choose = shared_atoms.shared_directory
    monkeypatch.setattr(shared_atoms, "shared_directory", lambda nbytes: str(tmp_path))
    assert distributed._share(None, D, None) == (None, None)
    assert os.listdir(tmp_path) == []
    assert choose(1 << 62) == tempfile.gettempdir()


class _FakeClient:
    """Stands in for a Dask client in the driver-side unit tests of ``_share``."""

    def __init__(self, run):
        self._run = run

    def run(self, fn, *args):
        return self._run(fn, *args)


def test_share_removes_its_files_on_every_way_out(tmp_path, monkeypatch):
    """Published files go again when a worker cannot map them, when the check is interrupted
    (Ctrl-C) and when the manifest cannot be written; only success keeps them."""
    from rip_atoms.recovery import distributed

    monkeypatch.setattr(shared_atoms, "shared_directory", lambda nbytes: str(tmp_path))
    monkeypatch.setattr(shared_atoms, "_bases", lambda: [str(tmp_path)])
    D = unit_gaussian(12, 40, 5)
    blind = _FakeClient(lambda fn, *a: {"tcp://a": fn(*a), "tcp://b": False})
    assert distributed._share(blind, D, None) == (None, None)
    assert os.listdir(tmp_path) == []

    def interrupted(fn, *a):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed._share(_FakeClient(interrupted), D, None)
    assert os.listdir(tmp_path) == []

    def unserialisable(*args, **kwargs):
        raise TypeError("Object of type int64 is not JSON serializable")

    monkeypatch.setattr(shared_atoms.json, "dump", unserialisable)
    assert distributed._share(blind, D, None) == (None, None)
    assert os.listdir(tmp_path) == []
    monkeypatch.undo()
    monkeypatch.setattr(shared_atoms, "shared_directory", lambda nbytes: str(tmp_path))
    seeing = _FakeClient(lambda fn, *a: {"tcp://a": fn(*a)})
    atoms, shared = distributed._share(seeing, D, None)
    assert shared is not None and os.path.isdir(shared.directory)
    shared_atoms.remove_atoms(shared)
    assert os.listdir(tmp_path) == []


def test_malformed_pairs_are_refused_not_a_crash(tmp_path):
    _, shared = shared_atoms.publish_atoms(unit_gaussian(10, 30, 6), None,
                                           directory=str(tmp_path))
    np.save(os.path.join(shared.directory, "pairs.npy"), np.zeros(7))  # not m×3
    with pytest.raises(SharedAtomsUnavailable):
        shared_atoms.load_atoms(shared)
    shared_atoms.remove_atoms(shared)


def test_the_torch_engine_takes_mapped_atoms_without_a_warning(tmp_path):
    pytest.importorskip("torch")
    import warnings

    _, shared = shared_atoms.publish_atoms(unit_gaussian(10, 30, 7), None,
                                           directory=str(tmp_path))
    view = shared_atoms.load_atoms(shared)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solver = view.torch_solver("cpu")
    np.testing.assert_array_equal(solver.DT64.numpy(), view.rows64)
    shared_atoms.remove_atoms(shared)
