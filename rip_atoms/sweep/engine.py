"""Run a grid of cells on dask.distributed, resumably, and write the sweep's outputs.

Engine. Each cell is one Dask task (:func:`rip_atoms.sweep.cell.run_cell`), submitted through
:func:`rip_atoms.cluster.dask_client` — a LocalCluster of ``workers`` single-threaded worker
processes (BLAS threads ⌊cores / workers⌋ each) or an existing cluster at ``scheduler``. Cells
are independent and pure (seeded, one thread): when a worker dies, the scheduler reruns its
task on another worker and the result is the same; every cell ends up exactly once in the
table because a cell's result is a file named by its identity (``OUT/cells/<key>.json``),
written atomically by the task itself. With ``device="cuda"`` every task asks for the
abstract resource ``GPU: 1``, so each GPU runs one cell at a time.

Every worker runs :func:`rip_atoms.sweep.cell.warm_up` once when it joins (a Dask worker
plugin, so workers that join or restart later are warmed too): the imports and lazy set-up are
then not charged to whichever cell a fresh worker runs first.

Resume. Before submitting, cells whose result file exists with ``status = "ok"`` (and the same
identity) are skipped; failed cells are retried. Interrupting the driver (Ctrl-C) loses only
the cells in flight.

Outputs (in ``out``): ``cells/*.json`` (one per cell), ``saes/<key>/`` (each trained SAE in the
SAELens layout), ``sweep.json`` (settings, cells, table, failures), ``sweep.csv`` (the tidy
table, :mod:`rip_atoms.sweep.table`) and ``sweep.html`` (:mod:`rip_atoms.sweep.page`), the
last three written atomically after every cell has finished.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rip_atoms.errors import ParameterError
from rip_atoms.sweep.cell import (
    Source,
    TrainingRule,
    load_stream,
    run_cell,
    stream_rows,
    take_rows,
    write_json_atomic,
    write_text_atomic,
)
from rip_atoms.sweep.grid import Cell, cell_key
from rip_atoms.sweep.seed_stability import matched_fraction
from rip_atoms.sweep.table import tidy_rows, to_csv

__all__ = ["SweepResult", "run_sweep"]


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced: every cell's result, the tidy rows, and where they were written."""

    out_dir: str
    results: list[dict] = field(repr=False)
    rows: list[dict] = field(repr=False)
    ran: int
    skipped: int
    failed: int
    seconds: float

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "cells": len(self.results), "ran": self.ran,
                "skipped": self.skipped, "failed": self.failed, "seconds": self.seconds,
                "rows": self.rows}


def _finished(path: Path, key: str) -> dict | None:
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(res, dict) and res.get("key") == key and res.get("status") == "ok":
        return res
    return None


def _source_fingerprint(source: Source, max_norm_ratio: float | None) -> dict:
    """The layer's identity in the cell keys: path, shape and the massive-activation rows left
    out (``massive_rows``, found once here and handed to every task)."""
    massive: list[int] = []
    try:
        X = load_stream(source)
        shape = list(X.shape)
        if max_norm_ratio:
            from rip_atoms.massive_activations import massive_activation_rows

            massive = massive_activation_rows(X, max_norm_ratio).tolist()
    except Exception as exc:  # noqa: BLE001 - a bad source fails its cells, not the sweep
        shape = f"unreadable: {type(exc).__name__}"
    return {**source.to_dict(), "path": str(Path(source.path).resolve()), "shape": shape,
            "massive_rows": massive}


