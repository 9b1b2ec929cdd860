"""AIP metric: estimators against direct formulas, invariance, Parseval frames, the shift."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rip_atoms import AIPMetric, Dictionary, fit_metric, representation_shift
from rip_atoms.errors import SingularMetricError
from rip_atoms.synthetic import anisotropic_map, planted_atoms, shifted_activations

pytestmark = pytest.mark.sensitive  # float64 estimators compared at 1e-8–1e-12


def test_uncentred_estimator_is_inverse_second_moment():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((700, 6)) + 3.0
    m = fit_metric(X, chunk_size=64)
    np.testing.assert_allclose(m.S, np.linalg.inv(X.T @ X / len(X)), rtol=1e-10)
    np.testing.assert_allclose(m.W @ m.W, m.S, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.W, m.W.T)
    assert m.n_samples == 700 and not m.center
    np.testing.assert_allclose(m.mean, X.mean(axis=0))


def test_centred_estimator_is_inverse_covariance_and_stable_with_large_mean():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 5)) * [1, 2, 3, 4, 5] + 1e6  # mean ≫ spread
    m = fit_metric(X, center=True, chunk_size=300)
    cov = np.cov((X - 1e6).T, bias=True)  # subtract the offset exactly first
    np.testing.assert_allclose(m.S, np.linalg.inv(cov), rtol=1e-6)


def test_streaming_matches_one_shot_and_iterables():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((999, 7))
    a = fit_metric(X, chunk_size=10_000)
    b = fit_metric(X, chunk_size=17)
    c = fit_metric(iter([X[:500], X[500:]]))
    np.testing.assert_allclose(a.S, b.S, rtol=1e-12)
    np.testing.assert_allclose(a.S, c.S, rtol=1e-12)


def test_memory_mapped_activations(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", X)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    np.testing.assert_allclose(fit_metric(mm, chunk_size=33).S, fit_metric(X).S, rtol=1e-12)


def test_ridge_is_reported_and_applied():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 4))
    sigma = X.T @ X / 300
    m = fit_metric(X, ridge=0.1)
    lam_abs = 0.1 * np.trace(sigma) / 4
    assert m.ridge == 0.1 and m.ridge_absolute == pytest.approx(lam_abs)
    np.testing.assert_allclose(m.S, np.linalg.inv(sigma + lam_abs * np.eye(4)), rtol=1e-10)


@given(st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_aip_cosine_is_invariant_under_invertible_maps(h, seed):
    rng = np.random.default_rng(seed)

    def conditioned(kappa: float) -> np.ndarray:
        """U diag(s) Vᵀ with random orthogonal U, V and singular values in [1, kappa]: an
        invertible, non-orthogonal map whose conditioning is bounded (a plain Gaussian matrix
        can be near-singular, which makes Σ⁻¹ legitimately refuse)."""
        U, _ = np.linalg.qr(rng.standard_normal((h, h)))
        V, _ = np.linalg.qr(rng.standard_normal((h, h)))
        return U @ np.diag(np.geomspace(1.0, kappa, h)) @ V.T

    X = rng.standard_normal((20 * h, h)) @ conditioned(30.0)
    A = conditioned(10.0)
    u, v = rng.standard_normal((2, h))
    m = fit_metric(X)
    m_mapped = fit_metric(X @ A.T)
    assert m_mapped.cosine(A @ u, A @ v) == pytest.approx(m.cosine(u, v), abs=1e-8)
    # the Euclidean cosine is not invariant (the reason for the AIP)
    assert np.isfinite(m.cosine(u, v))


def test_invariance_of_coherence_under_mapping_the_data():
    from rip_atoms import coherence

    rng = np.random.default_rng(5)
    D = rng.standard_normal((8, 50))
    X = rng.standard_normal((800, 8))
    A = anisotropic_map(8, decay=2.0, seed=1)
    a = coherence(D, fit_metric(X))
    b = coherence(A @ D, fit_metric(X @ A.T))
    assert a.mu == pytest.approx(b.mu, abs=1e-9)
    assert a.pair == b.pair
    np.testing.assert_allclose(a.babel, b.babel, atol=1e-8)


@given(st.integers(2, 15), st.integers(0, 200), st.integers(0, 2**31 - 1))
def test_self_metric_whitened_dictionary_is_a_parseval_frame(h, extra, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((h, h + extra)) * rng.uniform(0.1, 10, size=h + extra)
    d = Dictionary(D)
    for atoms, mat in (("unit", d.unit()), ("raw", D)):
        m = AIPMetric.from_dictionary(d, atoms=atoms)
        F = m.W @ mat
        np.testing.assert_allclose(F @ F.T, np.eye(h), atol=1e-8)
        # Dᵀ S̃ D is the orthogonal projector onto the row space of D: trace H
        P = mat.T @ m.S @ mat
        assert np.trace(P) == pytest.approx(h, rel=1e-8)


def test_corrected_dictionary_has_unit_columns_and_aip_cosines():
    rng = np.random.default_rng(6)
    D = rng.standard_normal((6, 20))
    m = fit_metric(rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6)))
    Dt = m.corrected(Dictionary(D))
    np.testing.assert_allclose(np.linalg.norm(Dt.atoms, axis=0), 1.0)
    U = np.asarray(Dt.atoms)
    assert U[:, 2] @ U[:, 9] == pytest.approx(m.cosine(D[:, 2], D[:, 9]))
    assert m.norm(D[:, 3]) == pytest.approx(np.sqrt(D[:, 3] @ m.S @ D[:, 3]))
    assert m.inner(D[:, 3], D[:, 4]) == pytest.approx(D[:, 3] @ m.S @ D[:, 4])


def test_singular_second_moment_is_reported():
    rng = np.random.default_rng(7)
    with pytest.raises(SingularMetricError, match="only 5 activations"):
        fit_metric(rng.standard_normal((5, 8)))
    X = rng.standard_normal((100, 4))
    X[:, 2] = 0.0
    with pytest.raises(SingularMetricError, match="ridge"):
        fit_metric(X)
    fit_metric(X, ridge=1e-3)  # a ridge makes it invertible
    with pytest.raises(SingularMetricError, match="singular"):
        AIPMetric.from_dictionary(rng.standard_normal((8, 5)))


def test_representation_shift_is_seen_raw_and_removed_by_the_aip():
    X, sigma = shifted_activations(5000, 32, offset=3.0, seed=0)
    # the generator's Σ is the true E[xxᵀ]; the estimate converges to it
    m = fit_metric(X)
    assert np.linalg.norm(np.linalg.inv(m.S) - sigma) / np.linalg.norm(sigma) < 0.1
    shift = representation_shift(X, m, n_vectors=800)
    assert shift.raw.mean > 0.8  # ‖m‖²/(‖m‖² + tr C) = 9/10
    assert abs(shift.aip.mean) < 0.05
    assert abs(shift.aip.mean_angle_deg - 90) < 3
    assert shift.n_pairs == 800 * 799 // 2
    assert shift.raw.counts.sum() == shift.n_pairs


def test_planted_atoms_shift_is_undone_by_fitted_metric():
    p = planted_atoms(32, 96, 3, 6000, mixing="random", offset=2.0, seed=1)
    m = fit_metric(p.activations)
    shift = representation_shift(p.activations, m, n_vectors=500)
    assert shift.raw.mean > 0.5 and abs(shift.aip.mean) < 0.05
