"""The README is a front door that stays true, and the repository stands on its own.

* README.md has at most 200 lines, and its first screen (40 lines) holds the two commands: set up
  and run ``rip-atoms verify``; set up and run the tests exactly as ``.ci/run`` does.
* Every code reference in README.md resolves: backticked dotted names ``rip_atoms.x.y`` import
  (a module, or an attribute of one), backticked snake_case names are attributes of a module the
  README names, repository paths (``rip_atoms/criteria/stability.py``, ``docs/*.md``, ``.ci/run``)
  exist, ``.[extra]`` names an extra of pyproject.toml, and every ``rip-atoms`` command shown
  (in code blocks and in backticks) names an existing subcommand and only options that
  subcommand has, read from the parser itself (:func:`rip_atoms.cli.build_parser`).
* Every relative Markdown link of README.md, docs/*.md and benchmarks/RESULTS.md points at an
  existing file, and its ``#anchor``, where it has one, at a heading of that file.
* The README's library snippet runs (it builds its own small synthetic input).
* The pages under docs/ and benchmarks/RESULTS.md: the repository paths and the ``rip-atoms``
  commands they show exist.
* Citations of docs/design.md's sections name one of its sections.
* No tracked file refers to a path outside the repository: the shared folders of the machine the
  project was built on, the notes on the paper kept there, a design file outside docs/. Nothing
  is allow-listed. ``/tmp/…`` paths are not searched for: the ones in the repository are
  scratch outputs and a benchmark lock that the commands shown create themselves, not files the
  repository reads.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 200
FIRST_SCREEN = 40

SETUP_AND_TEST = ("python3 -m venv .venv && .venv/bin/pip install -q -e "
                  "'.[dev,llm,sae-test,distributed]' && .venv/bin/python -m pytest -n 2")
SETUP_AND_VERIFY = ("python3 -m venv .venv && .venv/bin/pip install -q -e '.[llm]' && "
                    ".venv/bin/rip-atoms verify")

#: repository folders a path may start with (a backticked path under one of them must exist)
REPO_DIRS = ("rip_atoms/", "docs/", "tests/", "benchmarks/", "notebooks/", ".ci/")

#: references to paths outside the repository; spelled in pieces so this file does not match
OUTSIDE = [
    re.compile(re.escape("/wo" + "rk/")),
    re.compile(re.escape("../sha" + "red")),
    re.compile(re.escape("shared/" + "reference")),
    re.compile(r"paper[-_ ]" + "digest", re.IGNORECASE),
    re.compile(r"\bdigest " + "§"),
    re.compile(r"(?<![\w/])" + "DESIGN" + r"\.md"),  # the design file outside docs/
    re.compile(re.escape("/ho" + "me/")),
    re.compile(re.escape("/Us" + "ers/")),
]


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _code_blocks(text: str, lang: str | None = None) -> list[str]:
    blocks = re.findall(r"^```([\w-]*)\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [body for tag, body in blocks if lang is None or tag == lang]


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def _backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", _prose(text))


# -- the front door --------------------------------------------------------------------------

def test_readme_is_short():
    n = len(_readme().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES})"


def test_the_two_commands_are_on_the_first_screen_and_match_ci():
    first = "\n".join(_readme().splitlines()[:FIRST_SCREEN])
    assert SETUP_AND_VERIFY in first
    assert SETUP_AND_TEST in first
    assert SETUP_AND_TEST in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), (
        "README's test command is no longer what .ci/run runs")


# -- names and paths -------------------------------------------------------------------------

def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable module, found without importing it (so that optional
    extras need not be installed)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):  # a parent that is not a package
        return False


def _resolve_dotted(name: str) -> bool:
    """``rip_atoms.a.b``: a module, or an attribute of the longest importable prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        if not _is_module(module):
            continue
        if cut == len(parts):
            return True
        obj = importlib.import_module(module)
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


#: what a backticked ``a.b`` ends with when it is a file name, not a dotted Python name
FILE_SUFFIXES = {"json", "html", "npy", "npz", "pt", "py", "md", "safetensors", "csv", "png",
                 "txt", "toml", "ipynb", "sh", "gguf"}


def _dotted_names(text: str) -> set[str]:
    """Backticked dotted names: ``rip_atoms.x.y`` anywhere in a backticked item, and items that
    are a dotted name on their own (``criteria.stability``: read below ``rip_atoms``)."""
    names = set()
    for item in _backticked(text):
        names.update(re.findall(r"\brip_atoms(?:\.\w+)+|\brip_atoms\b(?![/.\w])", item))
        whole = re.fullmatch(r"([A-Za-z_]\w*(?:\.\w+)+)(?:\(\))?", item)
        if whole and whole.group(1).rsplit(".", 1)[1] not in FILE_SUFFIXES:
            names.add(whole.group(1))
    return names


