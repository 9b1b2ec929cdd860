"""One dictionary under one metric: the corrected atoms D̃ and what the analyses precompute of it.

A :class:`Geometry` is what every analysis takes first (``coherence(geom, …)``,
``rip_bounds(geom, ks, …)``, ``spark_bounds(geom, …)``, ``classify_recovery(geom, codes, …)``,
``certificate_margins(geom, codes, …)``): the dictionary D (columns dᵢ), the metric S̃ with
whitening W = S̃^{1/2} (or none: raw Euclidean geometry) and, built lazily and kept, the corrected
atoms d̃ᵢ = W dᵢ/‖W dᵢ‖₂ (docs/design.md, "AIP-corrected dictionary";
:class:`~rip_atoms.corrected_atoms.CorrectedAtoms`), the certified bound on ‖D̃‖₂², the coherence
passes made over D̃ and derived views such as the recovery tests' float64 D̃. As scikit-learn's
``orthogonal_mp_gram`` takes the precomputed Gram as one argument, a caller that runs several
analyses of one dictionary (the report) builds one Geometry and passes it to each: the atoms are
whitened once and the Gram pass is made once.

The metric has one spelling per meaning, resolved here once (on first use):

* an :class:`~rip_atoms.metric.AIPMetric` — used as given (its H must be D's);
* ``"self"`` — S̃ = (D Dᵀ)⁻¹ of D itself (:meth:`AIPMetric.from_dictionary`);
* ``"raw"`` — Euclidean cosines (no whitening); ``None`` is accepted as its alias.

``"fit"`` (S̃ = Σ⁻¹ fitted on activations) is no geometry: the functions that have activations
(``faithfulness_r2``, ``compare_units``) fit the metric and build the Geometry from the
AIPMetric they get.

Every analysis still accepts a :class:`~rip_atoms.dictionary.Dictionary` or an H×N array with
``metric=`` as before (:meth:`Geometry.of` wraps it); given a Geometry, ``metric`` is left out, or
must name the geometry's own metric (:meth:`Geometry.check`: a :class:`ParameterError` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rip_atoms.corrected_atoms import CorrectedAtoms, resolve_metric
from rip_atoms.dictionary import Dictionary, as_dictionary
from rip_atoms.errors import EmptyDictionaryError, ParameterError, ParameterTypeError
from rip_atoms.metric import AIPMetric, metric_description


class _Unset:
    """The value of an analysis's ``metric`` argument when it is not given."""

    def __repr__(self) -> str:
        return "UNSET"


#: ``metric`` not given: a Geometry's own metric, or the analysis's default for a dictionary
UNSET: Any = _Unset()

_SPELLINGS = "an AIPMetric, 'self' or 'raw' (None is 'raw')"


def same_atoms(a: Dictionary, b: Dictionary) -> bool:
    """Are two dictionaries the same atoms (the same object, or equal H×N arrays)?"""
    return a is b or (a.atoms.shape == b.atoms.shape and np.array_equal(a.atoms, b.atoms))


def _check_spelling(metric: object) -> None:
    """Raise for anything that is not a metric spelling (ParameterError for a string,
    ParameterTypeError for another object), before any work."""
    if metric is None or isinstance(metric, AIPMetric):
        return
    if isinstance(metric, str):
        if metric not in ("raw", "self"):
            raise ParameterError(
                f"metric must be 'raw', 'self', None or an AIPMetric, not {metric!r}")
        return
    raise ParameterTypeError(
        f"metric must be 'raw', 'self', None or an AIPMetric, not a {type(metric).__name__}")


