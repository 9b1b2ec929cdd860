"""Writing and reading reports.

A report folder holds the files of one run only. Every file is written to a temporary name
(``.report.json.XXXX.tmp``, ``.report.html.XXXX.tmp``) in the output folder first and renamed
into place only when all are complete, ``report.json`` last: an interrupted or failed run never
leaves a half-written report (the previous report stays as it was), and a run without the HTML
page removes the previous run's ``report.html`` before its ``report.json`` goes in, so the folder
never mixes two runs. Ctrl-C is held back during the renames. Report files get the mode any
new file gets (0o666 less the umask), not the temporary file's 0o600. Temporary files left by a
killed run are removed by the next run (:func:`prepare_report_folder`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rip_atoms import strict_json
from rip_atoms.errors import FileFormatError, Interrupted

__all__ = ["REPORT_FILES", "prepare_report_folder", "read_report", "report_json",
           "without_time_fields", "write_report"]

#: the files a run may write into its report folder; any of them not written by a run is removed
#: (check-atoms.npz: the rows of D̃ the proof section names when too large to inline,
#: :mod:`rip_atoms.report.self_check`)
REPORT_FILES = ("report.json", "report.html", "check-atoms.npz")
#: prefix of every temporary file written into a report folder (``.report.*.tmp``)
_TMP_PREFIX = ".report."
_TMP_SUFFIX = ".tmp"


def is_time_field(key: str) -> bool:
    """The keys of a report that read the clock: ``created``, every count of seconds
    (``seconds``, names ending in ``_s`` or ``_seconds``: wall time, what was left of a
    wall-clock cap) and every rate (``*_per_second``). Everything else is the same on every run
    of the same command with a work budget (``--effort``, the default), on any thread count."""
    return key in ("created", "seconds") or key.endswith(("_s", "_seconds", "_per_second"))


def without_time_fields(report):
    """``report`` with its time fields (:func:`is_time_field`) left out, at every depth: what
    two runs of the same command must agree on."""
    if isinstance(report, dict):
        return {k: without_time_fields(v) for k, v in report.items() if not is_time_field(k)}
    if isinstance(report, list):
        return [without_time_fields(v) for v in report]
    return report


def report_json(report: dict) -> str:
    """The report as strict JSON text."""
    return strict_json.dumps(report, indent=1, ensure_ascii=False) + "\n"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def prepare_report_folder(out_dir: str | os.PathLike, *, what: str = "report folder",
                          keep: bool = True) -> Path:
    """Make sure a report can be written into ``out_dir`` before any long work: create the
    folder, write and remove a probe file, and remove temporary files (``.report.*.tmp``) left
    there by a killed run. With ``keep=False`` the folders this call had to create are removed
    again (a check that leaves nothing behind). Raises :class:`FileFormatError` naming the
    folder when the report cannot be written there."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise FileFormatError(f"{folder}: not a folder (the {what})")
    created = []
    p = folder
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{folder}: cannot create the {what} ({_why(exc)})") from exc
    try:
        try:
            fd, probe = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}probe.", suffix=_TMP_SUFFIX,
                                         dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise FileFormatError(f"{folder}: the {what} is not writable ({_why(exc)})") from exc
        remove_stale_temps(folder)
    finally:
        if not keep:
            for d in created:  # deepest first
                with contextlib.suppress(OSError):
                    d.rmdir()
    return folder


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``.report.*.tmp``) a killed run left in ``folder``; returns
    the paths removed. Files that cannot be removed are left as they are."""
    removed = []
    for p in Path(folder).glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
        try:
            if p.is_file() or p.is_symlink():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed


def _stage(folder: Path, name: str, text: str | bytes, mode: int) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=_TMP_SUFFIX, dir=folder)
    try:
        with contextlib.suppress(OSError):  # a file system without modes keeps its own
            os.fchmod(fd, mode)
        binary = isinstance(text, bytes)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
                       ) as fh:
            fh.write(text)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold SIGINT back (it is delivered on exit) so a Ctrl-C cannot land between renames."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask (Windows)
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_report(report: dict, out_dir: str | os.PathLike, *, html: bool = True
                 ) -> dict[str, Path]:
    """Write ``report.json`` (and ``report.html`` with the figures) into ``out_dir``
    atomically, removing any report file of an earlier run that this run does not write
    (``report.html`` with ``html=False``). Returns the paths written."""
    from rip_atoms.report.figures import render_figures
    from rip_atoms.report.html import render_html

    folder = prepare_report_folder(out_dir)
    texts = {}
    if html:
        texts["report.html"] = render_html(report, render_figures(report))
    sidecar = getattr(report.get("proof"), "sidecar", None)
    if sidecar:
        texts["check-atoms.npz"] = _npz_bytes(sidecar)
    texts["report.json"] = report_json(report)  # last: the run's record
    mode = 0o666 & ~_umask()
    staged: dict[str, str] = {}
    placed: list[Path] = []
    try:
        for name, text in texts.items():
            staged[name] = _stage(folder, name, text, mode)
        with _sigint_held():
            for name in REPORT_FILES:
                stale = folder / name
                if name not in texts and (stale.is_file() or stale.is_symlink()):
                    stale.unlink()
            for name, tmp in staged.items():
                os.replace(tmp, folder / name)
                placed.append(folder / name)
    except KeyboardInterrupt:
        if len(placed) == len(texts):  # Ctrl-C held back during the renames: the report is in
            raise Interrupted(f"the report was written to {folder}") from None
        _unstage(staged, placed, len(texts))
        raise
    except BaseException as exc:
        _unstage(staged, placed, len(texts))
        if isinstance(exc, OSError):
            raise FileFormatError(f"{folder}: cannot write the report ({_why(exc)})") from exc
        raise
    return {name.split(".")[1]: folder / name for name in texts}


def _npz_bytes(arrays: dict) -> bytes:
    """The bytes of an ``.npz`` holding ``arrays`` (compressed)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _unstage(staged: dict[str, str], placed: list[Path], n_files: int) -> None:
    """After a failure: remove the temporary files, and the files this run already renamed
    into place unless its report.json (the last) is in too."""
    for tmp in staged.values():
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # already renamed: gone
    if len(placed) < n_files:  # the run's report.json is not in: take its other files out
        for p in placed:
            with contextlib.suppress(OSError):
                p.unlink()


def read_report(path: str | os.PathLike) -> dict:
    """Load a ``report.json`` (or the folder holding one)."""
    from rip_atoms.report.build import SCHEMA

    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"{p}: not a readable report ({exc})") from exc
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise FileFormatError(f"{p}: not a rip_atoms report (schema {SCHEMA!r} expected)")
    return obj
