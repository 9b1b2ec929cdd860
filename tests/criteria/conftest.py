"""Fixtures shared by the criteria tests."""

from __future__ import annotations

import numpy as np
import pytest

from rip_atoms.testing.generators import planted_atom_set


# ------------------------------------------------------------------ planted sets: acceptance
@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(11)
    return planted_atom_set(rng, 32, 32, 3, 1200, eps=0.05, magnitude=(1.0, 1.5),
                            scale_range=(0.5, 2.0), mixing_cond=20.0)
