"""The report's reproducibility section: which of its figures are the same on every run and
every machine, and which can differ, and why."""

from __future__ import annotations

#: what no run of the report can make machine-independent, and why
ACROSS_MACHINES = {
    "float_digits": "the last digits of float64 figures (μ, eigenvalues, R², certificate "
                    "values): another CPU or BLAS build (MKL instead of OpenBLAS, AVX-512 "
                    "instead of AVX2 kernels) rounds the same products differently. Every claim "
                    "is certified with its rounding error bounded, so a verdict (certified, "
                    "failed, a bracket's side) holds on either machine, but a figure read to "
                    "its last digit can differ",
    "trained_sae": "an SAE trained here (the default run): training is float32 and chaotic, so "
                   "another machine's last-bit differences grow into other weights, and every "
                   "figure computed from those weights (R², q*, μ, the atom cards) follows. On "
                   "one machine training is identical on any thread count",
    "harvest": "activations harvested here from the model: the model's float32 forward pass "
               "rounds differently on another CPU or BLAS",
}


def reproducibility_section(report: dict, trained_here: bool, harvested_here: bool) -> dict:
    """What of ``report`` is reproducible, from its search budget and how its target was made."""
    sb = report.get("search_budget") or {}
    effort = sb.get("kind") == "effort"
    capped = list(sb.get("cap_hit") or [])
    same_here = effort and not capped
    differ = [ACROSS_MACHINES["float_digits"]]
    if trained_here:
        differ.append(ACROSS_MACHINES["trained_sae"])
    if harvested_here:
        differ.append(ACROSS_MACHINES["harvest"])
    if not effort:
        differ.append("the brackets of the budgeted searches (RIP, spark, margins, ℓ1 probe, "
                      "Gaussian reference): --budget-s alone is a wall-clock budget, so how far "
                      "each search got depends on the machine and its load (--effort makes "
                      "them reproducible)")
    elif capped:
        differ.append("the parts stopped by the wall-clock cap (" + ", ".join(capped) + "): "
                      "they ran out of time, not of effort, so their brackets depend on the "
                      "machine's speed (raise --budget-s)")
    return {
        "budget": "effort" if effort else "seconds",
        "identical_on_this_machine": same_here,
        "time_fields": "created, every key counting seconds (seconds, names ending in _s or "
                       "_seconds) and every rate (names ending in _per_second)",
        "may_differ_across_machines": differ,
        "reading": ("two runs of this command on this machine give the same report.json apart "
                    "from its time fields, on any number of BLAS threads (the searches count "
                    "work, not time; the report's LAPACK runs on one thread and its big "
                    "products in fixed tiles)" if same_here else
                    "two runs of this command can differ in the parts named below"),
    }


def reproducibility_lines(section: dict) -> list[str]:
    """The section in two or three lines of text (terminal summary, HTML)."""
    head = ("reproducible: the same command gives the same report.json on this machine (time "
            "fields aside, any thread count)" if section["identical_on_this_machine"] else
            "not reproducible run to run: " + section["may_differ_across_machines"][-1])
    return [head, "can differ on another machine: " + "; ".join(
        s.split(":")[0] for s in section["may_differ_across_machines"])]


__all__ = ["ACROSS_MACHINES", "reproducibility_lines", "reproducibility_section"]