def _unresolved_names(text: str) -> list[str]:
    return sorted(n for n in _dotted_names(text)
                  if not _resolve_dotted(n) and not _resolve_dotted(f"rip_atoms.{n}"))


def _unknown_bare_names(text: str) -> list[str]:
    """Backticked snake_case names that are attributes of no module the text names, as a dotted
    name or a path (nor of ``rip_atoms``)."""
    modules = {"rip_atoms"} | {n for n in _dotted_names(text) if n.startswith("rip_atoms")
                               and _is_module(n)}
    modules |= {p.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
                for p in _repo_paths(text) if p.startswith("rip_atoms/") and p.endswith(".py")}
    bare = {item for item in _backticked(text)
            if re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+", item)}
    loaded = [importlib.import_module(m) for m in sorted(modules)
              if _is_module(m) and m.split(".")[-1] != "sae"]  # the torch adapter: an extra
    return sorted(n for n in bare if not any(hasattr(m, n) for m in loaded))


def _repo_paths(text: str) -> set[str]:
    paths = set()
    for item in _backticked(text):
        for token in item.split():
            token = token.strip("()[],;:").split("::")[0]  # a test's node id names its file
            if token.startswith(REPO_DIRS) and not any(c in token for c in "*{<"):
                paths.add(token)
    return paths


def _missing_paths(text: str) -> list[str]:
    return sorted(p for p in _repo_paths(text) if not (ROOT / p).exists())


def test_readme_dotted_names_resolve():
    text = _readme()
    assert _dotted_names(text), "no dotted name found: the pattern is broken"
    missing = _unresolved_names(text)
    assert not missing, f"README names that do not resolve: {missing}"


def test_readme_bare_names_are_attributes_of_a_named_module():
    missing = _unknown_bare_names(_readme())
    assert not missing, f"README names found in no module it names: {missing}"


def test_readme_paths_exist():
    paths = _repo_paths(_readme())
    assert "rip_atoms/check.py" in paths and "docs/design.md" in paths
    missing = _missing_paths(_readme())
    assert not missing, f"README paths that do not exist: {missing}"


DOCS = [ROOT / "benchmarks" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_paths_and_commands_exist(doc: Path):
    """The pages under docs/ and RESULTS.md: repository paths exist, and the rip-atoms commands
    they show have those subcommands and options (their backticked names are often JSON keys of
    a report, so they are not read as Python names)."""
    text = doc.read_text(encoding="utf-8")
    assert not _missing_paths(text)
    bad = _bad_commands(text)
    assert not bad, "\n".join(bad)


def test_readme_extras_exist():
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
                 ["project"]["optional-dependencies"])
    named = set()
    for item in _backticked(_readme()) + _code_blocks(_readme()):
        for group in re.findall(r"\.\[([\w,-]+)\]", item):
            named.update(group.split(","))
    assert named >= {"torch", "llm", "dev"}
    assert named <= extras, f"README extras not in pyproject.toml: {sorted(named - extras)}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", _prose(path.read_text(encoding="utf-8")),
                          flags=re.MULTILINE)
    return {_slug(h) for h in headings}


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(doc: Path):
    bad = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(doc.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists() or ROOT not in path.parents:
            bad.append(target)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            bad.append(target)
    assert not bad, f"{doc.name}: links that do not resolve: {bad}"


# -- the command line ------------------------------------------------------------------------

def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from rip_atoms.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _shown_commands(text: str) -> list[str]:
    commands = []
    for block in _code_blocks(text, "bash"):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" #")[0].strip().removeprefix("$ ")
            if re.match(r"(\.venv/bin/)?rip-atoms\s", line):
                commands.append(line)
    commands += [item for item in _backticked(text) if re.match(r"rip-atoms\s", item)]
    return commands


def _bad_commands(text: str) -> list[str]:
    """Each shown ``rip-atoms`` command whose subcommand, options or first positional choice
    the parser does not know."""
    subcommands = _subcommands()
    bad = []
    for command in _shown_commands(text):
        tokens = command.split()
        name = tokens[1]
        if name.startswith(("-", "<")):  # `rip-atoms --help`, `rip-atoms <command> …`
            continue
        if name not in subcommands:
            bad.append(f"{command!r}: no subcommand {name!r}")
            continue
        sub = subcommands[name]
        options = {o for a in sub._actions for o in a.option_strings}
        for option in re.findall(r"(?<![\w-])--?[a-z][\w-]*", " ".join(tokens[2:])):
            if option not in options:
                bad.append(f"{command!r}: {name} has no option {option}")
        choices = [a.choices for a in sub._actions if not a.option_strings and a.choices]
        if choices and len(tokens) > 2 and tokens[2] not in choices[0]:
            bad.append(f"{command!r}: {tokens[2]!r} is not one of {sorted(choices[0])}")
    return bad


