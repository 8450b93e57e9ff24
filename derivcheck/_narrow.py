r"""How a backend computes bfloat16 and float16: found by asking it, once per platform.

The rounding model of :mod:`derivcheck._bounds` charges every operation as if it computed
in its own dtype: a transcendental function four epsilons, a sum of :math:`K` terms
:math:`(K - 1)\,\epsilon \sum |x|`. For bfloat16 (:math:`\epsilon = 2^{-7}`) that worst
case is as wide as a factor of two on a small network, and a gate that cannot tell
:math:`2g` from :math:`g` proves nothing. XLA does better than the worst case: its CPU
backend computes a bfloat16 or float16 operation in float32 and rounds the result once
(every normal input of ``exp``, ``log``, ``tanh``, ...: correctly rounded), and its
matrix products accumulate in float32. Where a probe shows this, the model charges it:

.. math::
    e_{op} \le \epsilon_d\,|out|, \qquad
    e_{\sum} \le \epsilon_d\,|out| + K\,\epsilon_{32} \sum_k |a_k b_k|,

one epsilon for the final rounding (half of it is the rounding; the other half is the same
margin basic arithmetic is charged in every dtype) and float32's recursive-summation bound
for the accumulation. An operation the probe does not find rounded once (XLA's ``logistic``
is a composition in the narrow dtype: 1.08 epsilons at worst) keeps the table's units, and
a platform whose products accumulate in the narrow dtype keeps the worst case.

The probe is the model's own claim tested on the device: every normal value of the dtype
through every unary operation (65,536 values), random pairs through the binary ones, and
matrix products and a reduction of the shapes a check meets, compared with NumPy's float64.
It runs once per platform and dtype, in well under a second.

References:
  Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §2.1, §3.1, §4.2.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["ONCE_ROUNDED_UNITS", "NarrowArithmetic", "narrow_arithmetic"]

#: Units of epsilon an operation rounded once from float32 is charged (see the module).
ONCE_ROUNDED_UNITS = 1.0

# Unary operations of the rounding table with a NumPy float64 counterpart, and the inputs
# they are defined on. erf, erfc and erf_inv have none in NumPy; they keep the table's units.
_UNARY = {
    "exp": (lax.exp, np.exp, None),
    "exp2": (lax.exp2, np.exp2, None),
    "log": (lax.log, np.log, (0.0, math.inf)),
    "log1p": (lax.log1p, np.log1p, (-1.0, math.inf)),
    "expm1": (lax.expm1, np.expm1, None),
    "tanh": (lax.tanh, np.tanh, None),
    "logistic": (lax.logistic, lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)), None),
    "sqrt": (lax.sqrt, np.sqrt, (0.0, math.inf)),
    "rsqrt": (lax.rsqrt, lambda x: 1.0 / np.sqrt(x), (0.0, math.inf)),
    "cbrt": (lax.cbrt, np.cbrt, None),
    "sin": (lax.sin, np.sin, None),
    "cos": (lax.cos, np.cos, None),
    "tan": (lax.tan, np.tan, None),
    "asin": (lax.asin, np.arcsin, (-1.0, 1.0)),
    "acos": (lax.acos, np.arccos, (-1.0, 1.0)),
    "atan": (lax.atan, np.arctan, None),
    "sinh": (lax.sinh, np.sinh, None),
    "cosh": (lax.cosh, np.cosh, None),
    "asinh": (lax.asinh, np.arcsinh, None),
    "acosh": (lax.acosh, np.arccosh, (1.0, math.inf)),
    "atanh": (lax.atanh, np.arctanh, (-1.0, 1.0)),
}
_BINARY = {
    "add": (lax.add, np.add), "sub": (lax.sub, np.subtract), "mul": (lax.mul, np.multiply),
    "div": (lax.div, np.divide), "pow": (lax.pow, np.power), "atan2": (lax.atan2, np.arctan2),
}
#: Pairs drawn for each binary operation.
_PAIRS = 1 << 16
# Matrix products as a check meets them: vmapped matrix-vector and small matrix products,
# and a long one (the accumulation is what differs between backends).
_CONTRACTIONS = (((256, 8, 6), (256, 6, 1)), ((128, 8, 8), (128, 8, 8)), ((16, 1024), (1024, 16)))


@dataclasses.dataclass(frozen=True)
class NarrowArithmetic:
    """What a platform's probe found for one narrow dtype."""

    dtype: str
    #: Operations whose every probed result is the float64 value rounded once (half an ulp).
    once_rounded: frozenset[str]
    #: Whether matrix products and reductions accumulate in float32 and round once.
    wide_accumulation: bool

    def describe(self) -> str:
        sums = "float32 accumulation" if self.wide_accumulation else f"{self.dtype} accumulation"
        return f"{self.dtype}: {len(self.once_rounded)} operations rounded once from float32, {sums} (probed)"


