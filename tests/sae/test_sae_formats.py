"""SAE formats → the canonical object: every format is written here in its real on-disk layout
(tensor names, orientation, config keys) and must load to the SAE its writer meant, i.e. give the
same codes and reconstructions as an independent reference of that library's forward pass —
SAELens itself where it is installed (the ``sae-test`` extra), else a numpy re-implementation of
the library's documented encode/decode written in this file. Also: our save is read back by
SAELens unchanged, ``Dictionary.load`` dispatches SAE files to the adapter, foldings preserve
reconstructions, and bad input (unknown architectures, missing tensors, shape mismatches,
corrupt files) raises a specific error that names the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.numpy import save_file  # noqa: E402

from rip_atoms.dictionary import Dictionary  # noqa: E402
from rip_atoms.errors import (  # noqa: E402
    FileFormatError,
    RipAtomsError,
    ShapeMismatchError,
    TensorNotFoundError,
)
from rip_atoms.sae import SparseAutoencoder, UnknownArchitectureError, load_sae, save_sae  # noqa: E402
from rip_atoms.sae.formats import detect_format  # noqa: E402

D_IN, D_SAE = 12, 40
RNG = np.random.default_rng(0)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def relu(a):
    return np.maximum(a, 0.0)


def topk_dense(h, k):
    """Keep the k largest entries of each row (then ReLU), zero the rest."""
    out = np.zeros_like(h)
    idx = np.argpartition(-h, k - 1, axis=1)[:, :k]
    rows = np.arange(h.shape[0])[:, None]
    out[rows, idx] = relu(h[rows, idx])
    return out


X = rand(30, D_IN, scale=2.0)


def assert_same_sae(sae: SparseAutoencoder, codes_ref: np.ndarray, recon_ref: np.ndarray,
                    x: np.ndarray = X, atol: float = 1e-4) -> None:
    f = sae.encode_numpy(x)
    np.testing.assert_allclose(f, codes_ref, atol=atol, rtol=1e-4)
    np.testing.assert_allclose(sae.reconstruct_numpy(x), recon_ref, atol=atol, rtol=1e-4)


# =============================================================================== SAELens
sae_lens = None
try:  # SAELens is the test extra; without it the SAELens-written cases are skipped
    import sae_lens  # noqa: F811
except ImportError:  # pragma: no cover
    pass

needs_sae_lens = pytest.mark.skipif(sae_lens is None, reason="sae-lens not installed")


def _sae_lens_model(arch: str):
    from sae_lens import SAE

    cfg = {"d_in": D_IN, "d_sae": D_SAE, "architecture": arch, "dtype": "float32",
           "device": "cpu", "apply_b_dec_to_input": arch != "jumprelu",
           "normalize_activations": "none",
           "metadata": {"sae_lens_version": "6.54.12", "hook_name": "blocks.3.hook_resid_post"}}
    if arch == "topk":
        cfg["k"] = 5
        cfg["rescale_acts_by_decoder_norm"] = True
    sae = SAE.from_dict(cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        if arch == "jumprelu":
            sae.threshold.copy_(torch.rand(D_SAE, generator=gen) * 0.8)
    return sae


@needs_sae_lens
@pytest.mark.parametrize("arch", ["standard", "jumprelu", "topk", "gated"])
def test_sae_lens_v6_written_by_sae_lens(tmp_path, arch):
    ref = _sae_lens_model(arch)
    ref.save_model(tmp_path / "sae")
    ours = load_sae(tmp_path / "sae")
    assert ours.architecture == arch and ours.format == "sae_lens"
    assert ours.hook_name == "blocks.3.hook_resid_post"
    x = torch.from_numpy(X)
    with torch.no_grad():
        codes, recon = ref.encode(x).numpy(), ref(x).numpy()
    assert_same_sae(ours, codes, recon)
    assert (codes != 0).any()


@needs_sae_lens
@pytest.mark.parametrize("arch", ["standard", "jumprelu", "topk", "gated"])
def test_our_save_loads_in_sae_lens_unchanged(tmp_path, arch):
    """Our v6 writer → SAELens's own SAE.load_from_disk: same codes and reconstructions."""
    from sae_lens import SAE

    src = _sae_lens_model(arch)
    src.save_model(tmp_path / "a")
    ours = load_sae(tmp_path / "a")
    save_sae(ours, tmp_path / "b", metadata={"rip_atoms": {"note": "round trip"}})
    back = SAE.load_from_disk(tmp_path / "b")
    assert back.cfg.architecture() == arch
    x = torch.from_numpy(X)
    with torch.no_grad():
        np.testing.assert_allclose(back.encode(x).numpy(), ours.encode_numpy(X), atol=1e-5)
        np.testing.assert_allclose(back(x).numpy(), ours.reconstruct_numpy(X), atol=1e-5)
    cfg = json.loads((tmp_path / "b" / "cfg.json").read_text())
    assert cfg["metadata"]["rip_atoms"] == {"note": "round trip"}
    assert cfg["metadata"]["hook_name"] == "blocks.3.hook_resid_post"


