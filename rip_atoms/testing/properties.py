"""Ready-made property checks for other people's sparse-coding code: each states a theorem,
checks its hypothesis on the inputs (raising :class:`PreconditionError` when it does not hold, so
a failure is never blamed on the code under test for inputs the theorem says nothing about) and
then asserts the conclusion on the code under test, with a message that shows the case.

* :func:`assert_recovers` — a solver recovers K-sparse codes (OMP, BP, Lasso paths, …) under a
  named condition: coherence μ < 1/(2K − 1), Tropp's ERC, or this library's exact ℓ1
  certificate.
* :func:`assert_support_identified` — an encoder (a TSAE, a JumpReLU SAE built from a planted
  frame) returns every code's support inside the TSAE window.
* :func:`assert_l1_minimal` — a basis-pursuit solver's x is feasible and ℓ1-minimal, against
  scipy's HiGHS.
* :func:`recovery_property`, :func:`support_identification_property` — one-line hypothesis
  tests built from the above: ``test_my_omp = recovery_property(my_omp)``.

Notation (docs/design.md): D ∈ R^{H×N} with unit columns dᵢ, code δ with support S (|S| = K) and
signs s = sign(δ_S), y = D δ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import given
from hypothesis.strategies import SearchStrategy

from rip_atoms.criteria.tsae import tsae_window
from rip_atoms.errors import ParameterError
from rip_atoms.recovery import CERTIFIED, STATUS_NAMES, classify_recovery
from rip_atoms.testing.frames import frame_coherence

__all__ = [
    "CONDITIONS",
    "PreconditionError",
    "assert_l1_minimal",
    "assert_recovers",
    "assert_support_identified",
    "exact_recovery_coefficient",
    "recovery_property",
    "support_identification_property",
]

Solver = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
Encoder = Callable[[np.ndarray], np.ndarray]
#: conditions of :func:`assert_recovers` and the solvers each one covers
CONDITIONS = {"coherence": "OMP and BP", "erc": "OMP and BP", "certificate": "BP only",
              None: "none checked"}


class PreconditionError(ParameterError):
    """The inputs do not satisfy the theorem's hypothesis: the property says nothing about
    them (a bug in the test, not in the code under test)."""


def _fail(message: str) -> None:
    """Raise the property's AssertionError (a small frame, so pytest's report stays short)."""
    raise AssertionError(message)


def _unit_columns(D: np.ndarray) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    norms = np.linalg.norm(D, axis=0)
    if D.ndim != 2 or not np.allclose(norms, 1.0, atol=1e-9):
        raise PreconditionError("the recovery theorems are stated for unit-norm atoms: "
                                "normalise the columns of D (and rescale the code) first")
    return D


def exact_recovery_coefficient(D: np.ndarray, support: np.ndarray) -> float:
    """Tropp's ERC(S) = max_{j∉S} ‖D_S⁺ dⱼ‖₁ (inf when D_S is rank-deficient, 0 when S is
    everything). ERC(S) < 1 ⇒ OMP run |S| steps and basis pursuit recover every code supported
    on S, any signs (Tropp 2004, Thms 3.1 and 3.3)."""
    S = np.asarray(support, dtype=int)
    rest = np.setdiff1d(np.arange(D.shape[1]), S)
    if S.size and np.linalg.matrix_rank(D[:, S]) < S.size:
        return float("inf")
    if rest.size == 0:
        return 0.0
    coef = np.linalg.lstsq(D[:, S], D[:, rest], rcond=None)[0]
    return float(np.abs(coef).sum(axis=0).max())


def _precondition(D: np.ndarray, code: np.ndarray, condition: str | None, nonneg: bool) -> str:
    """Check the hypothesis of :func:`assert_recovers`; returns its value as text."""
    S = np.flatnonzero(code)
    K = S.size
    if condition is None:
        return "no condition checked"
    if condition == "coherence":
        mu = frame_coherence(D)
        if not (2 * K - 1) * mu < 1:
            raise PreconditionError(f"μ = {mu:.6g} ≥ 1/(2K − 1) = {1 / (2 * K - 1):.6g} "
                                    f"(K = {K}): the coherence theorem does not apply")
        return f"μ = {mu:.6g} < 1/(2K − 1) = {1 / (2 * K - 1):.6g}"
    if condition == "erc":
        erc = exact_recovery_coefficient(D, S)
        if not erc < 1:
            raise PreconditionError(f"ERC(S) = {erc:.6g} ≥ 1 for S = {S.tolist()}")
        return f"ERC(S) = {erc:.6g} < 1"
    if condition == "certificate":
        res = classify_recovery(D, code[None, :], nonneg=nonneg, metric="raw")
        if res.status[0] != CERTIFIED:
            raise PreconditionError(f"classify_recovery says {STATUS_NAMES[res.status[0]]}, "
                                    "not certified: exact ℓ1 recovery is not proven")
        return f"ℓ1 certificate bound {res.certificate[0]:.6g} < 1"
    raise ParameterError(f"condition must be one of {sorted(CONDITIONS, key=str)}, "
                         f"not {condition!r}")


def assert_recovers(solver: Solver, D: np.ndarray, codes: np.ndarray, *,
                    condition: str | None = "coherence", nonneg: bool = False,
                    atol: float = 1e-8, support_only: bool = False) -> np.ndarray:
    """Assert that ``solver(D, y, K)`` returns δ for y = D δ, for each code δ (a row of
    ``codes``, or one length-N code), after checking the theorem's hypothesis.

    Conditions (D must have unit columns; K = ‖δ‖₀):

    * ``"coherence"`` — μ(D) < 1/(2K − 1). Then δ is the unique K-sparse solution and the
      unique solution of basis pursuit min ‖x‖₁ s.t. D x = y (signed, hence also of the
      non-negative one when δ ≥ 0), and OMP run K steps recovers it (Tropp 2004; Donoho–Elad
      2003).
    * ``"erc"`` — Tropp's ERC(S) = max_{j∉S} ‖D_S⁺ dⱼ‖₁ < 1: OMP (K steps) and BP recover
      every code on S (:func:`exact_recovery_coefficient`).
    * ``"certificate"`` — :func:`~rip_atoms.recovery.classify_recovery` (raw metric) certifies
      δ: a dual certificate D_Sᵀy* = s, ‖D_{Sᶜ}ᵀy*‖_∞ < 1 exists (non-negative: D_{Sᶜ}ᵀy* < 1),
      so δ is the unique solution of (non-negative if ``nonneg``) BP. Says nothing about OMP.
    * ``None`` — no hypothesis checked.

    The conclusion: ‖x − δ‖_∞ ≤ atol·max(1, ‖δ‖_∞), or with ``support_only`` the support
    {i : |xᵢ| > atol·‖δ‖_∞} equals S. Returns the solutions (same shape as ``codes``).
    Raises :class:`PreconditionError` if the hypothesis fails, AssertionError if the solver
    does."""
    D = _unit_columns(D)
    C = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    out = np.zeros_like(C)
    for i, code in enumerate(C):
        why = _precondition(D, code, condition, nonneg)
        S = np.flatnonzero(code)
        y = D @ code
        x = np.asarray(solver(D, y, int(S.size)), dtype=np.float64).reshape(-1)
        scale = max(1.0, float(np.abs(code).max(initial=0.0)))
        found = np.flatnonzero(np.abs(x) > atol * scale)
        ok = np.array_equal(found, S) if support_only else (
            x.shape == code.shape and np.abs(x - code).max() <= atol * scale)
        if not ok:
            _fail(f"the solver did not recover code {i} although {why}:\n"
                  f"  H = {D.shape[0]}, N = {D.shape[1]}, K = {S.size}\n"
                  f"  true support {S.tolist()}, found {found.tolist()}\n"
                  f"  code {np.round(code, 6).tolist()}\n  got  {np.round(x, 6).tolist()}")
        out[i] = x
    return out.reshape(np.shape(codes))


def _aip_atoms(D: np.ndarray, S: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(D̂ = W D / ‖W dⱼ‖, ‖dⱼ‖_S = ‖W dⱼ‖) with W = S̃^{1/2} (W = I when S̃ is None)."""
    if S is None:
        WD = D
    else:
        lam, V = np.linalg.eigh(0.5 * (S + S.T))
        WD = ((V * np.sqrt(lam)) @ V.T) @ D
    norms = np.linalg.norm(WD, axis=0)
    return WD / norms, norms


