"""SAE training on a torch device (``TrainConfig.device``), exercised on CPU torch.

The GPU path is the CPU path with every tensor on the device, the training rows either resident
there or staged through host buffers, and (by default on a GPU) dense GEMMs for the gradients
more often than on a CPU. On CPU torch the same code runs with ``device="cpu"``:

* the dense-GEMM gradients (``sparse_density=0``, the GPU's usual path) and the ``embedding_bag``
  sums (``sparse_density=1``) are the same gradients: from one state, one step gives the same
  parameters up to float rounding, and whole runs on a planted atom set recover the same atoms
  at the same loss and L0;
* staged batches (rows kept on the host, one transfer per batch) give bit-for-bit the run of
  resident rows;
* a checkpoint holds only CPU tensors and resumes on another path and another device name;
* a device this torch cannot use is one clear error line (library and CLI), before any work.

With CUDA available, one more test trains on the GPU and resumes its checkpoint on the CPU.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rip_atoms.errors import ParameterError  # noqa: E402
from rip_atoms.sae.train import TrainConfig, Trainer, train_sae  # noqa: E402
from rip_atoms.sae.training_data import BatchSource  # noqa: E402
from rip_atoms.synthetic import planted_atoms  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def small_data(n=3000, d=16, seed=0) -> np.ndarray:
    pl = planted_atoms(d, 48, 3, n, offset=1.0, seed=seed)
    return (pl.activations * 7.0 + 3.0).astype(np.float32)


def params(tr: Trainer) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().double().numpy() for k, v in tr.p.tensors().items()}


@pytest.mark.parametrize("arch", ["jumprelu", "standard"])
def test_dense_and_sparse_paths_take_the_same_step(arch):
    """From one state, a step with dense GEMMs and a step with embedding_bag sums give the same
    parameters (float rounding only), the same SSE and the same L0."""
    X = small_data(n=2000, d=24)
    base = TrainConfig(architecture=arch, width=96, target_l0=6, steps=200, batch_size=256,
                       bandwidth=0.05, resample_every=0)
    trainers = {}
    for density in (0.0, 1.0):
        tr = Trainer(X, replace(base, sparse_density=density), None)
        tr.init_state()
        trainers[density] = tr
    dense, sparse = trainers[0.0], trainers[1.0]
    for k, v in params(dense).items():  # same initial state (same CPU generator draws)
        np.testing.assert_array_equal(v, params(sparse)[k], err_msg=k)
    for _ in range(3):
        sse_d, l0_d = dense.train_step()
        sse_s, l0_s = sparse.train_step()
        assert sse_s == pytest.approx(sse_d, rel=1e-4)
        assert l0_s == l0_d
        pd, ps = params(dense), params(sparse)
        for k in pd:
            scale = float(np.abs(pd[k]).max()) + 1e-12
            np.testing.assert_allclose(ps[k], pd[k], rtol=0, atol=1e-4 * scale, err_msg=k)


@pytest.mark.parametrize("arch", ["jumprelu", "standard"])
def test_dense_path_trains_like_the_sparse_path(arch):
    """Whole runs on a planted atom set (1200 steps): the dense path (the GPU default) and the
    CPU's sparse path find every true atom equally well (per-atom best |cos| within 10⁻³) at
    the same L0 and R² (within 1 %); the TSAE recovers every atom (|cos| ≥ 0.98)."""
    H, N, K = 32, 48, 3
    pl = planted_atoms(H, N, K, 8000, seed=3)
    X = pl.activations.astype(np.float32)
    cfg = TrainConfig(architecture=arch, width=96, target_l0=K, steps=1200, batch_size=256,
                      log_every=100, seed=1)
    runs = {d: train_sae(X, replace(cfg, sparse_density=d), progress=False)
            for d in (0.0, None)}
    true = pl.dictionary.unit()  # H×N, unit columns
    best = {d: np.abs(res.sae.W_dec.double().numpy() @ true).max(axis=0)
            for d, res in runs.items()}
    np.testing.assert_allclose(best[0.0], best[None], atol=1e-3)
    a, b = runs[0.0], runs[None]
    assert a.l0 == pytest.approx(b.l0, rel=0.01)
    assert a.r2 == pytest.approx(b.r2, rel=0.01)
    assert a.l0 == pytest.approx(K, rel=0.1)
    if arch == "jumprelu":
        assert best[0.0].min() >= 0.98, np.sort(best[0.0])[:4]


def test_staged_batches_equal_resident_rows():
    """Rows kept on the host and staged per batch (through two reused buffers) give the
    resident-rows run bit for bit, resampling of dead latents included."""
    X = small_data()
    cfg = TrainConfig(width=64, target_l0=4, steps=60, batch_size=128, resample_every=20,
                      resample_until=0.9, dead_after_tokens=256)
    out = []
    for resident in (True, False):
        tr = Trainer(X, cfg, None, resident=resident)
        assert tr.source.resident is resident
        tr.init_state()
        hist = [tr.train_step() for _ in range(60)]
        tr.resample_dead()
        out.append((hist, params(tr)))
    assert out[0][0] == out[1][0]
    for k, v in out[0][1].items():
        np.testing.assert_array_equal(v, out[1][1][k], err_msg=k)


def test_batch_source_serves_the_epoch_order():
    data = torch.arange(40, dtype=torch.float32).reshape(10, 4)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    for resident in (True, False):
        src = BatchSource(data, torch.device("cpu"), resident=resident)
        src.set_order(perm)
        first = src.batch(0, 3)
        second = src.batch(3, 7)  # the other staging buffer: `first` stays intact
        third = src.batch(7, 10)
        assert torch.equal(first, data[perm[:3]])
        assert torch.equal(second, data[perm[3:7]])
        assert torch.equal(third, data[perm[7:]])
        assert torch.equal(src.rows(torch.tensor([9, 0])), data[[9, 0]])


def test_checkpoint_is_cpu_only_and_resumes_on_another_path_and_device(tmp_path):
    """A run checkpointed on the dense path resumes on the sparse path under another device
    name: the checkpoint holds CPU tensors only, and the resumed run ends where an
    uninterrupted dense run does (up to float rounding)."""
    X = small_data()
    cfg = TrainConfig(width=48, target_l0=4, steps=90, batch_size=128, checkpoint_every=20,
                      resample_every=25, resample_until=0.8, log_every=10, sparse_density=0.0)
    full = train_sae(X, cfg, out_dir=tmp_path / "full", progress=False)
    part = train_sae(X, cfg, out_dir=tmp_path / "split", progress=False, stop_after=37)
    assert part.steps == 37
    st = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    tensors = []

    def walk(o):
        if isinstance(o, torch.Tensor):
            tensors.append(o)
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list | tuple):
            for v in o:
                walk(v)

    walk(st)
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert st["config"]["device"] == "cpu" and st["config"]["sparse_density"] == 0.0
    done = train_sae(X, replace(cfg, sparse_density=None, device="cpu:0"),
                     out_dir=tmp_path / "split", progress=False, resume=True)
    assert done.resumed_from_step == 37 and done.steps == 90
    assert done.config.device == "cpu:0"
    for name, t in full.sae.state_dict().items():
        u = done.sae.state_dict()[name]
        np.testing.assert_allclose(u.double().numpy(), t.double().numpy(), rtol=0,
                                   atol=1e-3 * (float(t.abs().max()) + 1e-12), err_msg=name)
    assert done.l0 == pytest.approx(full.l0, rel=0.05)


@pytest.mark.parametrize("device, words", [
    ("nonsense", "invalid device name 'nonsense'"),
    ("meta", "meta device holds no data"),
])
def test_bad_device_is_one_clear_error(device, words):
    with pytest.raises(ParameterError, match=words):
        train_sae(small_data(300, 8), TrainConfig(width=8, target_l0=2, steps=2, batch_size=16,
                                                  device=device), progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has CUDA")
def test_cuda_on_a_cpu_only_torch_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="device 'cuda'"):
        train_sae(small_data(300, 8), TrainConfig(width=8, target_l0=2, steps=2, batch_size=16,
                                                  device="cuda"), progress=False)
    np.save(tmp_path / "acts.npy", small_data(300, 8))
    r = subprocess.run([sys.executable, "-m", "rip_atoms", "train", str(tmp_path / "acts.npy"),
                        "--out", str(tmp_path / "o"), "--device", "cuda", "--steps", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cuda" in lines[0], r.stderr
    assert not (tmp_path / "o").exists()


def test_train_config_checks_device_and_density():
    with pytest.raises(ParameterError, match="sparse_density must be None or a number"):
        TrainConfig(sparse_density=1.5)
    with pytest.raises(ParameterError, match="device must be a device name"):
        TrainConfig(device="")
    assert TrainConfig().step_density("cpu") == 0.2
    assert TrainConfig().step_density("cuda") == 0.02
    assert TrainConfig(sparse_density=0).step_density("cuda") == 0.0
    assert TrainConfig(device="cuda:1").to_dict()["device"] == "cuda:1"


@cuda
def test_cuda_run_matches_cpu_and_its_checkpoint_resumes_on_the_cpu(tmp_path):
    X = small_data()
    cfg = TrainConfig(width=48, target_l0=4, steps=80, batch_size=128, checkpoint_every=20,
                      log_every=10)
    cpu = train_sae(X, cfg, progress=False)
    gpu = train_sae(X, replace(cfg, device="cuda"), progress=False)
    assert gpu.l0 == pytest.approx(cpu.l0, rel=0.05)
    assert gpu.r2 == pytest.approx(cpu.r2, abs=0.02)
    part = train_sae(X, replace(cfg, device="cuda"), out_dir=tmp_path, progress=False,
                     stop_after=30)
    assert part.steps == 30
    done = train_sae(X, cfg, out_dir=tmp_path, progress=False, resume=True)
    assert done.resumed_from_step == 30 and done.steps == 80
    assert done.l0 == pytest.approx(cpu.l0, rel=0.05)
