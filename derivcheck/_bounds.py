"""First-order rounding-error bounds, computed by interpreting a function's jaxpr.

Every floating-point operation rounds its result: ``fl(op(a, b)) = op(a, b)(1 + \\delta)``
with :math:`|\\delta| \\le u \\cdot \\epsilon`, where :math:`\\epsilon` is the machine epsilon of
the result's dtype and :math:`u` the operation's rounding units (:data:`ROUNDING_UNITS`).
Errors already present in the operands propagate through the operation's derivative. To
first order, the error :math:`e` of every intermediate value therefore obeys

.. math::
    e_{out} \\le \\sum_k |\\partial\\, op / \\partial\\, in_k| \\, e_k + u \\, \\epsilon \\, |out|,

and for a reduction or contraction over :math:`K` terms the rounding term becomes
:math:`K \\epsilon \\sum |terms|` (the worst-case bound for recursive summation; Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1 and §4.2).

:func:`evaluate_with_bound` runs a function operation by operation and carries this bound
beside every value. The bound scales with the magnitude of the computation itself, so a
formula that cancels (``sigmoid(x) * (1 - sigmoid(x))`` at large ``x``) is allowed the error
its arithmetic really makes, while a wrong formula is not. Bounds are always carried in
float64, whatever the dtype of the values.

Triangular solves and the matrix decompositions (Cholesky, LU, the symmetric eigenproblem,
the SVD, QR) are bounded from their backward errors in the literature, carried through their
perturbation theory (:mod:`derivcheck._linalg_bounds`).

Operations without a rule of their own (host callbacks, cumulative products, lgamma and
digamma, a decomposition in a form the rules do not cover, any primitive unknown here) get
an *estimated* bound (:func:`_estimated`): the operation evaluated again in float64, and in
float32 for its own rounding, on the operands and on operands moved by their carried error.
The estimate is not a worst case; every result names the operations it was used for
(``Result.estimated_operations``), so a reader knows which part of a tolerance is measured
rather than derived.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core

from derivcheck import _linalg_bounds
from derivcheck._narrow import ONCE_ROUNDED_UNITS, NarrowArithmetic

__all__ = [
    "ROUNDING_UNITS",
    "UnsupportedPrimitive",
    "at_a_tie",
    "evaluate_with_bound",
    "matmul_input_unit",
    "nested_jaxpr",
    "recording_estimates",
]

BOUND_DTYPE = jnp.float64


class UnsupportedPrimitive(NotImplementedError):
    """The error-bound interpreter met an operation it has no rule for."""


#: Elementwise operations and their rounding error in units of machine epsilon. Basic
#: arithmetic is correctly rounded (half an epsilon; one is charged). Transcendental
#: functions are charged four: XLA's float32 kernels for tanh, exp and log are accurate to
#: a few ulps, not correctly rounded. Operations charged zero are exact.
ROUNDING_UNITS: dict[str, float] = {
    "add": 1, "sub": 1, "mul": 1, "div": 1, "add_any": 1, "sqrt": 1, "rsqrt": 2,
    "square": 1, "neg": 0, "abs": 0, "max": 0, "min": 0, "clamp": 0, "copysign": 0,
    "exp": 4, "exp2": 4, "log": 4, "log1p": 4, "expm1": 4, "tanh": 4, "logistic": 4,
    "pow": 8, "sin": 4, "cos": 4, "erf": 4, "cbrt": 4, "atan2": 4,
    "tan": 4, "asin": 4, "acos": 4, "atan": 4, "sinh": 4, "cosh": 4, "asinh": 4, "acosh": 4,
    # lgamma and digamma have no entry: XLA's float32 kernels are not within a few ulps
    # near their zeros, so their rounding is measured (_estimated).
    "atanh": 4, "erfc": 4, "erf_inv": 8, "log2": 4, "log10": 4,
    # IEEE remainder and fmod are exact: the result is representable.
    "rem": 0, "nextafter": 0,
}

# Operations that move or select values without arithmetic: the same operation applied to
# the errors gives the errors of the result (max/min reductions: an upper bound).
_STRUCTURAL = frozenset({
    "broadcast_in_dim", "reshape", "transpose", "squeeze", "expand_dims", "slice",
    "dynamic_slice", "dynamic_update_slice", "concatenate", "pad", "rev", "gather",
    "copy", "copy_p", "split", "reduce_max", "reduce_min", "stop_gradient",
    "scatter-add", "scatter_add", "optimization_barrier", "scatter", "stack", "tile",
    # Windowed max/min: the chosen element's error, at most the largest in the window.
    "reduce_window_max", "reduce_window_min", "cummax", "cummin",
})

# Operations whose result carries no rounding error in the sense used here: comparisons,
# integer results and piecewise-constant functions (their jumps are kinks, handled apart).
_EXACT_RESULT = frozenset({
    "iota",
    "floor", "ceil", "round", "argmax", "argmin", "is_finite", "reduce_or", "reduce_and",
    "reduce_xor", "population_count", "shift_left", "shift_right_logical", "shift_right_arithmetic",
    "lu_pivots_to_permutation", "platform_index",
})

_NESTED_JAXPR_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _eps(x: Any) -> float:
    return float(jnp.finfo(jnp.result_type(x)).eps)


# The helpers below build the bound with lax operations, not jax.numpy: every jax.numpy
# call is a small jitted function that tracing inlines, and the bound has several
# operations per operation of the checked function, so this is most of the tracing time.


def _rounding(x: Any, units: float, terms: Any = None, *, computed_in: Any = None,
              exact: Any = None) -> jax.Array:
    """Error of rounding ``x`` (or a sum of ``terms``): relative part plus underflow part.

    The model with underflow is fl(a op b) = (a op b)(1 + d) + h with |d| <= u eps and
    |h| <= tiny (Higham, §2.1): a result flushed to zero loses up to the smallest normal.
    ``computed_in``: the dtype whose eps and tiny apply, if not ``x``'s own (a bfloat16
    sum accumulated in float32, :mod:`derivcheck._narrow`). ``exact``: where the result is
    an exact zero (:func:`_exact_zero`), which no rounding and no underflow touched.
    """
    if units == 0:
        return _zeros_like(x)
    magnitude = _magnitude(x) if terms is None else terms
    info = jnp.finfo(jnp.result_type(x) if computed_in is None else computed_in)
    err = lax.add(lax.mul(magnitude, units * float(info.eps)), units * float(info.tiny))
    if exact is not None:
        err = lax.select(_to_shape(exact, err.shape), _zeros_like(err), err)
    # Non-finite results keep apart why: an overflow (an infinite result or term) gets a NaN
    # bound, which every later operation keeps, so that it fails where the truth is in
    # range; a NaN result of finite operands (0/0 of rounded zeros) an infinite one, a
    # value its own arithmetic does not fix (derivcheck._checker._excused).
    return lax.select(lax.ne(magnitude, magnitude), lax.full_like(err, jnp.inf),
                      lax.select(lax.eq(magnitude, jnp.inf), lax.full_like(err, jnp.nan), err))


def _exact_zero(name: str, out: Any, invals: Sequence[Any]) -> jax.Array | None:
    """Where an elementwise result is an exact zero: 0 of zero operands (f(0) = 0), a
    product with a zero factor, a quotient of a zero numerator, the difference of equal
    operands. Elsewhere a zero result may be a nonzero value that underflowed (a product of
    two float16 numbers below 1e-4), which :func:`_rounding` charges and a comparison with
    0 must then doubt (:func:`_doubt`)."""
    floats = [jnp.asarray(v) for v in invals if _is_float(v)]
    if not floats or len(floats) != len(invals):
        return None
    shape = jnp.shape(out)
    zeros = [_to_shape(lax.eq(v, lax.full_like(v, 0)), shape) for v in floats]
    if name == "mul":
        cause = lax.bitwise_or(*zeros)
    elif name == "div":
        cause = zeros[0]
    elif name in ("sub", "add", "add_any") and len(floats) == 2:
        a, b = (_to_shape(v, shape) for v in floats)
        cause = lax.eq(a, b) if name == "sub" else lax.eq(a, lax.neg(b))
    else:
        cause = zeros[0]
        for more in zeros[1:]:
            cause = lax.bitwise_and(cause, more)
    return lax.bitwise_and(lax.eq(out, lax.full_like(out, 0)), cause)


def _by_origin_of_nan(out: Any, err: jax.Array, operands: Sequence[Any]) -> jax.Array:
    """A non-finite result's own rounding term, by where it comes from: carried in by a
    non-finite operand (a NaN, or an infinity kept), nothing new (the operand's bound says
    why: NaN after an overflow, infinite after a pole at a rounded zero; a constant is
    exact and fails where the truth is finite); a NaN made from an infinity (0 * inf,
    inf - inf), an overflow, NaN; made from finite operands (0/0 of rounded zeros),
    unbounded, as :func:`_rounding` has it."""
    floats = [jnp.asarray(v) for v in operands if _is_float(v)]
    if not floats:
        return err
    shape = jnp.shape(out)
    nan_in = inf_in = lax.full(shape, False, jnp.bool_)
    for v in floats:
        nan_in = lax.bitwise_or(nan_in, _to_shape(lax.ne(v, v), shape))
        inf_in = lax.bitwise_or(inf_in, _to_shape(lax.eq(lax.abs(v), lax.full_like(v, jnp.inf)), shape))
    is_nan = lax.ne(out, out)
    is_inf = lax.eq(lax.abs(out), lax.full_like(out, jnp.inf))
    err = lax.select(lax.bitwise_and(is_nan, inf_in), lax.full_like(err, jnp.nan), err)
    carried = lax.bitwise_or(lax.bitwise_and(is_nan, nan_in), lax.bitwise_and(is_inf, inf_in))
    return lax.select(carried, lax.full_like(err, 0.0), err)


#: Operations with a pole at 0, and which operand has it: an infinite result of finite
#: operands is an overflow, unless that operand is a rounded zero (its error reaches past
#: it), where the dtype left the result no value at all (see :func:`_at_a_rounded_pole`).
_POLES_AT_ZERO = {"div": 1, "rsqrt": 0, "log": 0}


def _at_a_rounded_pole(name: str, params, out: Any, invals, inerrs) -> jax.Array | None:
    """Where ``out`` is infinite because an operand at its pole is within its error of 0:
    x / ||x|| where float16 squared x = 1e-4 to 0, so that ||x|| is 0 with an error of
    1e-2. The quotient's truth is finite, and rounding alone explains any value here: the
    bound is unbounded (undecided and counted unresolved, as 0/0 of rounded zeros is),
    not an overflow (NaN: failed)."""
    pole = _POLES_AT_ZERO.get(name, 0 if name == "integer_pow" and params.get("y", 1) < 0 else None)
    if pole is None or inerrs[pole] is None or not all(_is_float(v) for v in invals):
        return None
    shape = jnp.shape(out)
    finite = lax.full(shape, True, jnp.bool_)
    for v in invals:
        finite = lax.bitwise_and(finite, _to_shape(lax.is_finite(v), shape))
    divisor = _to_shape(_magnitude(invals[pole]), shape)
    in_doubt = _doubt(divisor, _to_shape(inerrs[pole], shape))
    infinite = lax.eq(lax.abs(out), lax.full_like(out, jnp.inf))
    return lax.bitwise_and(lax.bitwise_and(infinite, finite), in_doubt)


def _magnitude(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return lax.convert_element_type(lax.abs(x), BOUND_DTYPE)


def _scaled(coefficient: Any, error: jax.Array) -> jax.Array:
    """|coefficient| * error; an exact operand or a zero coefficient contributes exactly 0.

    Without the guard, 0 * inf (an overflowed intermediate whose influence has vanished,
    as in 1 / (1 + exp(100))) would poison the bound with NaN.
    """
    magnitude = _magnitude(coefficient)
    # A coefficient 0/0 (a / b**2 at rounded zeros) is unbounded, not unknown: NaN is kept
    # for overflows (_rounding).
    magnitude = lax.select(lax.ne(magnitude, magnitude), lax.full_like(magnitude, jnp.inf), magnitude)
    shape = jnp.broadcast_shapes(magnitude.shape, error.shape)
    magnitude, error = _to_shape(magnitude, shape), _to_shape(error, shape)
    vanishes = lax.bitwise_or(lax.eq(error, 0.0), lax.eq(magnitude, 0.0))
    return lax.select(vanishes, lax.full_like(error, 0.0), lax.mul(magnitude, error))


def _to_shape(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``x`` broadcast to ``shape``: elementwise operations broadcast scalars and size-1 axes."""
    return x if x.shape == shape else lax.broadcast_in_dim(x, shape, tuple(range(x.ndim)))


