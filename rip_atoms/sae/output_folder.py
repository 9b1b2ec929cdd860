"""A training run's output folder: which files a run writes there, refusing a folder that holds
an earlier run unless the call resumes or overwrites it, and preparing it (create, clear a killed
run's temporaries, delete what an overwrite replaces)."""

from __future__ import annotations

import os
from pathlib import Path

from rip_atoms.errors import FileFormatError
from rip_atoms.sae.checkpoint import CHECKPOINT
from rip_atoms.sae.sae_errors import OutputExistsError

#: the files a training run writes into its output folder
RUN_FILES = (CHECKPOINT, "cfg.json", "sae_weights.safetensors", "sparsity.safetensors",
             "training.json")


def check_output_folder(out: str | Path, *, resume: bool = False, overwrite: bool = False
                        ) -> tuple[bool, list[str]]:
    """What :func:`train_sae` will do with the output folder ``out``: (resume from
    ``out/checkpoint.pt``?, the run files it deletes first). Raises
    :class:`~rip_atoms.sae.sae_errors.OutputExistsError` (one line naming the folder) when ``out``
    holds an earlier run's files (:data:`RUN_FILES`) and the call neither resumes one with a
    checkpoint nor overwrites; FileFormatError when ``out`` is a file. Touches nothing, so a
    caller can check before loading the activations."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileFormatError(f"{out}: exists and is not a folder (training output)")
    present = [name for name in RUN_FILES if (out / name).is_file()]
    if resume and CHECKPOINT in present:
        return True, []
    if not present or overwrite:
        return False, present
    finished = [name for name in present if name != CHECKPOINT]
    if resume:
        raise OutputExistsError(
            f"{out}: nothing to resume (no {CHECKPOINT}) but the folder holds a trained SAE "
            f"({', '.join(finished)}); pass --overwrite to train a new one in its place"
        )
    what = ("a trained SAE and a training checkpoint" if finished and CHECKPOINT in present
            else "a trained SAE" if finished else "a training checkpoint")
    raise OutputExistsError(
        f"{out}: already holds {what} ({', '.join(present)}); pass --resume to continue it or "
        "--overwrite to replace it"
    )


def prepare_output(out: Path, delete: list[str]) -> None:
    """Create the folder, remove a killed run's temporary files, delete ``delete``."""
    from rip_atoms.sae.harvest import remove_stale_temporaries

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileFormatError(f"{out}: cannot create the output folder ({exc.strerror})"
                              ) from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise FileFormatError(f"{out}: the output folder is not writable")
    remove_stale_temporaries(out, RUN_FILES)
    for name in delete:
        (out / name).unlink(missing_ok=True)

