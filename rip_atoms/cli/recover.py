"""``rip-atoms recover DICT --codes CODES`` and ``rip-atoms phase-transition``.

``recover`` classifies every code (row of CODES, tokens × atoms) as certified / failed /
undetermined by exact ℓ1 recovery (:func:`rip_atoms.recovery.classify_recovery`);
``phase-transition`` measures basis pursuit's success rate against k on Gaussian dictionaries
beside the Donoho–Tanner prediction (:func:`rip_atoms.recovery.phase_transition`).

Resumable runs (``recover --checkpoint-dir DIR [--resume]``)
-------------------------------------------------------------
The codes are cut into checkpoint chunks of ``--checkpoint-codes`` rows (a multiple of
``--chunk-size``, so every code is classified in the same batch as in a run without a
checkpoint, and the merged result is the same). DIR holds::

    manifest.json        format "rip-atoms-recover-checkpoint", version 1; the inputs' identity
                         (SHA-256 of the dictionary matrix as loaded, of the codes file, of the
                         metric's activations file), every option that changes a result
                         (nonneg, metric, ridge, center, margin, chunk sizes, max-iter,
                         witness-iters, lp, lp-time-limit), n_chunks, and complete
    chunk-00000.npz      codes [0, C): the per-code arrays of RecoveryResult.save
    chunk-00001.npz      codes [C, 2C), ...

Every file is written to a temporary name in DIR and renamed into place (``os.replace``) when
complete, so a chunk file that exists is whole. A rerun with ``--resume`` checks the manifest
against the inputs and options (any difference: exit 2, naming what differs), loads the chunks
that are there (a chunk that does not load is computed again), computes the others, and merges
them; without ``--resume`` an existing checkpoint is refused. Temporary files of a killed run
are removed. Ctrl-C stops after cleaning up and says how many chunks are saved.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from rip_atoms.cli.common import (
    METRIC_NAMES,
    UsageError,
    add_dictionary_args,
    add_metric_args,
    add_output_args,
    emit_json,
    int_list,
    load_dictionary,
    load_metric,
    log,
    show_progress,
)
from rip_atoms.corrected_atoms import CorrectedAtoms
from rip_atoms.dictionary import Dictionary
from rip_atoms.errors import FileFormatError, Interrupted, InvalidCodeError
from rip_atoms.geometry import Geometry
from rip_atoms.matrix_files import load_npy
from rip_atoms.proof import kappa
from rip_atoms.recovery import MARGIN, RecoveryResult, classify_recovery, phase_transition
from rip_atoms.recovery.kept import EMBED_MAX_ENTRIES, SAMPLE, KeptCertificates, proof_arrays
from rip_atoms.recovery.results import certificates_of, reasons_from_arrays

#: ``recover --checkpoint-dir``: manifest format and version (layout: module docstring)
CHECKPOINT_FORMAT = "rip-atoms-recover-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_MANIFEST = "manifest.json"
#: default checkpoint chunk, in units of --chunk-size
CHECKPOINT_CHUNKS = 16


def load_codes(path: str | Path):
    """Codes as a tokens × atoms matrix: a dense ``.npy`` (memory-mapped, no pickle) or a
    scipy-sparse ``.npz`` written by ``scipy.sparse.save_npz`` (read with allow_pickle=False)."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_npy(path, mmap=True)
    if suffix == ".npz":
        import scipy.sparse as sp

        try:
            return sp.load_npz(path)
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise FileFormatError(f"{path}: holds Python objects (pickle), not a sparse "
                                      "matrix") from exc
            raise FileFormatError(f"{path}: not a scipy.sparse .npz (save_npz): {exc}") from exc
        except (KeyError, OSError, EOFError) as exc:
            raise FileFormatError(
                f"{path}: truncated or not a scipy.sparse .npz written by save_npz ({exc})"
            ) from exc
    raise FileFormatError(
        f"{path}: codes must be a dense .npy or a scipy.sparse .npz (tokens × atoms)"
    )


