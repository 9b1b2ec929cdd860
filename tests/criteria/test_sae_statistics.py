"""SAEBench-comparable SAE statistics: closed forms, and a cross-check against SAELens's own eval
functions (torch and sae-lens in this test only; skipped cleanly without them)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rip_atoms.criteria.sae_statistics import (
    max_decoder_cosine,
    sae_statistics,
    unit_set_statistics,
)
from rip_atoms.criteria.units import UnitSet
from rip_atoms.errors import ParameterError, ShapeMismatchError
from rip_atoms.strict_json import dumps


def _relu_sae(rng, H=12, N=30, n=100):
    W_enc = rng.normal(size=(H, N))
    b_enc = rng.normal(scale=0.5, size=N) - 0.8
    W_dec = rng.normal(size=(N, H)) / np.sqrt(H)
    b_dec = rng.normal(scale=0.1, size=H)
    X = rng.normal(size=(n, H)) + 0.3
    codes = np.maximum((X - b_dec) @ W_enc + b_enc, 0.0)
    codes[:, 3] = 0.0                                  # latent 3 is dead
    return X, codes, W_enc, b_enc, W_dec, b_dec


# ------------------------------------------------------------------ closed forms
def test_orthonormal_exact_reconstruction():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    codes = rng.normal(size=(50, 8)) * (rng.random((50, 8)) < 0.5)
    codes[:, 5] = 0.0                                  # never active: dead
    codes[:, 0] = 1.0                                  # always active: dense
    X = codes @ Q.T
    st = sae_statistics(X, codes, X, Q, encoder_matrix=Q)
    assert st.explained_variance == pytest.approx(1.0, abs=1e-12)
    assert st.explained_variance_legacy == pytest.approx(1.0, abs=1e-12)
    assert st.l2_ratio == pytest.approx(1.0, abs=1e-12)
    assert st.relative_reconstruction_bias == pytest.approx(1.0, abs=1e-12)
    assert st.l0 == pytest.approx(np.count_nonzero(codes) / 50)
    np.testing.assert_allclose(st.density, np.count_nonzero(codes, axis=0) / 50)
    assert st.n_dead == 1 and st.density[5] == 0.0
    assert st.n_dense == int(np.count_nonzero(st.density > 0.1))
    assert sum(st.log10_density_counts) == 8 and st.log10_density_counts[0] == 1
    np.testing.assert_allclose(st.encoder_decoder_cosine, 1.0)
    np.testing.assert_allclose(st.max_decoder_cosine.absolute, 0.0, atol=1e-12)
    assert st.max_decoder_cosine.n_antipodal_pairs == 0
    dumps(st.to_dict())                                # strict JSON


def test_densities_by_hand():
    codes = np.array([[1.0, 0, 0], [2.0, 3.0, 0], [0, 0, 0], [1.0, 0, 0]])
    D = np.eye(3)
    X = codes @ D.T + 1.0
    st = sae_statistics(X, codes, codes @ D.T, D, dense_threshold=0.3)
    np.testing.assert_allclose(st.density, [0.75, 0.25, 0.0])
    assert (st.n_dense, st.n_dead) == (1, 1)
    assert st.l0 == pytest.approx(1.0)
    assert st.encoder_decoder_cosine is None


def test_antipodal_pair_counted_and_missed_by_signed():
    rng = np.random.default_rng(1)
    D = np.linalg.qr(rng.normal(size=(10, 6)))[0]
    D = np.column_stack([D, -D[:, 2] * 3.0])           # atom 6 = −3 · atom 2
    mc = max_decoder_cosine(D, block_size=3)
    assert mc.n_antipodal_pairs == 1
    assert mc.absolute[2] == pytest.approx(1.0) and mc.absolute[6] == pytest.approx(1.0)
    assert mc.signed[2] < 0.99 and mc.signed[6] < 0.99
    assert mc.n_missed_by_signed == 2
    # a parallel pair is caught by both
    mc2 = max_decoder_cosine(np.column_stack([D[:, :6], 2.0 * D[:, 1]]))
    assert mc2.n_antipodal_pairs == 0 and mc2.n_missed_by_signed == 0
    assert mc2.signed[1] == pytest.approx(1.0)


@pytest.mark.parametrize("block", [1, 7, 256])
def test_max_cosine_blocks_match_brute_force(block):
    rng = np.random.default_rng(2)
    D = rng.normal(size=(9, 40))
    D[:, 5] = -D[:, 11]
    U = D / np.linalg.norm(D, axis=0)
    G = U.T @ U
    np.fill_diagonal(G, -np.inf)
    A = np.abs(U.T @ U)
    np.fill_diagonal(A, -np.inf)
    mc = max_decoder_cosine(D, block_size=block)
    np.testing.assert_allclose(mc.signed, G.max(axis=1), atol=1e-12)
    np.testing.assert_allclose(mc.absolute, A.max(axis=1), atol=1e-12)
    assert mc.n_antipodal_pairs == 1


def test_unit_set_streamed_equals_in_memory():
    rng = np.random.default_rng(3)
    X, codes, W_enc, b_enc, W_dec, b_dec = _relu_sae(rng)
    unit = UnitSet.from_codes("sae", W_dec.T, codes, decoder_bias=b_dec)
    a = unit_set_statistics(unit, X, encoder_matrix=W_enc, chunk_size=17)
    b = sae_statistics(X, codes, codes @ W_dec + b_dec, W_dec.T, encoder_matrix=W_enc)
    for k in ("explained_variance", "explained_variance_legacy", "l0", "l2_ratio",
              "relative_reconstruction_bias", "n_dense", "n_dead"):
        assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-12), k
    np.testing.assert_array_equal(a.density, b.density)
    rows = np.arange(0, 100, 2)
    c = unit_set_statistics(unit, X, rows)
    assert c.n_tokens == 50
    neurons = unit_set_statistics(UnitSet.neurons(12), X)
    assert neurons.explained_variance == 1.0 and neurons.l2_ratio == pytest.approx(1.0)


def test_bad_input():
    D = np.eye(3)
    X = np.ones((4, 3))
    with pytest.raises(ShapeMismatchError):
        sae_statistics(X, np.ones((5, 3)), X, D)
    with pytest.raises(ShapeMismatchError):
        sae_statistics(X, np.ones((4, 3)), X, D, encoder_matrix=np.ones((3, 2)))
    with pytest.raises(ParameterError):
        sae_statistics(X, np.ones((4, 3)), X, D, dense_threshold=1.5)
    with pytest.raises(ParameterError):
        max_decoder_cosine(D, block_size=0)
    with pytest.raises(ShapeMismatchError):
        unit_set_statistics(UnitSet.neurons(3), X, np.array([7]))


# ------------------------------------------------------------------ SAELens cross-check
def _sae_lens_metrics(evals, sae, acts):
    """SAELens's ``get_sparsity_and_variance_metrics`` on one batch ``acts`` (b × ctx × H),
    through stand-ins for the model (its cache holds ``acts``), the store and the scaler."""
    import torch

    hook = sae.cfg.metadata.hook_name
    model = SimpleNamespace(run_with_cache=lambda *a, **k: (None, {hook: acts}))
    store = SimpleNamespace(
        get_batch_tokens=lambda n: torch.zeros(acts.shape[:2], dtype=torch.long))
    scaler = SimpleNamespace(scale=lambda x: x, unscale=lambda x: x)
    return evals.get_sparsity_and_variance_metrics(
        sae, model, store, scaler, n_batches=1, compute_l2_norms=True,
        compute_sparsity_metrics=True, compute_variance_metrics=True,
        compute_featurewise_density_statistics=True, eval_batch_size_prompts=acts.shape[0],
        model_kwargs={})


def test_matches_sae_lens_evals():
    torch = pytest.importorskip("torch")
    evals = pytest.importorskip("sae_lens.evals")
    rng = np.random.default_rng(4)
    X, codes, W_enc, b_enc, W_dec, b_dec = _relu_sae(rng, n=100)
    ours = sae_statistics(X, codes, codes @ W_dec + b_dec, W_dec.T, encoder_matrix=W_enc)

    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    acts, feats = t(X).reshape(4, 25, -1), t(codes).reshape(4, 25, -1)
    hook = "blocks.0.hook_resid_post"
    sae = SimpleNamespace(
        cfg=SimpleNamespace(metadata=SimpleNamespace(hook_name=hook, hook_head_index=None),
                            d_sae=codes.shape[1]),
        device="cpu", W_enc=t(W_enc), W_dec=t(W_dec), b_enc=t(b_enc),
        encode=lambda x: feats, decode=lambda f: f @ t(W_dec) + t(b_dec))
    metrics, feature_metrics = _sae_lens_metrics(evals, sae, acts)
    # exact matches (one batch): the same definitions, float64 round-off apart
    assert ours.explained_variance == pytest.approx(metrics["explained_variance"], rel=1e-12)
    assert ours.explained_variance_legacy == pytest.approx(
        metrics["explained_variance_legacy"], rel=1e-12)
    assert ours.l0 == pytest.approx(metrics["l0"], rel=1e-12)
    assert ours.l2_ratio == pytest.approx(metrics["l2_ratio"], rel=1e-12)
    assert ours.relative_reconstruction_bias == pytest.approx(
        metrics["relative_reconstruction_bias"], rel=1e-12)
    # densities: the same counts; SAELens divides in float32
    sl_density = np.asarray(feature_metrics["feature_density"])
    np.testing.assert_array_equal(np.rint(sl_density * 100), np.rint(ours.density * 100))
    np.testing.assert_array_equal(sl_density, ours.density.astype(np.float32))
    # the streaming calculator on its own, in uneven batches
    calc = evals.ExplainedVarianceCalculator()
    Xh = codes @ W_dec + b_dec
    for s in (slice(0, 30), slice(30, 31), slice(31, 100)):
        calc.add_batch(sae_output=t(Xh[s]), hidden_acts=t(X[s]))
    assert ours.explained_variance == pytest.approx(calc.compute(), rel=1e-10)
    weights = evals.get_featurewise_weight_based_metrics(sae)
    np.testing.assert_allclose(ours.encoder_decoder_cosine,
                               weights["encoder_decoder_cosine_sim"], rtol=1e-12)


def test_matches_sae_lens_on_a_saved_sae(tmp_path):
    """A SAELens SAE saved by SAELens, loaded by rip_atoms (UnitSet.from_sae, float64 after
    the float32 encoder) against SAELens's eval functions on the SAE object (float32)."""
    torch = pytest.importorskip("torch")
    evals = pytest.importorskip("sae_lens.evals")
    from sae_lens import SAE

    from rip_atoms.sae import load_sae

    H, N = 16, 48
    ref = SAE.from_dict({"d_in": H, "d_sae": N, "architecture": "standard", "dtype": "float32",
                         "device": "cpu", "apply_b_dec_to_input": True,
                         "normalize_activations": "none",
                         "metadata": {"sae_lens_version": "6.54.12",
                                      "hook_name": "blocks.3.hook_resid_post"}})
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        ref.W_dec[7] = -ref.W_dec[2]                    # an antipodal pair
    ref.save_model(tmp_path / "sae")
    rng = np.random.default_rng(6)
    X = (rng.normal(size=(120, H)) + 0.5).astype(np.float32)
    sae = load_sae(tmp_path / "sae")
    ours = unit_set_statistics(UnitSet.from_sae("sae", sae), X,
                               encoder_matrix=sae.W_enc.double().numpy(), chunk_size=50)
    with torch.no_grad():
        metrics, feature_metrics = _sae_lens_metrics(
            evals, ref, torch.from_numpy(X).reshape(4, 30, H))
        weights = evals.get_featurewise_weight_based_metrics(ref)
    for ours_key, theirs_key in [("explained_variance", "explained_variance"),
                                 ("explained_variance_legacy", "explained_variance_legacy"),
                                 ("l0", "l0"), ("l2_ratio", "l2_ratio"),
                                 ("relative_reconstruction_bias",
                                  "relative_reconstruction_bias")]:
        assert getattr(ours, ours_key) == pytest.approx(metrics[theirs_key], rel=1e-5,
                                                        abs=1e-6), ours_key
    assert 0 < ours.l0 < N
    np.testing.assert_allclose(ours.density, feature_metrics["feature_density"], rtol=1e-6)
    np.testing.assert_allclose(ours.encoder_decoder_cosine,
                               weights["encoder_decoder_cosine_sim"], atol=1e-6)
    assert ours.max_decoder_cosine.n_antipodal_pairs == 1
    assert ours.max_decoder_cosine.n_missed_by_signed >= 2
