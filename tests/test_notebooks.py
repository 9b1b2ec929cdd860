"""The example notebooks run top to bottom, and are stored without outputs.

Every ``notebooks/*.ipynb`` is executed with nbclient on the ``python3`` kernel (the interpreter
running pytest, with its ``rip_atoms``), from ``notebooks/`` as working directory, with a
per-cell timeout; any cell error — including a failed ``assert`` of a notebook's claims — fails
the test. The SAE notebook needs the torch extra and is skipped cleanly without it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NEEDS_TORCH = {"02_sae_end_to_end.ipynb"}
CELL_TIMEOUT_S = 300


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_exist_and_are_stored_without_outputs():
    paths = _notebooks()
    assert {p.name for p in paths} >= {
        "01_theorem_on_synthetic_dictionaries.ipynb",
        "02_sae_end_to_end.ipynb",
        "03_phase_transition.ipynb",
    }
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.cells and nb.cells[0].cell_type == "markdown", f"{path.name}: no intro cell"
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.get("outputs"), f"{path.name}: cell {i} has stored outputs"
                assert cell.get("execution_count") is None, f"{path.name}: cell {i} was run"


@pytest.mark.slow
@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path: Path):
    if path.name in NEEDS_TORCH:
        pytest.importorskip("torch", reason="needs the torch extra: pip install 'rip-atoms[torch]'")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) on any error
