"""SAELens's JumpReLU SAE against the paper's identifiability theorem (docs/testing.md).

A user with a planted frame (atoms D, metric S̃ under which the atoms have AIP coherence ε) and
codes inside the TSAE window builds a SAELens JumpReLU whose encoder is the theorem's,
W_enc = D̂ᵀS̃ in SAELens's layout (d_in × d_sae, column j = S̃ dⱼ/‖dⱼ‖²_S so that the
pre-activation is the code of atom j *as given*), b_enc = 0, thresholds τ/‖dⱼ‖_S with τ inside
the window, W_dec = Dᵀ. The theorem: SAELens's ``encode`` returns every code's support. And it
agrees with this library's numpy encoder of the theorem (``tsae_encoder``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import find, given, settings

torch = pytest.importorskip("torch")
pytest.importorskip("sae_lens")
from sae_lens import SAE  # noqa: E402

from rip_atoms.criteria.tsae import tsae_encoder  # noqa: E402
from rip_atoms.testing import tsae_problems  # noqa: E402
from rip_atoms.testing.properties import support_identification_property  # noqa: E402


def jumprelu_from_problem(problem, dtype: str = "float32") -> SAE:
    """The identifiable JumpReLU of the theorem, as a SAELens SAE."""
    a = problem.atoms
    D, S = a.dictionary, a.metric.S
    H, N = D.shape
    sae = SAE.from_dict({
        "d_in": H, "d_sae": N, "architecture": "jumprelu", "dtype": dtype, "device": "cpu",
        "apply_b_dec_to_input": False, "normalize_activations": "none",
        "metadata": {"sae_lens_version": "6.0.0", "hook_name": "planted"}})
    norms2 = np.einsum("hn,hk,kn->n", D, S, D)  # ‖dⱼ‖²_S
    with torch.no_grad():
        sae.W_enc.copy_(torch.from_numpy(S @ D / norms2))
        sae.b_enc.zero_()
        sae.W_dec.copy_(torch.from_numpy(D.T.copy()))
        sae.b_dec.zero_()
        sae.threshold.copy_(torch.from_numpy(problem.thresholds_for_atoms()))
    return sae


def numpy_encoder(sae: SAE):
    def encode(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return sae.encode(torch.from_numpy(X).to(sae.W_enc.dtype)).double().numpy()

    return encode


# the user's one line: SAELens's encoder identifies every planted support
test_sae_lens_jumprelu_identifies_supports = support_identification_property(
    lambda p: numpy_encoder(jumprelu_from_problem(p)))


@given(tsae_problems())
def test_sae_lens_jumprelu_agrees_with_the_numpy_tsae_encoder(p):
    a = p.atoms
    ours = tsae_encoder(a.dictionary, a.metric, p.tau)(a.activations)
    theirs = numpy_encoder(jumprelu_from_problem(p, dtype="float64"))(a.activations)
    np.testing.assert_allclose(theirs, ours, rtol=1e-9, atol=1e-12 * np.abs(ours).max())
    assert np.array_equal(theirs != 0, a.codes != 0)


def test_below_the_window_sae_lens_leaks_and_hypothesis_shrinks_the_case():
    """The window is needed: with τ at half its lower end εKδ_max (ε > 0) the same JumpReLU, in
    float64, lets cross-talk through, and hypothesis finds (and shrinks) a planted set where a
    support is wrong. (In float32 with ε = 0 and τ = 0, the open window's end, rounding alone
    leaks: cross-talk of order 1e-8 passes a zero threshold — docs/testing.md.)"""

    def leaks(p):
        a = p.atoms
        low = dataclasses.replace(p, tau=0.5 * p.window.lower)
        got = numpy_encoder(jumprelu_from_problem(low, dtype="float64"))(a.activations) != 0
        return a.eps > 0 and not np.array_equal(got, a.codes != 0)

    p = find(tsae_problems(), leaks, settings=settings(database=None, max_examples=300))
    assert p.atoms.dim <= 4 and p.atoms.K <= 2 and p.atoms.eps > 0