def summarize(res, source: str, codes: str) -> str:
    """Human-readable summary of a :class:`RecoveryResult`."""
    metric = METRIC_NAMES.get(res.metric.get("kind"), res.metric.get("kind"))
    methods = ", ".join(f"{k} {v}" for k, v in res.methods.items() if v)
    lines = [
        f"dictionary   {source}: H = {res.dim}, N = {res.n_atoms}",
        f"codes        {codes}: {res.n} ({'non-negative' if res.nonneg else 'signed'} "
        "basis pursuit)",
        f"metric       {metric}",
        f"certified    {res.certified}   (unique ℓ1 solution, certificate < 1 − {res.margin:g})",
        f"failed       {res.failed}   (a feasible code with no larger ℓ1 norm was found, "
        "re-checked in float64)",
        f"undetermined {res.undetermined}",
        f"decided by   {methods or '—'}",
        f"time         {res.seconds:.2f} s",
    ]
    if res.invalid:
        lines.insert(6, f"invalid      {res.invalid}")
    examples = res.undetermined_examples(3)
    more = len(res.reasons) - len(examples)
    lines[6:6] = ([f"  code {ex['index']}: {ex['reason']}" for ex in examples]
                  + ([f"  … {more} more with a reason (--json: undetermined_examples)"]
                     if more > 0 else []))  # under "undetermined"
    return "\n".join(lines)


def check_recover_args(args: argparse.Namespace) -> None:
    """Reject out-of-domain budgets and counts of ``recover`` with one line naming the option
    (:class:`UsageError`)."""
    if not (math.isfinite(args.margin) and 0 <= args.margin < 1):
        raise UsageError(f"--margin must lie in [0, 1), got {args.margin}")
    if args.chunk_size < 1:
        raise UsageError(f"--chunk-size must be ≥ 1, got {args.chunk_size}")
    if args.max_iter is not None and args.max_iter < 1:
        raise UsageError(f"--max-iter must be ≥ 1, got {args.max_iter}")
    if args.witness_iters < 0:
        raise UsageError(f"--witness-iters must be ≥ 0 (0: skip the search), got "
                         f"{args.witness_iters}")
    if not args.lp_time_limit > 0:  # also NaN
        raise UsageError(f"--lp-time-limit must be a positive number of seconds, got "
                         f"{args.lp_time_limit}")
    if args.threads < 0:
        raise UsageError(f"--threads must be ≥ 0 (0: the BLAS default), got {args.threads}")
    if args.checkpoint_codes is not None:
        if args.checkpoint_dir is None:
            raise UsageError("--checkpoint-codes needs --checkpoint-dir DIR")
        if args.checkpoint_codes < 1 or args.checkpoint_codes % args.chunk_size:
            raise UsageError(f"--checkpoint-codes must be a positive multiple of --chunk-size "
                             f"({args.chunk_size}), got {args.checkpoint_codes}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be ≥ 1, got {args.workers}")
    if args.engine == "numpy" and args.device is not None:
        raise UsageError("--device needs --engine torch")
    if args.resume and args.checkpoint_dir is None:
        raise UsageError("--resume needs --checkpoint-dir DIR (the folder of the run to resume)")
    if args.keep_certificates and not args.out:
        raise UsageError("--keep-certificates needs --out FILE.npz (where they are kept)")


def _check_out_file(out: str) -> None:
    """--out FILE.npz must be writable before any work; a killed run's temporary files for it
    are removed."""
    path = Path(out)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--out {out}: cannot write the per-code results: a folder, not a file "
                         "name such as results.npz")
    if not folder.is_dir():
        raise UsageError(f"--out {out}: cannot write the per-code results: the folder {folder} "
                         "does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the per-code results in {folder} "
                         f"({exc.strerror or exc})") from exc
    _remove_temps(folder, f".{path.name}.*.tmp")


