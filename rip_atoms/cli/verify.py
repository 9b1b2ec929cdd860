"""``rip-atoms verify [TARGET]``: the main job — one report on whether a dictionary's units are
atoms, as ``report.json`` + a self-contained ``report.html`` (see :mod:`rip_atoms.report`).

TARGET is anything the library loads: a ``.npy``/``.safetensors`` matrix, ``neurons:H``, or an
SAE (SAELens / sparsify folder, Gemma Scope ``params.npz``, dictionary_learning ``ae.pt``; the
torch extra). With ``--acts`` (an n×H ``.npy`` or a ``rip-atoms harvest`` folder) the AIP metric
is fitted on the first 80 % of the tokens and everything data-dependent (representation shift,
R², q*, ℓ1-certified codes, the TSAE window) is evaluated on the last 20 %; without, the report
covers the dictionary-only properties under the self metric (D Dᵀ)⁻¹ and says what it could not
compute.

With no TARGET it runs the embedded default: the SmolLM2-135M experiment end to end (harvest a
layer, fit the AIP metric, train the features baseline and the TSAE, compare neurons / features
/ atoms) and verifies the TSAE's atoms; its held-out tokens are every 5th context of 255 tokens
(whole contexts; the metric and the SAEs are fitted on the others), not the last 20 %.
``--quick`` runs a synthetic planted-atoms version instead (no torch needed, under a minute).
``--cards I,J,…`` adds those atoms to the atom cards (which need token provenance: the default
run or a harvest folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rip_atoms.cli.common import (
    UsageError,
    emit_json,
    int_list,
    load_dictionary_spec,
    load_sae_spec,
    log,
    quiet_transformers,
    require_adapter,
    set_threads,
    show_progress,
    torch_dtype,
)
from rip_atoms.criteria import UnitSet, token_split, tsae_encoder
from rip_atoms.dictionary import is_sae_spec
from rip_atoms.errors import FileFormatError, Interrupted
from rip_atoms.kernels.threads import with_fixed_thread_sums

#: the --quick default: planted atoms seen through an anisotropic map, with a common offset
QUICK = {"dim": 128, "n_atoms": 512, "K": 4, "n_samples": 10000, "offset": 2.0}
#: the SmolLM2 default, sized to finish in well under 15 minutes on 2 CPU cores
DEFAULT_LAYER = 15
DEFAULT_TOKENS = 40_000
DEFAULT_STEPS = 2500
HELD_OUT = 0.2


@dataclass(frozen=True)
class VerifyOptions:
    """The ``verify`` arguments, checked (:meth:`from_args`): what the run reads instead of the
    argparse namespace, which is never written to. A ``--model`` harvest gives a run new ``acts``
    and ``layer`` through :func:`dataclasses.replace`, not by assignment."""

    target: str | None = None
    acts: str | None = None
    allow_incomplete: bool = False
    layer: int | None = None
    model: str | None = None
    text: tuple[str, ...] | None = None
    dtype: str = "float32"
    device: str = "cpu"
    out: str = "rip-atoms-report"
    effort: int | None = None
    budget_s: float | None = None
    quick: bool = False
    tokens: int = DEFAULT_TOKENS
    steps: int = DEFAULT_STEPS
    threads: int = 0
    tensor: str | None = None
    rows_are_atoms: bool = False
    no_html: bool = False
    cards: tuple[int, ...] | None = None
    seed: int = 0
    scheduler: str | None = None
    workers: int | None = None
    json: bool = False
    quiet: bool = False
    argv: tuple[str, ...] = ("verify",)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> VerifyOptions:
        """The options of a parsed ``verify`` command line; bad combinations and numbers raise
        a one-line :class:`UsageError` naming the option (before any work)."""
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                  if hasattr(args, f.name)}
        for name in ("text", "cards", "argv"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        opts = cls(**values)
        if opts.target is not None and opts.quick:
            raise UsageError("--quick runs the built-in synthetic default; drop TARGET or "
                             "--quick")
        _check_numbers(opts)
        return opts

    @property
    def card_atoms(self) -> list[int] | None:
        """--cards as the list :class:`~rip_atoms.report.VerifyTarget` takes (None: not given)."""
        return None if self.cards is None else list(self.cards)


def _n_fit(n: int) -> int:
    """How many of n tokens fit the metric: the held-out ones are the last ``HELD_OUT`` of them
    (:func:`rip_atoms.criteria.token_split`, tail, the fitting share rounded to nearest)."""
    return len(token_split(n, HELD_OUT, mode="tail", rounding="nearest").fit)


def _quick_target(seed: int):
    from rip_atoms.metric import fit_metric
    from rip_atoms.report import VerifyTarget
    from rip_atoms.synthetic import planted_atoms

    p = planted_atoms(**QUICK, mixing="random", seed=seed)
    X = np.asarray(p.activations)
    n_fit = _n_fit(X.shape[0])
    metric = fit_metric(X[:n_fit], source="planted activations (first 80 %)")
    X_eval = X[n_fit:]
    codes_eval = p.codes[n_fit:]
    b = np.asarray(p.offset_vector, dtype=np.float64)  # already in the observed space
    # the identifiable TSAE encoder of the theorem over the planted atoms, with τ = 0.8 × the
    # smallest planted magnitude in AIP-normalised units (δ̃ⱼ = δⱼ‖dⱼ‖_S); the atom norms
    # convert it to the units of the codes
    from rip_atoms.corrected_atoms import CorrectedAtoms

    norms = CorrectedAtoms(p.dictionary, metric, rows=False).norms
    tau = 0.8 * p.delta_min * float(norms.min())
    enc = tsae_encoder(p.dictionary, metric, tau)
    unit = UnitSet.from_encoder("TSAE encoder", p.dictionary, lambda Z: enc(Z - b),
                                decoder_bias=b, kind="atoms",
                                coder=f"tsae_encoder over the planted atoms, τ = {tau:.3g}")
    planted = UnitSet.from_codes("planted codes", p.dictionary, codes_eval, decoder_bias=b,
                                 kind="atoms")
    what = (f"--quick: planted atoms H={QUICK['dim']}, N={QUICK['n_atoms']}, K={QUICK['K']}, "
            f"{QUICK['n_samples']} activations with a common offset, seen through an "
            f"anisotropic map (seed {seed})")
    return VerifyTarget(
        dictionary=p.dictionary, description=what, kind="planted", activations=X_eval,
        activations_source="planted activations (last 20 %)", metric=metric, unit=unit,
        extra_units={"planted codes": planted},
        provenance_why="the --quick activations are synthetic (planted codes): there are no "
                       "tokens to show; the default run and harvest folders have them",
        thresholds=np.full(p.dictionary.n_atoms, tau)
        / norms, nonneg=True, context={"planted": QUICK, "tau_aip_units": tau, "seed": seed})


def _default_target(opts: VerifyOptions, out: Path):
    try:
        import transformers  # noqa: F401

        import rip_atoms.sae  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the default run (SmolLM2-135M end to end) needs the llm extra ({exc}): pip "
            "install 'rip-atoms[llm]'; 'rip-atoms verify --quick' runs the synthetic version "
            "without it") from exc
    quiet_transformers()
    set_threads(opts)
    from rip_atoms.report import VerifyTarget
    from rip_atoms.sae.experiment import AtomsExperiment, run_atoms_experiment

    exp = AtomsExperiment(layer=DEFAULT_LAYER, tokens=opts.tokens, steps=opts.steps,
                          seed=opts.seed, threads=opts.threads)
    from rip_atoms.sae.model import KNOWN_MODELS

    h = KNOWN_MODELS.get(exp.model, {}).get("d_model")
    _check_cards(opts.card_atoms, exp.width or 4 * h if h else None)  # before minutes of work
    log(opts, f"default: SmolLM2-135M layer {exp.layer}, {exp.tokens} tokens, TSAE and "
              f"features N = 4·576, {exp.steps} steps each (artifacts in {out / 'experiment'})")
    res = run_atoms_experiment(exp, out / "experiment", progress=show_progress(opts),
                               log=lambda m: log(opts, m))
    atoms = res.saes["atoms"].folded()
    unit = res.units["atoms"]
    what = (f"SmolLM2-135M layer {exp.layer}: TSAE atoms trained here on {res.n_train} tokens "
            f"(evaluated on {res.n_eval} held-out tokens)")
    prov, why, split = _experiment_provenance(res, exp)
    return VerifyTarget(
        dictionary=unit.decoder, description=what, kind="experiment",
        activations=res.eval_activations, activations_source="held-out SmolLM2 activations",
        metric=res.metric, unit=unit, thresholds=atoms.threshold.double().numpy(),
        table=res.table, nonneg=True,
        context={"experiment": res.to_dict()["experiment"], "training": res.training,
                 "seconds": res.seconds, "saved": res.saved},
        provenance=prov, provenance_why=why, card_atoms=opts.card_atoms,
        proxy_units={k: v for k, v in res.units.items() if k != "atoms"},
        split_description=split)


def _experiment_provenance(res, exp):
    """(provenance of the held-out tokens or None, why not, the held-out split in words) of
    the default run: its harvest holds out every k-th context (k = round(1/held_out))."""
    from rip_atoms.sae.harvest import ActivationStore

    store = ActivationStore(res.activations["path"])
    k = max(2, round(1 / exp.held_out))
    per = store.tokens_per_context
    split = (f"{res.n_eval} held-out tokens: every {k}th context of {per} tokens (contexts "
             f"{k - 1}, {2 * k - 1}, {3 * k - 1}, … of the harvest, whole contexts, so no "
             f"held-out token shares a context with a training token); the AIP metric and both "
             f"SAEs were fitted on the other {res.n_train} tokens")
    prov = store.provenance()
    if prov is None:
        return None, store.provenance_missing(), split
    mask = store.held_out_mask(len(prov), exp.held_out)
    sub = prov.subset(mask)
    if len(sub) != res.n_eval:
        return None, (f"{store.path}: {len(sub)} held-out tokens of provenance for "
                      f"{res.n_eval} evaluated activations"), split
    return sub, None, split


def _activations(opts: VerifyOptions, H: int):
    """(fit, eval, provenance, why not) from --acts: the first 80 % of the activations fit the
    metric, the rest are evaluated; the token provenance of a harvest folder (None for a plain
    matrix, or with the reason a folder has none)."""
    from rip_atoms.errors import ShapeMismatchError

    prov, why = None, None
    if Path(opts.acts).is_dir():
        try:
            from rip_atoms.sae.harvest import ActivationStore
        except ImportError as exc:
            raise FileFormatError(f"{opts.acts}: a harvest folder is read by the torch adapter: "
                                  "pip install 'rip-atoms[torch]'") from exc
        store = ActivationStore(opts.acts).require_complete(opts.allow_incomplete)
        X = store.array(opts.layer)
        prov = store.provenance()
        why = store.provenance_missing() if prov is None else None
    else:
        from rip_atoms.matrix_files import load_matrix

        X = load_matrix(opts.acts, mmap=True)
    if X.ndim != 2 or X.shape[1] != H:
        raise ShapeMismatchError(f"{opts.acts}: activations of shape {tuple(X.shape)} but the "
                                 f"target has H = {H}")
    if not np.isfinite(np.asarray(X[: min(len(X), 100_000)])).all():
        from rip_atoms.errors import NonFiniteError

        raise NonFiniteError(f"{opts.acts}: the activations hold non-finite values")
    n = X.shape[0]
    if n < 10:
        raise UsageError(f"{opts.acts}: only {n} activations; need at least 10")
    n_fit = _n_fit(n)
    return np.asarray(X[:n_fit]), np.asarray(X[n_fit:]), prov, why


def _file_target(opts: VerifyOptions):
    from rip_atoms.metric import fit_metric
    from rip_atoms.report import VerifyTarget

    spec = opts.target
    sae = None
    if is_sae_spec(spec):
        sae = load_sae_spec(spec)
        d = sae.dictionary()
    else:
        d = load_dictionary_spec(spec, tensor=opts.tensor, rows_are_atoms=opts.rows_are_atoms)
    _check_cards(opts.card_atoms, d.n_atoms)
    t = VerifyTarget(dictionary=d, description=str(spec), kind="sae" if sae else "dictionary")
    if sae is not None:
        t.context["sae"] = sae.to_dict()
    if opts.model:
        if opts.acts:
            raise UsageError("give --acts or --model, not both")
        opts = _harvest_for(opts, sae, d.dim)
    if opts.acts:
        X_fit, X_eval, prov, why = _activations(opts, d.dim)
        t.metric = fit_metric(X_fit, source=f"{opts.acts} (first {100 - HELD_OUT * 100:.0f} %)")
        t.activations = X_eval
        t.activations_source = f"{opts.acts} (last {HELD_OUT * 100:.0f} %)"
        t.provenance = None if prov is None else prov.subset(
            np.arange(len(prov) - X_eval.shape[0], len(prov)))
        t.provenance_why = why or (
            None if prov is not None else f"{opts.acts}: a plain activation matrix carries no "
            "token provenance (harvest with `rip-atoms harvest` to keep it)")
        t.card_atoms = opts.card_atoms
        if sae is not None:
            t.unit = UnitSet.from_sae(Path(spec).name or str(spec), sae, "atoms"
                                      if sae.architecture == "jumprelu" else "features")
            t.nonneg = True
            if sae.threshold is not None:
                t.thresholds = sae.folded().threshold.double().numpy()
    elif sae is not None and sae.threshold is not None:
        t.thresholds = sae.folded().threshold.double().numpy()
    return t


def _harvest_for(opts: VerifyOptions, sae, H: int) -> VerifyOptions:
    """--model: harvest --tokens activations of --layer (default: the SAE's hook layer) into
    OUT/activations (resumed if it is there); the options with that folder as ``acts`` and the
    harvested ``layer``."""
    require_adapter()
    quiet_transformers()
    set_threads(opts)
    from rip_atoms.errors import ShapeMismatchError
    from rip_atoms.sae.harvest import HarvestConfig, harvest
    from rip_atoms.sae.model import load_model

    layer = opts.layer
    if layer is None and sae is not None:
        import re

        layer = sae.metadata.get("hook_layer")
        m = re.match(r"blocks\.(\d+)\.", sae.hook_name or "")
        if layer is None and m:
            layer = int(m.group(1))
    if layer is None:
        raise UsageError("--model needs --layer L (the SAE does not name its hook layer)")
    log(opts, f"loading {opts.model} to harvest {opts.tokens} tokens of layer {layer}")
    lm = load_model(opts.model, dtype=torch_dtype(opts.dtype), device=opts.device,
                    progress=show_progress(opts))
    if lm.d_model != H:
        raise ShapeMismatchError(f"{opts.target}: H = {H} but {opts.model} has d_model = "
                                 f"{lm.d_model}")
    folder = Path(opts.out) / "activations"
    harvest(lm, [int(layer)], folder, HarvestConfig(n_tokens=opts.tokens),
            texts=_texts(opts.text), progress=show_progress(opts))
    return dataclasses.replace(opts, acts=str(folder), layer=int(layer))


def _texts(text: tuple[str, ...] | None) -> list[str] | None:
    """--text as the harvest takes it (a list of text sources, or None for the default)."""
    return None if text is None else list(text)


def _check_numbers(opts: VerifyOptions) -> None:
    """Budgets and counts must be positive (one line naming the option otherwise)."""
    if opts.budget_s is not None and not (math.isfinite(opts.budget_s) and opts.budget_s > 0):
        raise UsageError(f"--budget-s must be a positive number of seconds, got {opts.budget_s}")
    if opts.effort is not None and opts.effort < 1:
        raise UsageError(f"--effort must be ≥ 1 (units of search work), got {opts.effort}")
    if opts.workers is not None and opts.workers < 1:
        raise UsageError(f"--workers must be ≥ 1, got {opts.workers}")
    if opts.scheduler is not None and opts.workers is not None:
        raise UsageError("give --scheduler (an existing cluster) or --workers (a local one), "
                         "not both")
    for opt, value, least in (("--tokens", opts.tokens, 1), ("--steps", opts.steps, 1),
                              ("--threads", opts.threads, 0), ("--seed", opts.seed, 0)):
        if value < least:
            raise UsageError(f"{opt} must be ≥ {least}, got {value}")


def _budget(opts: VerifyOptions) -> dict:
    """The report's budget from --effort and --budget-s
    (:func:`rip_atoms.report.budget.verify_budget`: the defaults are defined there)."""
    from rip_atoms.report.budget import verify_budget

    return verify_budget(opts.effort, opts.budget_s, quick=opts.quick)


def card_atoms(text: str) -> list[int]:
    """The argparse ``type`` of --cards I,J,…: atom indices (≥ 0; the upper end is checked
    against the target's N once it is loaded). A bad value is an
    :class:`argparse.ArgumentTypeError`, which the parser prints as one line naming --cards."""
    try:
        units = int_list(text, "--cards")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--cards: ")) from None
    if min(units) < 0:
        raise argparse.ArgumentTypeError(f"atom indices are ≥ 0, got {min(units)}")
    return units


def _check_cards(cards: list[int] | None, n_atoms: int | None) -> None:
    if cards and n_atoms is not None and max(cards) >= n_atoms:
        raise UsageError(f"--cards: atom {max(cards)} out of range (the target has N = "
                         f"{n_atoms} atoms)")


def _cluster(opts: VerifyOptions):
    """The Dask client of --scheduler / --workers (:func:`rip_atoms.cluster.dask_client`), or
    a null context (None) when neither is given."""
    import contextlib

    if opts.scheduler is None and opts.workers is None:
        return contextlib.nullcontext(None)
    from rip_atoms.cluster import dask_client

    return dask_client(scheduler=opts.scheduler, workers=opts.workers, quiet=opts.quiet,
                       log=lambda m: log(opts, m))


@with_fixed_thread_sums  # the target's metric and codes too, not only the report
def run(parsed: argparse.Namespace) -> int:
    from rip_atoms.report import build_report, render_summary, write_report
    from rip_atoms.report.files import prepare_report_folder

    t0 = time.perf_counter()
    opts = VerifyOptions.from_args(parsed)
    out = Path(opts.out)
    if opts.model is not None and importlib.util.find_spec("torch") is not None:
        from rip_atoms.kernels.torch_gram import resolve_device

        resolve_device(opts.device)  # a bad --device fails now, not after minutes of work
    # before any long work: the report folder must be writable (and loses a killed run's
    # temporary files); a folder made for the check is removed again until there is a report
    prepare_report_folder(out, keep=False)
    try:
        started = time.perf_counter()  # --budget-s counts loading the target and its metric
        if opts.target is not None:
            target = _file_target(opts)
        elif opts.quick:
            target = _quick_target(opts.seed)
        else:
            target = _default_target(opts, out)
            started = None  # harvesting and training are not the report's time
        budget = _budget(opts)
        with _cluster(opts) as client:
            report = build_report(target, **budget, seed=opts.seed,
                                  progress=show_progress(opts), log=lambda m: log(opts, m),
                                  client=client, started=started)
        import shlex

        report["command"] = "rip-atoms " + shlex.join(opts.argv)
        report["seconds"]["wall"] = time.perf_counter() - t0
        paths = write_report(report, out, html=not opts.no_html)
    except Interrupted:
        raise  # a harvest or training step says what it saved
    except KeyboardInterrupt:
        # write_report removes its temporary files itself; the previous report is untouched
        raise Interrupted(f"no report written to {out}") from None
    if opts.json:
        emit_json(report)
    else:
        print(render_summary(report, paths))
        sys.stdout.flush()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="the main job: one report (JSON + HTML) on whether the units are atoms",
        description="Verify a dictionary or SAE and write report.json and report.html. With no "
                    "TARGET: the SmolLM2-135M experiment end to end (needs the llm extra); "
                    "--quick: a synthetic planted-atoms version.")
    p.add_argument("target", nargs="?", metavar="TARGET",
                   help="a .npy/.safetensors matrix, neurons:H, or an SAE (SAELens/sparsify "
                        "folder, Gemma Scope params.npz, ae.pt); default: the SmolLM2 run")
    p.add_argument("--acts", help="activations: an n×H .npy or a rip-atoms harvest folder (the "
                                  "metric is fitted on the first 80 %%, the rest is evaluated)")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="use an interrupted harvest folder (manifest complete: false) as --acts")
    p.add_argument("--layer", type=int,
                   help="layer of a multi-layer harvest folder, or to harvest with --model "
                        "(default: the SAE's hook layer)")
    p.add_argument("--model", help="harvest the activations from this causal LM instead of "
                                   "--acts: smollm2, a HF folder, a .gguf or a hub name (llm "
                                   "extra); --tokens of them, into OUT/activations")
    p.add_argument("--text", action="append",
                   help="with --model: text to run (see rip-atoms harvest; default: the "
                        "stdlib's pydoc_data.topics)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="with --model: model weights dtype")
    p.add_argument("--device", default="cpu", help="with --model: model device, e.g. cuda")
    p.add_argument("--out", default="rip-atoms-report",
                   help="output folder for report.json and report.html (default "
                        "./rip-atoms-report)")
    p.add_argument("--effort", type=int, default=None, metavar="N",
                   help="units of search work for the report's budgeted parts (RIP witnesses, "
                        "spark, the margins, the ℓ1 probe, the Gaussian reference; one unit ≈ "
                        "50 ms of search): no clock, so the same command gives the same report "
                        "on any machine (the default: 2400, 240 with --quick)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="with --effort (or by default): a wall-clock cap on the report (default "
                        "900 s, 120 with --quick), whose use the report records; alone: a time "
                        "budget instead, the report's seconds from loading the target (its exact "
                        "parts first, the searches share what is left; results then depend on "
                        "the machine)")
    p.add_argument("--quick", action="store_true",
                   help="synthetic planted-atoms default (no torch needed, < 1 min)")
    p.add_argument("--tokens", type=int, default=DEFAULT_TOKENS,
                   help=f"tokens to harvest (default run, or --model; default "
                        f"{DEFAULT_TOKENS})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"default run: training steps per SAE (default {DEFAULT_STEPS})")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--tensor", help="tensor name inside a .safetensors file")
    p.add_argument("--rows-are-atoms", action="store_true", help="the matrix is N×H")
    p.add_argument("--no-html", action="store_true", help="write report.json only")
    p.add_argument("--cards", type=card_atoms, default=None, metavar="I,J,…",
                   help="atoms to show as cards beside the automatic choice (needs activations "
                        "with token provenance: a harvest folder or the default run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run the Gram tiles of the coherence passes and the ℓ1 token chunks on "
                         "this Dask scheduler "
                        "(tcp://HOST:PORT; the distributed extra); results are identical")
    p.add_argument("--workers", type=int, metavar="N",
                   help="run them on a local Dask cluster of N worker processes")
    p.add_argument("--json", action="store_true",
                   help="print the report as one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress or logs on stderr")
    p.set_defaults(func=run)