def assert_support_identified(encoder: Encoder, D: np.ndarray, codes: np.ndarray, *,
                              metric: object = None,
                              thresholds: np.ndarray | float | None = None) -> np.ndarray:
    """Assert that ``encoder(X)`` (X = codes·Dᵀ, n×H → n×N) has each code's support, after
    checking the TSAE theorem's hypothesis.

    Theorem (docs/design.md § TSAE identifiability, :func:`~rip_atoms.criteria.tsae.tsae_window`):
    let d̂ⱼ be the AIP-unit atoms under S̃ (``metric``: an AIPMetric, an H×H array, or None for
    Euclidean),
    ε = max_{i≠j} |⟨d̂ᵢ, d̂ⱼ⟩|_S, and δ̂ⱼ = ‖dⱼ‖_S δⱼ the codes over them with at most K non-zeros,
    all ≥ 0 and in [δ_min, δ_max]. If δ_min > ε(2K − 1)δ_max, then for every τ with
    εKδ_max < τ < δ_min − ε(K − 1)δ_max the encoder z = D̂ᵀS̃x, σ_τ(z) = z·1[z > τ] returns
    supp δ exactly. Hypotheses checked here: non-negative codes, a feasible window, and, when
    ``thresholds`` (per atom or scalar, in the units of the codes as given, i.e. τⱼ/‖dⱼ‖_S)
    are passed, τ̂ⱼ = thresholdⱼ·‖dⱼ‖_S inside the window. The encoder itself is the code under
    test. Returns the encoder's codes."""
    __tracebackhide__ = True
    D = np.asarray(D, dtype=np.float64)
    C = np.atleast_2d(np.asarray(codes, dtype=np.float64))
    S = getattr(metric, "S", metric)
    Dh, norms = _aip_atoms(D, None if S is None else np.asarray(S, dtype=np.float64))
    unit = C * norms
    if (C < 0).any():
        raise PreconditionError("the TSAE theorem is stated for non-negative codes")
    mags = unit[unit > 0]
    K = int(np.count_nonzero(C, axis=1).max(initial=0))
    if mags.size == 0:
        raise PreconditionError("no non-zero code: nothing to identify")
    w = tsae_window(min(frame_coherence(Dh), 1.0), max(K, 1), float(mags.min()),
                    float(mags.max()))
    if not w.feasible:
        raise PreconditionError(f"TSAE window {w.statement}")
    if thresholds is not None:
        tau = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), norms.shape) * norms
        if not np.all(w.contains(tau)):
            raise PreconditionError(f"thresholds (normalised) in [{tau.min():.6g}, "
                                    f"{tau.max():.6g}] leave the window ({w.lower:.6g}, "
                                    f"{w.upper:.6g})")
    Z = np.asarray(encoder(C @ D.T), dtype=np.float64).reshape(C.shape)
    for i in range(C.shape[0]):
        want, got = np.flatnonzero(C[i]), np.flatnonzero(Z[i])
        if not np.array_equal(want, got):
            _fail(f"code {i}: support {got.tolist()} instead of {want.tolist()} inside the "
                  f"TSAE window ({w.statement}); H = {D.shape[0]}, N = {D.shape[1]}")
    return Z