class Geometry:
    """The dictionary D under one metric S̃, with the corrected atoms d̃ᵢ = W dᵢ/‖W dᵢ‖₂ and what
    is computed from them kept for every analysis that takes this geometry (module docstring).

    Parameters
    ----------
    D : Dictionary or H×N array (columns are atoms).
    metric : an AIPMetric, ``"self"`` (S̃ = (D Dᵀ)⁻¹) or ``"raw"`` (None: ``"raw"``).
    shared_rows : build D̃ once in float64 (``rows64``) and take the float32 rows of the blocked
        passes from it (F = W; :class:`CorrectedAtoms` with ``rows=True, rows64=True``), for a
        caller that needs both (the report: the Gram pass, RIP and spark on float32 rows, the ℓ1
        certificates on float64 rows, one whitening). Otherwise the float32 rows are those of the
        Cholesky factor (F = U, half the work) and the float64 rows, when asked for, a second,
        separate float64 pass — what each analysis builds when called on its own.

    Attributes
    ----------
    dictionary : the :class:`Dictionary`.
    metric : the resolved :class:`AIPMetric`, or None for raw Euclidean geometry.

    Examples
    --------
    One whitening and one Gram pass for two analyses of the same atoms:

    >>> import numpy as np
    >>> from rip_atoms import Geometry, coherence, rip_bounds
    >>> geom = Geometry(np.random.default_rng(0).standard_normal((8, 12)), "raw")
    >>> c = coherence(geom, babel_p=2, top=256)
    >>> rip_bounds(geom, 2, budget_s=1).coherence is c
    True
    """

    def __init__(self, D: Dictionary | np.ndarray, metric: AIPMetric | str | None, *,
                 shared_rows: bool = False) -> None:
        self._setup(as_dictionary(D), metric, shared_rows)
        self._metric = resolve_metric(self.dictionary, metric)
        self._resolved = True

    def _setup(self, d: Dictionary, metric: AIPMetric | str | None, shared_rows: bool) -> None:
        self.dictionary = d
        self.shared_rows = bool(shared_rows)
        self._spelling = "raw" if metric is None else metric
        self._metric: AIPMetric | None = None
        self._resolved = False
        self._chunked: CorrectedAtoms | None = None  # from the blocked pass (float32 rows or none)
        self._float64: CorrectedAtoms | None = None  # from the float64 pass (rows64)
        self._spectral: float | None = None
        self._coherence: dict[tuple, Any] = {}
        self._derived: dict[str, Any] = {}

    @classmethod
    def of(cls, D: Geometry | Dictionary | np.ndarray, metric: AIPMetric | str | None = UNSET,
           *, default: AIPMetric | str | None = UNSET) -> Geometry:
        """The geometry an analysis works on: ``D`` itself when it is a Geometry (``metric``,
        when given, checked to be its own: :meth:`check`), else D under ``metric`` (``default``
        when not given; a ParameterError when neither is). The metric of a new geometry is
        resolved (and a bad spelling reported) on first use, after the analysis has validated
        its other arguments, as before geometries existed."""
        if isinstance(D, Geometry):
            if metric is not UNSET:
                D.check(metric=metric)
            return D
        if metric is UNSET:
            if default is UNSET:
                raise ParameterError(f"metric is required with a dictionary ({_SPELLINGS})")
            metric = default
        self = cls.__new__(cls)
        self._setup(as_dictionary(D), metric, False)
        return self

    # ------------------------------------------------------------------ what it is
    @property
    def metric(self) -> AIPMetric | None:
        """The metric S̃ (None: raw), resolved once from the spelling given."""
        if not self._resolved:
            self._metric = resolve_metric(self.dictionary, self._spelling)
            self._resolved = True
        return self._metric

    @property
    def dim(self) -> int:
        return self.dictionary.dim

    @property
    def n_atoms(self) -> int:
        return self.dictionary.n_atoms

    def metric_info(self) -> dict:
        """:func:`rip_atoms.metric.metric_description` of the metric."""
        return metric_description(self.metric)

    def _same_metric(self, metric: AIPMetric | str | None) -> bool:
        """Does ``metric`` (a spelling) name this geometry's metric? ``"raw"``/None: raw;
        ``"self"``: a dictionary-induced metric; an AIPMetric: the same object or an equal S̃."""
        _check_spelling(metric)
        own = self._spelling
        if metric is None or isinstance(metric, str) and metric == "raw":
            return (isinstance(own, str) and own == "raw") or self.metric is None
        if isinstance(metric, str):  # "self"
            if isinstance(own, str):
                return own == "self"
            m = self.metric
            return m is not None and m.kind == "dictionary"
        m = self.metric
        return m is not None and (m is metric or (m.S.shape == metric.S.shape
                                                  and np.array_equal(m.S, metric.S)))

    def is_of(self, D: Dictionary | np.ndarray | None = None,
              metric: AIPMetric | str | None = UNSET) -> bool:
        """Is this the geometry of ``D`` (same atoms: :func:`same_atoms`) under ``metric``
        (same meaning: see :meth:`check`)? Arguments left out are not compared."""
        if D is not None and not same_atoms(self.dictionary, as_dictionary(D)):
            return False
        return metric is UNSET or self._same_metric(metric)

    def check(self, D: Dictionary | np.ndarray | None = None,
              metric: AIPMetric | str | None = UNSET) -> None:
        """Raise :class:`ParameterError` unless this is the geometry of ``D`` under ``metric``
        (the one "same atoms, same metric" check: reusing the atoms of another geometry would
        silently change every number). ``metric`` matches when it names the same inner product:
        ``"raw"``/None a raw geometry, ``"self"`` one of (D Dᵀ)⁻¹, an AIPMetric the same object
        or an equal S̃."""
        d = self.dictionary
        if D is not None:
            other = as_dictionary(D)
            if not same_atoms(d, other):
                raise ParameterError(
                    f"the geometry is of {d.provenance.source} ({d.dim}×{d.n_atoms}), not of "
                    f"{other.provenance.source} ({other.dim}×{other.n_atoms})")
        if metric is not UNSET and not self._same_metric(metric):
            raise ParameterError(
                f"the geometry is under another metric ({self.metric_info()['kind']}) than the "
                "one asked for")

    # ------------------------------------------------------------------ the corrected atoms
    def _check_live(self, min_live: int) -> None:
        d = self.dictionary
        n = len(d.live_atoms)
        if n < min_live:
            dead = d.dead_summary(with_source=False)
            raise EmptyDictionaryError(
                f"{d.provenance.source}: needs at least {min_live} live atoms, found {n}"
                + (f" ({dead})" if dead else ""))

    def atoms(self, *, rows: bool = True, rows64: bool = False,
              min_live: int = 1) -> CorrectedAtoms:
        """D̃ = (W dᵢ/‖W dᵢ‖₂)ᵢ as :class:`CorrectedAtoms`, built on first request and kept:
        with ``rows`` its float32 rows (the blocked passes), with ``rows64`` its float64 rows
        (the ℓ1 certificates). Raises :class:`EmptyDictionaryError` with fewer than
        ``min_live`` live atoms. With ``shared_rows`` one instance serves every request;
        otherwise float32 rows come from the blocked pass, float64 rows from the float64 pass
        (the same instance for every later request of the same kind)."""
        self._check_live(min_live)
        if self.shared_rows:
            if self._float64 is None:
                self._float64 = CorrectedAtoms(self.dictionary, self.metric, rows=True,
                                               rows64=True, min_live=0)
                self._chunked = self._float64
            return self._float64
        if rows64:
            if self._float64 is None:
                self._float64 = CorrectedAtoms(self.dictionary, self.metric, rows=rows,
                                               rows64=True, min_live=0)
            elif rows and self._float64.rows is None:
                raise ParameterError("float32 and float64 rows of one whitening need a "
                                     "Geometry built with shared_rows=True")
            return self._float64
        if self._chunked is None or (rows and self._chunked.rows is None):
            self._chunked = CorrectedAtoms(self.dictionary, self.metric, rows=rows, min_live=0)
            self._spectral = None
        return self._chunked

    @property
    def float64_rows_built(self) -> bool:
        """Whether D̃'s float64 rows exist already (or, with ``shared_rows``, will be the one
        whitening): a caller then copies them instead of whitening again."""
        return self.shared_rows or self._float64 is not None

    def spectral_norm_sq_upper(self) -> float:
        """A certified upper bound on ‖D̃‖₂² = λmax(D̃ D̃ᵀ) over the live atoms
        (:meth:`CorrectedAtoms.spectral_norm_sq_upper` of the float32 rows), computed once."""
        if self._spectral is None:
            self._spectral = self.atoms(rows=True, min_live=1).spectral_norm_sq_upper()
        return self._spectral

    # ------------------------------------------------------------------ coherence passes
    def coherence_pass(self, key: tuple | None = None, *, babel_p: int = 1,
                       top: int = 0) -> Any:
        """A kept coherence pass over D̃ (a :class:`~rip_atoms.coherence.CoherenceResult`):
        the one made with exactly ``key`` (the arguments of :func:`~rip_atoms.coherence.
        coherence` that shape the result) when given, else the first kept pass with Babel
        μ₁(p) to at least ``babel_p`` and at least ``top`` top pairs
        (:meth:`CoherenceResult.covers`); None when there is none."""
        if key is not None:
            return self._coherence.get(key)
        if not self._coherence:
            return None
        atoms = self.atoms(rows=False, min_live=0)
        for res in self._coherence.values():
            if res.covers(atoms, babel_p=babel_p, top=top):
                return res
        return None

    def keep_coherence(self, result: Any, key: tuple = ("given",)) -> None:
        """Keep a coherence pass for the analyses of this geometry (:meth:`coherence_pass`).
        :class:`ParameterError` when it is not a pass over these atoms under this metric
        (dictionary shape, live atoms, metric description and the float64 cosine of its pair:
        :meth:`CoherenceResult.covers`)."""
        if not result.covers(self.atoms(rows=False, min_live=0)):
            raise ParameterError(
                "the coherence pass is not of this geometry (another dictionary or metric)")
        self._coherence[key] = result

    # ------------------------------------------------------------------ derived views
    def derived(self, name: str, build: Callable[[Geometry], Any]) -> Any:
        """A view computed from this geometry by ``build(self)`` on first request and kept
        under ``name`` (e.g. the recovery tests' D̃ in float64, with its float32 copy,
        duplicate pairs and ADMM projector: :func:`rip_atoms.recovery.problem.recovery_view`)."""
        if name not in self._derived:
            self._derived[name] = build(self)
        return self._derived[name]

    def __repr__(self) -> str:
        d = self.dictionary
        kind = self._spelling if isinstance(self._spelling, str) else "AIPMetric"
        return f"Geometry({d.provenance.source}, {d.dim}×{d.n_atoms}, metric={kind})"