def _zeros_like(x: Any) -> jax.Array:
    return lax.full(jnp.shape(x), 0.0, BOUND_DTYPE)


def _sum(first: jax.Array, *rest: jax.Array) -> jax.Array:
    for term in rest:
        first = lax.add(first, term)
    return first


# |d op / d operand_k| for the common operations, from the float64 operands. The general
# rule (a jvp per operand) traces the operation again with its tangent and roughly doubles
# the program XLA has to compile; these are the same derivatives, written out.
_UNIT_COEFFICIENTS = frozenset({"add", "sub", "add_any", "neg", "abs"})
_COEFFICIENTS: dict[str, Callable[..., tuple[Any, ...]]] = {
    "mul": lambda a, b: (b, a),
    "div": lambda a, b: (lax.div(1.0, b), lax.div(a, lax.mul(b, b))),
    "exp": lambda x: (lax.exp(x),),
    "expm1": lambda x: (lax.exp(x),),
    "log": lambda x: (lax.div(1.0, x),),
    "log1p": lambda x: (lax.div(1.0, lax.add(1.0, x)),),
    "tanh": lambda x: (lax.sub(1.0, lax.square(lax.tanh(x))),),
    "logistic": lambda x: (lax.mul(lax.logistic(x), lax.logistic(lax.neg(x))),),
    "sqrt": lambda x: (lax.div(0.5, lax.sqrt(x)),),
    "square": lambda x: (lax.mul(2.0, x),),
}


def _coefficients(eqn, wide) -> list[Any]:
    """|d op / d operand| per operand, in float64."""
    prim, params = eqn.primitive, eqn.params
    if prim.name in _COEFFICIENTS:
        return list(_COEFFICIENTS[prim.name](*wide))
    if prim.name == "integer_pow":
        y = params["y"]
        return [lax.mul(float(y), lax.integer_pow(wide[0], y - 1)) if y != 1 else 1.0]
    coefficients = []
    for k in range(len(wide)):

        def along_k(a, k=k):
            args = list(wide)
            args[k] = a
            return prim.bind(*args, **params)

        coefficients.append(jax.jvp(along_k, (wide[k],), (jnp.ones_like(wide[k]),))[1])
    return coefficients