def _legacy_folder(path: Path, *, activation: str, k: int | None = None,
                   normalize=False, version: str | None = "3.13.0") -> dict:
    W_enc, b_enc, W_dec, b_dec = rand(D_IN, D_SAE), rand(D_SAE), rand(D_SAE, D_IN), rand(D_IN)
    cfg = {
        "model_name": "gpt2-small", "hook_point": "blocks.8.hook_resid_pre",
        "hook_point_layer": 8, "hook_point_head_index": None, "d_in": D_IN, "d_sae": D_SAE,
        "dtype": "float32", "device": "cpu", "context_size": 128, "prepend_bos": True,
        "activation_fn_str": activation, "normalize_activations": normalize,
        "apply_b_dec_to_input": True, "finetuning_scaling_factor": False,
        "dataset_path": "Skylion007/openwebtext", "l1_coefficient": 8e-5, "lr": 4e-4,
    }
    if version is not None:
        cfg["sae_lens_version"] = version
    if k is not None:
        cfg["activation_fn_kwargs"] = {"k": k}
    path.mkdir(parents=True)
    (path / "cfg.json").write_text(json.dumps(cfg))
    save_file({"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec},
              str(path / "sae_weights.safetensors"))
    return {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec}


@pytest.mark.parametrize("activation,k", [("relu", None), ("topk", 6)])
def test_sae_lens_legacy_flat_layout(tmp_path, activation, k):
    w = _legacy_folder(tmp_path / "old", activation=activation, k=k)
    sae = load_sae(tmp_path / "old")
    assert sae.format == "sae_lens_legacy"
    assert sae.architecture == ("topk" if k else "standard")
    assert sae.hook_name == "blocks.8.hook_resid_pre"  # hook_point renamed
    h = (X - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    f = topk_dense(h, k) if k else relu(h)
    assert_same_sae(sae, f, f @ w["W_dec"] + w["b_dec"])
    if sae_lens is not None:  # SAELens's own legacy migration agrees
        ref = sae_lens.SAE.load_from_disk(tmp_path / "old")
        with torch.no_grad():
            np.testing.assert_allclose(ref.encode(torch.from_numpy(X)).numpy(), f, atol=1e-4)


def test_sae_lens_v6_written_by_hand_with_log_threshold_and_scaler(tmp_path):
    """A v6 training checkpoint: log_threshold instead of threshold, and
    expected_average_only_in with its factor in activation_scaler.json."""
    W_enc, b_enc, W_dec, b_dec = rand(D_IN, D_SAE), rand(D_SAE), rand(D_SAE, D_IN), rand(D_IN)
    theta = np.abs(rand(D_SAE)) + 0.1
    folder = tmp_path / "ckpt"
    folder.mkdir()
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "expected_average_only_in",
           "reshape_activations": "none", "architecture": "jumprelu",
           "metadata": {"sae_lens_version": "6.18.0"}}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec,
               "log_threshold": np.log(theta)}, str(folder / "sae_weights.safetensors"))
    (folder / "activation_scaler.json").write_text(json.dumps({"scaling_factor": 0.25}))
    sae = load_sae(folder)
    assert sae.input_scale == 0.25
    xs = 0.25 * X
    h = (xs - b_dec) @ W_enc + b_enc
    f = relu(h) * (h > theta)
    assert_same_sae(sae, f, (f @ W_dec + b_dec) / 0.25)
    folded = sae.folded()
    assert folded.normalize_activations == "none"
    assert_same_sae(folded, f, (f @ W_dec + b_dec) / 0.25)