def _normal_values(dtype) -> np.ndarray:
    """Every finite value of a 16-bit dtype at least its smallest normal in magnitude."""
    with np.errstate(invalid="ignore", over="ignore"):  # the NaN and infinity patterns
        values = np.arange(1 << 16, dtype=np.uint16).view(dtype).astype(np.float64)
    return values[np.isfinite(values) & (np.abs(values) >= float(jnp.finfo(dtype).tiny))]


def _rounded_once(got: np.ndarray, exact: np.ndarray, dtype) -> np.ndarray:
    """Per element: within half an ulp of the float64 value, where that is a normal number
    in range (elsewhere nothing is claimed: the underflow floor and overflow rules apply).
    The slack is float32's own few ulps before the final rounding."""
    info = jnp.finfo(dtype)
    with np.errstate(all="ignore"):
        judged = np.isfinite(exact) & (np.abs(exact) >= float(info.tiny)) & (np.abs(exact) <= float(info.max))
        close = np.abs(got - exact) <= 0.5 * float(info.eps) * np.abs(exact) * (1 + 2.0**-6)
    return close | ~judged


def _contraction_holds(got, exact, magnitude, terms: int, dtype) -> bool:
    info, f32 = jnp.finfo(dtype), jnp.finfo(jnp.float32)
    bound = (float(info.eps) * np.abs(exact) + terms * float(f32.eps) * magnitude + float(info.tiny))
    return bool(np.all(np.abs(got - exact) <= bound))


@functools.cache
def narrow_arithmetic(platform: str, dtype: str) -> NarrowArithmetic:
    """Probe ``platform`` (its first device) for how it computes ``dtype`` (bfloat16, float16)."""
    device = jax.devices(platform)[0]
    np_dtype = jnp.dtype(dtype)
    rng = np.random.default_rng(0)
    once = set()
    x = _normal_values(np_dtype)
    on_device = jax.device_put(x.astype(np_dtype), device)
    fns = {name: fn for name, (fn, _, _) in _UNARY.items()}
    got = jax.device_get(jax.jit(lambda v: {name: fn(v) for name, fn in fns.items()})(on_device))
    for name, (_, exact_fn, domain) in _UNARY.items():
        inside = np.ones_like(x, bool) if domain is None else (x > domain[0]) & (x < domain[1])
        with np.errstate(all="ignore"):
            exact = exact_fn(x)
        if np.all(_rounded_once(np.asarray(got[name], np.float64)[inside], exact[inside], np_dtype)):
            once.add(name)
    pairs = rng.choice(x, size=(2, _PAIRS))
    pairs[1, :_PAIRS // 2] = np.abs(pairs[1, :_PAIRS // 2]) % 8  # pow: exponents a product meets
    a, b = jax.device_put(pairs.astype(np_dtype), device)
    got = jax.device_get(jax.jit(lambda a, b: {name: fn(a, b) for name, (fn, _) in _BINARY.items()})(a, b))
    for name, (_, exact_fn) in _BINARY.items():
        with np.errstate(all="ignore"):
            exact = exact_fn(pairs[0], pairs[1])
        if np.all(_rounded_once(np.asarray(got[name], np.float64), exact, np_dtype)):
            once.add(name)
    return NarrowArithmetic(dtype, frozenset(once), _accumulates_wide(device, np_dtype, rng))


def _accumulates_wide(device, dtype, rng) -> bool:
    """Whether matrix products and a reduction of the dtype meet the float32-accumulation bound."""
    for shape_a, shape_b in _CONTRACTIONS:
        a = rng.standard_normal(shape_a).astype(dtype).astype(np.float64)
        b = rng.standard_normal(shape_b).astype(dtype).astype(np.float64)
        operands = jax.device_put((a.astype(dtype), b.astype(dtype)), device)
        got = np.asarray(jax.device_get(jax.jit(jnp.matmul)(*operands)), np.float64)
        if not _contraction_holds(got, a @ b, np.abs(a) @ np.abs(b), shape_a[-1], dtype):
            return False
    terms = rng.standard_normal((16, 4096)).astype(dtype).astype(np.float64)
    zero = np.zeros((), dtype)
    total = jax.jit(lambda v: lax.reduce(v, zero, lax.add, (1,)))  # reduce_sum in the dtype itself
    got = np.asarray(jax.device_get(total(jax.device_put(terms.astype(dtype), device))), np.float64)
    return _contraction_holds(got, terms.sum(axis=1), np.abs(terms).sum(axis=1), terms.shape[1], dtype)
