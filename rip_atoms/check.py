"""An independent re-check of the claims in rip-atoms outputs, in float64, with numpy only.

This module imports numpy and the standard library and nothing of rip_atoms (a test reads its
imports), so it can be read, and trusted, on its own: ``python check.py FILE``. FILE is a
``report.json`` of ``rip-atoms verify``, a ``recover --out`` file (.npz), or the ``--json``
output of ``rip-atoms rip``, ``spark`` or ``coherence``. Claims are about D̃, the unit atoms
d̃ᵢ = W dᵢ/‖W dᵢ‖ (rows R, N×H), whose float64 rows the file carries (the "proof" section of
a JSON file: base64 little-endian float64 rows for the atoms listed, or all, inline or in a
sidecar ``.npz`` named with the SHA-256 of the rows; the ``check_rows`` arrays of an npz).

Claims and when each holds (u = 2⁻⁵³, γₙ = nu/(1 − nu), κ the metric's condition number):

* μ's pair (i, j): |d̃ᵢᵀd̃ⱼ| = μ within τ = 8(H + 2)·2u·max(1, κ) (the library computes cosines
  as dᵢᵀS̃dⱼ/(‖dᵢ‖_S‖dⱼ‖_S), which is within half of τ of the exact value, the rows within the
  other half) and μ ≤ min(1, μ_upper). With every row present and N ≤ 4096, also
  max_{i≠j}|d̃ᵢᵀd̃ⱼ| = μ within τ.
* RIP witness S of size ≤ k: λmax(G_S) − 1 = U_lower, 1 − λmin(G_S) = L_lower within k·τ
  (G_S = D̃_SᵀD̃_S; each entry within τ moves an eigenvalue by ≤ k·τ).
* spark null vector v on S (spark ≤ |S| = upper): |S| > H (dependent by dimension), or
  ‖D̃_S v‖₂ ≤ 1e-9·‖D̃_S‖₂‖v‖₂ (dependent at float64 precision). A null vector that is only
  within the file's rank_rtol (capped at √(H+1)·√κ·2⁻⁸, the coarsest input precision) holds
  only when the claim is not labelled exact and its wording says "precision" — as the side
  ``upper_within_precision`` (``witness_within_precision``) of a spark output is, checked as
  its own claim.
* dual certificate y of a code with support S, signs s: D̃_S of full column rank (σ =
  σmin − γ_{kH}σmax, the SVD's backward error taken off, > 1e-9·σmax) and bound =
  (t + ε + (‖D̃_Sᵀy − s‖₂ + √k·ε)/σ)(1 + 4u) < 1, t = max_{j∉S}|d̃ⱼᵀy| (non-negative codes,
  s = 𝟙: max_{j∉S} d̃ⱼᵀy), ε = γ_H‖y‖₂·maxᵢ‖d̃ᵢ‖ the rounding of each d̃ⱼᵀy. bound bounds t for
  the exactly feasible y' = y − D̃_S G_S⁻¹(D̃_Sᵀy − s), so δ is the unique basis-pursuit
  solution. The file's claimed bound must not be below it by more than 1e-9; margin = 1 − bound.
* failure witness x for a code δ (both over D̃; y = D̃δ): ‖D̃x − y‖₂ ≤ 1e-8·‖y‖₂ +
  γ_H(‖x‖₁ + ‖δ‖₁) (feasible, relative to ‖y‖, plus the float64 rounding of the two
  products), ‖x‖₁ ≤ (1 + 1e-9)‖δ‖₁, ‖x − δ‖₂ > 1e-6‖δ‖₂ (a different point), and x ≥ 0 for
  non-negative codes.

Exit status of :func:`main`: 0 every claim holds, 1 some claim fails (the first is named),
2 the file cannot be read or lacks what a check needs (:class:`BadFile`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

U = 2.0**-53
NULL_RTOL = 1e-9      # dependent at float64 precision: ‖D̃_S v‖ ≤ NULL_RTOL·‖D̃_S‖₂‖v‖
RANK_RTOL = 1e-9      # D̃_S of full column rank: σmin > RANK_RTOL·σmax
CERT_TOL = 1e-9       # a claimed certificate bound may be below the recomputed one by this
FEAS_RTOL = 1e-8      # a witness is feasible when ‖D̃x − y‖ ≤ FEAS_RTOL·‖y‖ (+ rounding)
L1_RTOL = 1e-9        # ‖x‖₁ ≤ (1 + L1_RTOL)‖δ‖₁
DIFF_RTOL = 1e-6      # x ≠ δ: ‖x − δ‖₂ > DIFF_RTOL·‖δ‖₂
MU_MAX_ATOMS = 4096   # the all-pairs maximum of μ is re-checked up to this many atoms


class BadFile(Exception):
    """The file cannot be read, or lacks what a claim's check needs."""


