"""The report's proof section, and the report re-checking itself with :mod:`rip_atoms.check`.

:func:`attach_proof` adds ``report["proof"]`` (format: :mod:`rip_atoms.proof`): the float64
rows of D̃ under the analysis metric that the claims need (every atom when the target's codes
carry certificates, else the atoms of μ's pair, the RIP witnesses and the spark null vector),
the rows of the raw μ pair, the dual vector y* of every certified code of the target's sample
and the witness of every failed one. Rows of at most ``INLINE_MAX_ENTRIES`` float64 entries go
inline; larger ones into ``check-atoms.npz`` beside ``report.json`` (written by
:func:`rip_atoms.report.files.write_report`), named with their SHA-256. It then runs the checker
on the report as it will be written (a strict-JSON round trip) and records the outcome in
``report["proof"]["self_check"]`` and as the last verdict line ("N of N claims re-checked
independently"). Only counts are recorded (residuals are left to ``rip-atoms check``), so the
record does not depend on the last bits of a BLAS.
"""

from __future__ import annotations

import json

import numpy as np

from rip_atoms import check, strict_json
from rip_atoms.proof import FORMAT, atoms_entry, b64, kappa, sha256, unit_rows

#: rows of more float64 entries than this go to the sidecar file instead of report.json
INLINE_MAX_ENTRIES = 2**17
#: the sidecar file (beside report.json)
SIDECAR = "check-atoms.npz"


class ProofSection(dict):
    """``report["proof"]``: a dict (what report.json holds) that also carries ``sidecar``, the
    arrays to write into :data:`SIDECAR` (empty when everything is inline)."""

    sidecar: dict[str, np.ndarray]


def attach_proof(report: dict, whitened, d, metric, cert) -> None:
    """Add the proof section to ``report`` (see the module docstring) and check it. ``whitened``
    is the report's :class:`~rip_atoms.corrected_atoms.CorrectedAtoms` with ``rows64``,
    ``metric`` the analysis metric (None: raw), ``cert`` the target's
    :class:`~rip_atoms.criteria.stability.L1Certified` (or None)."""
    proof = ProofSection(format=FORMAT, atoms={})
    proof.sidecar = {}
    res = getattr(cert, "recovery", None)
    certs = res is not None and len(res.certificate_index) > 0
    index = None if certs else sorted(_analysis_atoms(report, d.dim))
    rows = whitened.rows64 if index is None else whitened.rows64[index]
    _put(proof, "analysis", rows.reshape(-1, d.dim), index, d.n_atoms, kappa(metric))
    if not report["coherence"]["aip_is_raw"] and report["coherence"]["raw"].get("pair"):
        pair = list(report["coherence"]["raw"]["pair"])
        _put(proof, "raw", unit_rows(d, None, pair), pair, d.n_atoms, 1.0)
    if res is not None:
        proof["certificates"] = _certificates(res, cert.recovery_tokens)
        proof["failures"] = _failures(res, cert.recovery_tokens)
    report["proof"] = proof
    doc = json.loads(strict_json.dumps(report))  # the report as report.json will hold it
    outcome = check.summary(check.claims_of("report.json", arrays=proof.sidecar, doc=doc))
    sentence = (f"independent check: {outcome['hold']} of {outcome['claims']} claims "
                "re-checked independently (rip-atoms check report.json re-runs it)")
    if not outcome["all_hold"]:
        sentence += f"; FAILS: {outcome['first_failure']['claim']}"
    proof["self_check"] = {
        "claims": outcome["claims"], "hold": outcome["hold"], "all_hold": outcome["all_hold"],
        "kinds": {k: {"claims": v["claims"], "hold": v["hold"]}
                  for k, v in outcome["kinds"].items()},
        "first_failure": outcome["first_failure"] and outcome["first_failure"]["claim"],
        "sentence": sentence,
        "reading": "what rip-atoms check verifies and its tolerances: docs/report.md",
    }
    report["verdict"].append(sentence)


def _analysis_atoms(report: dict, H: int) -> set[int]:
    """The atoms whose rows the claims other than certificates need."""
    atoms = set(report["coherence"]["aip"].get("pair") or [])
    for b in report.get("rip", {}).get("brackets", []):
        atoms |= set(b.get("witness_U") or []) | set(b.get("witness_L") or [])
    for key in ("witness", "witness_within_precision"):
        w = report.get("spark", {}).get(key) or []
        if len(w) <= H:
            atoms |= set(w)
    return {int(a) for a in atoms}


def _put(proof: ProofSection, key: str, rows: np.ndarray, index, n_atoms: int,
         cond: float) -> None:
    entry = atoms_entry(rows, index, n_atoms, cond)
    if rows.size > INLINE_MAX_ENTRIES:
        del entry["rows"]
        entry.update(file=SIDECAR, key=key, sha256=sha256(rows))
        proof.sidecar[key] = np.ascontiguousarray(rows, dtype="<f8")
    proof["atoms"][key] = entry


def _certificates(res, tokens: np.ndarray) -> dict:
    C = res.certificate_codes
    codes = []
    for r, i in enumerate(res.certificate_index):
        S, v = C.indices[C.indptr[r]:C.indptr[r + 1]], C.data[C.indptr[r]:C.indptr[r + 1]]
        codes.append({"code": int(tokens[i]), "support": S.tolist(),
                      "signs": np.sign(v).astype(int).tolist(), "y": b64(res.certificate_y[r]),
                      "bound": float(res.certificate[i])})
    return {"nonneg": res.nonneg, "kept": res.certificates_kept, "codes": codes,
            "code_is": "the token index (into the evaluated activations) of the code"}


def _failures(res, tokens: np.ndarray) -> dict:
    W, F = res.witnesses, res.failed_codes
    codes = []
    for i in np.flatnonzero(res.status_names() == "failed"):
        a, b, c, e = W.indptr[i], W.indptr[i + 1], F.indptr[i], F.indptr[i + 1]
        codes.append({"code": int(tokens[i]), "support": F.indices[c:e].tolist(),
                      "values": F.data[c:e].tolist(), "witness_support": W.indices[a:b].tolist(),
                      "witness_values": W.data[a:b].tolist()})
    return {"nonneg": res.nonneg, "codes": codes,
            "values_are": "δ̃ and x over D̃ (δ̃ᵢ = ‖W dᵢ‖ δᵢ)"}
