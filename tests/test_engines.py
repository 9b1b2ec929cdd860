"""Same answers on every engine: the torch reduction agrees with the numpy/numba reference."""

import numpy as np
import pytest

from rip_atoms import coherence
from rip_atoms.synthetic import gaussian_dictionary

pytestmark = pytest.mark.sensitive  # float32 torch against numpy at stated tolerances

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("block", [64, 4096])
def test_torch_backend_matches_numpy(block):
    d = gaussian_dictionary(32, 700, seed=4)
    a = coherence(d, "self", babel_p=20, top=30, block_size=block)
    b = coherence(d, "self", babel_p=20, top=30, block_size=block, backend="torch", device="cpu")
    assert a.mu == b.mu and a.pair == b.pair  # both recomputed in float64
    np.testing.assert_allclose(a.babel, b.babel, atol=1e-12)
    assert [p[:2] for p in a.top_pairs] == [p[:2] for p in b.top_pairs]
    np.testing.assert_allclose(a.per_atom, b.per_atom, atol=a.float32_tolerance)
    # histograms: the same pairs, binned from float32 values that may differ by one ulp
    assert a.histogram_counts.sum() == b.histogram_counts.sum() == 700 * 699 // 2
    assert np.abs(a.histogram_counts - b.histogram_counts).sum() <= 10
