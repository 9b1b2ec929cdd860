"""``rip-atoms sweep``: grids of SAE cells — the paper's capacity × data-scale experiment
(layer × architecture × width N × training tokens |M| × seed) and many SAE files at once —
evaluated on their training tokens and on a fixed held-out tail, on dask.distributed.

Modules: :mod:`~rip_atoms.sweep.grid` (cells and their identities), :mod:`~rip_atoms.sweep.cell`
(one cell: the training rule, the evaluation), :mod:`~rip_atoms.sweep.engine` (Dask, resume,
outputs), :mod:`~rip_atoms.sweep.seed_stability` (seed stability by Hungarian matching),
:mod:`~rip_atoms.sweep.table` (the tidy table) and :mod:`~rip_atoms.sweep.page` (sweep.html).
"""

from rip_atoms.sweep.cell import Source, TrainingRule, run_cell, training_steps
from rip_atoms.sweep.engine import SweepResult, run_sweep
from rip_atoms.sweep.grid import ARCHITECTURES, Cell, cell_key, expand_grid
from rip_atoms.sweep.seed_stability import matched_fraction
from rip_atoms.sweep.table import COLUMNS

__all__ = ["ARCHITECTURES", "COLUMNS", "Cell", "Source", "SweepResult", "TrainingRule",
           "cell_key", "expand_grid", "matched_fraction", "run_cell", "run_sweep",
           "training_steps"]
