"""The tolerance model: how far a closed form may land from the reference, and why.

A closed form evaluated in dtype :math:`d` is compared, element by element, with the
reference (autodiff of the forward definition) evaluated in float64 on the same inputs
(the dtype-:math:`d` inputs, widened exactly). Both are run through the first-order
rounding-error interpreter of :mod:`derivcheck._bounds`, which returns bounds
:math:`E_{cf}` (in dtype :math:`d` arithmetic) and :math:`E_{ref}` (float64). The claim
holds at an element when

.. math::
    |cf - ref| \\le S \\,(E_{cf} + E_{ref}) + F_d,

with the safety factor :math:`S` and the underflow floor :math:`F_d` from
:data:`DTYPE_TABLE`. :math:`S` covers second-order rounding terms, which the first-order
bound omits. Underflow is absolute, not relative (float32 subnormals are flushed to zero
even on the CPU under ``jit``): the bounds charge one smallest normal per rounding, and
:math:`F_d`, one smallest normal, covers the comparison itself.

At a kink the reference is an interval, the one-sided derivatives (see
:func:`kink_offset`), and the distance is measured to that interval.

Nothing here depends on which claim is checked: a per-claim override does not exist.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from derivcheck.errors import InvalidArgument

__all__ = ["DTYPE_TABLE", "LOW_PRECISION", "SUPPORTED_DTYPES", "DtypeTolerance", "kink_offset", "largest",
           "tolerance_for"]


@dataclasses.dataclass(frozen=True)
class DtypeTolerance:
    """The constants of the tolerance model for one dtype."""

    dtype: str
    eps: float
    safety: float
    underflow_floor: float


def _entry(name: str) -> DtypeTolerance:
    info = jnp.finfo(name)  # NumPy's finfo knows neither bfloat16 nor its ml_dtypes kin
    # Underflow inside the computation is in the bounds already (one smallest normal per
    # rounding); the floor covers the final comparison of two flushed results.
    return DtypeTolerance(name, float(info.eps), safety=2.0, underflow_floor=float(info.tiny))


#: One row per supported dtype: the only place tolerance constants live. The rows follow
#: from each format: eps = 2**-23 (float32), 2**-52 (float64), 2**-7 (bfloat16: float32's
#: range, 8 significand bits), 2**-10 (float16: 11 bits, largest finite 65504, subnormal
#: below 6.1e-5, the floor).
DTYPE_TABLE: dict[str, DtypeTolerance] = {name: _entry(name) for name in ("float32", "float64", "bfloat16", "float16")}
SUPPORTED_DTYPES = tuple(DTYPE_TABLE)
#: The dtypes narrower than float32: no float32 autodiff diagnostic, inputs drawn as float32
#: values rounded to the dtype.
LOW_PRECISION = ("bfloat16", "float16")


def largest(dtype: str) -> float:
    """The largest finite value of ``dtype`` (65504 for float16)."""
    return float(jnp.finfo(dtype).max)


def tolerance_for(dtype: str) -> DtypeTolerance:
    try:
        return DTYPE_TABLE[dtype]
    except KeyError:
        raise InvalidArgument(
            f"unsupported dtype {dtype!r}; choose one of {', '.join(SUPPORTED_DTYPES)}"
        ) from None


def kink_offset(x, xp=np):
    """Distance to step off a kink at ``x`` in float64 to evaluate a one-sided derivative.

    One ulp of ``x``, or the smallest normal float64 at ``x == 0``: as close to the kink
    as float64 can get, so the one-sided value equals the limit to rounding accuracy,
    and never a subnormal (which XLA may flush to zero).
    """
    tiny = float(np.finfo(np.float64).tiny)
    return xp.maximum(xp.abs(x) * float(np.finfo(np.float64).eps), tiny)