def _stability(results: list[dict], sources: dict, prints: dict, held_out: int, ridge: float,
               say: Callable[[str], None]) -> dict[str, float | None]:
    """Mean matched fraction of each training cell against the other seeds of its group."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        c = r["cell"]
        if r["status"] == "ok" and c["sae_path"] is None:
            groups[(c["layer"], c["arch"], c["n_atoms"], c["tokens"])].append(r)
    out: dict[str, float | None] = {}
    metrics: dict = {}
    for (layer, _arch, _n, _t), members in groups.items():
        if len(members) < 2:
            continue
        from rip_atoms.metric import fit_metric
        from rip_atoms.sae.formats import load_sae

        if layer not in metrics:
            X = load_stream(sources[layer])
            fit_rows, _ = stream_rows(X.shape[0], held_out, prints[layer]["massive_rows"])
            metrics[layer] = fit_metric(take_rows(X, fit_rows), ridge=ridge)
        decs = {m["key"]: load_sae(m["saes_dir"]).dictionary().atoms for m in members}
        keys = sorted(decs)
        pair: dict[tuple[str, str], float | None] = {}
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                pair[a, b] = pair[b, a] = matched_fraction(decs[a], decs[b], metrics[layer])
        for a in keys:
            vals = [pair[a, b] for b in keys if b != a]
            out[a] = None if any(v is None for v in vals) else float(sum(vals) / len(vals))
        say(f"seed stability {members[0]['cell']['arch']} N={_n} |M|={_t}: "
            + ", ".join("n/a" if out[k] is None else f"{out[k]:.3f}" for k in keys))
    return out


def run_sweep(cells: list[Cell], sources: dict, out_dir: str | Path, *,
              rule: TrainingRule | None = None, held_out: int = 20_000, ridge: float = 0.0,
              l1_tokens: int = 64, workers: int | None = None, scheduler: str | None = None,
              progress: bool = True, log: Callable[[str], None] | None = None,
              html: bool = True, max_norm_ratio: float | None = 10.0) -> SweepResult:
    """Run every cell (skipping finished ones), then write ``sweep.json``, ``sweep.csv`` and
    ``sweep.html`` in ``out_dir``.

    ``sources`` maps each layer of the cells to its :class:`~rip_atoms.sweep.cell.Source`.
    ``workers = 0`` runs the cells one after another in this process (no Dask; for debugging
    and for measuring the engine's overhead); otherwise the cells run on a Dask cluster (see
    the module docstring). Tokens with ‖x‖₂ > ``max_norm_ratio`` · the median norm of their
    layer's stream (massive activations) are left out of every slice, the held-out tail and the
    metric (``None`` or 0 keeps every token); their rows are listed in ``sweep.json``.
    """
    t0 = time.perf_counter()
    rule = rule or TrainingRule()
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out}: exists and is not a folder (sweep output)")
    (out / "cells").mkdir(parents=True, exist_ok=True)
    missing = {c.layer for c in cells} - set(sources)
    if missing:
        raise ParameterError(f"no activations for layer(s) {sorted(missing, key=str)}")
    if max_norm_ratio is not None and max_norm_ratio != 0 and not max_norm_ratio > 1:
        raise ParameterError(f"max_norm_ratio must be > 1 (or 0 to keep every token), got "
                             f"{max_norm_ratio}")
    prints = {layer: _source_fingerprint(s, max_norm_ratio) for layer, s in sources.items()}
    for layer, p in prints.items():
        if p["massive_rows"]:
            say(f"sweep: layer {layer}: {len(p['massive_rows'])} massive activation(s) left out "
                f"(‖x‖ > {max_norm_ratio:g}× the median norm; rows "
                f"{', '.join(map(str, p['massive_rows'][:8]))}"
                f"{', …' if len(p['massive_rows']) > 8 else ''})")
    base = {"rule": rule.to_dict(), "held_out": held_out, "ridge": ridge,
            "l1_tokens": l1_tokens, "max_norm_ratio": max_norm_ratio or None}
    keys = [cell_key(c, {**base, "source": prints[c.layer]}) for c in cells]
    if len(set(keys)) != len(keys):
        raise ParameterError("the grid repeats a cell (same layer, arch, N, |M| and seed)")
    done: dict[str, dict] = {}
    for k in keys:
        res = _finished(out / "cells" / f"{k}.json", k)
        if res is not None:
            done[k] = res
    todo = [(c, k) for c, k in zip(cells, keys, strict=True) if k not in done]
    if done:
        say(f"sweep: {len(done)} of {len(cells)} cells already finished in {out / 'cells'} "
            "(skipped)")

    def task_kwargs(cell: Cell, key: str) -> dict:
        return {"name": key, "out_dir": str(out), "rule": rule, "held_out": held_out,
                "ridge": ridge, "l1_tokens": l1_tokens,
                "settings": {**base, "source": prints[cell.layer]},
                "exclude": tuple(prints[cell.layer]["massive_rows"])}

    bar = _bar(len(cells), len(done), progress)

    def finished(res: dict) -> None:
        done[res["key"]] = res
        bar.update(1)
        c = res["cell"]
        what = Cell(**c).label
        if res["status"] == "ok":
            h = res["splits"]["held_out"]
            tr = res["splits"]["train"]
            line = (f"done {what}: R² AIP train {tr['r2_aip']:.4f} held-out {h['r2_aip']:.4f}, "
                    f"q* {h['q_star_quantile']:.3f}, L0 {h['mean_l0']:.1f}, "
                    f"{res['seconds']:.0f} s")
        else:
            line = f"FAILED {what}: {res['error']}"
        bar.write(line, file=sys.stderr)

    try:
        if todo and workers == 0:
            for cell, key in todo:
                finished(run_cell(cell, sources[cell.layer], **task_kwargs(cell, key)))
        elif todo:
            from rip_atoms.cluster import dask_client, require_distributed

            distributed = require_distributed()
            resources = {"GPU": 1} if rule.device.startswith("cuda") else None
            with dask_client(scheduler=scheduler, workers=workers, resources=resources,
                             log=lambda m: bar.write(m, file=sys.stderr)) as client:
                from rip_atoms.sweep.warm import WarmUp

                client.register_plugin(WarmUp(), name="rip-atoms-warm-up")
                futures = [client.submit(run_cell, cell, sources[cell.layer], key=f"cell-{key}",
                                         pure=False, resources=resources,
                                         **task_kwargs(cell, key))
                           for cell, key in todo]
                for fut in distributed.as_completed(futures):
                    finished(fut.result())
    finally:
        bar.close()
    results = [done[k] for k in keys]
    for r in results:
        r["saes_dir"] = str(out / "saes" / r["key"])
    stability = _stability(results, sources, prints, held_out, ridge, say)
    rows = tidy_rows(results, stability)
    failed = sum(r["status"] != "ok" for r in results)
    res = SweepResult(out_dir=str(out), results=results, rows=rows, ran=len(todo),
                      skipped=len(cells) - len(todo), failed=failed,
                      seconds=time.perf_counter() - t0)
    summary = {"settings": {**base, "sources": prints}, "cells": len(cells), "ran": res.ran,
               "skipped": res.skipped, "failed": failed, "seconds": res.seconds,
               "failures": [{"cell": r["cell"], "error": r["error"]} for r in results
                            if r["status"] != "ok"], "rows": rows}
    write_json_atomic(out / "sweep.json", summary)
    write_text_atomic(out / "sweep.csv", to_csv(rows))
    if html:
        from rip_atoms.sweep.page import render_sweep_html

        write_text_atomic(out / "sweep.html", render_sweep_html(summary))
    return res


class _NoBar:
    def update(self, _n: int) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        print(line, file=file or sys.stderr, flush=True)

    def close(self) -> None:
        pass


def _bar(total: int, initial: int, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="cells", unit="cell", file=sys.stderr,
                dynamic_ncols=True)