def _file_mode() -> int:
    """The mode a new file gets: 0o666 less the umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _honour_umask(path: str | os.PathLike) -> None:
    """RecoveryResult.save writes through mkstemp (mode 0600): give the file the usual mode."""
    with contextlib.suppress(OSError):
        os.chmod(path, _file_mode())


def _remove_temps(folder: Path, pattern: str) -> None:
    for p in folder.glob(pattern):
        with contextlib.suppress(OSError):
            p.unlink()


def run_recover(args: argparse.Namespace) -> int:
    check_recover_args(args)
    if args.out:
        _check_out_file(args.out)
    d = load_dictionary(args)
    m = load_metric(args, d)
    codes = load_codes(args.codes)
    args.keep, keep_note = certificates_to_keep(args, d)
    geom = Geometry(d, m)
    atoms = geom.atoms(rows=False, rows64=True, min_live=0) if args.out else None
    options = dict(
        nonneg=args.nonneg, margin=args.margin,
        chunk_size=args.chunk_size, max_iter=args.max_iter, witness_iters=args.witness_iters,
        lp=not args.no_lp,
        lp_time_limit=None if math.isinf(args.lp_time_limit) else args.lp_time_limit,
        blas_threads=args.threads or None, progress=show_progress(args),
        engine=args.engine, device=args.device, keep_certificates=args.keep,
    )
    checkpoint = None
    stack = contextlib.ExitStack()
    if args.scheduler is not None or args.workers is not None:
        from rip_atoms.cluster import dask_client

        options["client"] = stack.enter_context(dask_client(
            scheduler=args.scheduler, workers=args.workers, quiet=bool(args.json),
            log=lambda line: log(args, line)))
        options["progress"] = False
    try:
        if args.checkpoint_dir is not None:
            res, checkpoint = run_checkpointed(args, geom, codes, options)
        else:
            res = classify_recovery(geom, codes, source=str(args.codes), **options)
        if args.out:
            save_with_proof(res, args.out, d, atoms, keep_note)
            _honour_umask(args.out)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        # every file is written through a temporary name that is removed on the way out
        if checkpoint is not None:  # only --out was left to write
            raise Interrupted(f"all {checkpoint['chunks']} chunks saved in {checkpoint['dir']}; "
                              "rerun with --resume to finish") from None
        raise Interrupted("no results written (--checkpoint-dir DIR --resume makes a long run "
                          "resumable)") from None
    finally:
        stack.close()
    if res.n and res.invalid == res.n:
        first = res.invalid_examples(1)[0]
        raise InvalidCodeError(
            f"{args.codes}: none of the {res.n} codes can be used (code {first['index']}: "
            f"{first['reason']})"
        )
    if res.invalid:
        ex = "; ".join(f"code {e['index']}: {e['reason']}" for e in res.invalid_examples(3))
        log(args, f"rip-atoms: warning: {args.codes}: {res.invalid} of {res.n} codes are "
                  f"invalid and were skipped ({ex})")
    if args.json:
        out = res.to_dict()
        out["source"] = d.provenance.to_dict()
        out["codes"] = str(args.codes)
        out["out"] = str(args.out) if args.out else None
        out["certificates_kept"] = res.certificates_kept if args.out else None
        if checkpoint is not None:
            out["checkpoint"] = checkpoint
        emit_json(out)
    else:
        print(summarize(res, d.provenance.source, str(args.codes)))
        if checkpoint is not None:
            print(f"checkpoint   {checkpoint['dir']}: {checkpoint['chunks']} chunks "
                  f"({checkpoint['resumed']} resumed)")
        if args.out:
            print(f"per-code     {args.out} (witnesses of the {res.failed} failed codes, y* of "
                  f"{len(res.certificate_index)} of the {res.certified} certified; re-check: "
                  f"rip-atoms check {args.out})")
    if keep_note and args.out:
        log(args, f"rip-atoms: note: {keep_note}")
    return 0


def certificates_to_keep(args: argparse.Namespace, d: Dictionary) -> tuple[int | None, str]:
    """(keep_certificates for classify_recovery, a note when none are kept): all with
    --keep-certificates; without, the first SAMPLE certified codes' y* when the file can hold
    D̃ (H·N ≤ EMBED_MAX_ENTRIES; a certificate's check needs every atom), else none. A
    checkpointed run keeps them without --out too, so that a resume with --out has them."""
    if not args.out and args.checkpoint_dir is None:
        return 0, ""
    if args.keep_certificates:
        return None, ""
    if d.dim * d.n_atoms > EMBED_MAX_ENTRIES:
        return 0, (f"{args.out or 'the checkpoint'} keeps no certificates: checking one "
                   f"needs all of D̃ (H·N = {d.dim * d.n_atoms} > {EMBED_MAX_ENTRIES} float64 "
                   "entries); --keep-certificates keeps every one, with D̃")
    return SAMPLE, ""


def save_with_proof(res: RecoveryResult, out: str, d: Dictionary, atoms: CorrectedAtoms,
                    note: str) -> None:
    """Write the per-code results with what `rip-atoms check` needs (the ``check_*`` arrays of
    :func:`rip_atoms.recovery.kept.proof_arrays`; the recipe of D̃ names the dictionary, the
    SHA-256 of its matrix as loaded, and the metric)."""
    recipe = {"dictionary": d.provenance.to_dict(),
              "dictionary_sha256": _sha256_array(np.asarray(d.atoms)),
              "metric": atoms.metric_info(),
              "rows": "d̃ᵢ = W dᵢ/‖W dᵢ‖ (W = S̃^½; raw: dᵢ/‖dᵢ‖), float64; dead atoms zero"}
    if note:
        recipe["certificates_note"] = note
    res.save(out, extra=proof_arrays(res, atoms.rows64, kappa(atoms.metric), recipe))


# ---------------------------------------------------------------------------------------------
# resumable runs: --checkpoint-dir / --resume (layout: module docstring)
# ---------------------------------------------------------------------------------------------


def _sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_array(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    a = np.ascontiguousarray(a)
    step = max(1, (1 << 24) // max(1, a[:1].nbytes))
    for start in range(0, a.shape[0], step):
        h.update(np.ascontiguousarray(a[start : start + step]).tobytes())
    return h.hexdigest()


def checkpoint_identity(args: argparse.Namespace, d: Dictionary, n_codes: int) -> dict:
    """What a checkpoint is pinned to: the inputs' content hashes and every option that changes
    a result. Two runs may share a checkpoint folder only when these agree."""
    if args.raw:
        metric = {"kind": "raw"}
    elif args.metric == "self":
        metric = {"kind": "self", "ridge": args.ridge}
    else:
        metric = {"kind": "activations", "sha256": _sha256_file(args.metric),
                  "center": args.center, "ridge": args.ridge}
    per = args.checkpoint_codes or CHECKPOINT_CHUNKS * args.chunk_size
    return {
        "dictionary": {"sha256": _sha256_array(np.asarray(d.atoms)),
                       "shape": [d.dim, d.n_atoms]},
        "codes": {"sha256": _sha256_file(args.codes), "n": int(n_codes)},
        "metric": metric,
        "options": {"nonneg": bool(args.nonneg), "margin": args.margin,
                    "chunk_size": args.chunk_size, "checkpoint_codes": per,
                    "max_iter": args.max_iter, "witness_iters": args.witness_iters,
                    "lp": not args.no_lp,
                    "lp_time_limit": None if math.isinf(args.lp_time_limit)
                    else args.lp_time_limit,
                    "keep_certificates": getattr(args, "keep", 0)},
    }


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key == "options":
            out += _differences(a, b, prefix=f"{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def _write_json_atomic(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_result(path: str | os.PathLike) -> RecoveryResult:
    """A :class:`RecoveryResult` back from the ``.npz`` :meth:`RecoveryResult.save` wrote
    (raises :class:`FileFormatError` naming the file when it is not one)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        info = json.loads(str(a["summary"]))
        n, n_atoms = (int(v) for v in a["shape"])
        wit = sp.csr_matrix((a["witness_data"], a["witness_indices"], a["witness_indptr"]),
                            shape=(n, n_atoms))
        fc = sp.csr_matrix((a["failed_code_data"], a["failed_code_indices"],
                            a["failed_code_indptr"]), shape=(n, n_atoms))
        res = RecoveryResult(
            n=n, dim=int(info["dim"]), n_atoms=n_atoms, nonneg=bool(info["nonneg"]),
            metric=info["metric"], margin=float(info["margin"]), status=a["status"],
            method=a["method"], certificate=a["certificate"], fuchs=a["fuchs"],
            support_size=a["support_size"], invalid_reason=a["invalid_reason"],
            homotopy_iters=a["homotopy_iters"], witnesses=wit, failed_codes=fc,
            atom_scale=a["atom_scale"], seconds=float(info.get("seconds") or 0.0),
            stage_seconds=dict(info.get("stage_seconds") or {}),
            source=str(info.get("source", "codes")), reasons=reasons_from_arrays(a),
            **certificates_of(a, n_atoms))
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise FileFormatError(f"{path}: not a per-code result file ({exc})") from exc
    if any(len(v) != n for v in (res.status, res.method, res.certificate, res.fuchs,
                                 res.support_size, res.invalid_reason, res.homotopy_iters)):
        raise FileFormatError(f"{path}: per-code arrays of different lengths")
    return res


def merge_results(parts: list[RecoveryResult], *, source: str = "codes") -> RecoveryResult:
    """One :class:`RecoveryResult` from the results of consecutive row blocks of the codes, in
    order (times are summed)."""
    if not parts:
        raise ValueError("merge_results needs at least one part")
    first = parts[0]
    stages: dict[str, float] = {}
    for p in parts:
        for k, v in p.stage_seconds.items():
            stages[k] = round(stages.get(k, 0.0) + float(v), 6)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(p, name) for p in parts])

    return RecoveryResult(
        n=sum(p.n for p in parts), dim=first.dim, n_atoms=first.n_atoms, nonneg=first.nonneg,
        metric=first.metric, margin=first.margin, status=cat("status"), method=cat("method"),
        certificate=cat("certificate"), fuchs=cat("fuchs"), support_size=cat("support_size"),
        invalid_reason=cat("invalid_reason"), homotopy_iters=cat("homotopy_iters"),
        witnesses=sp.vstack([p.witnesses for p in parts], format="csr"),
        failed_codes=sp.vstack([p.failed_codes for p in parts], format="csr"),
        atom_scale=first.atom_scale, seconds=sum(p.seconds for p in parts),
        stage_seconds=stages, source=source,
        **dict(zip(("certificate_index", "certificate_y", "certificate_codes"),
                   KeptCertificates.of_results(parts, first.certificate_limit).arrays(
                       first.n_atoms, first.dim), strict=True)),
        certificate_limit=first.certificate_limit,
        reasons={int(start) + i: r
                 for start, p in zip(np.cumsum([0] + [p.n for p in parts])[:-1], parts,
                                     strict=True)
                 for i, r in p.reasons.items()})


