"""Result records, the verdict vocabulary, and the environment every result carries."""

from __future__ import annotations

import dataclasses
import platform
import sys
from typing import Any

import jax
import numpy as np

__all__ = [
    "CONFIRMED_VERDICT", "FAILURE_VERDICTS", "RATIO_LOG10_EDGES", "Result", "SearchSummary", "Verdict", "environment",
    "ratio_histogram",
]


class Verdict:
    """The result vocabulary of DESIGN.md; only the two failures fail the gate."""

    VERIFIED = "verified"
    ERRATUM_CONFIRMED = "erratum confirmed"
    TYPO_CONFIRMED = "typo confirmed"
    CONDITIONAL_CONFIRMED = "conditional confirmed"
    FAILED = "FAILED"
    ERRATUM_NOT_REPRODUCED = "ERRATUM NOT REPRODUCED"
    TYPO_NOT_REPRODUCED = "TYPO NOT REPRODUCED"


FAILURE_VERDICTS = frozenset({Verdict.FAILED, Verdict.ERRATUM_NOT_REPRODUCED, Verdict.TYPO_NOT_REPRODUCED})

#: The verdict each expected kind gets when the check confirms it.
CONFIRMED_VERDICT: dict[str, str] = {"holds": Verdict.VERIFIED, "erratum": Verdict.ERRATUM_CONFIRMED,
                                     "typo": Verdict.TYPO_CONFIRMED, "conditional": Verdict.CONDITIONAL_CONFIRMED}


#: Bin edges of the error histogram in :math:`\log_{10}(|error| / tolerance)`, from 1e-6 to
#: 1e3 of the tolerance in half decades; the tolerance itself is the edge at 0.
RATIO_LOG10_EDGES: tuple[float, ...] = tuple(k / 2 for k in range(-12, 7))


def ratio_histogram(ratio: np.ndarray, failed: np.ndarray, decided: np.ndarray) -> np.ndarray:
    """Decided points counted by their worst error / tolerance: one count below the first
    edge (exact agreement included), one per bin of :data:`RATIO_LOG10_EDGES`, one above
    the last. A failure without a finite ratio (a non-finite closed form) counts above."""
    r = np.where(failed & ~(ratio > 1), np.inf, ratio)[decided | failed]
    with np.errstate(divide="ignore"):
        bins = np.searchsorted(RATIO_LOG10_EDGES, np.log10(r), side="right")
    return np.bincount(bins, minlength=len(RATIO_LOG10_EDGES) + 1)


def _number(x: Any) -> Any:
    """A float back from JSON, where non-finite floats are spelled as strings."""
    return float(x) if isinstance(x, str) and x in ("nan", "inf", "-inf") else x


def _counterexample_from_json(ce: dict[str, Any]) -> dict[str, Any]:
    """A counterexample back from JSON: its worst element's values may be non-finite."""
    restored = {k: _number(ce[k]) for k in ("closed_form", "abs_error", "tolerance") if k in ce}
    if isinstance(ce.get("reference"), list):
        restored["reference"] = [_number(v) for v in ce["reference"]]
    elif "reference" in ce:
        restored["reference"] = _number(ce["reference"])
    return {**ce, **restored}


def _fields_from_json(cls, data: dict[str, Any]) -> dict[str, Any]:
    """The dataclass fields of ``cls`` found in ``data``, numbers and histograms restored."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: _number(v) for k, v in data.items() if k in names}
    values["ratio_histogram"] = tuple(values.get("ratio_histogram", ()))
    if values.get("counterexample"):
        values["counterexample"] = _counterexample_from_json(values["counterexample"])
    if "estimated_operations" in values:
        values["estimated_operations"] = tuple(values["estimated_operations"])
    return values


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    """What one search over one domain found."""

    points: int  # points decided (every element compared)
    failures: int
    undecided: int
    cf_nonfinite: int
    ref_nonfinite: int
    max_abs_error: float
    max_rel_error: float
    max_error_ratio: float
    autodiff_error: float
    counterexample: dict[str, Any] | None
    ratio_histogram: tuple[int, ...] = ()
    #: Points whose reference differs from its batch's first point: 0 means the truth was
    #: the same at every point tried, and the check is vacuous (DESIGN.md principle 9).
    reference_varied: int = -1
    #: Of the undecided points, those where the closed form is 0/0 of values its own dtype
    #: rounded to zero (its bound infinite) while the truth is known.
    unresolved: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchSummary:
        return cls(**_fields_from_json(cls, data))


@dataclasses.dataclass(frozen=True)
class Result:
    """The outcome of checking one claim in one dtype on one device."""

    id: str
    document: str
    location: str
    dtype: str
    device: str
    expected: str
    verdict: str
    detail: str
    points: int
    undecided: int
    max_abs_error: float
    max_rel_error: float
    max_error_ratio: float
    autodiff_error: float
    counterexample: dict[str, Any] | None
    outside: SearchSummary | None
    seed: int
    profile: str
    examples: int
    elapsed_s: float
    replay: str
    jax_version: str
    matmul_precision: str = "highest"
    #: How the closed form ran: ``jit`` (traced, batched, compiled), or on the host for
    #: NumPy code, ``host, vectorised`` or ``host, point by point``.
    closed_form_path: str = "jit"
    #: Points by error / tolerance (:func:`ratio_histogram`), for the figures of reports.
    ratio_histogram: tuple[int, ...] = ()
    #: Operations whose rounding bound was measured rather than derived (linear algebra,
    #: host callbacks, NumPy code that could not be traced): part of the tolerance is then
    #: an estimate (README, "Supported operations").
    estimated_operations: tuple[str, ...] = ()
    #: Why the check proves nothing, or "": the closed form restates its reference, or the
    #: reference took one value at every point tried (DESIGN.md principle 9).
    vacuous: str = ""
    #: Where the float64 reference ran (:mod:`derivcheck._placement`): ``device`` itself where
    #: it computes float64, else the host CPU; "" in runs saved before it was recorded.
    reference_device: str = ""
    #: How many devices each batch was sharded over (``--mesh``), from ``device`` on.
    mesh: int = 1
    #: Of the ``undecided`` points, those where the closed form is 0/0 of values its own
    #: dtype rounded to zero (its own bound infinite) while the truth is known: the formula
    #: has no value in that dtype there, which says nothing about the formula.
    unresolved: int = 0
    #: The exact verdict of the claim (:class:`derivcheck._prove.Proof` as JSON), where a
    #: proof was asked for (``--prove``, ``check(prove=True)``); None otherwise. It never
    #: changes ``verdict``: it stands next to it.
    proof: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """True when the verdict is what the claim expects."""
        return self.verdict not in FAILURE_VERDICTS

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["passed"] = self.passed
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        """The result written by :meth:`to_json` (as ``derivcheck verify --format json`` does)."""
        missing = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING} - set(data)
        if missing:
            raise ValueError(f"a result lacks {', '.join(sorted(missing))}")
        values = _fields_from_json(cls, data)
        values["outside"] = SearchSummary.from_json(data["outside"]) if data.get("outside") else None
        return cls(**values)


def environment(device: jax.Device) -> dict[str, Any]:
    """What a result depends on besides the claim: versions, backend, precision."""
    import hypothesis
    import jaxlib
    import numpy

    from derivcheck import __version__

    return {
        "derivcheck": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": numpy.__version__,
        "hypothesis": hypothesis.__version__,
        "python": sys.version.split()[0],
        "platform": device.platform,
        "device": str(device),
        "device_kind": device.device_kind,
        "backend_version": getattr(jax.extend.backend.get_backend(device.platform), "platform_version", ""),
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "machine": platform.machine(),
    }
