"""Certificates of one support: the Fuchs value is the closed form, the LP value the exact
threshold (checked against an independent HiGHS LP), and bad supports are rejected.
"""

from __future__ import annotations

import numpy as np
import pytest
from recovery_reference import CERT, certificate_lp, random_codes, unit_gaussian

from rip_atoms.errors import InvalidCodeError
from rip_atoms.recovery import classify_recovery, dual_certificate, fuchs_certificate

pytestmark = pytest.mark.sensitive  # certificate values at precision tolerances


def test_fuchs_values_match_the_closed_form():
    D = unit_gaussian(40, 100, 11)
    for nonneg in (False, True):
        C = random_codes(100, [1, 3, 5, 8, 12, 12, 20], nonneg, 12)
        res = classify_recovery(D, C, nonneg=nonneg, metric=None, witness_iters=0,
                                max_iter=1, lp=False)
        for i, delta in enumerate(C):
            S = np.flatnonzero(delta)
            s = np.ones(len(S)) if nonneg else np.sign(delta[S])
            DS = D[:, S]
            y0 = DS @ np.linalg.solve(DS.T @ DS, s)
            c = np.delete(D.T @ y0, S)
            ref = c.max() if nonneg else np.abs(c).max()
            assert res.fuchs[i] == pytest.approx(ref, abs=1e-10)
            single = fuchs_certificate(D, S, delta[S], nonneg=nonneg)
            assert single.value == pytest.approx(ref, abs=1e-10)
            assert single.bound >= single.value
            assert single.certifies() == (res.method[i] == 1)


def test_dual_certificate_lp_value_is_the_exact_threshold():
    D = unit_gaussian(20, 40, 13)
    C = random_codes(40, [2, 5, 8, 10, 12, 14], False, 14)
    res = classify_recovery(D, C, metric=None)
    for i, delta in enumerate(C):
        S = np.flatnonzero(delta)
        cert = dual_certificate(D, S, delta[S])
        ref = certificate_lp(D, S, np.sign(delta[S]), False)
        assert cert.lp_value == pytest.approx(ref, abs=1e-7)
        assert cert.value == pytest.approx(ref, abs=1e-6)
        assert (ref < 1) == (res.status[i] == CERT)


def test_single_code_functions_reject_bad_supports():
    D = unit_gaussian(10, 20, 32)
    with pytest.raises(InvalidCodeError, match="empty support"):
        fuchs_certificate(D, [])
    with pytest.raises(InvalidCodeError):
        dual_certificate(D, [3, 3])
    with pytest.raises(InvalidCodeError):
        fuchs_certificate(D, [1, 25])
