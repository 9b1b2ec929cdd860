"""The sweep's tidy table: one row per cell × split (``train``, ``held_out``), columns named after
docs/design.md's quantities; written as ``sweep.csv`` and inside ``sweep.json``."""

from __future__ import annotations

import csv
import io
import math

__all__ = ["COLUMNS", "tidy_rows", "to_csv"]

#: docs/design.md's columns first, then the extras
COLUMNS = ("layer", "arch", "seed", "n_atoms", "tokens", "split", "r2_aip", "r2_euclidean",
           "q_star_quantile", "q_star_support", "l1_certified", "mu", "mean_l0", "dead",
           "inactive", "seed_stability", "seconds", "status", "error",
           "n_over_m", "mu_q50", "mu_q95", "epochs", "steps", "r2_train_last", "sae_path",
           "key")


def tidy_rows(results: list[dict], stability: dict[str, float | None]) -> list[dict]:
    """Rows of the table from the cells' result dicts (failed cells get one row per split with
    their status and error and empty numbers)."""
    rows = []
    for res in results:
        cell = res["cell"]
        n_atoms = res.get("n_atoms", cell["n_atoms"])
        tokens = cell["tokens"]
        train = res.get("training") or {}
        for split in ("train", "held_out"):
            s = res.get("splits", {}).get(split, {})
            q = s.get("mu_quantiles") or {}
            rows.append({
                "layer": cell["layer"], "arch": cell["arch"], "seed": cell["seed"],
                "n_atoms": n_atoms, "tokens": tokens, "split": split,
                "r2_aip": s.get("r2_aip"), "r2_euclidean": s.get("r2_euclidean"),
                "q_star_quantile": s.get("q_star_quantile"),
                "q_star_support": s.get("q_star_support"),
                "l1_certified": s.get("l1_certified"), "mu": s.get("mu"),
                "mean_l0": s.get("mean_l0"), "dead": s.get("dead"),
                "inactive": s.get("inactive"),
                "seed_stability": stability.get(res["key"]),
                "seconds": res.get("seconds"), "status": res["status"],
                "error": res.get("error"),
                "n_over_m": (n_atoms / tokens) if tokens else None,
                "mu_q50": q.get("0.5"), "mu_q95": q.get("0.95"),
                "epochs": train.get("epochs"), "steps": train.get("steps"),
                "r2_train_last": train.get("r2_train_last"), "sae_path": cell.get("sae_path"),
                "key": res["key"]})
    return rows


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return str(v)


def to_csv(rows: list[dict]) -> str:
    """The rows as CSV text (empty fields for missing values)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in COLUMNS])
    return buf.getvalue()