def _elementwise(eqn, invals, inerrs, units: float | None = None):
    prim, params = eqn.primitive, eqn.params
    out = prim.bind(*invals, **params)
    if not _is_float(out):  # integer arithmetic (index computations) is exact
        return [out], [None]
    units = ROUNDING_UNITS[prim.name] if units is None else units
    if _rounded_once(prim.name, out):
        units = min(units, ONCE_ROUNDED_UNITS)
    err = _by_origin_of_nan(out, _rounding(out, units, exact=_exact_zero(prim.name, out, invals)), invals)
    inerrs = [None if e is None else _to_shape(e, jnp.shape(out)) for e in inerrs]
    carried = [e for e in inerrs if e is not None]
    if not carried:
        return [out], [err]
    if prim.name in _UNIT_COEFFICIENTS:
        return [out], [_sum(err, *carried)]
    if prim.name in ("max", "min"):
        # The result is one of the operands (at a tie either): its error is that operand's,
        # or, where the operands are closer than their errors and the exact values may be
        # ordered the other way, the larger of the two (max and min move by at most the
        # larger move of their operands: ReLU as maximum(a, 0) of an a that rounded below 0).
        a, b = invals
        pick_a, pick_b = (a >= b, b >= a) if prim.name == "max" else (a <= b, b <= a)
        shape = jnp.shape(out)
        errs = [_zeros_like(out) if e is None else _to_shape(e, shape) for e in inerrs]
        chosen = _zeros_like(out)
        for pick, error in ((pick_a, errs[0]), (pick_b, errs[1])):
            chosen = lax.max(chosen, lax.select(_to_shape(jnp.asarray(pick), shape), error, _zeros_like(out)))
        gap = lax.abs(lax.sub(*(_to_shape(lax.convert_element_type(v, BOUND_DTYPE), shape) for v in invals)))
        in_doubt = _doubt(gap, lax.add(*errs))  # the order a comparison would doubt
        return [out], [lax.add(err, lax.select(in_doubt, lax.max(*errs), chosen))]
    # Derivative coefficients in float64, like the bounds: in float32, -b/a**2 for b/a
    # overflows once a**2 underflows, while the error it scales stays finite.
    wide = [lax.convert_element_type(v, BOUND_DTYPE) if _is_float(v) else v for v in invals]
    own = err
    for coefficient, error in zip(_coefficients(eqn, wide), inerrs):
        if error is not None:
            err = lax.add(err, _to_shape(_scaled(coefficient, error), err.shape))
    if prim.name == "sqrt":
        # |sqrt(x + d) - sqrt(x)| <= sqrt(|d|) as well: finite where first order is not, at a
        # rounded zero (the norm of a gradient bfloat16 rounds to zero).
        err = lax.min(err, lax.add(own, lax.sqrt(inerrs[0])))
    err = _with_cross_term(prim.name, eqn.params, err, inerrs)
    pole = _at_a_rounded_pole(prim.name, eqn.params, out, invals, inerrs)
    if pole is not None:
        err = lax.select(pole, lax.full_like(err, jnp.inf), err)
    return [out], [err]


def _with_cross_term(name: str, params, err: jax.Array, inerrs) -> jax.Array:
    """A product's second-order term, which first order drops: (a + da)(b + db) - ab is
    b da + a db + da db, so a product adds da db and a square da^2, exactly. It is what is
    left where both factors are rounded zeros (1 - h with h rounded to 1, times a gradient
    rounded to 0): nothing in float32, a few percent of an ulp in bfloat16, all the error
    there is."""
    if name == "mul" and all(e is not None for e in inerrs):
        return lax.add(err, _to_shape(lax.mul(*inerrs), err.shape))
    squares = name == "square" or (name == "integer_pow" and params["y"] == 2)
    if squares and inerrs[0] is not None:
        return lax.add(err, lax.mul(inerrs[0], inerrs[0]))
    return err


def _structural(eqn, invals, inerrs):
    outs = eqn.primitive.bind(*invals, **eqn.params)
    outs = outs if eqn.primitive.multiple_results else [outs]
    if all(e is None for e in inerrs):
        return outs, [None] * len(outs)
    substituted = [
        (e if e is not None else _zeros_like(v)) if _is_float(v) else v
        for v, e in zip(invals, inerrs)
    ]
    errs = eqn.primitive.bind(*substituted, **eqn.params)
    errs = errs if eqn.primitive.multiple_results else [errs]
    return outs, [e.astype(BOUND_DTYPE) if _is_float(o) else None for o, e in zip(outs, errs)]


def _convert(eqn, invals, inerrs):
    out = eqn.primitive.bind(*invals, **eqn.params)
    (value,), (error,) = invals, inerrs
    if not _is_float(out) or error is None:
        return [out], [None]
    if jnp.result_type(value) == jnp.bool_:  # a decision in doubt as a 0/1 mask: maybe the other
        return [out], [lax.convert_element_type(error, BOUND_DTYPE)]
    narrowing = jnp.finfo(jnp.result_type(out)).bits < jnp.finfo(jnp.result_type(value)).bits
    exact = lax.eq(value, lax.full_like(value, 0))
    err = lax.add(error, _by_origin_of_nan(out, _rounding(out, 1, exact=exact), [value])) if narrowing else error
    return [out], [err]


# Branches. A comparison of rounded operands can come out either way when they are closer
# than their errors: the comparison then carries a *doubt* (a boolean array, where the
# value might be the other one) in place of an error, and the operations that turn a
# decision into a number charge it: a select may have taken any of its cases, a 0/1 mask
# may be the other, a sign may be the opposite. A correct closed form whose rounding flips
# a ReLU's mask (bfloat16 sums of a few bits do, near z = 0) is then charged what the flip
# costs, as the one-sided truths of DESIGN.md principle 5 allow at a kink; away from the
# threshold nothing changes. Exact ties (both operands without error: inputs, and exact
# zeros of exact zeros) are kinks the claim declares, not doubts.
_COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})
_LOGICAL = frozenset({"and", "or", "not", "xor"})


def _doubt(distance: jax.Array, error: jax.Array) -> jax.Array:
    """Where a value ``distance`` from a threshold, with ``error``, may lie on its other
    side: the error reaches past the distance. At a tie (distance 0) that is any error: an
    exact zero carries none (:func:`_exact_zero`), a zero that may be an underflowed
    product at least its floor (float16's smallest normal is 6.1e-5: a ReLU's
    pre-activation of 2e-10 is 0 there, and its mask the other one)."""
    return lax.lt(distance, error)


def _comparison(eqn, invals, inerrs, decided_by=None):
    """A comparison and its doubt. ``decided_by``: the operands (values, errors) whose order
    decides it when it compares an extreme with one of its own operands
    (:func:`_decided_by`)."""
    out = eqn.primitive.bind(*invals, **eqn.params)
    if decided_by is not None:
        invals, inerrs = decided_by
    errors = [e for e in inerrs if e is not None]
    if not errors or not all(_is_float(v) for v in invals):
        return [out], [None]
    shape = jnp.shape(out)
    a, b = (_to_shape(lax.convert_element_type(v, BOUND_DTYPE), shape) for v in invals)
    error = _sum(*(_to_shape(e, shape) for e in errors))
    return [out], [_doubt(lax.abs(lax.sub(a, b)), error)]


def _logical(eqn, invals, inerrs):
    out = eqn.primitive.bind(*invals, **eqn.params)
    doubts = [_to_shape(e, jnp.shape(out)) for e in inerrs if e is not None]
    if not doubts or out.dtype != jnp.bool_:
        return [out], [None]
    doubt = doubts[0]
    for more in doubts[1:]:
        doubt = lax.bitwise_or(doubt, more)
    return [out], [doubt]


