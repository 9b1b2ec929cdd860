"""torch is an optional extra: the core never imports it, and without it the adapter fails with
a message that says what to install (simulated by blocking the import in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_core_and_cli_do_not_import_torch():
    r = _run("""
        import sys
        import rip_atoms, rip_atoms.cli, rip_atoms.criteria, rip_atoms.dictionary
        rip_atoms.cli.build_parser()
        print("torch" in sys.modules, "transformers" in sys.modules)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_without_torch_the_adapter_says_what_to_install(tmp_path):
    np.savez(tmp_path / "params.npz", W_enc=np.zeros((2, 3)))
    r = _run(f"""
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        try:
            import rip_atoms.sae
        except ImportError as exc:
            print("import:", exc)
        from rip_atoms.dictionary import Dictionary
        from rip_atoms.errors import FileFormatError
        try:
            Dictionary.load({str(tmp_path / "params.npz")!r})
        except FileFormatError as exc:
            print("load:", exc)
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("import:") and "pip install 'rip-atoms[torch]'" in lines[0]
    assert lines[1].startswith("load:") and "params.npz" in lines[1]
    assert "rip-atoms[torch]" in lines[1]
    r = subprocess.run([sys.executable, "-c", "import sys; sys.modules['torch'] = None; "
                        "from rip_atoms.cli import main; sys.exit(main(['train', 'x.npy', "
                        "'--out', 'o']))"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "rip-atoms[torch]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_verify_without_torch(tmp_path):
    """``rip-atoms verify`` with no TARGET needs the llm extra and says so in one line (exit 2,
    nothing written); ``--quick`` runs without torch and never imports it."""
    # a finder that refuses torch and transformers, as if not installed (sys.modules[...] = None
    # would confuse scipy's array-API probe, which looks torch up in sys.modules)
    blocked = ("import sys, importlib.abc\n"
               "class Block(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path, target=None):\n"
               "        if name.split('.')[0] in ('torch', 'transformers'):\n"
               "            raise ImportError(f'No module named {name!r}')\n"
               "sys.meta_path.insert(0, Block())\n"
               "from rip_atoms.cli import main\n")
    r = subprocess.run([sys.executable, "-c", blocked + "sys.exit(main(['verify', '--out', "
                        f"{str(tmp_path / 'a')!r}]))"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert "rip-atoms[llm]" in r.stderr and "--quick" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists()
    r = subprocess.run([sys.executable, "-c", blocked + "rc = main(['verify', '--quick', "
                        f"'--quiet', '--out', {str(tmp_path / 'b')!r}]); "
                        "print('torch' in sys.modules); "
                        "sys.exit(rc)"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "b" / "report.html").exists()