class Unusable(Exception):
    """A claim names atoms the file does not carry, or indices that are not atoms: it fails."""


#: the check of each kind of claim, and what its residual is
KINDS = {"check_pair": ("coherence pair", "| |d̃ᵢᵀd̃ⱼ| − μ |"),
         "check_mu_max": ("coherence maximum", "| max |d̃ᵢᵀd̃ⱼ| − μ |"),
         "check_rip": ("RIP witness", "|eigenvalue side − claimed|"),
         "check_null": ("spark null vector", "‖D̃_S v‖/(‖D̃_S‖‖v‖)"),
         "check_certificate": ("dual certificate", "‖D̃_Sᵀy − s‖₂"),
         "check_failure": ("failure witness", "‖D̃x − y‖/‖y‖")}


@dataclass
class Claim:
    name: str
    holds: bool
    residual: float = 0.0
    margin: float | None = None  # 1 − bound, certificates only
    note: str = ""
    kind: str = ""  # one of KINDS' kinds, set by _try


def gamma(n: int) -> float:
    return n * U / (1.0 - n * U)


def cos_tol(h: int, kappa: float) -> float:
    return 8.0 * (h + 2) * 2 * U * max(1.0, float(kappa))


class Atoms:
    """float64 rows of D̃ for some (or all) atoms of one geometry."""

    def __init__(self, rows: np.ndarray, index, n_atoms: int, kappa: float = 1.0) -> None:
        self.rows = np.asarray(rows, dtype=np.float64)
        self.n_atoms, self.dim = int(n_atoms), self.rows.shape[1]
        self.kappa = float(kappa)
        self.full = index is None
        idx = np.arange(self.n_atoms) if index is None else np.asarray(index, dtype=np.int64)
        if len(idx) != len(self.rows):
            raise BadFile(f"{len(self.rows)} rows for {len(idx)} atom indices")
        self.where = {int(a): r for r, a in enumerate(idx)}

    def take(self, S) -> np.ndarray:
        """Rows of the atoms S (|S|×H); Unusable names an atom that is not carried."""
        missing = [int(a) for a in S if int(a) not in self.where]
        if missing:
            raise Unusable(f"atom {missing[0]} is not among the atoms the file carries")
        return self.rows[[self.where[int(a)] for a in S]]


# ------------------------------------------------------------------------- the checks

def _try(check, A: Atoms, name: str, *args) -> Claim:
    """``check(A, name, *args)``; a claim whose atoms cannot be used fails (it does not stop
    the check)."""
    try:
        claim = check(A, name, *args)
    except Unusable as exc:
        claim = Claim(name, False, math.inf, note=str(exc))
    claim.kind = KINDS[check.__name__][0]
    return claim


def _distinct(S, n: int) -> list[int]:
    S = [int(a) for a in S]
    if len(set(S)) != len(S) or any(a < 0 or a >= n for a in S):
        raise Unusable(f"atoms {S[:8]} are not distinct indices in [0, {n})")
    return S


def check_pair(A: Atoms, name: str, pair, mu: float, mu_upper=None) -> Claim:
    i, j = _distinct(pair, A.n_atoms)
    R = A.take([i, j])
    c = abs(float(R[0] @ R[1]))
    tol = cos_tol(A.dim, A.kappa)
    ok = abs(c - mu) <= tol and mu <= 1.0 and (mu_upper is None or mu <= mu_upper)
    return Claim(name, ok, abs(c - mu), note=f"|cos| = {c:.16g}, claimed {mu!r}, τ {tol:.1e}")


