"""The dual vectors y* that certified codes keep for an independent re-check
(:mod:`rip_atoms.check`), and the arrays ``recover --out`` adds for it.

:func:`classify_recovery` keeps, with ``keep_certificates=None``, the certificate of every
certified code; with an integer m, those of the m certified codes of lowest index (a
deterministic sample: the same codes whatever the chunking, the stage that certified them or the
number of workers); with 0 (the default) none, at no cost. A kept certificate is the y whose
rigorous bound certified the code (:mod:`rip_atoms.recovery.certificates`): the Fuchs
y₀ = D̃_S G_S⁻¹ s (recomputed for the kept codes only: the batched stage never forms it per
code), the pushed certificate, or the LP's y.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rip_atoms import strict_json

#: ``recover --out`` keeps this many certificates unless --keep-certificates asks for all
SAMPLE = 64
#: ... and only when D̃ (H·N float64 entries, which a certificate's check needs) is at most this
EMBED_MAX_ENTRIES = 2**21


class KeptCertificates:
    """y* (and δ̃) of certified codes: all (``limit`` None) or the ``limit`` lowest indices."""

    def __init__(self, limit: int | None = 0) -> None:
        self.limit = limit
        self.kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._top = -1  # the highest index kept (so wants() is O(1) on the hot path)

    def wants(self, i: int) -> bool:
        """Would a certificate of code i be kept now?"""
        if self.limit is None:
            return True
        return self.limit > 0 and (len(self.kept) < self.limit or i < self._top)

    def add(self, i: int, S: np.ndarray, vals: np.ndarray, y: np.ndarray) -> None:
        """Keep code i's (S, δ̃_S, y), dropping the highest index beyond ``limit``."""
        if not self.wants(i):
            return
        self.kept[i] = (np.asarray(S, np.int64), np.asarray(vals, np.float64),
                        np.asarray(y, np.float64))
        self._top = max(self._top, i)
        if self.limit is not None and len(self.kept) > self.limit:
            del self.kept[self._top]
            self._top = max(self.kept)

    def merge(self, other: KeptCertificates, offset: int) -> None:
        """Add another record's certificates (its code i is this record's offset + i)."""
        for i, (S, v, y) in other.kept.items():
            self.add(offset + i, S, v, y)

    def arrays(self, n_atoms: int, dim: int) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
        """(code indices ascending, their y (m×H), their δ̃ as an m×N CSR matrix)."""
        idx = np.array(sorted(self.kept), dtype=np.int64)
        Y = np.zeros((len(idx), dim))
        cols, vals, rows = [np.zeros(0, np.int64)], [np.zeros(0)], [np.zeros(0, np.int64)]
        for r, i in enumerate(idx):
            S, v, Y[r] = self.kept[int(i)]
            cols.append(S)
            vals.append(v)
            rows.append(np.full(len(S), r, dtype=np.int64))
        C = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(idx), n_atoms))
        return idx, Y, C

    @classmethod
    def of_results(cls, parts, limit: int | None) -> KeptCertificates:
        """The certificates of consecutive row blocks' results (:class:`RecoveryResult`), with
        their code indices shifted to the whole, trimmed to ``limit`` as one run would."""
        kept, offset = cls(limit), 0
        for p in parts:
            C = p.certificate_codes
            for r, i in enumerate(p.certificate_index):
                lo, hi = C.indptr[r], C.indptr[r + 1]
                kept.add(offset + int(i), C.indices[lo:hi], C.data[lo:hi], p.certificate_y[r])
            offset += p.n
        return kept


def fuchs_y(rows64: np.ndarray, S: np.ndarray, s: np.ndarray) -> np.ndarray:
    """y₀ = D̃_S G_S⁻¹ s in float64 (least squares when G_S is nearly singular)."""
    A = rows64[S].T
    return A @ np.linalg.lstsq(A.T @ A, s, rcond=None)[0]


def proof_arrays(result, rows64: np.ndarray, condition_number: float,
                 recipe: dict) -> dict[str, np.ndarray]:
    """The ``check_*`` arrays of a ``recover --out`` file for ``result`` (a
    :class:`RecoveryResult`, whose kept certificates the file holds anyway): ``check_rows``,
    the float64 rows of D̃ (``rows64``, N×H) its claims need — every atom when it keeps
    certificates, else only the atoms of its failure witnesses and failed codes, listed in
    ``check_rows_index`` — and ``check_info`` (JSON: the proof format, κ of the metric for the
    checker's tolerances, which certificates were kept, how D̃ was made: ``recipe``)."""
    out: dict[str, np.ndarray] = {}
    if len(result.certificate_index):
        out["check_rows"] = rows64
        rows = "every atom"
    else:
        used = np.concatenate([result.witnesses.indices, result.failed_codes.indices])
        atoms = np.unique(used.astype(np.int64))
        out["check_rows"] = rows64[atoms].reshape(len(atoms), rows64.shape[1])
        out["check_rows_index"] = atoms
        rows = f"the {len(atoms)} atoms of the failure witnesses and failed codes"
    info = {"format": "rip-atoms-proof/1", "condition_number": condition_number,
            "certificates": result.certificates_kept, "n_kept": int(len(result.certificate_index)),
            "n_certified": result.certified, "rows": rows, "atoms": recipe}
    out["check_info"] = np.array(strict_json.dumps(info))
    return out
