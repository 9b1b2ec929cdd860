"""TSAE and ReLU + L1 SAE training.

* On a planted atom set (known unit atoms, 3-sparse non-negative codes) the TSAE recovers the
  atoms: mean over true atoms of the max |cos| to a learned atom ≥ 0.99, and its codes are
  certified by the exact ℓ1 test on ≥ 95 % of fresh tokens.
* The known JumpReLU training pitfalls are avoided on purpose, and it shows: from a tiny
  constant threshold (1e-3) the raw thresholds move by orders of magnitude and L0 reaches its
  target (a log-parameterised θ under Adam would move by ~θ·lr per step); inputs are trained at
  E‖t‖² = 1; parameters are float32.
* The saved SAE reads raw activations: folding the scale (and the AIP whitening) reproduces the
  training-coordinate reconstructions; decoder rows are unit; SAELens loads it unchanged.
* Checkpoints resume bit-for-bit, also after the process is killed (SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rip_atoms.sae import CheckpointError, load_sae  # noqa: E402
from rip_atoms.sae.train import TrainConfig, Trainer, train_sae  # noqa: E402
from rip_atoms.synthetic import planted_atoms  # noqa: E402


def small_data(n=3000, d=16, seed=0) -> np.ndarray:
    pl = planted_atoms(d, 48, 3, n, offset=1.0, seed=seed)
    return (pl.activations * 7.0 + 3.0).astype(np.float32)  # a scale and an offset on purpose


def test_tsae_recovers_planted_atoms():
    from rip_atoms.criteria import l1_certified_fraction
    from rip_atoms.metric import fit_metric

    H, N, K = 64, 128, 3
    pl = planted_atoms(H, N, K, 20000, seed=0)
    cfg = TrainConfig(width=2 * N, target_l0=K, steps=3000, batch_size=512, log_every=500)
    res = train_sae(pl.activations.astype(np.float32), cfg, progress=False)
    A = res.sae.W_dec.double().numpy()  # learned unit atoms (rows)
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, atol=1e-5)
    cos = np.abs(A @ pl.dictionary.unit())  # learned × true
    best = cos.max(axis=0)
    assert best.mean() >= 0.99, (best.mean(), np.sort(best)[:5])
    assert abs(res.l0 - K) < 0.3
    # ℓ1: codes of fresh tokens are certified unique basis-pursuit solutions
    fresh = planted_atoms(H, N, K, 1000, seed=7, dictionary=pl.dictionary)
    X = fresh.activations.astype(np.float32)
    codes = res.sae.encode_numpy(X)
    cert = l1_certified_fraction(res.sae.dictionary(), codes, metric=fit_metric(X),
                                 max_tokens=100, seed=0)
    assert cert.value >= 0.95, cert.to_dict()


def test_threshold_moves_and_l0_reaches_target():
    pl = planted_atoms(64, 128, 3, 8000, seed=1)
    cfg = TrainConfig(width=128, target_l0=6, steps=600, batch_size=256, threshold_init=1e-3,
                      resample_every=0, log_every=50)
    res = train_sae(pl.activations.astype(np.float32), cfg, progress=False)
    th0 = res.thresholds["training_initial_median"]
    assert res.history[0]["l0"] > 4 * 6  # starts far above the target …
    assert abs(res.l0 - 6) / 6 < 0.1  # … and reaches it
    assert res.thresholds["training_median"] > 30 * th0  # θ moved by orders of magnitude
    assert res.sae.threshold.dtype == torch.float32


def test_standard_sae_l1_controller_reaches_target_l0():
    X = small_data()
    cfg = TrainConfig(architecture="standard", width=64, target_l0=5, steps=800,
                      batch_size=256, log_every=100)
    res = train_sae(X, cfg, progress=False)
    assert abs(res.l0 - 5) / 5 < 0.25
    assert res.l1_coefficient != cfg.l1_coefficient
    fixed = train_sae(X, replace(cfg, target_l0=None, steps=100), progress=False)
    assert fixed.l1_coefficient == cfg.l1_coefficient
    assert fixed.sae.architecture == "standard" and fixed.sae.threshold is None


@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("arch", ["jumprelu", "standard"])
def test_saved_sae_reads_raw_activations(arch, whiten):
    """export() folds t = s·A x away: on raw x it gives (f W_dec + b_dec) A⁻¹ / s of the
    training-coordinate model, and its decoder rows are unit."""
    X = small_data()
    cfg = TrainConfig(architecture=arch, width=40, target_l0=4, steps=40, batch_size=128,
                      whiten=whiten)
    tr = Trainer(X, cfg, None)
    tr.init_state()
    for _ in range(40):
        tr.train_step()
    sae = tr.export()
    xt = torch.from_numpy(X[:200])
    t = xt @ tr.A if whiten else xt.clone()
    t = t * tr.scale
    p = tr.p
    h = (t - p.b_dec) @ p.W_enc + p.b_enc
    f = h * (h > (p.threshold if p.threshold is not None else 0))
    t_hat = f @ p.W_dec + p.b_dec
    x_hat = (t_hat @ tr.A_inv if whiten else t_hat) / tr.scale
    np.testing.assert_allclose(sae.reconstruct_numpy(X[:200]), x_hat.numpy(), rtol=1e-3,
                               atol=1e-3 * float(np.abs(X).max()))
    np.testing.assert_allclose(np.linalg.norm(sae.W_dec.numpy(), axis=1), 1.0, atol=1e-5)
    # training coordinates: E‖t‖² = 1 and unit decoder rows
    assert float((tr.data.double() ** 2).sum(1).mean()) == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(p.W_dec.norm(dim=1).numpy(), 1.0, atol=1e-5)


def test_resume_is_exact(tmp_path):
    X = small_data()
    cfg = TrainConfig(width=48, target_l0=4, steps=90, batch_size=128, checkpoint_every=20,
                      resample_every=25, resample_until=0.8, log_every=10)
    full = train_sae(X, cfg, out_dir=tmp_path / "full", progress=False)
    part = train_sae(X, cfg, out_dir=tmp_path / "split", progress=False, stop_after=37)
    assert part.steps == 37 and not (tmp_path / "split" / "cfg.json").exists()
    done = train_sae(X, cfg, out_dir=tmp_path / "split", progress=False, resume=True)
    assert done.resumed_from_step == 37
    for name, t in full.sae.state_dict().items():
        assert torch.equal(t, done.sae.state_dict()[name]), name
    assert full.history == done.history
    a = json.loads((tmp_path / "full" / "cfg.json").read_text())
    b = json.loads((tmp_path / "split" / "cfg.json").read_text())
    assert a == b


def test_checkpoint_mismatch_and_corruption(tmp_path):
    X = small_data()
    cfg = TrainConfig(width=48, target_l0=4, steps=30, batch_size=128, checkpoint_every=10)
    train_sae(X, cfg, out_dir=tmp_path, progress=False, stop_after=12)
    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt.*width"):
        train_sae(X, replace(cfg, width=64), out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="different activations"):
        train_sae(X * 2, cfg, out_dir=tmp_path, resume=True, progress=False)
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable"):
        train_sae(X, cfg, out_dir=tmp_path, resume=True, progress=False)


def test_trained_tsae_loads_in_sae_lens(tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    X = small_data()
    cfg = TrainConfig(width=48, target_l0=4, steps=60, batch_size=128)
    res = train_sae(X, cfg, out_dir=tmp_path / "tsae", progress=False,
                    metadata={"hook_name": "blocks.3.hook_resid_post"})
    ref = sae_lens.SAE.load_from_disk(tmp_path / "tsae")
    assert ref.cfg.architecture() == "jumprelu"
    x = torch.from_numpy(X[:300])
    with torch.no_grad():
        codes = ref.encode(x).numpy()
        np.testing.assert_allclose(codes, res.sae.encode_numpy(X[:300]), atol=1e-5)
        np.testing.assert_allclose(ref(x).numpy(), res.sae.reconstruct_numpy(X[:300]),
                                   atol=1e-4)
    assert (codes != 0).sum(1).mean() > 0
    meta = ref.cfg.metadata
    assert meta.rip_atoms["trainer"] == "rip_atoms.sae.train"
    assert meta.hook_name == "blocks.3.hook_resid_post"
    ours = load_sae(tmp_path / "tsae")
    assert torch.equal(ours.threshold, res.sae.threshold)


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "rip_atoms", *map(str, args)]


def test_cli_train_killed_and_resumed(tmp_path):
    """SIGKILL a `rip-atoms train` run after its first checkpoint; `--resume` finishes it and
    the result equals an uninterrupted run bit for bit."""
    X = small_data(n=4000)
    np.save(tmp_path / "acts.npy", X)
    common = ["--width", 64, "--target-l0", 4, "--steps", 1500, "--batch", 128,
              "--checkpoint-every", 10, "--held-out", 0.1, "--quiet"]
    victim = subprocess.Popen(_cli("train", tmp_path / "acts.npy", "--out", tmp_path / "k",
                                   *common), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = tmp_path / "k" / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert ckpt.exists() and not (tmp_path / "k" / "cfg.json").exists()
    r = subprocess.run(_cli("train", tmp_path / "acts.npy", "--out", tmp_path / "k", *common,
                            "--resume", "--json"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["resumed_from_step"] > 0 and out["steps"] == 1500
    assert 0 < out["held_out"]["tokens"] < 4000
    r2 = subprocess.run(_cli("train", tmp_path / "acts.npy", "--out", tmp_path / "u", *common,
                             "--json"), capture_output=True, text=True, timeout=600)
    assert r2.returncode == 0, r2.stderr
    a, b = load_sae(tmp_path / "k"), load_sae(tmp_path / "u")
    for name, t in a.state_dict().items():
        assert torch.equal(t, b.state_dict()[name]), name


@pytest.mark.parametrize("arch", ["jumprelu", "standard"])
def test_sparse_and_dense_gradients_agree(arch):
    """The embedding_bag path computes the same gradients as the dense GEMMs (and both match
    autograd through the JumpReLU / rectangle-STE definitions)."""
    X = small_data(n=2000, d=24)
    cfg = TrainConfig(architecture=arch, width=96, target_l0=6, steps=100, batch_size=256,
                      bandwidth=0.05)
    tr = Trainer(X, cfg, None)
    tr.init_state()
    for _ in range(30):
        tr.train_step()
    p = tr.p
    x = tr.data[:256]
    xc = x - p.b_dec
    h = torch.addmm(p.b_enc, xc, p.W_enc)
    sel = h > (p.threshold - cfg.bandwidth / 2) if arch == "jumprelu" else h > 0
    sse_d, n_d = tr._grads_dense(x, xc, h.clone(), 0.7)
    dense = {k: v.grad.clone() for k, v in p.tensors().items()}
    sse_s, n_s = tr._grads_sparse(x, xc, h.clone(), sel, 0.7)
    assert float(sse_s) == pytest.approx(float(sse_d), rel=1e-5)
    assert torch.equal(n_d, n_s)
    for k, v in p.tensors().items():
        np.testing.assert_allclose(v.grad.numpy(), dense[k].numpy(), rtol=1e-4,
                                   atol=1e-6 * float(dense[k].abs().max()) + 1e-9, err_msg=k)
    # autograd reference for the MSE part (θ gets its STE terms by definition, so check W, b)
    W_enc, b_enc, W_dec, b_dec = (t.clone().requires_grad_(True)
                                  for t in (p.W_enc, p.b_enc, p.W_dec, p.b_dec))
    hh = (x - b_dec) @ W_enc + b_enc
    gate = (hh > p.threshold) if arch == "jumprelu" else (hh > 0)
    f = hh * gate
    loss = ((f @ W_dec + b_dec - x) ** 2).sum(1).mean()
    if arch == "standard":
        loss = loss + tr.l1 * f.sum(1).mean()
    loss.backward()
    for name, t in (("W_enc", W_enc), ("b_enc", b_enc), ("W_dec", W_dec), ("b_dec", b_dec)):
        np.testing.assert_allclose(getattr(p, name).grad.numpy(), t.grad.numpy(), rtol=1e-3,
                                   atol=1e-5 * float(t.grad.abs().max()) + 1e-9, err_msg=name)
