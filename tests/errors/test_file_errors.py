"""Report files: written atomically, never mixing two runs, honouring the umask, and nothing
left behind by a killed, interrupted or failed write.

* ``write_report(html=False)`` over an older report removes the old ``report.html``;
* report files get the mode the umask gives (checked against modes computed by hand);
* ``.report.*.tmp`` files of a killed run are removed by the next run, other files are left;
* ``prepare_report_folder`` creates, probes and cleans the folder, and refuses a path under a
  file with one message naming it;
* an interrupt or a full disk during the renames leaves the old report and no temporary file.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from rip_atoms.errors import FileFormatError
from rip_atoms.report.files import prepare_report_folder, write_report


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)

def test_write_report_without_html_removes_the_old_html(tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.html").write_text("<html>old run</html>")
    (out / "report.json").write_text('{"old": true}\n')
    paths = write_report({"new": 1}, out, html=False)
    assert paths == {"json": out / "report.json"}
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert json.loads((out / "report.json").read_text()) == {"new": 1}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664),
                                             (0o027, 0o640)])
def test_report_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_report({"x": 1}, tmp_path / "rep", html=False)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "rep" / "report.json") == mode


def test_stale_report_temp_files_are_removed(tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    stale = [".report.json.k1l2m3.tmp", ".report.html.abcd12.tmp", ".report.probe.x.tmp"]
    for name in stale:
        (out / name).write_text("killed run")
    (out / "notes.tmp").write_text("not ours")  # other files are left alone
    (out / ".other.json.tmp").write_text("not ours")
    write_report({"x": 1}, out, html=False)
    assert sorted(p.name for p in out.iterdir()) == [".other.json.tmp", "notes.tmp",
                                                     "report.json"]


def test_prepare_report_folder_removes_stale_temps_and_probes(tmp_path):
    out = tmp_path / "new" / "rep"
    assert prepare_report_folder(out, keep=False) == out
    assert list(tmp_path.iterdir()) == []  # a check that leaves nothing behind
    assert prepare_report_folder(out) == out
    assert out.is_dir() and list(out.iterdir()) == []
    (out / ".report.json.zz.tmp").write_text("")
    prepare_report_folder(out)
    assert list(out.iterdir()) == []


def test_prepare_report_folder_refuses_a_path_under_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(FileFormatError, match=r"file/sub: cannot create the report folder"):
        prepare_report_folder(f / "sub")
    with pytest.raises(FileFormatError, match=r"file: not a folder"):
        prepare_report_folder(f)


def test_interrupted_write_leaves_the_old_report_and_no_temp_files(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.json").write_text('{"old": true}\n')
    import rip_atoms.report.files as files

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        write_report({"new": 1}, out, html=False)
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert json.loads((out / "report.json").read_text()) == {"old": True}


def test_failed_write_leaves_no_temp_files(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    out.mkdir()
    import rip_atoms.report.files as files

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(FileFormatError, match=r"rep: cannot write the report \(No space left"):
        write_report({"new": 1}, out, html=False)
    assert list(out.iterdir()) == []