# =============================================================================== Gemma Scope
@pytest.mark.parametrize("compressed", [False, True])
def test_gemma_scope_params_npz(tmp_path, compressed):
    W_enc, b_enc, W_dec, b_dec = rand(D_IN, D_SAE), rand(D_SAE), rand(D_SAE, D_IN), rand(D_IN)
    theta = np.abs(rand(D_SAE))
    path = tmp_path / "gemma-scope-2b-pt-res" / "layer_20" / "width_16k" / "average_l0_71"
    path.mkdir(parents=True)
    saver = np.savez_compressed if compressed else np.savez
    saver(path / "params.npz", W_enc=W_enc, W_dec=W_dec, b_enc=b_enc, b_dec=b_dec,
          threshold=theta)
    sae = load_sae(path / "params.npz")
    assert (sae.architecture, sae.apply_b_dec_to_input) == ("jumprelu", False)
    assert sae.metadata["hook_name"] == "blocks.20.hook_resid_post"
    assert sae.metadata["average_l0"] == 71
    h = X @ W_enc + b_enc  # Gemma Scope: no b_dec subtraction on the input
    f = relu(h) * (h > theta)
    assert_same_sae(sae, f, f @ W_dec + b_dec)
    assert detect_format(path)[0] == "gemma_scope"  # the folder holding params.npz


# =============================================================================== sparsify
def _sparsify_folder(path: Path, k: int = 4, **extra) -> dict:
    enc_w, enc_b, W_dec, b_dec = rand(D_SAE, D_IN), rand(D_SAE), rand(D_SAE, D_IN), rand(D_IN)
    path.mkdir(parents=True)
    cfg = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True,
           "num_latents": D_SAE, "k": k, "multi_topk": False, "skip_connection": False,
           "transcode": False, "d_in": D_IN, **extra}
    (path / "cfg.json").write_text(json.dumps(cfg))
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": W_dec, "b_dec": b_dec},
              str(path / "sae.safetensors"))
    return {"enc_w": enc_w, "enc_b": enc_b, "W_dec": W_dec, "b_dec": b_dec}


def test_sparsify_folder(tmp_path):
    w = _sparsify_folder(tmp_path / "layers.6", k=4)
    sae = load_sae(tmp_path / "layers.6")
    assert (sae.architecture, sae.k, sae.format) == ("topk", 4, "sparsify")
    # sparsify: pre = relu((x − b_dec) Wᵀ + b), keep the top k, decode by gathering W_dec rows
    pre = relu((X - w["b_dec"]) @ w["enc_w"].T + w["enc_b"])
    f = topk_dense(pre, 4)
    assert_same_sae(sae, f, f @ w["W_dec"] + w["b_dec"])
    # the Dictionary: D = W_decᵀ, rows of sparsify's W_dec are atoms
    d = Dictionary.load(tmp_path / "layers.6")
    np.testing.assert_array_equal(d.atoms, w["W_dec"].T)


def test_sparsify_refuses_transcoders_and_groupmax(tmp_path):
    _sparsify_folder(tmp_path / "tc", transcode=True)
    with pytest.raises(UnknownArchitectureError, match="transcode"):
        load_sae(tmp_path / "tc")
    _sparsify_folder(tmp_path / "gm", activation="groupmax")
    with pytest.raises(UnknownArchitectureError, match="groupmax"):
        load_sae(tmp_path / "gm")


