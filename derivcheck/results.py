"""Result records, the verdict vocabulary, and the environment every result carries."""

from __future__ import annotations

import dataclasses
import platform
import sys
from typing import Any

import jax

__all__ = ["FAILURE_VERDICTS", "Result", "Verdict", "environment"]


class Verdict:
    """The result vocabulary of DESIGN.md; only the two failures fail the gate."""

    VERIFIED = "verified"
    ERRATUM_CONFIRMED = "erratum confirmed"
    CONDITIONAL_CONFIRMED = "conditional confirmed"
    FAILED = "FAILED"
    ERRATUM_NOT_REPRODUCED = "ERRATUM NOT REPRODUCED"


FAILURE_VERDICTS = frozenset({Verdict.FAILED, Verdict.ERRATUM_NOT_REPRODUCED})


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

    @property
    def passed(self) -> bool:
        """True when the verdict is what the claim expects."""
        return self.verdict not in FAILURE_VERDICTS

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["passed"] = self.passed
        return out


def environment(device: jax.Device) -> dict[str, Any]:
    """What a result depends on besides the claim: versions, backend, precision."""
    import hypothesis
    import jaxlib
    import numpy

    return {
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
