"""Distributed coherence: the Gram tiles as Dask tasks on a LocalCluster give a CoherenceResult
bit-identical to the single-process pass (same μ, pair, Babel, top pairs, per-atom values,
histogram), also with duplicates and dead atoms, and also when a worker is SIGKILLed mid-run
(Dask reruns its task; the tasks are pure)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from rip_atoms.cluster import dask_client  # noqa: E402
from rip_atoms.coherence import coherence, per_atom_coherence  # noqa: E402
from rip_atoms.dictionary import Dictionary  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    coherence(np.random.default_rng(0).standard_normal((4, 30)), "raw", block_size=8)  # JIT
    with dask_client(workers=2, blas_threads=1, quiet=True) as c:
        yield c


def _same(a, b) -> None:
    da, db = a.to_dict(), b.to_dict()
    da.pop("seconds"), db.pop("seconds")
    assert da == db
    for name in ("per_atom", "per_atom_partner", "babel", "babel_rows", "babel_upper",
                 "histogram_counts", "dead_atoms"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    assert a.top_pairs == b.top_pairs and a.duplicate_pairs == b.duplicate_pairs
    assert (a.mu, a.pair, a.mu_upper) == (b.mu, b.pair, b.mu_upper)


def _dictionaries():
    rng = np.random.default_rng(3)
    plain = rng.standard_normal((24, 700))
    dup = rng.standard_normal((24, 700))
    dup[:, 10] = dup[:, 3]  # exact duplicate, an antiparallel copy and a dead atom
    dup[:, 400] = -2.0 * dup[:, 3]
    dup[:, 77] = 0.0
    ties = np.repeat(rng.standard_normal((16, 90)), 4, axis=1)  # every value tied four ways
    ties[:, 5] = 0.0
    return {"plain": plain, "duplicates+dead": dup, "ties": ties}


@pytest.mark.parametrize("name", list(_dictionaries()))
@pytest.mark.parametrize("metric", ["raw", "self"])
def test_distributed_pass_is_bit_identical(client, name, metric):
    D = Dictionary(_dictionaries()[name])
    kw = dict(babel_p=12, top=40, block_size=64)
    local = coherence(D, metric, **kw)
    dist = coherence(D, metric, client=client, **kw)
    _same(local, dist)


def test_per_atom_coherence_distributed(client):
    D = _dictionaries()["duplicates+dead"]
    a = per_atom_coherence(D, "self", exact_max_atoms=10)
    b = per_atom_coherence(D, "self", exact_max_atoms=10, client=client)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.partner, b.partner) and np.array_equal(a.exact, b.exact)
    assert (a.mu, a.pair) == (b.mu, b.pair)


def test_worker_killed_mid_run_gives_identical_result(client):
    rng = np.random.default_rng(5)
    D = rng.standard_normal((384, 12000)).astype(np.float32)
    D[:, 9] = D[:, 2]
    kw = dict(babel_p=8, top=20, block_size=256)
    local = coherence(D, "raw", **kw)
    pids = client.run(os.getpid)
    killed: dict = {}

    def kill_one() -> None:
        t_end = time.time() + 60
        while time.time() < t_end and not killed:
            busy = [w for w, keys in client.processing().items()
                    if any("reduce_tiles" in str(k) for k in keys)]
            if busy:
                time.sleep(0.3)  # let it get into its task
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed["at"] = time.time()
                return
            time.sleep(0.01)

    th = threading.Thread(target=kill_one)
    th.start()
    dist = coherence(D, "raw", client=client, **kw)
    done = time.time()
    th.join()
    assert "at" in killed and killed["at"] < done  # the kill landed while the pass ran
    _same(local, dist)
    # the cluster recovered: the nanny restarted the killed worker, the pass still works
    client.wait_for_workers(2, timeout=60)
    _same(local, coherence(D, "raw", client=client, **kw))


def test_report_coherence_with_a_client_is_identical(client):
    from rip_atoms.report import VerifyTarget, build_report

    D = Dictionary(_dictionaries()["duplicates+dead"])
    reps = [build_report(VerifyTarget(D, "tiny"), budget_s=1.0, rip_ks=(2, 4), client=c)
            for c in (None, client)]
    for geometry in ("raw", "aip"):
        a, b = (dict(r["coherence"][geometry]) for r in reps)
        a.pop("seconds"), b.pop("seconds")
        assert a == b


@pytest.mark.parametrize("argv, says", [
    (["--workers", "0"], "--workers must be ≥ 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
])
def test_verify_cluster_options_are_checked(tmp_path, capsys, argv, says):
    from rip_atoms.cli import main as cli_main

    rc = cli_main(["verify", "--quick", "--out", str(tmp_path / "r"), *argv])
    assert rc == 2 and says in capsys.readouterr().err