def check_mu_max(A: Atoms, name: str, mu: float, mu_upper=None) -> Claim:
    best, R = 0.0, A.rows
    for s in range(0, len(R), 1024):
        G = np.abs(R[s:s + 1024] @ R.T)
        G[np.arange(len(G)), np.arange(s, s + len(G))] = 0.0
        best = max(best, float(G.max()))
    tol = cos_tol(A.dim, A.kappa)
    ok = abs(best - mu) <= tol and (mu_upper is None or best <= mu_upper + tol)
    return Claim(name, ok, abs(best - mu), note=f"max |cos| = {best:.16g}, claimed {mu!r}")


def check_rip(A: Atoms, name: str, S, k: int, side: str, claimed: float) -> Claim:
    S = _distinct(S, A.n_atoms)
    if len(S) > k:
        return Claim(name, False, math.inf, note=f"witness of {len(S)} atoms for k = {k}")
    R = A.take(S)
    lam = np.linalg.eigvalsh(R @ R.T)
    value = lam[-1] - 1.0 if side == "U" else 1.0 - lam[0]
    tol = k * cos_tol(A.dim, A.kappa) + gamma(A.dim)
    return Claim(name, abs(value - claimed) <= tol, abs(value - claimed),
                 note=f"{side} = {value:.16g}, claimed {claimed!r}, tol {tol:.1e}")


def check_null(A: Atoms, name: str, S, v, upper, exact: bool, wording: str,
               rank_rtol: float) -> Claim:
    S = _distinct(S, A.n_atoms)
    if upper is None or len(S) > upper or len(v) != len(S):
        return Claim(name, False, math.inf, note=f"|S| = {len(S)}, upper {upper}")
    if len(S) > A.dim:
        return Claim(name, True, 0.0, note=f"{len(S)} > H = {A.dim} atoms: dependent")
    D = A.take(S).T
    v = np.asarray(v, dtype=np.float64)
    rel = float(np.linalg.norm(D @ v) / (np.linalg.norm(D, 2) * np.linalg.norm(v)))
    if rel <= NULL_RTOL:
        return Claim(name, True, rel, note="dependent at float64 precision")
    labelled = not exact and "precision" in wording
    # the input's precision: σmin ≤ √(H+1)·√κ·u_in with u_in ≤ 2⁻⁸ (bfloat16) at the coarsest
    cap = math.sqrt(A.dim + 1) * math.sqrt(max(1.0, A.kappa)) * 2.0**-8
    ok = labelled and rel <= min(rank_rtol, cap)
    why = "dependent within the input's precision" if ok else \
        f"‖D̃_S v‖/(‖D̃_S‖‖v‖) = {rel:.2e} > {NULL_RTOL:g} and not labelled within precision"
    return Claim(name, ok, rel, note=why)


def check_certificate(A: Atoms, name: str, S, s, y, nonneg: bool, claimed=None) -> Claim:
    if not A.full:
        raise BadFile("a dual certificate needs every atom's row; the file carries a subset")
    S = _distinct(S, A.n_atoms)
    s = np.ones(len(S)) if nonneg else np.asarray(s, dtype=np.float64)
    if len(s) != len(S) or np.any(np.abs(s) != 1):
        raise Unusable(f"signs {list(s)[:8]} are not ±1, one per atom of S")
    y = np.asarray(y, dtype=np.float64)
    c = A.rows @ y
    off = np.delete(c, S)
    t = (float(off.max()) if nonneg else float(np.abs(off).max())) if off.size else 0.0
    sv = np.linalg.svd(A.rows[S], compute_uv=False)
    sigma = sv[-1] - gamma(len(S) * A.dim) * sv[0]  # the SVD's backward error, rounded down
    if not sigma > RANK_RTOL * sv[0]:
        return Claim(name, False, math.inf, note=f"D̃_S rank-deficient (σmin/σmax "
                     f"{sv[-1] / sv[0]:.1e})")
    # each computed d̃ⱼᵀy is within γ_H‖y‖‖d̃ⱼ‖ of the exact one: round t and ‖e‖ up by that
    err = gamma(A.dim) * float(np.linalg.norm(y)) * float(np.linalg.norm(A.rows, axis=1).max())
    e = float(np.linalg.norm(c[S] - s))
    bound = (t + err + (e + math.sqrt(len(S)) * err) / sigma) * (1 + 4 * U)
    ok = bound < 1.0 and (claimed is None or bound <= claimed + CERT_TOL)
    return Claim(name, ok, e, 1.0 - bound,
                 note=f"bound {bound:.16g} (t = {t:.6g}), claimed {claimed!r}")


