"""The ℓ1 section of the verification report: the certification of the target's codes (exact,
run first) and the budgeted searches around it (the uniqueness margins of some certified codes,
the probe of random supports around the Donoho–Tanner weak threshold k_W)."""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from rip_atoms import theory
from rip_atoms.geometry import Geometry
from rip_atoms.report.budget import SearchBudget

#: the probe of ℓ1 recovery: sparsities as fractions of the Donoho–Tanner k_W, codes per k
PROBE_FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
PROBE_CODES = 8
#: the uniqueness margins (certificates driven to the LP optimum): at most this many of the
#: sampled codes
MARGIN_CODES = 32


def codes_section(d, metric, geom: Geometry, codes, l0, nonneg, live, seed,
                  l1_max_tokens, say, progress, client=None):
    """The exact part of the ℓ1 section: the Donoho–Tanner reference and the certification of
    (a sample of) the target's codes. Returns (section, the certification or None)."""
    from rip_atoms.criteria import l1_certified_fraction

    H = d.dim
    delta = H / live
    out: dict = {"nonneg": nonneg}
    if delta < 1:
        out["rho_weak"] = theory.rho_weak(delta, nonneg=nonneg)
        out["k_weak"] = theory.k_weak(H, live, nonneg=nonneg)
    else:
        out["rho_weak"] = None
        out["k_weak"] = None
    out["reading"] = ("each code is certified (an exact dual certificate proves it is the "
                      "unique basis-pursuit solution), failed (a feasible x with ‖x‖₁ ≤ ‖δ‖₁, "
                      "x ≠ δ: the witness) or undetermined; k_weak = ρ_W(H/N)·H is the "
                      "Donoho–Tanner weak threshold for Gaussian dictionaries of this shape "
                      f"({'non-negative' if nonneg else 'signed'} codes), a reference line")
    cert = None
    if codes is not None:
        say(f"ℓ1 recovery of the target's codes (at most {l1_max_tokens} tokens)")
        cert = l1_certified_fraction(geom, codes, nonneg=nonneg, max_tokens=l1_max_tokens,
                                     seed=seed, progress=progress, client=client,
                                     keep_certificates=None)  # y* of all: report.self_check
        code_l0 = l0[cert.tokens]
        out["codes"] = {"computed": True, **cert.to_dict(),
                        "l0": code_l0.tolist(), "status": cert.status.tolist()}
    else:
        out["codes"] = {"computed": False,
                        "why": "needs activations and an encoder or codes for the target"}
    return out, cert


def recovery_searches(out: dict, d, metric, geom: Geometry, codes, l0, nonneg, live,
                      cert, searches: SearchBudget, seed, say, progress) -> None:
    """The budgeted part of the ℓ1 section, added to ``out``: the uniqueness margins of some
    of the certified codes, and the probe of random supports around the Donoho–Tanner k_W."""
    from rip_atoms.recovery import STATUS_NAMES, classify_recovery

    H = d.dim
    if cert is not None:
        from rip_atoms.recovery.margins import certificate_margins

        say(f"uniqueness margins: the exact certificate LP on {MARGIN_CODES} of those codes")
        tm = time.perf_counter()
        grant = searches.grant("margins")
        lp_limit = {"lp_time_limit": None} if searches.deterministic else {}
        mres = certificate_margins(geom, codes, nonneg=nonneg, seed=seed,
                                   tokens=np.asarray(cert.tokens)[:MARGIN_CODES], **grant,
                                   **lp_limit)
        searches.charge("margins", time.perf_counter() - tm, mres.budget)
        out["margins"] = {"computed": True, **mres.to_dict()}
    else:
        searches.grant("margins")
    # probe: random supports at sparsities around the Donoho–Tanner threshold
    grant = searches.grant("probe")
    probe = _ProbeBudget(grant)
    k_ref = out["k_weak"] if out["k_weak"] else min(H, live) / 4
    ks = sorted({max(1, min(live, int(round(f * k_ref)))) for f in PROBE_FRACTIONS})
    if codes is not None and l0.size:
        ks = sorted(set(ks) | {int(max(1, min(live, np.median(l0[l0 > 0]) if
                                              (l0 > 0).any() else 1)))})
    rng = np.random.default_rng(seed)
    live_idx = d.live_atoms
    rows: list[dict] = []
    say(f"ℓ1 probe: {PROBE_CODES} random codes at k = {ks} ({probe.words()})")
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(ks), desc="ℓ1 probe", unit="k", file=sys.stderr, leave=False)
    for k in ks:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(k=k)
        if not probe.room():  # larger k cost more than the last batch did
            rows.append({"k": k, "run": False, "why": "budget exhausted"})
            continue
        C = sp.lil_matrix((PROBE_CODES, d.n_atoms))
        for i in range(PROBE_CODES):
            S = rng.choice(live_idx, size=k, replace=False)
            mags = rng.uniform(1.0, 2.0, size=k)
            if not nonneg:
                mags *= rng.choice([-1.0, 1.0], size=k)
            C[i, S] = mags
        res = classify_recovery(geom, C.tocsr(), nonneg=nonneg, **probe.next_call())
        probe.spent(res)
        counts = {name: int(np.sum(res.status == s)) for s, name in enumerate(STATUS_NAMES)}
        rows.append({"k": k, "run": True, **counts, "seconds": res.seconds})
    if bar is not None:
        bar.close()
    out["probe"] = {
        "rows": rows, "codes_per_k": PROBE_CODES, "seed": seed,
        "method": "codes with uniformly random supports of size k on the live atoms, "
                  "magnitudes uniform in [1, 2]" + ("" if nonneg else " with random signs")
                  + ", classified by classify_recovery under the report's metric",
    }
    searches.charge("probe", probe.elapsed(), probe.record())


class _ProbeBudget:
    """The probe's grant spent over its sparsities: seconds, or units of effort (no clock).
    A sparsity runs only while the grant left exceeds what the previous one used (larger k
    cost more)."""

    def __init__(self, grant: dict) -> None:
        self.effort = grant.get("effort")
        self.cap_s = grant["budget_s"]
        self.t0 = time.perf_counter()
        self.used = 0
        self.last = 0.0
        self.cap_hit = False

    def words(self) -> str:
        return f"{self.effort} units" if self.effort is not None else f"{self.cap_s:.1f} s"

    def _left(self) -> float:
        if self.effort is not None:
            return self.effort - self.used
        return self.cap_s - self.elapsed()

    def room(self) -> bool:
        left = self._left()
        return left > 0 and self.last <= left and not self.cap_hit

    def next_call(self) -> dict:
        """Keyword arguments of the next classify_recovery call."""
        if self.effort is None:
            return {"budget_s": self._left(), "lp_time_limit": max(1.0, self.cap_s / 10)}
        return {"effort": int(self._left()), "lp_time_limit": None,
                "budget_s": max(1e-3, self.cap_s - self.elapsed())}

    def spent(self, res) -> None:
        if self.effort is None:
            self.last = res.seconds
            return
        b = res.budget
        self.used += b["used"]
        self.last = b["used"]
        self.cap_hit = self.cap_hit or b["cap_hit"]

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def record(self) -> dict | None:
        if self.effort is None:
            return None
        return {"kind": "effort", "used": self.used, "cap_hit": self.cap_hit}