# ========================================================================= dictionary_learning
def _dl_folder(path: Path, dict_class: str, sd: dict, **trainer) -> Path:
    path.mkdir(parents=True)
    torch.save({k: torch.as_tensor(v) for k, v in sd.items()}, path / "ae.pt")
    cfg = {"trainer": {"dict_class": dict_class, "activation_dim": D_IN, "dict_size": D_SAE,
                       "layer": 3, "lm_name": "EleutherAI/pythia-70m-deduped", **trainer},
           "buffer": {"ctx_len": 128}}
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def test_dictionary_learning_autoencoder(tmp_path):
    enc_w, enc_b, dec_w, bias = rand(D_SAE, D_IN), rand(D_SAE), rand(D_IN, D_SAE), rand(D_IN)
    p = _dl_folder(tmp_path / "ae", "AutoEncoder", {"bias": bias, "encoder.weight": enc_w,
                                                    "encoder.bias": enc_b,
                                                    "decoder.weight": dec_w})
    sae = load_sae(p)
    f = relu((X - bias) @ enc_w.T + enc_b)  # AutoEncoder.encode: relu(enc(x − bias))
    assert_same_sae(sae, f, f @ dec_w.T + bias)
    assert sae.metadata["hook_layer"] == 3


def test_dictionary_learning_autoencoder_new_and_gated(tmp_path):
    enc_w, enc_b, dec_w, dec_b = rand(D_SAE, D_IN), rand(D_SAE), rand(D_IN, D_SAE), rand(D_IN)
    p = _dl_folder(tmp_path / "new", "AutoEncoderNew", {
        "encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w,
        "decoder.bias": dec_b})
    f = relu(X @ enc_w.T + enc_b)
    assert_same_sae(load_sae(p), f, f @ dec_w.T + dec_b)

    r_mag, gate_b, mag_b = rand(D_SAE, scale=0.3), rand(D_SAE), rand(D_SAE)
    p = _dl_folder(tmp_path / "gated", "GatedAutoEncoder", {
        "decoder_bias": dec_b, "encoder.weight": enc_w, "r_mag": r_mag, "gate_bias": gate_b,
        "mag_bias": mag_b, "decoder.weight": dec_w})
    x_enc = (X - dec_b) @ enc_w.T
    f = (x_enc + gate_b > 0) * relu(np.exp(r_mag) * x_enc + mag_b)
    # dictionary_learning reports f·‖decoder column‖ and divides it back before decoding; the
    # canonical codes are the raw ones with the same reconstruction
    assert_same_sae(load_sae(p), f, f @ dec_w.T + dec_b)


