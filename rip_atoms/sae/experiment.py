"""The paper's experiment end to end: harvest a layer, fit the AIP metric, train the features
baseline (ReLU + L1 SAE) and the TSAE, and compare neurons / features / atoms.

Tokens are split by whole contexts (every k-th context held out, k = round(1/held_out)); the SAEs
train on the other contexts, the AIP metric S̃ = Σ⁻¹ (Σ = E[xxᵀ], uncentred) is fitted on the
training tokens, and :func:`rip_atoms.criteria.compare_units` evaluates every criterion (R² AIP and
Euclidean, q* readings, ℓ1-certified fraction, μ, L0, dead atoms) on the held-out tokens only,
under that one metric. The features row can instead be any SAE file (e.g. a Gemma Scope
``params.npz``); its d_in must match the activations.

A rerun into the same folder continues: the harvest from its shards, each SAE from its last
checkpoint. Ctrl-C at any stage raises :class:`~rip_atoms.errors.Interrupted` with one line
saying what is saved (e.g. "features SAE: step 1500 of 3000 saved in OUT/features; rerun the
same command to continue"), leaving no temporary file behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rip_atoms.criteria import TokenSplit, UnitComparison, UnitSet, compare_units
from rip_atoms.errors import Interrupted, ParameterError, ShapeMismatchError
from rip_atoms.metric import AIPMetric, fit_metric
from rip_atoms.sae.canonical import SparseAutoencoder
from rip_atoms.sae.formats import load_sae
from rip_atoms.sae.formats._io import write_json_atomic
from rip_atoms.sae.harvest import ActivationStore, HarvestConfig, harvest
from rip_atoms.sae.sae_errors import HarvestInterrupted, TrainingInterrupted
from rip_atoms.sae.train import TrainConfig, train_sae


@dataclass(frozen=True)
class AtomsExperiment:
    """Settings of one run (defaults: the full SmolLM2 run of ``benchmarks/RESULTS.md``)."""

    model: str = "smollm2"
    layer: int = 15
    tokens: int = 50_000
    width: int | None = None  # default 4·H (the paper's over-parameterisation)
    target_l0: float = 32.0
    steps: int = 3000
    batch_size: int = 1024
    lr: float = 1e-3
    whiten: bool = False
    held_out: float = 0.2
    context_size: int = 256
    text: str | None = None
    acts: str | None = None
    features: str | None = None
    l1_tokens: int = 256
    seed: int = 0
    threads: int = 0
    model_dtype: str = "float32"
    device: str = "cpu"
    # training checkpoints (every this many steps; 0: none): a rerun into the same folder
    # continues each SAE from its last checkpoint, as the harvest continues from its shards
    checkpoint_every: int = 500
    # with ``acts``: accept an interrupted harvest folder (manifest ``complete: false``)
    allow_incomplete: bool = False

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class AtomsResult:
    """The table and everything needed to reproduce and read it."""

    table: UnitComparison
    experiment: AtomsExperiment
    activations: dict
    n_train: int
    n_eval: int
    training: dict = field(default_factory=dict)
    saved: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    # what a report needs beyond the table (not serialised): the metric, the unit sets and
    # the held-out activations they were evaluated on
    metric: AIPMetric | None = field(default=None, repr=False, compare=False)
    units: dict[str, UnitSet] = field(default_factory=dict, repr=False, compare=False)
    eval_activations: np.ndarray | None = field(default=None, repr=False, compare=False)
    saes: dict[str, SparseAutoencoder] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "experiment": self.experiment.to_dict(),
            "activations": self.activations,
            "n_train_tokens": self.n_train,
            "n_eval_tokens": self.n_eval,
            "table": self.table.to_dict(detail=False),
            "details": self.table.to_dict(detail=True)["rows"],
            "training": self.training,
            "saved": self.saved,
            "seconds": self.seconds,
        }

    def render(self) -> str:
        return self.table.render()


def run_atoms_experiment(exp: AtomsExperiment, out_dir: str | Path, *, progress: bool = True,
                         log=None) -> AtomsResult:
    """Run the experiment, saving activations, SAEs (SAELens layout) and ``table.json`` under
    ``out_dir``. A rerun into the same ``out_dir`` continues where the last one stopped (the
    harvest from its shards, each SAE from its last checkpoint — an interrupted one is always
    checkpointed, even with ``checkpoint_every=0``). Ctrl-C raises
    :class:`~rip_atoms.errors.Interrupted` whose note says what is saved."""
    out = Path(out_dir)
    stages: dict = {"saved": [], "training": None}  # for the note of an interrupt
    try:
        return _run_atoms_experiment(exp, out, progress, log, stages)
    except HarvestInterrupted as exc:
        raise Interrupted(f"harvest: {exc.tokens} tokens saved in {exc.out_dir}; rerun the same "
                          "command to resume" if exc.tokens else
                          f"harvest: no tokens saved yet in {exc.out_dir}") from None
    except TrainingInterrupted as exc:
        which = stages["training"] or "training"
        if exc.step is not None:
            note = (f"{which}: step {exc.step} of {exc.steps} saved in "
                    f"{Path(exc.checkpoint).parent}; rerun the same command to continue")
        else:
            note = f"{which}: no training step saved yet; a rerun starts it again"
        raise Interrupted(note) from None
    except Interrupted:
        raise
    except KeyboardInterrupt:
        done = stages["saved"]
        if not done:
            raise Interrupted(f"nothing saved yet in {out}") from None
        what = done[0] if len(done) == 1 else f"{', '.join(done[:-1])} and {done[-1]}"
        raise Interrupted(f"{what} saved in {out}; rerun the same command to continue"
                          ) from None


def _run_atoms_experiment(exp: AtomsExperiment, out: Path, progress: bool, log,
                          stages: dict) -> AtomsResult:
    say = log or (lambda _m: None)
    if exp.width is not None and exp.width < 1:
        raise ParameterError(f"width must be ≥ 1, got {exp.width}")
    from rip_atoms.kernels.torch_gram import resolve_device

    resolve_device(exp.device)  # a bad device fails before anything is loaded or trained
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out}: exists and is not a folder (experiment output)")
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict = {}
    features = load_sae(exp.features) if exp.features is not None else None
    store, layer = _activation_store(exp, out, features, progress, say, stages, seconds)
    if features is not None and features.d_in != store.d_model:
        raise ShapeMismatchError(
            f"{exp.features}: the SAE has d_in = {features.d_in} but the activations of "
            f"{store.path} have width {store.d_model}"
        )
    t = time.perf_counter()
    X = store.array(layer)
    mask = store.held_out_mask(X.shape[0], exp.held_out)
    X_train, X_eval = X[~mask], X[mask]
    if X_train.shape[0] < 2 or X_eval.shape[0] < 2:
        raise ParameterError(f"{store.path}: too few tokens ({X.shape[0]}) to hold out "
                             f"{exp.held_out:g} of them")
    H = X.shape[1]
    width = exp.width if exp.width is not None else 4 * H
    metric = fit_metric(X_train, source=f"{store.path} (training tokens)")
    seconds["metric"] = time.perf_counter() - t
    say(f"AIP metric fitted on {X_train.shape[0]} training tokens (condition number "
        f"{metric.condition_number:.3g}); {X_eval.shape[0]} held-out tokens")
    training: dict = {}
    saved: dict = {}
    saes, feat_name = _train_saes(exp, X_train, store, layer, width, features, out, progress,
                                  say, stages, training, saved, seconds)
    t = time.perf_counter()
    Xall = np.concatenate([X_train, X_eval], axis=0)
    n_tr = X_train.shape[0]
    # rows are reordered (training contexts first), but the held-out tokens are whole contexts
    # of the harvest (every k-th), and the split says so
    split = TokenSplit(Xall.shape[0], np.arange(n_tr), np.arange(n_tr, Xall.shape[0]),
                       X_eval.shape[0] / Xall.shape[0], "contexts", None,
                       store.tokens_per_context)
    units = {feat_name: UnitSet.from_sae(feat_name, saes["features"], "features"),
             "atoms": UnitSet.from_sae("atoms", saes["atoms"], "atoms")}
    table = compare_units(Xall, units, metric=metric, split=split, l1_max_tokens=exp.l1_tokens,
                          seed=exp.seed, log=say)
    seconds["compare_units"] = time.perf_counter() - t
    result = AtomsResult(table=table, experiment=exp, activations=store.to_dict(),
                         n_train=n_tr, n_eval=int(X_eval.shape[0]), training=training,
                         saved=saved, seconds=seconds, metric=metric, units=units,
                         eval_activations=X_eval, saes=saes)
    write_json_atomic(out / "table.json", result.to_dict())
    saved["table"] = str(out / "table.json")
    return result


def _activation_store(exp: AtomsExperiment, out: Path, features: SparseAutoencoder | None,
                      progress: bool, say, stages: dict, seconds: dict
                      ) -> tuple[ActivationStore, int | None]:
    """(the activations, the layer to read): harvested into ``out/activations`` from
    ``exp.model`` (its load and harvest timed in ``seconds``), or ``exp.acts`` as saved."""
    t = time.perf_counter()
    if exp.acts is None:
        from rip_atoms.sae.model import KNOWN_MODELS, load_model

        known = KNOWN_MODELS.get(exp.model, {}).get("d_model")
        if features is not None and known is not None and features.d_in != known:
            raise ShapeMismatchError(
                f"{exp.features}: the SAE has d_in = {features.d_in} but {exp.model} has "
                f"d_model = {known}"
            )

        say(f"loading {exp.model}")
        import torch

        lm = load_model(exp.model, dtype=getattr(torch, exp.model_dtype), device=exp.device,
                        progress=progress)
        seconds["load_model"] = time.perf_counter() - t
        if features is not None and features.d_in != lm.d_model:
            raise ShapeMismatchError(
                f"{exp.features}: the SAE has d_in = {features.d_in} but {exp.model} has "
                f"d_model = {lm.d_model}"
            )
        t = time.perf_counter()
        hv = harvest(lm, [exp.layer], out / "activations",
                     HarvestConfig(n_tokens=exp.tokens, context_size=exp.context_size),
                     texts=exp.text, progress=progress)
        seconds["harvest"] = time.perf_counter() - t
        say(f"harvested {hv.n_tokens} tokens of layer {exp.layer} at "
            f"{hv.tokens_per_second:.0f} tokens/s")
        store = ActivationStore(out / "activations")
        stages["saved"].append("the activations")
        del lm
        return store, exp.layer
    store = ActivationStore(exp.acts).require_complete(exp.allow_incomplete)
    layer = exp.layer if exp.layer in store.layers else None
    if layer is None and store.layers != (None,):
        if len(store.layers) != 1:
            raise ParameterError(
                f"{exp.acts}: holds layers {list(store.layers)}; choose one with --layer"
            )
        layer = store.layers[0]
    return store, layer


def _train_saes(exp: AtomsExperiment, X_train: np.ndarray, store: ActivationStore,
                layer: int | None, width: int, features: SparseAutoencoder | None, out: Path,
                progress: bool, say, stages: dict, training: dict, saved: dict,
                seconds: dict) -> tuple[dict[str, SparseAutoencoder], str]:
    """Train the features baseline (unless ``features`` is given) and the TSAE into
    ``out/features`` and ``out/atoms`` (each resumed from its checkpoint); their summaries go
    to ``training``, their folders to ``saved``. Returns ({"features": …, "atoms": …}, the
    features row's name)."""
    source = f"{store.path} (training tokens)"
    base = TrainConfig(width=width, target_l0=exp.target_l0, steps=exp.steps,
                       batch_size=exp.batch_size, lr=exp.lr, seed=exp.seed,
                       threads=exp.threads, checkpoint_every=exp.checkpoint_every,
                       device=exp.device)
    meta = {"model_name": store.manifest.get("model", {}).get("name"),
            "hook_name": f"blocks.{layer}.hook_resid_post" if layer is not None else None,
            "hook_layer": layer, "context_size": store.manifest.get("context_size"),
            "prepend_bos": store.manifest.get("prepend_bos"),
            "dataset_path": store.manifest.get("text")}
    if features is not None:
        feat_name = f"features ({features.format})"
    else:
        t = time.perf_counter()
        say(f"training the features baseline (ReLU + L1, N = {width}, target L0 "
            f"{exp.target_l0:g})")
        cfg = replace(base, architecture="standard")
        stages["training"] = "features SAE"
        res = train_sae(X_train, cfg, out_dir=out / "features", progress=progress,
                        metadata=meta, resume=True, overwrite=True, source=source)
        stages["saved"].append("the features SAE")
        features = res.sae
        training["features"] = res.to_dict()
        training["features"].pop("history", None)
        saved["features"] = str(out / "features")
        seconds["train_features"] = time.perf_counter() - t
        feat_name = "features"
    t = time.perf_counter()
    say(f"training the TSAE (JumpReLU, N = {width}, target L0 {exp.target_l0:g}"
        f"{', AIP-whitened' if exp.whiten else ''})")
    stages["training"] = "atoms SAE"
    res = train_sae(X_train, replace(base, architecture="jumprelu", whiten=exp.whiten),
                    out_dir=out / "atoms", progress=progress, metadata=meta,
                    resume=True, overwrite=True, source=source)
    stages["saved"].append("the atoms SAE")
    training["atoms"] = res.to_dict()
    training["atoms"].pop("history", None)
    saved["atoms"] = str(out / "atoms")
    seconds["train_atoms"] = time.perf_counter() - t
    return {"features": features, "atoms": res.sae}, feat_name