def _open_checkpoint(args: argparse.Namespace, identity: dict, n_chunks: int) -> Path:
    folder = Path(args.checkpoint_dir)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--checkpoint-dir {folder}: not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--checkpoint-dir {folder}: cannot create the folder "
                         f"({exc.strerror or exc})") from exc
    man_path = folder / CHECKPOINT_MANIFEST
    if man_path.exists():
        if not args.resume:
            raise UsageError(f"--checkpoint-dir {folder}: already holds a recover checkpoint; "
                             "add --resume to continue it, or choose another folder")
        try:
            old = json.loads(man_path.read_text(encoding="utf-8"))
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"{man_path}: unreadable checkpoint manifest ({exc})") from exc
        if old.get("format") != CHECKPOINT_FORMAT or old.get("version") != CHECKPOINT_VERSION:
            raise FileFormatError(f"{man_path}: not a recover checkpoint (format "
                                  f"{CHECKPOINT_FORMAT!r} version {CHECKPOINT_VERSION} expected)")
        diff = _differences(old.get("identity", {}), identity)
        if diff:
            raise UsageError(f"--checkpoint-dir {folder}: the checkpoint was made with different "
                             f"inputs or options ({', '.join(diff)}); rerun with the same ones or "
                             "choose another folder")
    else:
        if any(folder.glob("chunk-*.npz")):
            raise UsageError(f"--checkpoint-dir {folder}: holds chunk files but no "
                             f"{CHECKPOINT_MANIFEST}; choose another folder")
    try:
        _remove_temps(folder, ".chunk-*.tmp")
        _remove_temps(folder, f".{CHECKPOINT_MANIFEST}.*.tmp")
        if not man_path.exists():
            _write_manifest(man_path, identity, n_chunks, complete=False)
    except OSError as exc:
        raise UsageError(f"--checkpoint-dir {folder}: not writable "
                         f"({exc.strerror or exc})") from exc
    return folder


