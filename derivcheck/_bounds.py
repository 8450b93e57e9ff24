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

An operation this module does not know raises :class:`UnsupportedPrimitive`: a bound is
never guessed.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core

__all__ = ["ROUNDING_UNITS", "UnsupportedPrimitive", "evaluate_with_bound", "matmul_input_unit", "nested_jaxpr"]

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
}

# Operations that move or select values without arithmetic: the same operation applied to
# the errors gives the errors of the result (max/min reductions: an upper bound).
_STRUCTURAL = frozenset({
    "broadcast_in_dim", "reshape", "transpose", "squeeze", "expand_dims", "slice",
    "dynamic_slice", "dynamic_update_slice", "concatenate", "pad", "rev", "gather",
    "copy", "copy_p", "split", "select_n", "reduce_max", "reduce_min", "stop_gradient",
    "scatter-add", "scatter_add", "optimization_barrier",
})

# Operations whose result carries no rounding error in the sense used here: comparisons,
# integer results and piecewise-constant functions (their jumps are kinks, handled apart).
_EXACT_RESULT = frozenset({
    "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor", "iota", "sign",
    "floor", "ceil", "round", "argmax", "argmin", "is_finite",
})

_NESTED_JAXPR_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _eps(x: Any) -> float:
    return float(jnp.finfo(jnp.result_type(x)).eps)


# The helpers below build the bound with lax operations, not jax.numpy: every jax.numpy
# call is a small jitted function that tracing inlines, and the bound has several
# operations per operation of the checked function, so this is most of the tracing time.


def _rounding(x: Any, units: float, terms: Any = None) -> jax.Array:
    """Error of rounding ``x`` (or a sum of ``terms``): relative part plus underflow part.

    The model with underflow is fl(a op b) = (a op b)(1 + d) + h with |d| <= u eps and
    |h| <= tiny (Higham, §2.1): a result flushed to zero loses up to the smallest normal.
    """
    if units == 0:
        return _zeros_like(x)
    magnitude = _magnitude(x) if terms is None else terms
    tiny = float(jnp.finfo(jnp.result_type(x)).tiny)
    return lax.add(lax.mul(magnitude, units * _eps(x)), units * tiny)


def _magnitude(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return lax.convert_element_type(lax.abs(x), BOUND_DTYPE)


def _scaled(coefficient: Any, error: jax.Array) -> jax.Array:
    """|coefficient| * error; an exact operand or a zero coefficient contributes exactly 0.

    Without the guard, 0 * inf (an overflowed intermediate whose influence has vanished,
    as in 1 / (1 + exp(100))) would poison the bound with NaN.
    """
    magnitude = _magnitude(coefficient)
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
    err = _rounding(out, units)
    inerrs = [None if e is None else _to_shape(e, jnp.shape(out)) for e in inerrs]
    carried = [e for e in inerrs if e is not None]
    if not carried:
        return [out], [err]
    if prim.name in _UNIT_COEFFICIENTS:
        return [out], [_sum(err, *carried)]
    if prim.name in ("max", "min"):
        # The result is one of the operands (at a tie either): its error is that operand's.
        a, b = invals
        pick_a, pick_b = (a >= b, b >= a) if prim.name == "max" else (a <= b, b <= a)
        for pick, error in ((pick_a, inerrs[0]), (pick_b, inerrs[1])):
            if error is not None:
                pick = _to_shape(jnp.asarray(pick), error.shape)
                err = lax.add(err, lax.select(pick, error, lax.full_like(error, 0.0)))
        return [out], [err]
    # Derivative coefficients in float64, like the bounds: in float32, -b/a**2 for b/a
    # overflows once a**2 underflows, while the error it scales stays finite.
    wide = [lax.convert_element_type(v, BOUND_DTYPE) if _is_float(v) else v for v in invals]
    for coefficient, error in zip(_coefficients(eqn, wide), inerrs):
        if error is not None:
            err = lax.add(err, _to_shape(_scaled(coefficient, error), err.shape))
    return [out], [err]


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
    narrowing = jnp.finfo(jnp.result_type(out)).bits < jnp.finfo(jnp.result_type(value)).bits
    err = lax.add(error, _rounding(out, 1 if narrowing else 0)) if narrowing else error
    return [out], [err]


def _reduce_sum(eqn, invals, inerrs):
    (value,), (error,) = invals, inerrs
    out = eqn.primitive.bind(value, **eqn.params)
    terms = math.prod(np.shape(value)[a] for a in eqn.params["axes"])
    params = dict(eqn.params)
    err = _rounding(out, max(terms - 1, 0), eqn.primitive.bind(_magnitude(value), **params))
    if error is not None:
        err = lax.add(err, eqn.primitive.bind(error, **params))
    return [out], [err]


def _dot_general(eqn, invals, inerrs):
    (a, b), (ea, eb) = invals, inerrs
    out = eqn.primitive.bind(a, b, **eqn.params)
    params = dict(eqn.params, preferred_element_type=BOUND_DTYPE)
    (contract_a, _), _ = eqn.params["dimension_numbers"]
    terms = math.prod(np.shape(a)[d] for d in contract_a)

    def dot(x, y):
        return eqn.primitive.bind(x, y, **params)

    abs_a, abs_b = _magnitude(a), _magnitude(b)
    magnitudes = dot(abs_a, abs_b)
    err = _rounding(out, terms, magnitudes)
    # Operands rounded to a narrower format first: |fl(a) fl(b) - ab| <= (2u + u^2)|a||b|.
    unit = matmul_input_unit(_PLATFORM.get(), eqn.params.get("precision"), jnp.result_type(a))
    if unit:
        err = lax.add(err, lax.mul(magnitudes, 2 * unit + unit * unit))
    if eb is not None:
        err = lax.add(err, dot(abs_a, eb))
    if ea is not None:
        err = lax.add(err, dot(ea, abs_b))
    return [out], [err]


# The platform the traced function will run on: it decides how float32 matmuls round.
_PLATFORM: contextvars.ContextVar[str] = contextvars.ContextVar("derivcheck_platform", default="cpu")

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
    "custom_vjp_call_jaxpr", "remat", "checkpoint",
})