def check_failure(A: Atoms, name: str, S, vals, xS, xvals, nonneg: bool) -> Claim:
    S, xS = _distinct(S, A.n_atoms), _distinct(xS, A.n_atoms)
    d, x = np.asarray(vals, dtype=np.float64), np.asarray(xvals, dtype=np.float64)
    y = A.take(S).T @ d
    r = float(np.linalg.norm(A.take(xS).T @ x - y)) if xS else float(np.linalg.norm(y))
    l1d, l1x = float(np.abs(d).sum()), float(np.abs(x).sum())
    feas = FEAS_RTOL * float(np.linalg.norm(y)) + gamma(A.dim) * (l1x + l1d)
    dense = {a: -v for a, v in zip(S, d, strict=True)}
    for a, v in zip(xS, x, strict=True):
        dense[a] = dense.get(a, 0.0) + v
    diff = math.sqrt(sum(v * v for v in dense.values()))
    ok = (r <= feas and l1x <= (1 + L1_RTOL) * l1d and diff > DIFF_RTOL * np.linalg.norm(d)
          and (not nonneg or (x.min(initial=0.0) >= 0 and d.min(initial=0.0) >= 0)))
    rel = r / max(float(np.linalg.norm(y)), 1e-300)
    return Claim(name, bool(ok), rel, note=f"‖D̃x − y‖/‖y‖ = {rel:.2e}, ‖x‖₁ = {l1x:.16g}, "
                 f"‖δ‖₁ = {l1d:.16g}, ‖x − δ‖ = {diff:.3g}")


# ------------------------------------------------------------------------- reading files

def _rows_b64(text: str, m: int, h: int) -> np.ndarray:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 8 * m * h:
        raise BadFile(f"{len(raw)} bytes of rows for {m}×{h} float64")
    return np.frombuffer(raw, dtype="<f8").reshape(m, h)


def _atoms_json(g: dict, base: Path, arrays: dict | None) -> Atoms:
    index, h = g.get("index"), int(g["dim"])
    m = int(g["n_atoms"]) if index is None else len(index)
    if "rows" in g:
        rows = _rows_b64(g["rows"], m, h)
    elif arrays is not None and g["key"] in arrays:  # the report checking itself, in memory
        rows = arrays[g["key"]]
    else:
        path = base / g["file"]
        try:
            with np.load(path, allow_pickle=False) as z:
                rows = np.asarray(z[g["key"]], dtype="<f8")
        except (OSError, KeyError, ValueError) as exc:
            raise BadFile(f"{path}: cannot read the atoms ({exc})") from exc
        if hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest() != g["sha256"]:
            raise BadFile(f"{path}: its atoms do not match the SHA-256 the file names")
    if rows.shape != (m, h):
        raise BadFile(f"atoms of shape {rows.shape}, expected {(m, h)}")
    return Atoms(rows, index, g["n_atoms"], g.get("condition_number") or 1.0)