def test_readme_commands_and_options_exist():
    commands = _shown_commands(_readme())
    assert len(commands) >= 15, commands
    bad = _bad_commands(_readme())
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_are_for():
    """Each check fails on the kind of reference it exists to catch (the README's old criteria
    table named an ``atoms`` module that never existed)."""
    text = ("`atoms.l1_certified_fraction` `rip_atoms.criteria.no_such_name` `no_such_thing` "
            "`rip_atoms/criteria/no_such.py` `rip-atoms verify --no-such-option` "
            "`rip-atoms no-such-command` `rip-atoms theory no-such-form`\n"
            "```bash\nrip-atoms rip D.npy --effort 5 -q\n```\n")
    assert _unresolved_names(text) == ["atoms.l1_certified_fraction",
                                       "rip_atoms.criteria.no_such_name"]
    assert _unknown_bare_names(text) == ["no_such_thing"]
    assert _missing_paths(text) == ["rip_atoms/criteria/no_such.py"]
    bad = _bad_commands(text)
    assert len(bad) == 4 and all(any(w in b for b in bad) for w in
                                 ("--no-such-option", "'no-such-command'", "'no-such-form'",
                                  "no option -q")), bad


def test_readme_options_in_prose_exist():
    everywhere = {o for sub in _subcommands().values() for a in sub._actions
                  for o in a.option_strings}
    shown = {o for item in _backticked(_readme()) if not item.startswith("rip-atoms")
             for o in re.findall(r"(?<![\w-])--[a-z][\w-]*", item)}
    assert shown, "no option found: the pattern is broken"
    missing = sorted(shown - everywhere)
    assert not missing, f"README options no subcommand has: {missing}"


# -- the library snippet ---------------------------------------------------------------------

def test_readme_library_snippet_runs():
    text = _readme()
    library = text[text.index("\n## Library\n"):]
    (snippet, *_) = _code_blocks(library, "python")
    namespace: dict = {"__name__": "readme_snippet"}
    exec(compile(snippet, "README.md (library snippet)", "exec"), namespace)
    # what the snippet's comments promise
    assert namespace["res"].mu == namespace["rip"].brackets[0].delta_lower  # δ₂ = μ
    assert namespace["rec"].certified + namespace["rec"].failed + namespace["rec"].undetermined \
        == 20
    assert set(namespace["report"]) == {"coherence", "rip", "l1"}


# -- the repository stands on its own --------------------------------------------------------

def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: no list of tracked files")
    files = []
    for name in out.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:  # text only: images and other binaries carry no paths
                files.append(path)
    return files


def test_no_tracked_file_refers_to_a_path_outside_the_repository():
    files = _tracked_text_files()
    assert any(p.name == "README.md" for p in files)
    hits = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8",
                                                     errors="replace").splitlines(), 1):
            for pattern in OUTSIDE:
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not hits, "references to paths outside the repository:\n" + "\n".join(hits)


#: a citation of a section of the contract: docs/design.md, "Title" / design.md § Title
SECTION_CITATION = re.compile(
    r"design\.md(?:\]\(design\.md\))?(?:,\s*§?\s*\"(?P<quoted>[^\"]+)\"|\s*§\s*(?P<bare>[^;,)\"`]+))")


def test_citations_of_design_sections_name_a_section_of_it():
    """``docs/design.md, "The paper's criteria"`` or ``docs/design.md § TSAE identifiability``
    in any tracked file names a heading, a bold paragraph title or a phrase of docs/design.md."""
    design = " ".join((ROOT / "docs" / "design.md").read_text(encoding="utf-8")
                      .replace("**", "").split())
    cited = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
        for m in SECTION_CITATION.finditer(text):
            title = (m.group("quoted") or m.group("bare")).strip()
            cited.append((path.relative_to(ROOT), title))
    assert any(title == "TSAE identifiability" for _, title in cited), cited
    missing = [f"{path}: {title!r}" for path, title in cited if title not in design]
    assert not missing, "citations of docs/design.md that name none of its sections:\n" + (
        "\n".join(missing))