def _rule(name: str) -> Callable:
    if name == "integer_pow":
        return _integer_pow
    if name in ROUNDING_UNITS:
        return _elementwise
    if name in _STRUCTURAL:
        return _structural
    if name in _EXACT_RESULT:
        return _exact
    if name == "convert_element_type":
        return _convert
    if name == "reduce_sum":
        return _reduce_sum
    if name == "dot_general":
        return _dot_general
    if name in _NESTED:
        return _nested
    raise UnsupportedPrimitive(
        f"the error-bound model has no rule for the JAX primitive '{name}'; "
        "add one to derivcheck/_bounds.py"
    )


def _eval_jaxpr(jaxpr: core.Jaxpr, consts: Sequence[Any], args, errs):
    values: dict[Any, Any] = {}
    errors: dict[Any, Any] = {}

    def read(var):
        if isinstance(var, core.Literal):
            return var.val, None
        return values[var], errors[var]

    for var, const in zip(jaxpr.constvars, consts):
        values[var], errors[var] = const, None
    for var, arg, err in zip(jaxpr.invars, args, errs):
        values[var], errors[var] = arg, err
    for eqn in jaxpr.eqns:
        invals, inerrs = zip(*(read(v) for v in eqn.invars)) if eqn.invars else ((), ())
        inerrs = tuple(e if _is_float(v) else None for v, e in zip(invals, inerrs))
        outs, out_errs = _rule(eqn.primitive.name)(eqn, list(invals), list(inerrs))
        for var, out, err in zip(eqn.outvars, outs, out_errs):
            values[var], errors[var] = out, err
    results = [read(v) for v in jaxpr.outvars]
    return [r[0] for r in results], [r[1] for r in results]


def evaluate_with_bound(fn: Callable[..., Any], *args: Any, platform: str = "cpu") -> tuple[Any, Any]:
    """Evaluate ``fn(*args)`` and a first-order bound on its rounding error.

    The arguments are taken as exact (they are the point being checked). Returns the output
    pytree and a pytree of the same structure holding, per element, a float64 upper bound
    on the absolute rounding error of that element. ``platform`` is where the result will
    run: float32 matrix products below HIGHEST precision round their operands there
    (:func:`matmul_input_unit`).
    """
    token = _PLATFORM.set(platform)
    try:
        return _evaluate_with_bound(fn, *args)
    finally:
        _PLATFORM.reset(token)


def _evaluate_with_bound(fn: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    flat_args, in_tree = jax.tree_util.tree_flatten(args)
    avals = [jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)) for a in flat_args]

    def flat_fn(*flat):
        return fn(*jax.tree_util.tree_unflatten(in_tree, list(flat)))

    closed, out_shape = jax.make_jaxpr(flat_fn, return_shape=True)(*avals)
    outs, errs = _eval_jaxpr(closed.jaxpr, closed.consts, flat_args, [None] * len(flat_args))
    errs = [e if e is not None else _zeros_like(o) for o, e in zip(outs, errs)]
    out_tree = jax.tree_util.tree_structure(out_shape)
    return (
        jax.tree_util.tree_unflatten(out_tree, outs),
        jax.tree_util.tree_unflatten(out_tree, errs),
    )