def test_dictionary_learning_jumprelu_topk_batchtopk(tmp_path):
    W_enc, b_enc, W_dec, b_dec = rand(D_IN, D_SAE), rand(D_SAE), rand(D_SAE, D_IN), rand(D_IN)
    theta = np.abs(rand(D_SAE))
    p = _dl_folder(tmp_path / "jr", "JumpReluAutoEncoder", {
        "W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec, "threshold": theta})
    h = X @ W_enc + b_enc
    f = relu(h * (h > theta))
    assert_same_sae(load_sae(p), f, f @ W_dec + b_dec)

    enc_w, enc_b, dec_w = rand(D_SAE, D_IN), rand(D_SAE), rand(D_IN, D_SAE)
    sd = {"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w,
          "b_dec": b_dec, "k": np.array(5, dtype=np.int32), "threshold": np.float32(-1.0)}
    p = _dl_folder(tmp_path / "topk", "AutoEncoderTopK", sd, k=5)
    post = relu((X - b_dec) @ enc_w.T + enc_b)
    f = topk_dense(post, 5)
    sae = load_sae(p)
    assert (sae.architecture, sae.k) == ("topk", 5)
    assert_same_sae(sae, f, f @ dec_w.T + b_dec)

    sd["threshold"] = np.float32(0.7)  # BatchTopK at inference: global threshold
    p = _dl_folder(tmp_path / "btk", "BatchTopKSAE", sd, k=5)
    sae = load_sae(p)
    assert sae.architecture == "jumprelu" and "global threshold" in sae.notes[0]
    f = post * (post > 0.7)
    assert_same_sae(sae, f, f @ dec_w.T + b_dec)


def test_dictionary_learning_pickle_is_refused(tmp_path):
    """ae.pt is loaded with weights_only=True: a pickled object is not executed."""
    p = tmp_path / "evil"
    p.mkdir()
    torch.save({"W": torch.zeros(2), "obj": Path("x")}, p / "ae.pt")
    (p / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoder"}}))
    with pytest.raises(FileFormatError, match="weights-only"):
        load_sae(p)


# =============================================================================== plain tensors
def test_plain_tensors_need_an_architecture(tmp_path):
    w = {"W_enc": rand(D_IN, D_SAE), "b_enc": rand(D_SAE), "W_dec": rand(D_SAE, D_IN),
         "b_dec": rand(D_IN)}
    save_file(w, str(tmp_path / "sae.safetensors"))
    with pytest.raises(UnknownArchitectureError, match="never guessed"):
        load_sae(tmp_path / "sae.safetensors")
    sae = load_sae(tmp_path / "sae.safetensors", architecture="topk", k=3)
    f = topk_dense((X - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 3)
    assert_same_sae(sae, f, f @ w["W_dec"] + w["b_dec"])


# =============================================================================== our object
def test_round_trip_of_every_tensor_and_setting(tmp_path):
    sae = SparseAutoencoder(
        "jumprelu", W_enc=rand(D_IN, D_SAE), W_dec=rand(D_SAE, D_IN), b_dec=rand(D_IN),
        b_enc=rand(D_SAE), threshold=np.abs(rand(D_SAE)), apply_b_dec_to_input=False,
        metadata={"hook_name": "blocks.1.hook_resid_post", "model_name": "m"})
    save_sae(sae, tmp_path / "s")
    back = load_sae(tmp_path / "s")
    for name, t in sae.state_dict().items():
        assert torch.equal(t, back.state_dict()[name]), name
    assert back.apply_b_dec_to_input is False
    assert back.metadata["hook_name"] == "blocks.1.hook_resid_post"
    assert back.metadata["sae_lens_version"].startswith("6")
    assert not list((tmp_path / "s").glob("*.tmp"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("arch", ["standard", "jumprelu", "gated"])
def test_unit_decoder_fold_keeps_reconstructions(arch):
    kw = {"b_enc": rand(D_SAE)} if arch != "gated" else {
        "b_gate": rand(D_SAE), "r_mag": rand(D_SAE, scale=0.3), "b_mag": rand(D_SAE)}
    if arch == "jumprelu":
        kw["threshold"] = np.abs(rand(D_SAE))
    sae = SparseAutoencoder(arch, W_enc=rand(D_IN, D_SAE), W_dec=rand(D_SAE, D_IN) * 3,
                            b_dec=rand(D_IN), **kw)
    unit = sae.unit_decoder()
    np.testing.assert_allclose(np.linalg.norm(unit.W_dec.numpy(), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit.reconstruct_numpy(X), sae.reconstruct_numpy(X), atol=1e-4)
    # codes scale by the decoder norms: f' = f·n
    n = np.linalg.norm(sae.W_dec.numpy(), axis=1)
    np.testing.assert_allclose(unit.encode_numpy(X), sae.encode_numpy(X) * n, atol=1e-4)


def test_dictionary_keeps_decoder_norms(tmp_path):
    W_dec = rand(D_SAE, D_IN) * 2.5
    W_dec[7] = 0.0  # a dead latent
    sae = SparseAutoencoder("standard", W_enc=rand(D_IN, D_SAE), W_dec=W_dec, b_dec=rand(D_IN),
                            b_enc=rand(D_SAE))
    d = sae.dictionary()
    assert d.shape == (D_IN, D_SAE)
    np.testing.assert_allclose(d.norms, np.linalg.norm(W_dec, axis=1), rtol=1e-6)
    assert list(d.dead_atoms) == [7]
    save_sae(sae, tmp_path / "f")
    d2 = Dictionary.load(tmp_path / "f")  # the core dispatches SAE folders to the adapter
    np.testing.assert_array_equal(d2.atoms, W_dec.T)


def test_cli_coherence_reads_an_sae_folder(tmp_path):
    sae = SparseAutoencoder("standard", W_enc=rand(D_IN, D_SAE), W_dec=rand(D_SAE, D_IN),
                            b_dec=rand(D_IN), b_enc=rand(D_SAE))
    save_sae(sae, tmp_path / "f")
    r = subprocess.run([sys.executable, "-m", "rip_atoms", "coherence", str(tmp_path / "f"),
                        "--raw", "--json", "--quiet"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    U = sae.W_dec.double().numpy()
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    G = np.abs(U @ U.T)
    np.fill_diagonal(G, 0)
    assert out["mu"] == pytest.approx(G.max(), abs=1e-9)


# =============================================================================== bad input
def _v6_folder(path: Path, arch="jumprelu", drop=(), d_in=None, extra_cfg=None) -> Path:
    path.mkdir(parents=True)
    cfg = {"d_in": d_in or D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "none", "architecture": arch,
           "metadata": {"sae_lens_version": "6.2.0"}, **(extra_cfg or {})}
    (path / "cfg.json").write_text(json.dumps(cfg))
    w = {"W_enc": rand(D_IN, D_SAE), "b_enc": rand(D_SAE), "W_dec": rand(D_SAE, D_IN),
         "b_dec": rand(D_IN), "threshold": np.abs(rand(D_SAE))}
    save_file({k: v for k, v in w.items() if k not in drop}, str(path / "sae_weights.safetensors"))
    return path


def test_unknown_architecture_names(tmp_path):
    with pytest.raises(UnknownArchitectureError, match="matching_pursuit"):
        load_sae(_v6_folder(tmp_path / "a", arch="matching_pursuit"))
    _legacy_folder(tmp_path / "b", activation="tanh-relu")
    with pytest.raises(UnknownArchitectureError, match="tanh-relu"):
        load_sae(tmp_path / "b")
    with pytest.raises(UnknownArchitectureError, match="covariance_whitening"):
        load_sae(_v6_folder(tmp_path / "c", extra_cfg={
            "normalize_activations": "covariance_whitening"}))
    p = _dl_folder(tmp_path / "d", "CrossCoder", {"W": np.zeros(3, np.float32)})
    with pytest.raises(UnknownArchitectureError, match="CrossCoder"):
        load_sae(p)


def test_missing_tensors_name_the_file_and_the_tensor(tmp_path):
    p = _v6_folder(tmp_path / "a", drop=("threshold",))
    with pytest.raises(TensorNotFoundError, match=r"sae_weights\.safetensors.*threshold"):
        load_sae(p)
    np.savez(tmp_path / "params.npz", W_enc=rand(D_IN, D_SAE), W_dec=rand(D_SAE, D_IN))
    with pytest.raises(TensorNotFoundError, match=r"params\.npz.*b_enc"):
        load_sae(tmp_path / "params.npz")


def test_shape_mismatches(tmp_path):
    with pytest.raises(ShapeMismatchError, match="d_in = 13"):
        load_sae(_v6_folder(tmp_path / "a", d_in=13))
    np.savez(tmp_path / "params.npz", W_enc=rand(D_IN, D_SAE), W_dec=rand(D_SAE, D_IN + 1),
             b_enc=rand(D_SAE), b_dec=rand(D_IN), threshold=rand(D_SAE))
    with pytest.raises(ShapeMismatchError, match="W_dec has shape"):
        load_sae(tmp_path / "params.npz")
    sae = load_sae(_v6_folder(tmp_path / "b"))
    with pytest.raises(ShapeMismatchError, match="d_in = 12"):
        sae.encode_numpy(rand(4, 9))


def test_corrupt_files(tmp_path):
    p = _v6_folder(tmp_path / "a")
    w = p / "sae_weights.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(FileFormatError, match="truncated"):
        load_sae(p)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FileFormatError, match="bad.npz"):
        load_sae(tmp_path / "bad.npz")
    q = _v6_folder(tmp_path / "b")
    (q / "cfg.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="cfg.json"):
        load_sae(q)
    with pytest.raises(FileFormatError, match="not an SAE folder"):
        load_sae(tmp_path / "a" / ".." / "a" / "..")
    assert issubclass(UnknownArchitectureError, RipAtomsError)


def test_cli_bad_sae_folder_is_one_line_exit_2(tmp_path):
    p = _v6_folder(tmp_path / "weird", arch="temporal")
    r = subprocess.run([sys.executable, "-m", "rip_atoms", "coherence", str(p), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(p) in lines[0] and "temporal" in lines[0]


def test_format_registry_detection_order_and_messages(tmp_path):
    from rip_atoms.sae.formats import FORMATS, registered_formats

    assert FORMATS == ("sae_lens", "sparsify", "dictionary_learning", "gemma_scope", "tensors")
    assert tuple(f.name for f in registered_formats())[:5] == FORMATS
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileFormatError) as exc:
        detect_format(tmp_path / "empty")
    assert str(exc.value) == (
        f"{tmp_path / 'empty'}: not an SAE folder (expected cfg.json + sae_weights.safetensors "
        "(SAELens), cfg.json + sae.safetensors (sparsify), ae.pt (dictionary_learning) or "
        "params.npz (Gemma Scope))")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(FileFormatError) as exc:
        detect_format(tmp_path / "x.txt")
    assert str(exc.value) == (f"{tmp_path / 'x.txt'}: not a known SAE file (.safetensors, "
                              ".npz, .pt, a folder)")
    with pytest.raises(FileFormatError) as exc:
        load_sae(tmp_path / "x.txt", format="nope")
    assert str(exc.value) == (f"{tmp_path / 'x.txt'}: unknown format 'nope' (known: sae_lens, "
                              "sparsify, dictionary_learning, gemma_scope, tensors)")
    v6 = _v6_folder(tmp_path / "v6")
    assert detect_format(v6) == ("sae_lens", v6)
    assert detect_format(v6 / "cfg.json") == ("sae_lens", v6)  # a file of the folder layout
    (v6 / "ae.pt").write_bytes(b"")  # SAELens is tried first
    assert detect_format(v6)[0] == "sae_lens"


def test_a_registered_format_is_detected_and_loaded(tmp_path):
    from rip_atoms.errors import ParameterError
    from rip_atoms.sae.formats import register_sae_format
    from rip_atoms.sae.formats.registry import unregister_sae_format

    ref = load_sae(_v6_folder(tmp_path / "v6"))
    seen = []

    def load(path, **options):
        seen.append((path, options))
        return ref

    register_sae_format("toy", load, detect_folder=lambda folder, names:
                        folder / "toy.bin" if "toy.bin" in names else None,
                        folder_layout="toy.bin (toy)",
                        detect_file=lambda path: path.suffix == ".toy")
    try:
        with pytest.raises(ParameterError, match="already registered"):
            register_sae_format("toy", load)
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "toy.bin").write_bytes(b"")
        (tmp_path / "a.toy").write_bytes(b"")
        assert detect_format(tmp_path / "t") == ("toy", tmp_path / "t" / "toy.bin")
        assert load_sae(tmp_path / "a.toy", k=3) is ref
        assert seen[-1] == (tmp_path / "a.toy", {"architecture": None, "k": 3,
                                                 "input_scale": None,
                                                 "apply_b_dec_to_input": True})
        (tmp_path / "empty").mkdir()
        with pytest.raises(FileFormatError, match=r"params.npz \(Gemma Scope\) or toy.bin"):
            detect_format(tmp_path / "empty")
    finally:
        unregister_sae_format("toy")
    assert "toy" not in {f.name for f in __import__(
        "rip_atoms.sae.formats", fromlist=["registered_formats"]).registered_formats()}