def _select(eqn, invals, inerrs):
    """``select_n(which, *cases)``: the chosen case's error; where ``which`` is in doubt, as
    far as any other case, plus its error."""
    which, *cases = invals
    doubt, *case_errs = inerrs
    out = eqn.primitive.bind(*invals, **eqn.params)
    if not _is_float(out):
        return [out], [None]
    shape = jnp.shape(out)
    errs = [_to_shape(e, shape) if e is not None else _zeros_like(out) for e in case_errs]
    err = lax.select_n(which, *errs) if len(errs) > 1 else errs[0]
    if doubt is None:
        return [out], [err]
    wide = [_to_shape(lax.convert_element_type(c, BOUND_DTYPE), shape) for c in cases]
    chosen = lax.convert_element_type(out, BOUND_DTYPE)
    reach = _zeros_like(out)
    for value, error in zip(wide, errs):
        reach = lax.max(reach, lax.add(lax.abs(lax.sub(value, chosen)), error))
    return [out], [lax.select(_to_shape(doubt, shape), lax.max(err, reach), err)]


def _sign(eqn, invals, inerrs):
    (x,), (error,) = invals, inerrs
    out = eqn.primitive.bind(x, **eqn.params)
    if error is None:
        return [out], [None]
    doubt = _doubt(lax.abs(lax.convert_element_type(x, BOUND_DTYPE)), error)
    # The true sign may be the opposite one: two apart.
    return [out], [lax.select(doubt, lax.full_like(error, 2.0), _zeros_like(out))]


def _summation(eqn, invals, inerrs, terms: int, probed: bool = False):
    """A sum of at most ``terms`` terms per output (a reduction, a running or windowed sum):
    the recursive-summation bound (K - 1) eps sum|x|, whatever the order, plus the terms'
    own errors summed alike. ``probed``: an operation the platform's probe of narrow
    dtypes covers (a reduction, not a running or windowed sum)."""
    (value,), (error,) = invals, inerrs
    out = eqn.primitive.bind(value, **eqn.params)
    if not _is_float(out):  # counting (a determinant's pivot parity) is exact
        return [out], [None]
    err = _accumulation(out, max(terms - 1, 0), eqn.primitive.bind(_magnitude(value), **eqn.params), probed)
    if error is not None:
        err = lax.add(err, eqn.primitive.bind(error, **eqn.params))
    return [out], [err]


def _accumulation(out, terms: int, magnitudes, probed: bool) -> jax.Array:
    """The rounding of a sum of ``terms`` terms of total magnitude ``magnitudes``: the
    recursive-summation bound in the result's dtype, or, where the platform accumulates
    a narrow dtype in float32 (:mod:`derivcheck._narrow`), float32's bound and one final
    rounding."""
    narrow = _NARROW.get()
    exact = lax.eq(magnitudes, 0.0)  # every term an exact zero: so is the sum
    if (not probed or narrow is None or not narrow.wide_accumulation
            or jnp.result_type(out) != jnp.dtype(narrow.dtype)):
        return _rounding(out, terms, magnitudes, exact=exact)
    return lax.add(_rounding(out, ONCE_ROUNDED_UNITS, exact=exact),
                   _rounding(out, terms, magnitudes, computed_in=jnp.float32, exact=exact))


def _rounded_once(name: str, out: Any) -> bool:
    """Whether the platform computes ``name`` in float32 and rounds once to ``out``'s narrow
    dtype (:mod:`derivcheck._narrow`)."""
    narrow = _NARROW.get()
    return narrow is not None and name in narrow.once_rounded and jnp.result_type(out) == jnp.dtype(narrow.dtype)


def _reduce_sum(eqn, invals, inerrs):
    return _summation(eqn, invals, inerrs, math.prod(np.shape(invals[0])[a] for a in eqn.params["axes"]), probed=True)


def _contraction(eqn, invals, inerrs, terms: int, probed: bool = False):
    """A bilinear contraction (dot_general, conv) whose outputs each sum ``terms`` products;
    ``probed`` as for :func:`_summation` (a matrix product, not a convolution)."""
    (a, b), (ea, eb) = invals, inerrs
    out = eqn.primitive.bind(a, b, **eqn.params)
    params = dict(eqn.params, preferred_element_type=BOUND_DTYPE)

    def contract(x, y):
        return eqn.primitive.bind(x, y, **params)

    abs_a, abs_b = _magnitude(a), _magnitude(b)
    magnitudes = contract(abs_a, abs_b)
    err = _accumulation(out, terms, magnitudes, probed)
    # Operands rounded to a narrower format first: |fl(a) fl(b) - ab| <= (2u + u^2)|a||b|.
    unit = matmul_input_unit(_PLATFORM.get(), eqn.params.get("precision"), jnp.result_type(a))
    if unit:
        err = lax.add(err, lax.mul(magnitudes, 2 * unit + unit * unit))
    if eb is not None:
        err = lax.add(err, contract(abs_a, eb))
    if ea is not None:
        err = lax.add(err, contract(ea, abs_b))
    if ea is not None and eb is not None:  # the products' second-order terms (_with_cross_term)
        err = lax.add(err, contract(ea, eb))
    return [out], [err]


def _dot_general(eqn, invals, inerrs):
    (contract_a, _), _ = eqn.params["dimension_numbers"]
    return _contraction(eqn, invals, inerrs, math.prod(np.shape(invals[0])[d] for d in contract_a), probed=True)


# The platform the traced function will run on: it decides how float32 matmuls round.
_PLATFORM: contextvars.ContextVar[str] = contextvars.ContextVar("derivcheck_platform", default="cpu")
# How that platform computes the checked narrow dtype, where one is checked (_narrow).
_NARROW: contextvars.ContextVar[NarrowArithmetic | None] = contextvars.ContextVar("derivcheck_narrow", default=None)

#: Unit roundoff of the float32 *operands* of a matrix product at reduced precision, per
#: platform: GPUs round them to TensorFloat-32 (10 mantissa bits, u = 2^-11), TPUs to
#: bfloat16 (7 bits, u = 2^-8). The CPU always multiplies in float32. Precision.HIGH
#: (bfloat16 in three passes on TPUs, TensorFloat-32 on GPUs) is charged like DEFAULT:
#: an upper bound.
_REDUCED_MATMUL_UNIT: dict[str, float] = {"gpu": 2.0**-11, "cuda": 2.0**-11, "rocm": 2.0**-11, "tpu": 2.0**-8}


def matmul_input_unit(platform: str, precision: Any, dtype: Any) -> float:
    """Unit roundoff applied to each operand of a ``dtype`` matmul before multiplying.

    ``precision`` is the dot's ``precision`` parameter (None, a :class:`jax.lax.Precision`
    or a pair of them). Only float32 products at a precision below HIGHEST are affected.
    """
    if jnp.dtype(dtype) != jnp.float32:
        return 0.0
    pair = precision if isinstance(precision, tuple) else (precision, precision)
    if all(p == lax.Precision.HIGHEST for p in pair):
        return 0.0
    return _REDUCED_MATMUL_UNIT.get(platform, 0.0)


def _exact(eqn, invals, inerrs):
    outs = eqn.primitive.bind(*invals, **eqn.params)
    outs = outs if eqn.primitive.multiple_results else [outs]
    return outs, [None] * len(outs)


def _integer_pow(eqn, invals, inerrs):
    # x**y by repeated multiplication: one rounding per multiplication.
    return _elementwise(eqn, invals, inerrs, units=abs(eqn.params["y"]))


def nested_jaxpr(eqn) -> tuple[core.Jaxpr, Sequence[Any]] | None:
    """The jaxpr and consts of a nested call (jit, custom_jvp, ...), or None."""
    for name in _NESTED_JAXPR_PARAMS:
        inner = eqn.params.get(name)
        if inner is not None:
            return (inner.jaxpr, inner.consts) if isinstance(inner, core.ClosedJaxpr) else (inner, ())
    return None