def _json_claims(doc: dict, base: Path, arrays: dict | None) -> list[Claim]:
    proof = doc.get("proof")
    if not isinstance(proof, dict) or proof.get("format") != "rip-atoms-proof/1":
        raise BadFile("no 'proof' section (rip-atoms-proof/1): made by an older rip-atoms?")
    geo = {k: _atoms_json(g, base, arrays) for k, g in proof["atoms"].items()}
    main = geo["analysis"]
    out: list[Claim] = []
    if "schema" in doc:  # report.json of rip-atoms verify
        coh = doc["coherence"]
        for key, g in (("raw", geo.get("raw", main)), ("aip", main)):
            out += _coherence_claims(coh[key], g, f"coherence.{key}")
        if doc.get("rip", {}).get("computed"):
            out += _rip_claims(doc["rip"], main)
        if doc.get("spark", {}).get("computed"):
            out += _spark_claims(doc["spark"], main)
    elif "brackets" in doc:
        out += _rip_claims(doc, main)
    elif "null_vector" in doc:
        out += _spark_claims(doc, main)
    elif "pair" in doc:
        out += _coherence_claims(doc, main, "coherence")
    else:
        raise BadFile("neither a report nor rip/spark/coherence JSON")
    cert, fail = proof.get("certificates", {}), proof.get("failures", {})
    for c in cert.get("codes", []):
        y = _rows_b64(c["y"], 1, main.dim)[0]
        out.append(_try(check_certificate, main, f"certificate of code {c['code']}",
                        c["support"], c["signs"], y, cert["nonneg"], c.get("bound")))
    for f in fail.get("codes", []):
        out.append(_try(check_failure, main, f"failure witness of code {f['code']}",
                        f["support"], f["values"], f["witness_support"], f["witness_values"],
                        fail["nonneg"]))
    return out


def _coherence_claims(sec: dict, A: Atoms, name: str) -> list[Claim]:
    if sec.get("pair") is None or sec.get("mu") is None:
        return []
    mu, up = sec["mu"], sec.get("mu_upper")
    out = [_try(check_pair, A, f"{name} μ pair {list(sec['pair'])}", sec["pair"], mu, up)]
    if A.full and A.n_atoms <= MU_MAX_ATOMS:
        out.append(_try(check_mu_max, A, f"{name} μ = max over all pairs", mu, up))
    return out


def _rip_claims(sec: dict, A: Atoms) -> list[Claim]:
    out = []
    for b in sec["brackets"]:
        for side in ("U", "L"):
            S = b.get(f"witness_{side}") or []
            if S and b.get(f"{side}_lower") is not None:
                name = f"rip k={b['k']} {side}_lower witness {list(S)[:6]}"
                out.append(_try(check_rip, A, name, S, int(b["k"]), side,
                                float(b[f"{side}_lower"])))
    return out


def _spark_claims(sec: dict, A: Atoms) -> list[Claim]:
    out = []
    rtol = float(sec.get("rank_rtol") or 0.0)
    if sec.get("witness"):
        wording = " ".join(str(x) for x in (sec.get("methods", {}).get("upper"),
                                            sec.get("statement"), *sec.get("notes", [])))
        name = f"spark ≤ {sec['upper']:g}: null vector on {len(sec['witness'])} atoms"
        out.append(_try(check_null, A, name, sec["witness"], sec["null_vector"], sec["upper"],
                        bool(sec.get("exact")), wording, rtol))
    within = sec.get("witness_within_precision")
    if within and within != sec.get("witness"):  # a set dependent within the input's precision
        name = (f"spark ≤ {sec['upper_within_precision']:g} within the input's precision: "
                f"null vector on {len(within)} atoms")
        out.append(_try(check_null, A, name, within, sec["null_vector_within_precision"],
                        sec["upper_within_precision"], False, "within the input's precision",
                        rtol))
    return out


def _npz_claims(z: dict) -> list[Claim]:
    if "check_info" not in z:
        raise BadFile("no check_rows/check_info: not written by recover --out of this version")
    info, summary = json.loads(str(z["check_info"])), json.loads(str(z["summary"]))
    n_atoms = int(z["shape"][1])
    idx = z.get("check_rows_index")
    A = Atoms(z["check_rows"], idx, n_atoms, info.get("condition_number") or 1.0)
    names = [str(s) for s in z["status_names"]]
    status, nonneg = z["status"], bool(summary["nonneg"])

    def row(key: str, i: int):
        ptr, ind, dat = z[f"{key}_indptr"], z[f"{key}_indices"], z[f"{key}_data"]
        return ind[ptr[i]:ptr[i + 1]], dat[ptr[i]:ptr[i + 1]]

    out = []
    for i in np.flatnonzero(status == names.index("failed")):
        (S, d), (xS, x) = row("failed_code", i), row("witness", i)
        out.append(_try(check_failure, A, f"failure witness of code {i}", S, d, xS, x, nonneg))
    for r, i in enumerate(z.get("certificate_index", [])):
        S, d = row("certificate_code", r)
        name = f"certificate of code {int(i)}"
        if names[int(status[i])] != "certified":
            out.append(Claim(name, False, note=f"code {int(i)} is not certified in the file",
                             kind="dual certificate"))
            continue
        out.append(_try(check_certificate, A, name, S, np.sign(d), z["certificate_y"][r],
                        nonneg, float(z["certificate"][i])))
    return out