def _write_manifest(path: Path, identity: dict, n_chunks: int, *, complete: bool) -> None:
    _write_json_atomic(path, {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "identity": identity,
        "n_chunks": n_chunks, "chunk_file": "chunk-{index:05d}.npz",
        "chunk_codes": identity["options"]["checkpoint_codes"], "complete": complete})


def run_checkpointed(args: argparse.Namespace, geom: Geometry, codes,
                     options: dict) -> tuple[RecoveryResult, dict]:
    """classify_recovery over checkpoint chunks of the codes, each saved atomically in
    ``args.checkpoint_dir``; with ``args.resume`` the chunks already there are loaded instead
    of computed. Returns the merged result and a summary of the checkpoint."""
    from rip_atoms.codes import check_codes

    d = geom.dictionary
    source = str(args.codes)
    # validate every code once, with row numbers of the whole file (as a plain run does)
    _, codes, n = check_codes(codes, d.n_atoms, source, chunk_size=args.chunk_size)
    identity = checkpoint_identity(args, d, n)
    per = identity["options"]["checkpoint_codes"]
    starts = list(range(0, n, per))
    folder = _open_checkpoint(args, identity, len(starts))
    if not starts:  # no codes: nothing to save
        return classify_recovery(geom, codes, source=source, **options), {
            "dir": str(folder), "chunks": 0, "resumed": 0, "computed": 0}
    parts: list[RecoveryResult] = []
    resumed = 0
    try:
        for i, start in enumerate(starts):
            stop = min(n, start + per)
            path = folder / f"chunk-{i:05d}.npz"
            part = None
            if path.exists():
                try:
                    part = load_result(path)
                    if (part.n, part.n_atoms, part.nonneg, part.margin) != (
                            stop - start, d.n_atoms, bool(args.nonneg), args.margin):
                        raise FileFormatError(f"{path}: holds codes of another run")
                    resumed += 1
                except FileFormatError as exc:
                    log(args, f"rip-atoms: warning: {exc}; computing it again")
                    part = None
            if part is None:
                block = codes[start:stop]
                part = classify_recovery(geom, block, source=source, **options)
                part.save(path)
                _honour_umask(path)
            parts.append(part)
    except KeyboardInterrupt:
        raise Interrupted(f"{len(parts)} of {len(starts)} chunks saved in {folder}; rerun with "
                          "--resume to continue") from None
    if resumed:
        log(args, f"resumed {resumed} of {len(starts)} chunks from {folder}")
    with contextlib.suppress(OSError):
        _write_manifest(folder / CHECKPOINT_MANIFEST, identity, len(starts), complete=True)
    res = merge_results(parts, source=source)
    return res, {"dir": str(folder), "chunks": len(starts), "resumed": resumed,
                 "computed": len(starts) - resumed}


_RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*(?::\s*(\d+)\s*)?$")


def parse_k(text: str) -> list[int]:
    """``START:STOP[:STEP]`` (both ends included when on the grid) or ``k1,k2,...``."""
    m = _RANGE.match(text)
    if m:
        start, stop = int(m.group(1)), int(m.group(2))
        step = int(m.group(3)) if m.group(3) else 1
        if step < 1 or stop < start:
            raise UsageError(f"--k {text}: need START ≤ STOP and STEP ≥ 1")
        return list(range(start, stop + 1, step))
    if "," not in text and not text.strip().lstrip("-").isdigit():
        raise UsageError(f"--k {text}: expected START:STOP:STEP or a comma list")
    return int_list(text, "--k")


def run_phase(args: argparse.Namespace) -> int:
    for opt, value, least in (("--dim", args.dim, 1), ("--atoms", args.atoms, 1),
                              ("--trials", args.trials, 1),
                              ("--witness-iters", args.witness_iters, 0),
                              ("--seed", args.seed, 0)):
        if value < least:
            raise UsageError(f"{opt} must be ≥ {least}, got {value}")
    ks = parse_k(args.k)
    res = phase_transition(
        args.dim, args.atoms, ks, args.trials, nonneg=args.nonneg, seed=args.seed,
        witness_iters=args.witness_iters, progress=show_progress(args),
    )
    if args.json:
        emit_json(res.to_dict())
        return 0
    kind = "non-negative" if res.nonneg else "signed"
    print(f"Gaussian {res.dim}×{res.n_atoms}, {kind} codes, {res.trials} trials per k "
          f"(seed {res.seed})")
    for k, r, u in zip(res.ks, res.success_rate, res.undetermined, strict=True):
        bar = "#" * int(round(40 * r)) if np.isfinite(r) else ""
        extra = f"  ({u} undetermined)" if u else ""
        print(f"  k = {int(k):4d}  {r:6.3f}  {bar}{extra}")
    k50 = "—" if res.k50_empirical is None else f"{res.k50_empirical:.1f}"
    print(f"empirical 50% point  k = {k50}")
    print(f"Donoho–Tanner        k_W = ρ_W·H = {res.rho_weak:.4f}·{res.dim} = {res.k_weak:.1f}")
    print(f"time                 {res.seconds:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recover", help="certify (or refute) exact ℓ1 recovery of given codes")
    add_dictionary_args(p)
    p.add_argument("--codes", required=True, metavar="CODES",
                   help="tokens × atoms codes: dense .npy or scipy.sparse .npz (save_npz)")
    p.add_argument("--nonneg", action="store_true",
                   help="non-negative basis pursuit (min 1ᵀx s.t. D̃x = y, x ≥ 0; SAE codes)")
    add_metric_args(p)
    p.add_argument("--out", metavar="FILE.npz",
                   help="write the per-code results here, with the witness of every failed "
                        "code and the dual certificate y* of the first "
                        f"{SAMPLE} certified ones, for `rip-atoms check`")
    p.add_argument("--keep-certificates", action="store_true",
                   help="with --out: keep y* of every certified code (and D̃ in float64)")
    p.add_argument("--margin", type=float, default=MARGIN,
                   help=f"certified when the certificate bound < 1 − margin (default {MARGIN:g})")
    p.add_argument("--chunk-size", type=int, default=1024, help="codes per batch")
    p.add_argument("--max-iter", type=int, default=None,
                   help="homotopy (LARS) iteration cap (default 8·max(H, 100))")
    p.add_argument("--witness-iters", type=int, default=100,
                   help="ADMM iterations of the batched failure-witness search (0: skip)")
    p.add_argument("--no-lp", action="store_true", help="never fall back to the exact LP")
    p.add_argument("--lp-time-limit", type=float, default=60.0,
                   help="seconds per code for the exact certificate LP (HiGHS; > 0, inf: no "
                        "limit)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads for the batched stages (0: the BLAS default; default 1)")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="save the results chunk by chunk in DIR (atomically), so an "
                        "interrupted run can be resumed with --resume")
    p.add_argument("--resume", action="store_true",
                   help="with --checkpoint-dir: load the chunks already in DIR (the inputs and "
                        "options must be the same) and compute only the others")
    p.add_argument("--checkpoint-codes", type=int, default=None, metavar="C",
                   help=f"codes per checkpoint chunk, a multiple of --chunk-size (default "
                        f"{CHECKPOINT_CHUNKS}·chunk-size)")
    p.add_argument("--engine", choices=("numpy", "torch"), default="numpy",
                   help="who runs the batched Fuchs stage (torch: float32 screen on --device, "
                        "float64 confirmation on the host; the same statuses)")
    p.add_argument("--device", default=None,
                   help="torch device for --engine torch (cpu, cuda, cuda:1; default: CUDA "
                        "when available)")
    p.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="run the code chunks as tasks on the Dask scheduler at ADDR "
                        "(tcp://HOST:PORT); the same per-code results")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run the code chunks on a local Dask cluster of N worker processes")
    add_output_args(p)
    p.set_defaults(func=run_recover)

    q = sub.add_parser("phase-transition",
                       help="ℓ1 recovery success rate vs k on Gaussian dictionaries, with ρ_W")
    q.add_argument("--dim", type=int, required=True, metavar="M", help="H, rows")
    q.add_argument("--atoms", type=int, required=True, metavar="N", help="N, atoms")
    q.add_argument("--k", required=True, metavar="START:STOP:STEP",
                   help="sparsities: START:STOP:STEP (ends included) or k1,k2,...")
    q.add_argument("--trials", type=int, default=20, metavar="T", help="trials per k")
    q.add_argument("--nonneg", action="store_true", help="non-negative codes (ρ_W⁺)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--witness-iters", type=int, default=100,
                   help="ADMM iterations of the failure-witness search (0: skip)")
    add_output_args(q)
    q.set_defaults(func=run_phase)