def _highs_l1(D: np.ndarray, y: np.ndarray, nonneg: bool) -> float:
    """min ‖x‖₁ s.t. D x = y (x ≥ 0 with ``nonneg``) by scipy's HiGHS: x = u − v, u, v ≥ 0."""
    from scipy.optimize import linprog

    H, N = D.shape
    A = D if nonneg else np.hstack([D, -D])
    res = linprog(np.ones(A.shape[1]), A_eq=A, b_eq=y, bounds=(0, None), method="highs")
    if res.status != 0:
        raise PreconditionError(f"HiGHS: {res.message} (infeasible y?)")
    return float(res.fun)


def assert_l1_minimal(solver: Callable[[np.ndarray, np.ndarray], np.ndarray], D: np.ndarray,
                      y: np.ndarray, *, nonneg: bool = False, rtol: float = 1e-6
                      ) -> tuple[np.ndarray, float]:
    """Assert that x = ``solver(D, y)`` solves basis pursuit: ‖D x − y‖₂ ≤ rtol·max(1, ‖y‖₂),
    x ≥ −rtol with ``nonneg``, and ‖x‖₁ ≤ (1 + rtol)·p* + rtol where p* = min ‖x‖₁ s.t. Dx = y
    (x ≥ 0) is computed by scipy's HiGHS LP (an independent solver; the problem must be
    feasible, else :class:`PreconditionError`). Any D (no unit columns needed). Returns
    (x, p*)."""
    __tracebackhide__ = True
    D = np.asarray(D, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = _highs_l1(D, y, nonneg)
    x = np.asarray(solver(D, y), dtype=np.float64).reshape(-1)
    r = float(np.linalg.norm(D @ x - y))
    l1 = float(np.abs(x).sum())
    if not r <= rtol * max(1.0, float(np.linalg.norm(y))):
        _fail(f"infeasible: ‖Dx − y‖₂ = {r:.3g} (H = {D.shape[0]}, N = {D.shape[1]})")
    if nonneg and x.min(initial=0.0) < -rtol:
        _fail(f"a negative entry {x.min():.3g} in a non-negative basis pursuit")
    if not l1 <= (1 + rtol) * p + rtol:
        _fail(f"‖x‖₁ = {l1:.9g} > the HiGHS optimum {p:.9g} (H = {D.shape[0]}, "
              f"N = {D.shape[1]})")
    return x, p


def recovery_property(solver: Solver, *, condition: str | None = "coherence",
                      problems: SearchStrategy | None = None, nonneg: bool = False,
                      atol: float = 1e-8, support_only: bool = False) -> Callable[[], None]:
    """A hypothesis test, ready for pytest: ``test_my_omp = recovery_property(my_omp)``.

    It draws :func:`~rip_atoms.testing.problems.recovery_problems` (μ < 1/(2K − 1), signed
    codes; or ``problems``, any strategy of objects with ``D`` and ``codes``) and calls
    :func:`assert_recovers` with ``condition``. Settings (max_examples, …) come from the
    active hypothesis profile; wrap the result in ``hypothesis.settings(...)`` to change them.
    """
    from rip_atoms.testing.problems import recovery_problems

    strategy = recovery_problems(signs="nonneg" if nonneg else "signed") if problems is None \
        else problems

    def test_recovery(p) -> None:
        assert_recovers(solver, p.D, p.codes, condition=condition, nonneg=nonneg, atol=atol,
                        support_only=support_only)

    return given(strategy)(_named(test_recovery, solver, f"{condition}_nonneg_{nonneg}"))


def support_identification_property(make_encoder: Callable[[object], Encoder], *,
                                    problems: SearchStrategy | None = None
                                    ) -> Callable[[], None]:
    """A hypothesis test: ``test_my_sae = support_identification_property(build)``, where
    ``build(problem)`` turns a :class:`~rip_atoms.testing.problems.TSAEProblem` (planted D,
    metric S̃, window, τ) into the encoder under test (n×H → n×N). Draws
    :func:`~rip_atoms.testing.problems.tsae_problems` (or ``problems``) and calls
    :func:`assert_support_identified` with the problem's thresholds."""
    from rip_atoms.testing.problems import tsae_problems

    strategy = tsae_problems() if problems is None else problems

    def test_support_identification(p) -> None:
        a = p.atoms
        assert_support_identified(make_encoder(p), a.dictionary, a.codes, metric=a.metric,
                                  thresholds=p.thresholds_for_atoms())

    return given(strategy)(_named(test_support_identification, make_encoder, ""))


def _named(test: Callable, code: Callable, options: str) -> Callable:
    """Name the generated test after the code under test and give hypothesis a distinct
    database key for it (its digest hook ``_hypothesis_internal_add_digest``, the one its pytest
    plugin sets for parametrized tests), so two one-line tests in a module do not replay each
    other's saved examples."""
    label = getattr(code, "__qualname__", type(code).__name__)
    name = f"{getattr(code, '__module__', '')}.{label}:{options}"
    test.__qualname__ = f"{test.__name__}[{name}]"
    test._hypothesis_internal_add_digest = name.encode()
    return test