def claims_of(path: str | Path, arrays: dict | None = None, doc: dict | None = None
              ) -> list[Claim]:
    """Every claim of the file at ``path`` (or of ``doc``, a JSON document given in memory
    with the arrays its proof names), checked; :class:`BadFile` names the file and why."""
    path = Path(path)
    try:
        if doc is None and not path.is_file():
            raise BadFile("no such file")
        if doc is None and path.suffix == ".npz":
            z = np.load(path, allow_pickle=False)
            if not hasattr(z, "files"):
                raise BadFile("not an .npz archive (a recover --out file)")
            with z:
                return _npz_claims({k: z[k] for k in z.files})
        if doc is None:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadFile(f"not JSON ({exc}); check reads a report.json, a recover .npz "
                              "or --json output") from None
        if not isinstance(doc, dict):
            raise BadFile("not a JSON object")
        return _json_claims(doc, path.parent, arrays)
    except BadFile as exc:
        raise BadFile(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError,
            zipfile.BadZipFile) as exc:
        raise BadFile(f"{path}: not a rip-atoms output with a proof ({type(exc).__name__}: "
                      f"{exc})") from None


# ------------------------------------------------------------------------- the verdict

def summary(claims: list[Claim]) -> dict:
    """Counts (in all and per kind), the first failing claim, the worst residual of each kind
    (residuals of different kinds are different quantities) and the worst certificate
    margin."""
    bad = [c for c in claims if not c.holds]
    kinds = {}
    for kind, residual in KINDS.values():
        if of := [c for c in claims if c.kind == kind]:
            w = max(of, key=lambda c: c.residual)
            kinds[kind] = {"claims": len(of), "hold": sum(c.holds for c in of),
                           "residual": residual, "worst_residual": w.residual,
                           "worst_claim": w.name}
    tight = min((c for c in claims if c.margin is not None), key=lambda c: c.margin,
                default=None)
    return {
        "claims": len(claims), "hold": len(claims) - len(bad), "all_hold": not bad,
        "first_failure": bad and {"claim": bad[0].name, "why": bad[0].note} or None,
        "kinds": kinds,
        "worst_certificate_margin": tight and {"claim": tight.name, "margin": tight.margin,
                                               "note": tight.note},
        "tolerances": {"null_rtol": NULL_RTOL, "rank_rtol": RANK_RTOL, "cert_tol": CERT_TOL,
                       "feas_rtol": FEAS_RTOL, "l1_rtol": L1_RTOL, "diff_rtol": DIFF_RTOL,
                       "cosine": "8(H + 2)·2⁻⁵²·max(1, κ); RIP: k times that + γ_H"},
    }


def render(path, s: dict) -> str:
    """The summary in a few lines: the counts, each kind's worst residual, the worst margin,
    the first failure."""
    lines = [f"{path}: {s['claims']} claims checked, {s['hold']} hold"]
    for kind, k in s["kinds"].items():
        lines.append(f"  {kind:<18} {k['hold']:>5} of {k['claims']:<5} hold; worst "
                     f"{k['residual']} = {k['worst_residual']:.2g}")
    if s["worst_certificate_margin"]:
        w = s["worst_certificate_margin"]
        lines.append(f"  worst certificate margin 1 − bound = {w['margin']:.4g} ({w['claim']})")
    if s["first_failure"]:
        f = s["first_failure"]
        lines.append(f"FAILS: {f['claim']}: {f['why']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    files = [a for a in args if a != "--json"]
    if len(files) != 1:
        print("usage: check.py FILE [--json]", file=sys.stderr)
        return 2
    try:
        s = summary(claims_of(files[0]))
    except BadFile as exc:
        print(f"check: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"file": files[0], **s}) if as_json else render(files[0], s))
    return 0 if s["all_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