def _nested(eqn, invals, inerrs):
    inner = nested_jaxpr(eqn)
    if inner is None:
        raise UnsupportedPrimitive(f"no inner jaxpr found for {eqn.primitive.name}")
    return _eval_jaxpr(*inner, invals, inerrs)


_NESTED = frozenset({
    "pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
    "custom_vjp_call_jaxpr", "remat", "remat2", "checkpoint",
})


def _cumsum(eqn, invals, inerrs):
    """A running sum: each prefix sums at most the axis length's terms."""
    return _summation(eqn, invals, inerrs, np.shape(invals[0])[eqn.params["axis"]])


def _reduce_window_sum(eqn, invals, inerrs):
    """A windowed sum (average pooling): each output sums one window."""
    return _summation(eqn, invals, inerrs, math.prod(eqn.params["window_dimensions"]))


def _conv(eqn, invals, inerrs):
    """A convolution is a contraction, bounded like :func:`_dot_general`: each output sums
    ``K`` products, K = the kernel's size over its output-feature axis."""
    kernel = np.shape(invals[1])
    out_feature_axis = eqn.params["dimension_numbers"].rhs_spec[0]
    return _contraction(eqn, invals, inerrs, math.prod(kernel) // max(kernel[out_feature_axis], 1))


def _largest_along(error: jax.Array, axis: int, shape: tuple[int, ...]) -> jax.Array:
    """The largest error along ``axis``, broadcast to ``shape``."""
    largest = lax.reduce_max(error, (axis,))
    kept = tuple(d for d in range(error.ndim) if d != axis)
    return lax.broadcast_in_dim(largest, shape, kept)


def _sort(eqn, invals, inerrs):
    """Sorting permutes values. The k-th smallest of values each within ``e`` of the truth
    is within max(e) of the true k-th smallest, so keys get the largest key error along the
    sorted axis. Other operands follow the keys: exact where the keys are exact (their
    errors are permuted alike), else any element of the axis (its range plus max error)."""
    outs = eqn.primitive.bind(*invals, **eqn.params)
    axis, keys = eqn.params["dimension"], eqn.params["num_keys"]
    floats = [i for i, v in enumerate(invals) if _is_float(v)]
    errs = [None if e is None and i in floats else e for i, e in enumerate(inerrs)]
    if all(errs[i] is None for i in floats):
        return outs, [None] * len(outs)
    full = [(_zeros_like(v) if errs[i] is None else errs[i]) if i in floats else None for i, v in enumerate(invals)]
    key_error = None
    for i in range(keys):
        if full[i] is not None:
            largest = _largest_along(full[i], axis, np.shape(invals[i]))
            key_error = largest if key_error is None else lax.max(key_error, largest)
    permuted = eqn.primitive.bind(*invals, *(full[i] for i in floats),
                                  **dict(eqn.params, num_keys=keys))[len(invals):]
    out_errs: list[Any] = [None] * len(outs)
    for k, i in enumerate(floats):
        if i < keys:
            out_errs[i] = key_error
            continue
        value = lax.convert_element_type(invals[i], BOUND_DTYPE)
        spread = lax.sub(_largest_along(value, axis, value.shape),
                         lax.neg(_largest_along(lax.neg(value), axis, value.shape)))
        anywhere = lax.add(spread, _largest_along(full[i], axis, value.shape))
        exact_keys = lax.eq(key_error, 0.0) if key_error is not None else None
        out_errs[i] = permuted[k] if exact_keys is None else lax.select(exact_keys, permuted[k], anywhere)
    return outs, out_errs


def _top_k(eqn, invals, inerrs):
    """The k largest values: like sorting, each within the largest error along the axis."""
    values, indices = eqn.primitive.bind(*invals, **eqn.params)
    (error,) = inerrs
    if error is None:
        return [values, indices], [None, None]
    axis = eqn.params.get("axis", np.ndim(invals[0]) - 1)
    return [values, indices], [_largest_along(error, axis, values.shape), None]


def _closed(inner) -> tuple[core.Jaxpr, Sequence[Any]]:
    return (inner.jaxpr, inner.consts) if isinstance(inner, core.ClosedJaxpr) else (inner, ())


def _dense(values, errors):
    """Errors as arrays (zeros for exact float values), None for non-float values: a loop
    carries a fixed structure."""
    return [(_zeros_like(v) if e is None else e) if _is_float(v) else None for v, e in zip(values, errors)]


def _cond(eqn, invals, inerrs):
    """``lax.cond`` / ``switch``: every branch interpreted, the one taken selected."""
    index, *operands = invals
    branches = [_eval_jaxpr(*_closed(b), operands, inerrs[1:]) for b in eqn.params["branches"]]
    n = len(branches[0][0])
    outs = [lax.select_n(index, *(b[0][k] for b in branches)) for k in range(n)]
    errs = []
    for k in range(n):
        if not _is_float(outs[k]) or all(b[1][k] is None for b in branches):
            errs.append(None)
            continue
        options = [b[1][k] if b[1][k] is not None else _zeros_like(outs[k]) for b in branches]
        errs.append(lax.select_n(index, *options))
    return outs, errs


def _carried(errors):
    """Loop-carried errors with None (exact, non-float) as placeholders a loop can carry."""
    return [jnp.zeros((), jnp.int8) if e is None else e for e in errors]


def _uncarried(errors, template):
    return [None if t is None else e for e, t in zip(errors, template)]


def _while(eqn, invals, inerrs):
    """``lax.while_loop`` (and ``fori_loop``): the body interpreted, errors carried along.
    The loop stops where the checked values' loop stops."""
    p = eqn.params
    nc, start = p["cond_nconsts"], p["cond_nconsts"] + p["body_nconsts"]
    cond_consts, body_consts, body_const_errs = invals[:nc], invals[nc:start], inerrs[nc:start]
    init, init_errs = invals[start:], _dense(invals[start:], inerrs[start:])
    cond_jaxpr, body_jaxpr = _closed(p["cond_jaxpr"]), _closed(p["body_jaxpr"])

    def cond_fun(carry):
        values, _ = carry
        return _eval_jaxpr(*cond_jaxpr, [*cond_consts, *values], [None] * (len(cond_consts) + len(values)))[0][0]

    def body_fun(carry):
        values, errors = carry
        outs, errs = _eval_jaxpr(*body_jaxpr, [*body_consts, *values],
                                 [*body_const_errs, *_uncarried(errors, init_errs)])
        return list(outs), _carried(_dense(outs, errs))

    outs, errs = lax.while_loop(cond_fun, body_fun, (list(init), _carried(init_errs)))
    return outs, _uncarried(errs, init_errs)


def _scan(eqn, invals, inerrs):
    """``lax.scan`` (and ``fori_loop`` with a fixed trip count): the body interpreted on the
    values and their errors, carry and stacked outputs alike."""
    p = eqn.params
    nc, ncarry = p["num_consts"], p["num_carry"]
    consts, const_errs = invals[:nc], inerrs[:nc]
    init, init_errs = invals[nc:nc + ncarry], _dense(invals[nc:nc + ncarry], inerrs[nc:nc + ncarry])
    xs, xs_errs = invals[nc + ncarry:], _dense(invals[nc + ncarry:], inerrs[nc + ncarry:])
    body = _closed(p["jaxpr"])
    y_template: list[Any] = []

    def step(carry, x):
        values, errors = carry
        x_values, x_errors = x
        outs, errs = _eval_jaxpr(*body, [*consts, *values, *x_values],
                                 [*const_errs, *_uncarried(errors, init_errs), *_uncarried(x_errors, xs_errs)])
        dense = _dense(outs, errs)
        y_template[:] = dense[ncarry:]
        return (list(outs[:ncarry]), _carried(dense[:ncarry])), (list(outs[ncarry:]), _carried(dense[ncarry:]))

    (carry, carry_errs), (ys, ys_errs) = lax.scan(
        step, (list(init), _carried(init_errs)), (list(xs), _carried(xs_errs)),
        length=p["length"], reverse=p["reverse"], unroll=p.get("unroll", 1))
    return [*carry, *ys], [*_uncarried(carry_errs, init_errs), *_uncarried(ys_errs, y_template)]


# Operations whose bound is estimated (see :func:`_estimated`) are recorded here while a
# function is interpreted, so that its result can name them.
_ESTIMATED: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("derivcheck_estimated", default=None)

# Host callbacks declare their result dtype: they cannot be evaluated in another one, so
# their own rounding is only the floor of :func:`_estimated`.
_FIXED_DTYPE = frozenset({"pure_callback", "io_callback"})

def _has_inner_jaxpr(params) -> bool:
    """Whether an operation's parameters hold jaxprs, whose types fix its operands'."""
    def inner(v):
        if isinstance(v, core.ClosedJaxpr | core.Jaxpr):
            return True
        return isinstance(v, tuple | list) and any(inner(x) for x in v)

    return any(inner(v) for v in params.values())


def _linear_solve(eqn, invals, inerrs):
    """``lax.custom_linear_solve`` (``jnp.linalg.solve``): its ``solve`` jaxpr interpreted."""
    lengths, jaxprs = eqn.params["const_lengths"], eqn.params["jaxprs"]
    start = lengths.matvec + lengths.vecmat
    stop = start + lengths.solve
    total = stop + lengths.transpose_solve
    args = [*invals[start:stop], *invals[total:]]
    errs = [*inerrs[start:stop], *inerrs[total:]]
    return _eval_jaxpr(*_closed(jaxprs.solve), args, errs)


#: Sign patterns the operands' carried errors are applied with in an estimate: all up, and
#: alternating (a linear map of mixed signs would cancel a uniform shift).
_ESTIMATE_SIGNS = (1.0, -1.0)


def _alternating(shape: tuple[int, ...]) -> np.ndarray:
    return np.where(np.arange(math.prod(shape)) % 2 == 0, 1.0, -1.0).reshape(shape)


def _estimated(eqn, invals, inerrs):
    r"""A measured bound for an operation without a derived one.

    Own rounding: the operation evaluated on the operands in float64 and in float32; the
    difference, rescaled from float32's epsilon to the result's (first-order rounding is
    linear in epsilon), or the same next to the operands where larger (an elementwise
    kernel, :func:`_kernel_noise`), and never less than :math:`n\,\epsilon\,|out|` with n the size of the
    last axis (the :math:`\gamma_n` of a backward-stable matrix algorithm at condition 1).
    Carried error: the largest change of the float64 result when every operand moves by its
    carried error, all in one direction or with alternating signs. Recorded in
    :data:`_ESTIMATED` for the result.
    """
    collected = _ESTIMATED.get()
    if collected is not None:
        collected.add(eqn.primitive.name)
    prim, params = eqn.primitive, eqn.params
    outs = prim.bind(*invals, **params)
    outs = list(outs) if prim.multiple_results else [outs]
    fixed_dtype = prim.name in _FIXED_DTYPE or _has_inner_jaxpr(params)

    def rebound(dtype, moved=None):
        args = [v if moved is None or moved[k] is None else moved[k] for k, v in enumerate(invals)]
        if fixed_dtype:  # it returns its declared dtype whatever it is given
            args = [lax.convert_element_type(a, jnp.result_type(v)) if _is_float(v) else a
                    for a, v in zip(args, invals)]
            dtype = None
        try:
            result = prim.bind(*(lax.convert_element_type(a, dtype) if dtype is not None and _is_float(a) else a
                                 for a in args), **params)
        except Exception:  # an operation whose parameters fix its dtype (a nested solve) keeps it
            result = prim.bind(*(lax.convert_element_type(a, jnp.result_type(v)) if _is_float(v) else a
                                 for a, v in zip(args, invals)), **params)
        result = list(result) if prim.multiple_results else [result]
        return [lax.convert_element_type(r, BOUND_DTYPE) if _is_float(r) else r for r in result]

    wide = rebound(BOUND_DTYPE)
    narrow = rebound(jnp.float32)
    noise = _kernel_noise(rebound, invals, outs) if not fixed_dtype else None
    moves = []
    if any(e is not None for e in inerrs):
        for sign in _ESTIMATE_SIGNS:
            moved = [None if e is None else lax.add(lax.convert_element_type(v, BOUND_DTYPE),
                                                     lax.mul(e, sign if sign > 0 else _alternating(e.shape)))
                     for v, e in zip(invals, inerrs)]
            moves.append(rebound(BOUND_DTYPE, moved))
    errs: list[Any] = []
    for k, out in enumerate(outs):
        if not _is_float(out):
            errs.append(None)
            continue
        n = np.shape(out)[-1] if np.ndim(out) else 1
        scale = _eps(out) / float(jnp.finfo(jnp.float32).eps)
        observed = lax.mul(lax.abs(lax.sub(narrow[k], wide[k])), scale)
        if noise is not None:
            observed = lax.max(observed, lax.mul(noise[k], scale))
        own = _rounding(out, max(n, 1))
        own = lax.select(lax.is_finite(observed), lax.max(own, observed), own)
        err = own
        for moved in moves:
            change = lax.abs(lax.sub(moved[k], wide[k]))
            err = lax.add(err, lax.select(lax.is_finite(change), change, lax.full_like(change, jnp.inf)))
        errs.append(err)
    return outs, errs


#: Relative moves, in float32 ulps, of the operands at which an elementwise kernel's
#: rounding is measured besides the operands themselves (:func:`_kernel_noise`).
_NOISE_ULPS = tuple(sign * float(round(1.4**k)) for k in range(2, 26) for sign in (-1.0, 1.0))


def _kernel_noise(rebound, invals, outs):
    r"""The float32 rounding of an elementwise kernel next to its operands: the largest
    :math:`|f_{32}(x') - f_{64}(x')|` over operands :math:`x'` moved by a few float32 ulps.

    XLA compiles one kernel differently in different fusions (float32 lgamma(2) is 0 in
    one, 4 ulps of 1 in another; lgamma(1.3734) off by 2 ulps of 1 alone, by 6 fused with
    its bound), so its error at the operand itself, measured in one compilation, can miss
    the other's. The error is the absolute noise of the terms the kernel sums (up to 10
    ulps of 1 near lgamma's minimum, 26 near 3.9, measured on 200,001 points in [1, 4]),
    which the neighbours share (the magnitudes of the terms barely move within 4,500 ulps):
    the largest over 48 of them stands for it. Operations that are not elementwise (a
    decomposition, a cumulative product): None, their rounding is measured at the operands.
    """
    floats = [v for v in invals if _is_float(v)]
    if len(outs) != 1 or not floats or any(np.shape(v) != np.shape(outs[0]) for v in floats):
        return None
    noise = None
    for ulps in _NOISE_ULPS:
        factor = 1.0 + ulps * float(jnp.finfo(jnp.float32).eps)
        moved = [lax.convert_element_type(lax.mul(lax.convert_element_type(v, BOUND_DTYPE), factor), jnp.float32)
                 if _is_float(v) else None for v in invals]
        wide = rebound(BOUND_DTYPE, [None if m is None else lax.convert_element_type(m, BOUND_DTYPE) for m in moved])
        narrow = rebound(jnp.float32, moved)
        here = lax.abs(lax.sub(narrow[0], wide[0]))
        here = lax.select(lax.is_finite(here), here, lax.full_like(here, 0.0))
        noise = here if noise is None else lax.max(noise, here)
    return [noise]


def _wide(*values):
    return [None if v is None else lax.convert_element_type(v, BOUND_DTYPE) for v in values]


def _limits(x) -> dict[str, float]:
    return {"eps": _eps(x), "tiny": float(jnp.finfo(jnp.result_type(x)).tiny)}


def _square(x) -> bool:
    return np.ndim(x) >= 2 and np.shape(x)[-1] == np.shape(x)[-2]


def _triangular_solve(eqn, invals, inerrs):
    """Triangular solves: Higham's componentwise bound (:func:`~derivcheck._linalg_bounds.triangular_solve_error`)."""
    x = eqn.primitive.bind(*invals, **eqn.params)
    p = eqn.params
    if p.get("conjugate_a") and jnp.iscomplexobj(invals[0]):
        return _estimated(eqn, invals, inerrs)
    err = _linalg_bounds.triangular_solve_error(
        *_wide(*invals, x, *inerrs), left_side=p["left_side"], lower=p["lower"],
        transpose_a=p["transpose_a"], unit_diagonal=p["unit_diagonal"], **_limits(x))
    return [x], [err]


def _cholesky(eqn, invals, inerrs):
    """Cholesky: Higham's backward error through the factor's perturbation theory."""
    (a,), (ea,) = invals, inerrs
    factor = eqn.primitive.bind(a, **eqn.params)
    return [factor], [_linalg_bounds.cholesky_error(*_wide(a, factor, ea), **_limits(factor))]


def _lu(eqn, invals, inerrs):
    """Pivoted LU of a square matrix (a rectangular one is estimated)."""
    (a,), (ea,) = invals, inerrs
    if not _square(a):
        return _estimated(eqn, invals, inerrs)
    packed, pivots, permutation = eqn.primitive.bind(a, **eqn.params)
    wide_packed, wide_err = _wide(packed, ea)
    err = _linalg_bounds.lu_error(wide_packed, permutation, wide_err, **_limits(packed))
    return [packed, pivots, permutation], [err, None, None]


def _eigh(eqn, invals, inerrs):
    """The symmetric eigenproblem: a backward-stable solver, scaled by the eigenvalue gaps."""
    (a,), (ea,) = invals, inerrs
    if eqn.params.get("subset_by_index") not in (None, (0, np.shape(a)[-1])) or jnp.iscomplexobj(a):
        return _estimated(eqn, invals, inerrs)
    v, w = eqn.primitive.bind(a, **eqn.params)
    err_v, err_w = _linalg_bounds.eigh_error(*_wide(a, v, w, ea), lower=eqn.params["lower"], **_limits(w))
    return [v, w], [err_v, err_w]


def _svd(eqn, invals, inerrs):
    """The SVD: singular values always; singular vectors of a square matrix (else estimated)."""
    (a,), (ea,) = invals, inerrs
    compute_uv = eqn.params["compute_uv"]
    if (eqn.params.get("subset_by_index") not in (None, (0, min(np.shape(a)[-2:])))
            or jnp.iscomplexobj(a) or (compute_uv and not _square(a))):
        return _estimated(eqn, invals, inerrs)
    outs = eqn.primitive.bind(a, **eqn.params)
    s, u, vt = outs if compute_uv else (outs[0], None, None)
    errs = _linalg_bounds.svd_error(*_wide(a, s, u, vt, ea), **_limits(s))
    return list(outs), list(errs[:len(outs)])


def _qr(eqn, invals, inerrs):
    """Householder QR, reduced (or square), unpivoted; any other form is estimated."""
    (a,), (ea,) = invals, inerrs
    m, n = np.shape(a)[-2:]
    if eqn.params.get("pivoting") or jnp.iscomplexobj(a) or m < n or (m > n and eqn.params["full_matrices"]):
        return _estimated(eqn, invals, inerrs)
    q, r = eqn.primitive.bind(a, **eqn.params)
    err_q, err_r = _linalg_bounds.qr_error(*_wide(a, q, r, ea), **_limits(r))
    return [q, r], [err_q, err_r]


_RULES: dict[str, Callable] = {
    **dict.fromkeys(_COMPARISONS, _comparison),
    **dict.fromkeys(_LOGICAL, _logical),
    "select_n": _select,
    "sign": _sign,
    "integer_pow": _integer_pow,
    "convert_element_type": _convert,
    "reduce_sum": _reduce_sum,
    "dot_general": _dot_general,
    "cumsum": _cumsum,
    "reduce_window_sum": _reduce_window_sum,
    "conv_general_dilated": _conv,
    "sort": _sort,
    "top_k": _top_k,
    "cond": _cond,
    "while": _while,
    "scan": _scan,
    "custom_linear_solve": _linear_solve,
    "triangular_solve": _triangular_solve,
    "cholesky": _cholesky,
    "lu": _lu,
    "eigh": _eigh,
    "svd": _svd,
    "qr": _qr,
}


def _rule(name: str) -> Callable:
    if name in _RULES:
        return _RULES[name]
    if name in ROUNDING_UNITS:
        return _elementwise
    if name in _STRUCTURAL:
        return _structural
    if name in _EXACT_RESULT:
        return _exact
    if name in _NESTED:
        return _nested
    return _estimated


@contextlib.contextmanager
def recording_estimates() -> Iterator[set[str]]:
    """Collect, while functions are interpreted, the operations whose bound is estimated;
    a recording inside another adds what it collected to the outer one too."""
    outer = _ESTIMATED.get()
    collected: set[str] = set()
    token = _ESTIMATED.set(collected)
    try:
        yield collected
    finally:
        _ESTIMATED.reset(token)
        if outer is not None:
            outer |= collected


#: A constant whose significand fits in this many bits (1.0, 0.5, 3.0, 1000.0) is taken as
#: written exactly; any other was rounded when it entered the function's dtype.
SHORT_CONSTANT_BITS = 12


def constant_rounding(value: Any) -> np.ndarray | None:
    r"""The error a constant of a function carries: none for a short binary fraction, else
    one rounding, :math:`\epsilon\,|c|`.

    ``0.01`` in a float32 function is the float32 number nearest to 0.01, 2.2e-10 away: the
    function computes with that number, and a bound that took the constant as exact would
    fail a correct ``where(x > 0, 1, 0.01)`` against its float64 truth. The value as written
    is gone once traced, so a constant whose significand needs more than
    :data:`SHORT_CONSTANT_BITS` bits is charged, whatever it was meant to be.
    """
    if isinstance(value, jax.core.Tracer) or not _is_float(value):
        return None
    c = np.asarray(value)
    if c.dtype.kind != "f" or c.size > 4096:
        return None
    mantissa, _ = np.frexp(c.astype(np.float64))
    scaled = mantissa * 2.0**SHORT_CONSTANT_BITS
    long = np.isfinite(c) & (scaled != np.round(scaled))
    if not long.any():
        return None
    return (np.abs(c.astype(np.float64)) * float(jnp.finfo(c.dtype).eps) * long).astype(np.float64)


def _same_atom(u, w) -> bool:
    """Whether two jaxpr atoms denote one value: one variable, or equal literals."""
    if isinstance(u, core.Var) and isinstance(w, core.Var):
        return u is w
    if isinstance(u, core.Literal) and isinstance(w, core.Literal):
        return bool(np.shape(u.val) == np.shape(w.val) and np.array_equal(u.val, w.val))
    return False


def _decided_by(eqn, extremes: dict[Any, tuple[Any, Any]]) -> tuple[Any, Any] | None:
    """The atoms whose order decides a comparison of an extreme with one of its operands.

    ``x == max(x, q)`` holds exactly when ``x >= q``: the two sides are one value wherever
    the comparison is true, so its doubt is that of ``x`` against ``q``, not of two
    independently rounded values (JAX's derivative of ``maximum``, ``minimum`` and ``clip``
    asks exactly this; charged as independent, every point of a hinge loss was in doubt)."""
    if eqn.primitive.name not in _COMPARISONS or len(eqn.invars) != 2:
        return None
    x, y = eqn.invars
    for extreme, other in ((y, x), (x, y)):
        if isinstance(extreme, core.Var) and extreme in extremes:
            p, q = extremes[extreme]
            if _same_atom(other, p):
                return p, q
            if _same_atom(other, q):
                return q, p
    return None


def _eval_jaxpr(jaxpr: core.Jaxpr, consts: Sequence[Any], args, errs):
    values: dict[Any, Any] = {}
    errors: dict[Any, Any] = {}
    extremes: dict[Any, tuple[Any, Any]] = {}  # max/min outputs: their two operands

    def read(var):
        if isinstance(var, core.Literal):
            return var.val, constant_rounding(var.val)
        return values[var], errors[var]

    for var, const in zip(jaxpr.constvars, consts):
        values[var], errors[var] = const, constant_rounding(const)
    for var, arg, err in zip(jaxpr.invars, args, errs):
        values[var], errors[var] = arg, err
    for eqn in jaxpr.eqns:
        invals, inerrs = zip(*(read(v) for v in eqn.invars)) if eqn.invars else ((), ())
        # Booleans carry their doubt (a comparison's, :func:`_comparison`) as their error.
        inerrs = tuple(e if _is_float(v) or jnp.result_type(v) == jnp.bool_ else None
                       for v, e in zip(invals, inerrs))
        decided = _decided_by(eqn, extremes)
        if eqn.primitive.name in _COMPARISONS and _same_atom(*eqn.invars):
            # x != x tests for NaN: one value on both sides, never in doubt.
            outs, out_errs = [eqn.primitive.bind(*invals, **eqn.params)], [None]
        elif decided is not None:
            pair = [read(v) for v in decided]
            outs, out_errs = _comparison(eqn, list(invals), list(inerrs),
                                         decided_by=([v for v, _ in pair], [e for _, e in pair]))
        else:
            outs, out_errs = _rule(eqn.primitive.name)(eqn, list(invals), list(inerrs))
        if eqn.primitive.name in ("max", "min") and len(eqn.invars) == 2:
            extremes[eqn.outvars[0]] = tuple(eqn.invars)
        for var, out, err in zip(eqn.outvars, outs, out_errs):
            values[var], errors[var] = out, err
    results = [read(v) for v in jaxpr.outvars]
    return [r[0] for r in results], [r[1] for r in results]


# Operations whose derivative jumps where an operand meets a threshold: at such a point
# autodiff returns one convention (max at a tie: 1/2 each; abs at 0: 0), not a truth.
_TIE_AT_ZERO = frozenset({"abs", "sign"})
_TIE_BETWEEN = frozenset({"max", "min", "lt", "le", "gt", "ge", "eq", "ne"})
_LOOK_INSIDE = frozenset({"pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
                          "custom_vjp_call_jaxpr", "remat", "remat2", "checkpoint"})


def _ties_in(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> tuple[list[Any], jax.Array]:
    values: dict[Any, Any] = dict(zip(jaxpr.constvars, consts))
    values.update(zip(jaxpr.invars, args))
    tie = jnp.zeros((), bool)

    def read(var):
        return var.val if isinstance(var, core.Literal) else values[var]

    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        inner = nested_jaxpr(eqn) if name in _LOOK_INSIDE else None
        if inner is not None:
            outs, inner_tie = _ties_in(*inner, invals)
            tie = lax.bitwise_or(tie, inner_tie)
        else:
            outs = eqn.primitive.bind(*invals, **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
            floats = [v for v in invals if _is_float(v)]
            if name in _TIE_AT_ZERO and floats:
                tie = lax.bitwise_or(tie, jnp.any(lax.eq(floats[0], jnp.zeros_like(floats[0]))))
            elif name in _TIE_BETWEEN and len(floats) == 2:
                a, b = floats
                # x != x is a NaN test, not a kink.
                same_operand = isinstance(eqn.invars[0], core.Var) and eqn.invars[0] is eqn.invars[1]
                if not same_operand:
                    tie = lax.bitwise_or(tie, jnp.any(a == b))
        values.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars], tie


def at_a_tie(fn: Callable[..., Any], *args: Any) -> jax.Array:
    """Whether evaluating ``fn(*args)`` passes through a kink: ``abs`` or ``sign`` of an exact
    0, ``max``/``min`` or a float comparison of two equal operands (nested jitted functions
    and custom rules' primal computations included; loop and cond bodies are not looked
    into). A boolean scalar; vmap it for a batch."""
    flat, tree = jax.tree_util.tree_flatten(args)
    closed = jax.make_jaxpr(lambda *f: fn(*jax.tree_util.tree_unflatten(tree, list(f))))(*flat)
    return _ties_in(closed.jaxpr, closed.consts, flat)[1]


def evaluate_with_bound(fn: Callable[..., Any], *args: Any, platform: str = "cpu",
                        narrow: NarrowArithmetic | None = None, errors: Sequence[Any] | None = None,
                        exact: list[bool] | None = None) -> tuple[Any, Any]:
    """Evaluate ``fn(*args)`` and a first-order bound on its rounding error.

    The arguments are taken as exact (they are the point being checked), unless ``errors``
    gives a bound per leaf of ``args`` (None: exact), as the bound of a computation they
    are the outputs of. Returns the output pytree and a pytree of the same structure
    holding, per element, a float64 upper bound on the absolute rounding error of that
    element. ``exact``: a list to which is appended, per output leaf, whether its bound is
    exactly zero by construction (an argument passed through, an exact operation of
    exact operands): passed on as None in ``errors``, it lets a computation be bounded in
    two parts, ``g`` on the outputs of ``f``, exactly as ``g(f(x))`` in one.
    ``platform`` is where the result will run: float32 matrix products below HIGHEST
    precision round their operands there (:func:`matmul_input_unit`). ``narrow``: how it
    computes bfloat16 or float16, where its probe found better than the worst case
    (:func:`derivcheck._narrow.narrow_arithmetic`).
    """
    token, narrow_token = _PLATFORM.set(platform), _NARROW.set(narrow)
    try:
        return _evaluate_with_bound(fn, args, errors, exact)
    finally:
        _PLATFORM.reset(token)
        _NARROW.reset(narrow_token)


def _evaluate_with_bound(fn: Callable[..., Any], args, errors, exact) -> tuple[Any, Any]:
    flat_args, in_tree = jax.tree_util.tree_flatten(args)
    avals = [jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)) for a in flat_args]

    def flat_fn(*flat):
        return fn(*jax.tree_util.tree_unflatten(in_tree, list(flat)))

    closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*avals)
    in_errs = list(errors) if errors is not None else [None] * len(flat_args)
    if len(in_errs) != len(flat_args):
        raise ValueError(f"{len(in_errs)} error bounds for {len(flat_args)} arguments")
    outs, errs = _eval_jaxpr(closed.jaxpr, closed.consts, flat_args, in_errs)
    if exact is not None:
        exact.extend(e is None for e in errs)
    errs = [e if e is not None else _zeros_like(o) for o, e in zip(outs, errs)]
    out_tree = jax.tree_util.tree_structure(out_shape)
    return (
        jax.tree_util.tree_unflatten(out_tree, outs),
        jax.tree_util.tree_unflatten(out_tree, errs),
    )
